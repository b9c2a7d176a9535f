"""The simulator's shards in memory: spectra, injected gases, fingerprints, and the seeded train/val/test split.

Reads ``<dataset dir>/<composition>/<planet>/shard-*.h5`` (:mod:`robert.simulate.shards`) for every selected
planet. Each planet's rows are split on their own: the TEST rows first, from ``data.test_seed`` alone (so the
test set is fixed whatever the training seed and whichever other planets are selected; it is never used for
model selection), then the validation rows from ``data.split_seed``; the rest is training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robert.errors import UserError
from robert.simulate.shards import geometry_dataset_dir, list_shards, read_shard
from robert.spectra.nuisance import NuisanceBasis, gas_templates
from robert.spectra.transforms import stable_seed

SPLITS = ("train", "val", "test")


def resolve_planets(cfg: Mapping, planet_choice: str | None = None) -> list[str]:
    """The planet keys to read: ``data.planets`` if set, else ``planet.keys`` (planet=all) or the choice."""
    explicit = cfg["data"].get("planets")
    if explicit:
        planets = [explicit] if isinstance(explicit, str) else list(explicit)
    elif "keys" in cfg.get("planet", {}):
        planets = list(cfg["planet"]["keys"])
    elif planet_choice:
        planets = [planet_choice]
    else:
        raise UserError("no planet selected: use planet=all, planet=<key> or data.planets=[...]")
    if len(set(planets)) != len(planets):
        raise UserError(f"data.planets lists a planet twice: {planets}")
    return planets


def dataset_dir(cfg: Mapping, root: Path) -> Path:
    """Where the configured simulated set lives: ``dataset.out_dir`` (+ ``-<geometry>`` beside emission)."""
    geometry = cfg.get("simulate", {}).get("geometry", "emission")
    return geometry_dataset_dir(Path(root) / cfg["dataset"]["out_dir"], geometry)


@dataclass
class Spectra:
    """Clean spectra with their injected gases and fingerprints, in memory (one planet, a split, or several).

    Fingerprints (:mod:`robert.simulate.shards`) are stored once, in ``delta`` (P, W) float16 relative to the
    row's mean depth; each row points at its own through ``pair_index`` (N, K) (-1 = none), with the molecule
    of each in ``pair_molecule`` (N, K). Taking rows shares ``delta``.
    """

    depth: np.ndarray                      # (N, W) float32, noiseless
    injected: np.ndarray                   # (N, M) float32 0/1
    delta: np.ndarray                      # (P, W) float16
    pair_index: np.ndarray                 # (N, K) int64 rows of delta, -1 padding
    pair_molecule: np.ndarray              # (N, K) int64 molecule index, -1 padding
    params: dict[str, np.ndarray]          # (N,) each
    planet: np.ndarray                     # (N,) planet key of each row
    molecules: list[str]
    wavelength_um: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.depth)

    def take(self, rows: np.ndarray) -> Spectra:
        return replace(self, depth=self.depth[rows], injected=self.injected[rows], pair_index=self.pair_index[rows],
                       pair_molecule=self.pair_molecule[rows], params={k: v[rows] for k, v in self.params.items()},
                       planet=self.planet[rows])

    @staticmethod
    def concat(parts: Sequence[Spectra]) -> Spectra:
        """Rows of every part, in order; the fingerprints are concatenated once and re-pointed."""
        first = parts[0]
        width = max(p.pair_index.shape[1] for p in parts)
        offsets = np.cumsum([0] + [len(p.delta) for p in parts])

        def padded(array: np.ndarray, shift: int = 0) -> np.ndarray:
            out = np.full((len(array), width), -1, dtype=np.int64)
            out[:, :array.shape[1]] = np.where(array >= 0, array + shift, -1)
            return out

        keys = set.intersection(*(set(p.params) for p in parts))
        return Spectra(np.concatenate([p.depth for p in parts]), np.concatenate([p.injected for p in parts]),
                       np.concatenate([p.delta for p in parts]),
                       np.concatenate([padded(p.pair_index, int(o)) for p, o in zip(parts, offsets, strict=False)]),
                       np.concatenate([padded(p.pair_molecule) for p in parts]),
                       {k: np.concatenate([p.params[k] for p in parts]) for k in sorted(keys)},
                       np.concatenate([p.planet for p in parts]), first.molecules, first.wavelength_um,
                       {k: v for p in parts for k, v in p.provenance.items()})

    def fingerprint_norm(self) -> np.ndarray:
        """(N, M) sqrt(sum over the grid of (Delta D / mean D)^2) of each injected gas, 0 where not injected.

        Times the SNR it is the gas's feature S/N under white noise over the whole grid (the old
        "detectability" x SNR x sqrt(n_bins)).
        """
        norms = np.sqrt((self.delta.astype(np.float32) ** 2).sum(1)) if len(self.delta) else np.zeros(0)
        out = np.zeros(self.injected.shape, dtype=np.float32)
        rows, slots = np.nonzero(self.pair_index >= 0)
        out[rows, self.pair_molecule[rows, slots]] = norms[self.pair_index[rows, slots]]
        return out

    def nuisance_basis(self) -> NuisanceBasis:
        """What a profiled Delta chi^2 fits besides the gas (:mod:`robert.spectra.nuisance`): this set's gases'
        templates (of the training split, as the data module uses it) and a continuum on its grid."""
        return NuisanceBasis.build(self.wavelength_um, gas_templates(self.delta, self.pair_molecule, self.pair_index,
                                                                     len(self.molecules)))

    def vmr(self) -> np.ndarray:
        """(N, M) injected volume mixing ratios."""
        return np.stack([self.params[f"vmr_{m}"] for m in self.molecules], 1)


def _pair_table(pairs: np.ndarray, n_rows: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) indices into the fingerprints and their molecules from (P, 2) (row, molecule), rows sorted."""
    counts = np.bincount(pairs[:, 0], minlength=n_rows) if len(pairs) else np.zeros(n_rows, dtype=np.int64)
    width = max(int(counts.max()) if n_rows else 0, 1)
    index = np.full((n_rows, width), -1, dtype=np.int64)
    molecule = np.full((n_rows, width), -1, dtype=np.int64)
    slot = np.arange(len(pairs)) - np.repeat(np.cumsum(counts) - counts, counts)
    index[pairs[:, 0], slot] = first + np.arange(len(pairs))
    molecule[pairs[:, 0], slot] = pairs[:, 1]
    return index, molecule


