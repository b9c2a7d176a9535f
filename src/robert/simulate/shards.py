"""Dataset shards: HDF5 files of clean spectra with their labels, parameters and provenance.

One shard holds ``shard_size`` spectra of one planet. A shard is written to a temporary file
and renamed into place, so a half-written shard never exists under its final name; a run that
is killed resumes at the first missing (or stale) shard. Writes carry no timestamps, so the
same seed gives byte-identical files.

Layout of ``shard-NNNNN.h5``:
  eclipse_depth (N, n_wavelength) float32   Fp/Fs (Rp/Rs)^2, noiseless (noise is added at training time);
                                            transmission shards hold transit_depth (R/Rs)^2 instead
  wavelength_um (n_wavelength,) float64     output-grid bin centres
  labels (N, n_molecules) uint8             1 where the molecule is in the atmosphere
  detectability (N, n_molecules) float32    RMS(D_with - D_without)/mean(D_with), NaN if absent
  params/<name> (N,) float32                every sampled parameter
  attrs: planet, molecules (JSON), provenance (JSON), composition, seed, shard_index, config_hash,
         geometry (transmission only; absent = emission, as in shards written before transmission existed)
In memory the spectrum is ``Shard.eclipse_depth`` whatever the geometry (readers need no change);
``Shard.geometry`` says what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from robert.atomic import atomic_output
from robert.errors import UserError


@dataclass
class Shard:
    eclipse_depth: np.ndarray
    wavelength_um: np.ndarray
    labels: np.ndarray
    detectability: np.ndarray
    params: dict[str, np.ndarray]
    planet: str
    molecules: list[str]
    provenance: dict[str, str]
    composition: str
    seed: int
    shard_index: int
    config_hash: str
    extra_attrs: dict[str, str] = field(default_factory=dict)
    geometry: str = "emission"


# the on-disk name of the spectrum of each geometry
DEPTH_DATASET = {"emission": "eclipse_depth", "transmission": "transit_depth"}


def geometry_dataset_dir(out_dir: Path, geometry: str) -> Path:
    """Where a geometry's dataset lives: emission at ``out_dir`` (as always), others at ``<out_dir>-<geometry>``."""
    out_dir = Path(out_dir)
    return out_dir if geometry == "emission" else out_dir.with_name(f"{out_dir.name}-{geometry}")


def shard_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"shard-{index:05d}.h5"


def write_shard(path: Path, shard: Shard) -> None:
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        def put(name: str, data: np.ndarray, dtype) -> None:
            f.create_dataset(name, data=np.asarray(data, dtype=dtype), track_times=False)

        put(DEPTH_DATASET[shard.geometry], shard.eclipse_depth, np.float32)
        put("wavelength_um", shard.wavelength_um, np.float64)
        put("labels", shard.labels, np.uint8)
        put("detectability", shard.detectability, np.float32)
        for name in sorted(shard.params):
            put(f"params/{name}", shard.params[name], np.float32)
        f.attrs["planet"] = shard.planet
        f.attrs["molecules"] = json.dumps(shard.molecules)
        f.attrs["provenance"] = json.dumps(shard.provenance, sort_keys=True)
        f.attrs["composition"] = shard.composition
        f.attrs["seed"] = shard.seed
        f.attrs["shard_index"] = shard.shard_index
        f.attrs["config_hash"] = shard.config_hash
        for key, value in sorted(shard.extra_attrs.items()):
            f.attrs[key] = value
        if shard.geometry != "emission":  # emission shards keep their earlier bytes
            f.attrs["geometry"] = shard.geometry


def shard_config_hash(path: Path) -> str | None:
    """The config hash recorded in a complete shard, or None when absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs["config_hash"])
    except (OSError, KeyError):
        return None


def read_shard(path: Path) -> Shard:
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            geometry = str(a.get("geometry", "emission"))
            return Shard(
                eclipse_depth=f[DEPTH_DATASET[geometry]][()], wavelength_um=f["wavelength_um"][()],
                labels=f["labels"][()], detectability=f["detectability"][()],
                params={k: f["params"][k][()] for k in f["params"]} if "params" in f else {},
                planet=str(a["planet"]), molecules=json.loads(a["molecules"]),
                provenance=json.loads(a["provenance"]), composition=str(a["composition"]),
                seed=int(a["seed"]), shard_index=int(a["shard_index"]), config_hash=str(a["config_hash"]),
                extra_attrs={k: str(v) for k, v in a.items() if k not in {
                    "planet", "molecules", "provenance", "composition", "seed", "shard_index", "config_hash",
                    "geometry"}},
                geometry=geometry,
            )
    except (OSError, KeyError) as exc:
        raise UserError(f"{path} is not a complete RobERt dataset shard ({exc})") from None


def list_shards(planet_dir: Path) -> list[Path]:
    return sorted(Path(planet_dir).glob("shard-*.h5"))
