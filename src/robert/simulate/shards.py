"""Dataset shards: HDF5 files of clean spectra, each gas's fingerprint, labels, parameters and provenance.

One shard holds ``shard_size`` spectra of one planet. A shard is written to a temporary file and renamed into
place, so a half-written shard never exists under its final name; a run that is killed resumes at the first
missing (or stale) shard. Writes carry no timestamps, so the same seed gives byte-identical files.

Layout of ``shard-NNNNN.h5`` (format version 2, attribute ``format_version``):
  eclipse_depth (N, W) float32    Fp/Fs (Rp/Rs)^2, noiseless (noise is drawn at training time);
                                  transmission shards hold transit_depth (R/Rs)^2 instead
  wavelength_um (W,) float64      output-grid bin centres
  labels (N, M) uint8             1 where the molecule was injected (its VMR > 0)
  delta_depth (P, W) float16      one row per injected (spectrum, gas) pair: (D_with - D_without that gas) /
                                  mean(D_with), the gas's fingerprint relative to the spectrum's mean depth;
                                  gzip-compressed. Relative values keep float16's 3 significant digits at any
                                  depth scale; what it drops (< 1e-3 of the fingerprint) moves Delta chi^2 by
                                  < 0.2 % (tests/test_detection.py)
  delta_pair (P, 2) int32         (row, molecule) of each delta_depth row, ordered by row then molecule
  params/<name> (N,) float32      every sampled parameter
  attrs: format_version, planet, molecules (JSON), provenance (JSON), composition, seed, shard_index,
         config_hash, geometry (transmission only)
Format 1 (no delta_depth; one "detectability" number per pair) cannot give a Delta chi^2 under per-bin errors
or partial coverage: reading one is a one-line error naming the command that regenerates it.
In memory the spectrum is ``Shard.eclipse_depth`` whatever the geometry; ``Shard.geometry`` says what it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from robert.atomic import atomic_output
from robert.errors import UserError

FORMAT_VERSION = 2


@dataclass
class Shard:
    eclipse_depth: np.ndarray        # (N, W) float32
    wavelength_um: np.ndarray        # (W,)
    labels: np.ndarray               # (N, M) injected 0/1
    delta_depth: np.ndarray          # (P, W) relative fingerprint of each injected pair
    delta_pair: np.ndarray           # (P, 2) (row, molecule)
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
    """Where a geometry's dataset lives: emission at ``out_dir``, others at ``<out_dir>-<geometry>``."""
    out_dir = Path(out_dir)
    return out_dir if geometry == "emission" else out_dir.with_name(f"{out_dir.name}-{geometry}")


def acceptance_attr(dataset: Mapping) -> str:
    """A dataset config's fingerprint rule as stored with every shard (JSON; "null": every spectrum kept), so a
    regime that needs the rule can refuse a set made without it."""
    return json.dumps(dataset.get("acceptance"), sort_keys=True)


def shard_path(out_dir: Path, index: int) -> Path:
    return Path(out_dir) / f"shard-{index:05d}.h5"


def write_shard(path: Path, shard: Shard) -> None:
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        def put(name: str, data: np.ndarray, dtype, **options) -> None:
            f.create_dataset(name, data=np.asarray(data, dtype=dtype), track_times=False, **options)

        put(DEPTH_DATASET[shard.geometry], shard.eclipse_depth, np.float32)
        put("wavelength_um", shard.wavelength_um, np.float64)
        put("labels", shard.labels, np.uint8)
        # zero-size datasets cannot be chunked (no injected gas anywhere: only possible in tests)
        compressed = {"compression": "gzip", "compression_opts": 4, "shuffle": True} if len(shard.delta_pair) else {}
        put("delta_depth", shard.delta_depth, np.float16, **compressed)
        put("delta_pair", shard.delta_pair.reshape(-1, 2), np.int32)
        for name in sorted(shard.params):
            put(f"params/{name}", shard.params[name], np.float32)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["planet"] = shard.planet
        f.attrs["molecules"] = json.dumps(shard.molecules)
        f.attrs["provenance"] = json.dumps(shard.provenance, sort_keys=True)
        f.attrs["composition"] = shard.composition
        f.attrs["seed"] = shard.seed
        f.attrs["shard_index"] = shard.shard_index
        f.attrs["config_hash"] = shard.config_hash
        for key, value in sorted(shard.extra_attrs.items()):
            f.attrs[key] = value
        if shard.geometry != "emission":
            f.attrs["geometry"] = shard.geometry


def shard_config_hash(path: Path) -> str | None:
    """The config hash recorded in a complete shard of the current format, or None (absent, unreadable, old)."""
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("format_version", 1)) != FORMAT_VERSION:
                return None
            return str(f.attrs["config_hash"])
    except (OSError, KeyError):
        return None


_OWN_ATTRS = {"format_version", "planet", "molecules", "provenance", "composition", "seed", "shard_index",
              "config_hash", "geometry"}


def read_shard(path: Path, regenerate: str = "dvc repro") -> Shard:
    """Read a shard; ``regenerate`` is the command named when the shard is of an older format."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            version = int(a.get("format_version", 1))
            if version != FORMAT_VERSION:
                raise UserError(f"{path} is a dataset shard of format {version}, written by an older RobERt (this "
                                f"one reads format {FORMAT_VERSION}, which stores each gas's fingerprint for "
                                f"detection labels): regenerate it with `{regenerate}`")
            geometry = str(a.get("geometry", "emission"))
            return Shard(
                eclipse_depth=f[DEPTH_DATASET[geometry]][()], wavelength_um=f["wavelength_um"][()],
                labels=f["labels"][()], delta_depth=f["delta_depth"][()], delta_pair=f["delta_pair"][()],
                params={k: f["params"][k][()] for k in f["params"]} if "params" in f else {},
                planet=str(a["planet"]), molecules=json.loads(a["molecules"]),
                provenance=json.loads(a["provenance"]), composition=str(a["composition"]),
                seed=int(a["seed"]), shard_index=int(a["shard_index"]), config_hash=str(a["config_hash"]),
                extra_attrs={k: str(v) for k, v in a.items() if k not in _OWN_ATTRS},
                geometry=geometry,
            )
    except (OSError, KeyError) as exc:
        raise UserError(f"{path} is not a complete RobERt dataset shard ({exc}): regenerate it with "
                        f"`{regenerate}`") from None


def list_shards(planet_dir: Path) -> list[Path]:
    return sorted(Path(planet_dir).glob("shard-*.h5"))