def load_planet(directory: Path, composition: str, planet: str, regenerate: str,
                expected: Mapping[str, Any] | None = None) -> Spectra:
    """Every shard of one planet, checked for consistent molecules, grid and (``expected``) shard attributes.

    ``regenerate`` is the command named in errors; ``expected`` maps shard attributes to the values this
    experiment needs (e.g. the fingerprint rule of a regime).
    """
    planet_dir = Path(directory) / composition / planet
    paths = list_shards(planet_dir)
    if not paths:
        raise UserError(f"no {composition} spectra for planet {planet} (no shards in {planet_dir}): run `{regenerate}`")
    shards = [read_shard(p, regenerate) for p in paths]
    first = shards[0]
    for shard, path in zip(shards, paths, strict=True):
        if shard.molecules != first.molecules or shard.eclipse_depth.shape[1] != first.eclipse_depth.shape[1]:
            raise UserError(f"{path} does not match {paths[0]} (molecules or number of wavelengths differ): "
                            f"regenerate with `{regenerate}`")
        for key, value in (expected or {}).items():
            found = shard.extra_attrs.get(key, "null")
            if found != value:
                raise UserError(f"{path} was generated with dataset.{key}={found}, but this experiment needs "
                                f"dataset.{key}={value}: generate its own set with `{regenerate}`")
    depth, pair_parts, index_parts, molecule_parts, offset = [], [], [], [], 0
    for shard in shards:
        index, molecule = _pair_table(shard.delta_pair, len(shard.eclipse_depth), offset)
        index_parts.append(index)
        molecule_parts.append(molecule)
        pair_parts.append(shard.delta_depth)
        depth.append(shard.eclipse_depth)
        offset += len(shard.delta_depth)
    n = sum(len(d) for d in depth)
    width = max(p.shape[1] for p in index_parts)
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1)  # noqa: E731
    provenance = {"opacities": first.provenance, "composition": first.composition, "seed": first.seed,
                  "config_hash": sorted({s.config_hash for s in shards}), "n_spectra": n, "n_shards": len(shards)}
    return Spectra(
        depth=np.concatenate(depth).astype(np.float32),
        injected=np.concatenate([s.labels for s in shards]).astype(np.float32),
        delta=np.concatenate(pair_parts).astype(np.float16),
        pair_index=np.concatenate([pad(a) for a in index_parts]),
        pair_molecule=np.concatenate([pad(a) for a in molecule_parts]),
        params={k: np.concatenate([s.params[k] for s in shards]) for k in first.params},
        planet=np.full(n, planet), molecules=list(first.molecules), wavelength_um=first.wavelength_um,
        provenance={planet: provenance})


