"""The pip requirements written with a logged pyfunc model: the installed versions of named packages.

Why not MLflow's inference: it loads the model in a subprocess (~10 s per logged model) and lists this
package as ``robert==<version>``, which no index serves (the package travels with the model as
``code_paths``), while missing nothing the model imports beyond ``mlflow, torch, numpy, pandas, cloudpickle``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from robert.errors import UserError


def pinned_requirements(packages: Sequence[str], field: str) -> list[str]:
    """``name==installed version`` for each package; a UserError naming ``field`` for one not installed."""
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            raise UserError(f"{field}: package {package!r} is not installed") from None
    return pins
