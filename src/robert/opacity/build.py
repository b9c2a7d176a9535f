"""The ``opacities`` stage: every configured molecule's cross-sections and the CIA pairs, into one cache.

Output (``opacity.cache_dir``): ``<MOLECULE>.xsec.h5`` in the TauREx layout, ``<PAIR>.cia`` in the
HITRAN CIA format, and ``provenance.yaml`` naming the source of each file. A file whose
recorded config hash matches is kept, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import yaml

from robert.atomic import atomic_write_bytes
from robert.errors import choice_error
from robert.inputs.fetch import require_input
from robert.opacity import sources
from robert.opacity.cia import read_borysow, restrict, write_hitran_cia
from robert.opacity.grid import check_axis, wavenumber_grid
from robert.opacity.xsec_hdf5 import CrossSectionTable, read_xsec_hdf5, write_xsec_hdf5

# CIA pair -> the input file (conf/inputs) it is read from
CIA_FILES = {
    "H2-H2": "CIA_Borysow_H2H2_0060-7000K_0.6-500um.dat",
    "H2-He": "CIA_Borysow_H2He_0050-7000K_0.5-031um.dat",
}


def opacity_grids(opacity: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavenumber_cm, temperature_K, pressure_bar) of the cache, validated."""
    nu = wavenumber_grid(opacity["wavelength_min_um"], opacity["wavelength_max_um"], opacity["resolution"])
    return (nu, check_axis("opacity.temperature_K", opacity["temperature_K"]),
            check_axis("opacity.pressure_bar", opacity["pressure_bar"]))


def config_hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_molecules(selected: list[str], catalogue: Mapping) -> None:
    for name in selected:
        if name not in catalogue:
            raise choice_error("molecule (opacity.molecules)", name, catalogue)


def build_molecule(spec: Mapping, opacity: Mapping, data_dir: Path, cache_dir: Path) -> tuple[Path, bool]:
    """Build (or keep, when up to date) one molecule's file. Returns (path, rebuilt)."""
    nu, temps, pressures = opacity_grids(opacity)
    digest = config_hash(dict(spec), {k: opacity[k] for k in
                                      ("wavelength_min_um", "wavelength_max_um", "resolution",
                                       "temperature_K", "pressure_bar")})
    path = cache_dir / f"{spec['name']}.xsec.h5"
    if path.exists() and read_xsec_hdf5(path).config_hash == digest:
        return path, False
    sigma = sources.cross_section_grid(spec, nu, temps, pressures, data_dir)
    write_xsec_hdf5(path, CrossSectionTable(
        molecule=spec["name"], temperature_K=temps, pressure_bar=pressures, wavenumber_cm=nu,
        xsec_cm2=sigma, mass_amu=float(spec["mass_amu"]), provenance=spec["provenance"], config_hash=digest))
    return path, True


def build_cache(opacity: Mapping, molecules: Mapping, inputs: Mapping, root: Path,
                log: Callable[[str], None] = print) -> dict[str, str]:
    """Build the whole cache; returns {file name: provenance}."""
    check_molecules(list(opacity["molecules"]), molecules)
    for pair in opacity["cia"]:
        if pair not in CIA_FILES:
            raise choice_error("CIA pair (opacity.cia)", pair, CIA_FILES)
    data_dir = root / inputs["data_dir"]
    cache_dir = root / opacity["cache_dir"]
    nu, _, _ = opacity_grids(opacity)
    provenance: dict[str, str] = {}
    for name in opacity["molecules"]:
        spec = molecules[name]
        start = time.perf_counter()
        path, rebuilt = build_molecule(spec, opacity, data_dir, cache_dir)
        log(f"{name:>5}: {'built' if rebuilt else 'up to date'} {path} ({time.perf_counter() - start:.1f} s)")
        provenance[path.name] = spec["provenance"]
    for pair in opacity["cia"]:
        source = require_input(inputs, root, CIA_FILES[pair])
        label = f"CIA: Borysow tables ({source.name})"
        table = restrict(read_borysow(source, label), nu[0], nu[-1])
        path = cache_dir / f"{pair}.cia"
        write_hitran_cia(path, table)
        log(f"{pair}: wrote {path}")
        provenance[path.name] = label
    text = "# Source of every file in this cache (written by the opacities stage)\n" + yaml.safe_dump(provenance)
    atomic_write_bytes(cache_dir / "provenance.yaml", text.encode())
    return provenance
