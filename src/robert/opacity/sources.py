"""Which builder makes each molecule's cross-sections, chosen by ``source`` in conf/molecules/<NAME>.yaml.

Every builder has the same signature::

    cross_section_grid(spec, wavenumber_cm, temperature_K, pressure_bar, data_dir) -> (nP, nT, nW)

returning cm^2/molecule (float64), where ``spec`` is the molecule's config as a plain dict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from robert.errors import UserError

# source name -> module implementing cross_section_grid (imported lazily: each is heavy to set up)
BUILDERS = {
    "line_list": "robert.opacity.line_by_line",
    "diatomic": "robert.opacity.diatomic",
    "band_model": "robert.opacity.band_model",
    "electronic": "robert.opacity.electronic",
}

Builder = Callable[[Mapping, np.ndarray, np.ndarray, np.ndarray, Path], np.ndarray]


def builder_for(spec: Mapping) -> Builder:
    source = spec.get("source")
    if source not in BUILDERS:
        raise UserError(f"molecule {spec.get('name')!r}: unknown opacity source {source!r}; "
                        f"expected one of: {', '.join(BUILDERS)}")
    return importlib.import_module(BUILDERS[source]).cross_section_grid


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule for one molecule, from whichever source it names."""
    sigma = builder_for(spec)(spec, wavenumber_cm, temperature_K, pressure_bar, data_dir)
    expected = (len(pressure_bar), len(temperature_K), len(wavenumber_cm))
    if sigma.shape != expected:
        raise RuntimeError(f"{spec['name']}: builder returned shape {sigma.shape}, expected {expected}")
    return sigma
