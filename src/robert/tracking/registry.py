"""Resolve and load registered models by URI, with clear errors for names, versions and aliases.

Every consumer of the registry (evaluation, dreams, inference, serving) goes through
:func:`load_robert_model`, so a mistyped ``models:/robert@champoin`` fails the same way
everywhere: one line naming the URI and listing the versions and aliases that do exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from robert.errors import UserError

if TYPE_CHECKING:  # imported lazily: see robert.training.train._log_results
    from robert.tracking.pyfunc import RobertModel

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version: ``models:/<name>/<version>`` after resolving any alias."""

    name: str
    version: str
    uri: str           # the URI as given
    run_id: str

    @property
    def version_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _available(client: MlflowClient, name: str) -> str:
    versions = sorted((v for v in client.search_model_versions(f"name='{name}'")), key=lambda v: int(v.version))
    aliases = client.get_registered_model(name).aliases
    alias_text = ", ".join(f"@{alias} -> {version}" for alias, version in sorted(aliases.items())) or "none"
    return f"versions: {', '.join(str(v.version) for v in versions) or 'none'}; aliases: {alias_text}"


def resolve_model_uri(uri: str) -> ModelRef:
    """Check that a ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` URI exists in the registry."""
    match = _REGISTRY_URI.match(uri)
    if match is None:
        raise UserError(f"model URI {uri!r} is not of the form models:/<name>/<version> or models:/<name>@<alias>")
    client = MlflowClient()
    name = match["name"]
    try:
        client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models())
        raise UserError(f"no registered model {name!r} in {mlflow.get_registry_uri()} "
                        f"(registered models: {', '.join(names) or 'none'}): run `python src/train.py` first") from None
    try:
        version = (client.get_model_version(name, match["version"]) if match["version"]
                   else client.get_model_version_by_alias(name, match["alias"]))
    except MlflowException:
        raise UserError(f"model URI {uri!r} names no version of {name!r} ({_available(client, name)})") from None
    return ModelRef(name, str(version.version), uri, version.run_id)


def load_robert_model(uri: str) -> tuple[RobertModel, ModelRef]:
    """The registered model's python object (the ``mlflow.pyfunc.load_model`` code path) and its version."""
    ref = resolve_model_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(ref.version_uri).unwrap_python_model()
    except MlflowException as exc:
        raise UserError(f"cannot load {uri} ({ref.version_uri}) from {mlflow.get_tracking_uri()}: "
                        f"{str(exc).splitlines()[0]}") from None
    return model, ref
