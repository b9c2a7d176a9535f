"""Cross-section files in the TauREx 3 / ExoMol HDF5 layout.

Keys: ``mol_name`` (1-element bytes array, as TauREx's HDF5Opacity requires), ``t`` [K],
``p`` [bar, attr units], ``bin_edges`` (the wavenumber grid, cm^-1), ``xsecarr`` (nP, nT, nW)
[cm^2/molecule]; ``units`` attributes on each so exo-k reads them too. We add ``mol_mass``
[amu] and a ``provenance`` attribute (e.g. ``line-list: HITRAN2012``) that travels into every
dataset built from the file. Writes are atomic and byte-deterministic (no HDF5 timestamps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from robert.atomic import atomic_output
from robert.errors import UserError


@dataclass(frozen=True)
class CrossSectionTable:
    """sigma(P, T, nu) of one molecule on a shared grid."""

    molecule: str
    temperature_K: np.ndarray  # (nT,)
    pressure_bar: np.ndarray  # (nP,)
    wavenumber_cm: np.ndarray  # (nW,) ascending
    xsec_cm2: np.ndarray  # (nP, nT, nW) cm^2/molecule
    mass_amu: float
    provenance: str
    config_hash: str = ""


def write_xsec_hdf5(path: Path, table: CrossSectionTable) -> None:
    """Write ``table`` to ``path`` atomically (temporary file + rename)."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        f.attrs["provenance"] = table.provenance
        f.attrs["config_hash"] = table.config_hash
        f.create_dataset("mol_name", data=np.array([table.molecule.encode()]), track_times=False)
        f.create_dataset("mol_mass", data=np.array([table.mass_amu]), track_times=False)
        for key, data, units in (("t", table.temperature_K, "K"), ("p", table.pressure_bar, "bar"),
                                 ("bin_edges", table.wavenumber_cm, "cm^-1"),
                                 ("xsecarr", table.xsec_cm2, "cm^2/molecule")):
            dset = f.create_dataset(key, data=np.asarray(data, dtype=np.float64), track_times=False)
            dset.attrs["units"] = units


def read_xsec_hdf5(path: Path) -> CrossSectionTable:
    """Read a TauREx-layout cross-section file (ours or any ExoMol/TauREx one)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"missing cross-section file {path}; run `dvc repro opacities` to build the cache")
    try:
        with h5py.File(path, "r") as f:
            name = f["mol_name"][()]
            name = name[0] if np.ndim(name) else name
            name = name.decode() if isinstance(name, bytes) else str(name)
            p_units = f["p"].attrs.get("units", "bar")
            p_units = p_units.decode() if isinstance(p_units, bytes) else p_units
            pressure = np.asarray(f["p"][()], dtype=float) * {"bar": 1.0, "Pa": 1e-5, "pascal": 1e-5}[p_units]
            return CrossSectionTable(
                molecule=name,
                temperature_K=np.asarray(f["t"][()], dtype=float),
                pressure_bar=pressure,
                wavenumber_cm=np.asarray(f["bin_edges"][()], dtype=float),
                xsec_cm2=np.asarray(f["xsecarr"][()], dtype=float),
                mass_amu=float(f["mol_mass"][()][0]) if "mol_mass" in f else float("nan"),
                provenance=str(f.attrs.get("provenance", "external file (provenance not recorded)")),
                config_hash=str(f.attrs.get("config_hash", "")),
            )
    except (OSError, KeyError) as exc:
        raise UserError(f"{path} is not a TauREx-layout cross-section HDF5 file ({exc})") from None