def split_rows(n: int, planet: str, data: Mapping) -> dict[str, np.ndarray]:
    """Row indices of each split of one planet's ``n`` rows (test first, from its own seed)."""
    val_fraction, test_fraction = float(data["val_fraction"]), float(data["test_fraction"])
    if not (test_fraction > 0 and val_fraction > 0 and val_fraction + test_fraction < 1):
        raise UserError("data.val_fraction and data.test_fraction must be > 0 with a sum below 1; "
                        f"got {val_fraction}, {test_fraction}")
    order = np.random.default_rng(stable_seed("test", data["test_seed"], planet)).permutation(n)
    n_test = max(1, round(test_fraction * n))
    rest = order[n_test:]
    rest = rest[np.random.default_rng(stable_seed("val", data["split_seed"], planet)).permutation(len(rest))]
    n_val = max(1, round(val_fraction * n))
    if len(rest) - n_val < 1:
        raise UserError(f"planet {planet} has only {n} spectra: too few to split into train/val/test")
    return {"test": np.sort(order[:n_test]), "val": np.sort(rest[:n_val]), "train": np.sort(rest[n_val:])}


def load_splits(directory: Path, composition: str, planets: Sequence[str], data: Mapping, regenerate: str,
                expected: Mapping[str, Any] | None = None) -> dict[str, Spectra]:
    """Each split over all ``planets`` (rows of one planet together, planets in the given order)."""
    per_planet = [load_planet(directory, composition, planet, regenerate.format(planet=planet), expected)
                  for planet in planets]
    reference = per_planet[0]
    for planet, spectra in zip(planets[1:], per_planet[1:], strict=True):
        if spectra.molecules != reference.molecules or spectra.depth.shape[1] != reference.depth.shape[1]:
            raise UserError(f"planet {planet}'s spectra ({spectra.depth.shape[1]} wavelengths, molecules "
                            f"{spectra.molecules}) do not match {planets[0]}'s ({reference.depth.shape[1]}, "
                            f"{reference.molecules}): regenerate both with the same dataset settings")
    everything = Spectra.concat(per_planet)
    offsets = np.cumsum([0] + [len(s) for s in per_planet])
    rows = [split_rows(len(s), planet, data) for s, planet in zip(per_planet, planets, strict=True)]
    return {split: everything.take(np.concatenate([r[split] + o for r, o in zip(rows, offsets, strict=False)]))
            for split in SPLITS}


__all__ = ["SPLITS", "Spectra", "dataset_dir", "load_planet", "load_splits", "resolve_planets", "split_rows"]
