"""The training data: the simulator's shards, a seeded train/val/test split, noise on the fly.

Reads ``<data.dataset_dir>/<composition>/<planet>/shard-*.h5`` for every selected planet (see
:mod:`robert.simulate.shards`). Each planet's rows are split on their own: the TEST rows first, from
``data.test_seed`` alone (so the test set is fixed whatever the training seed and whichever other
planets are selected, and it is never used for model selection), then the validation rows from
``data.split_seed``; the rest is training.

Noise (:mod:`robert.spectra.transforms`, sigma = mean(depth)/SNR per spectrum): training batches get a
fresh draw in :meth:`SpectraDataModule.on_after_batch_transfer` from a generator seeded by
(noise seed, epoch, rank), so a resumed run repeats the noise of an uninterrupted one; the
validation and test sets get one seeded draw when they are built. Every spectrum is then min-max
normalised to [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

from robert.spectra.transforms import add_noise, noisy_normalised, normalise, stable_seed
from robert.errors import UserError
from robert.spectra.coverage import Coverage, restrict_spectra
from robert.simulate.shards import list_shards, read_shard

SPLITS = ("train", "val", "test")


def simulate_fix(planet: str, composition: str) -> str:
    """The command that generates a planet's missing dataset."""
    if composition == "single":
        return f"dvc repro simulate@{planet}"
    return f"python src/generate.py planet={planet} composition={composition}"


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


@dataclass
class Spectra:
    """Clean spectra with their labels and metadata, in memory (one planet, a split, or several)."""

    depth: np.ndarray                      # (N, W) float32, noiseless
    labels: np.ndarray                     # (N, M) float32 0/1
    detectability: np.ndarray              # (N, M) float32, NaN where absent
    params: dict[str, np.ndarray]          # (N,) each
    planet: np.ndarray                     # (N,) planet key of each row
    molecules: list[str]
    wavelength_um: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.depth)

    def take(self, rows: np.ndarray) -> Spectra:
        return Spectra(self.depth[rows], self.labels[rows], self.detectability[rows],
                       {k: v[rows] for k, v in self.params.items()}, self.planet[rows], self.molecules,
                       self.wavelength_um, self.provenance)

    @staticmethod
    def concat(parts: Sequence[Spectra]) -> Spectra:
        first = parts[0]
        keys = set.intersection(*(set(p.params) for p in parts))
        return Spectra(np.concatenate([p.depth for p in parts]), np.concatenate([p.labels for p in parts]),
                       np.concatenate([p.detectability for p in parts]),
                       {k: np.concatenate([p.params[k] for p in parts]) for k in sorted(keys)},
                       np.concatenate([p.planet for p in parts]), first.molecules, first.wavelength_um,
                       {k: v for p in parts for k, v in p.provenance.items()})


def load_planet(dataset_dir: Path, composition: str, planet: str) -> Spectra:
    """Every shard of one planet, checked for consistent molecules and wavelength grid."""
    planet_dir = Path(dataset_dir) / composition / planet
    paths = list_shards(planet_dir)
    if not paths:
        raise UserError(f"no {composition} spectra for planet {planet} (no shards in {planet_dir}): "
                        f"run `{simulate_fix(planet, composition)}`")
    shards = [read_shard(p) for p in paths]
    first = shards[0]
    for shard, path in zip(shards, paths, strict=True):
        if shard.molecules != first.molecules or shard.eclipse_depth.shape[1] != first.eclipse_depth.shape[1]:
            raise UserError(f"{path} does not match {paths[0]} (molecules or number of wavelengths differ): "
                            f"regenerate with `{simulate_fix(planet, composition)}`")
    n = sum(len(s.eclipse_depth) for s in shards)
    if n == 0:
        raise UserError(f"the dataset of planet {planet} in {planet_dir} is empty: "
                        f"run `{simulate_fix(planet, composition)}`")
    provenance = {"opacities": first.provenance, "composition": first.composition, "seed": first.seed,
                  "config_hash": sorted({s.config_hash for s in shards}), "n_spectra": n, "n_shards": len(shards)}
    return Spectra(
        depth=np.concatenate([s.eclipse_depth for s in shards]).astype(np.float32),
        labels=np.concatenate([s.labels for s in shards]).astype(np.float32),
        detectability=np.concatenate([s.detectability for s in shards]).astype(np.float32),
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


def load_splits(dataset_dir: Path, composition: str, planets: Sequence[str], data: Mapping) -> dict[str, Spectra]:
    """Each split over all ``planets`` (rows of one planet together, planets in the given order)."""
    per_planet = [load_planet(dataset_dir, composition, planet) for planet in planets]
    for planet, spectra in zip(planets[1:], per_planet[1:], strict=True):
        reference = per_planet[0]
        if spectra.molecules != reference.molecules or spectra.depth.shape[1] != reference.depth.shape[1]:
            raise UserError(f"planet {planet}'s spectra ({spectra.depth.shape[1]} wavelengths, molecules "
                            f"{spectra.molecules}) do not match {planets[0]}'s ({reference.depth.shape[1]}, "
                            f"{reference.molecules}): regenerate both with the same dataset settings")
    rows = [split_rows(len(s), planet, data) for s, planet in zip(per_planet, planets, strict=True)]
    return {split: Spectra.concat([s.take(r[split]) for s, r in zip(per_planet, rows, strict=True)])
            for split in SPLITS}


class EpochSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch): a resumed run sees the same batches.

    Lightning calls :meth:`set_epoch` before every training epoch (as for a DistributedSampler).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(stable_seed("order", self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=generator).tolist())


class SpectraDataModule(pl.LightningDataModule):
    """Train/val/test loaders over the selected planets' shards; batches are (x in [0, 1], y) tuples."""

    def __init__(self, data: Mapping, composition: str, planets: Sequence[str], root: Path,
                 batch_size: int, seed: int) -> None:
        super().__init__()
        self.data, self.composition, self.planets = dict(data), composition, list(planets)
        self.dataset_dir = Path(root) / data["dataset_dir"]
        self.batch_size, self.seed = batch_size, seed
        self.snr = data.get("snr")
        if self.snr is not None and not float(self.snr) > 0:
            raise UserError(f"data.snr must be > 0 or null (noiseless); got {self.snr!r}")
        self.splits: dict[str, Spectra] | None = None
        self._prepared: dict[str, tuple[Tensor, Tensor]] = {}
        self._noise: tuple[int, torch.Generator] | None = None
        self.coverage: Coverage | None = None  # set by setup() when data.coverage names an instrument

    # --- data ---------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:  # idempotent: Lightning and the training code may both call it
            if not self.dataset_dir.is_dir():
                raise UserError(f"no dataset at {self.dataset_dir}: run "
                                f"`{simulate_fix(self.planets[0], self.composition)}` (one per planet)")
            self.splits = self._restrict_to_coverage(
                load_splits(self.dataset_dir, self.composition, self.planets, self.data))

    # --- instrument coverage hook (robert.spectra.coverage) ----------------------------------

    def _restrict_to_coverage(self, splits: dict[str, Spectra]) -> dict[str, Spectra]:
        """Coverage models see the instrument's bins only: restrict the CLEAN spectra, before noise and scaling.

        ``data.coverage`` is a ``conf/instrument/`` preset; ``full`` (the whole grid) leaves every split as it is.
        """
        instrument = self.data.get("coverage")
        if not instrument:
            return splits
        self.coverage = Coverage.from_config(instrument, splits["train"].wavelength_um)
        return {name: restrict_spectra(spectra, self.coverage) for name, spectra in splits.items()}

    def split(self, name: str) -> Spectra:
        self.setup()
        assert self.splits is not None
        return self.splits[name]

    @property
    def molecules(self) -> list[str]:
        return self.split("train").molecules

    @property
    def n_visible(self) -> int:
        return int(self.split("train").depth.shape[1])

    def noisy_set(self, name: str, snr: float | None = ...) -> tuple[Tensor, Tensor]:
        """(x normalised, y) of the val or test split with fixed noise at ``snr`` (default: config's)."""
        snr = self.snr if snr is ... else snr
        key = f"{name}@{snr}"
        if key not in self._prepared:
            spectra = self.split(name)
            x = noisy_normalised(spectra.depth, snr, stable_seed(name, self.data["noise_seed"], snr))
            self._prepared[key] = (x, torch.as_tensor(spectra.labels))
        return self._prepared[key]

    def scaling_sample(self, n_rows: int = 20000) -> Tensor:
        """Up to ``n_rows`` training spectra as the network sees them (noisy, normalised; fixed seed)."""
        depth = self.split("train").depth[:n_rows]
        return noisy_normalised(depth, self.snr, stable_seed("scaling", self.data["noise_seed"], self.snr))

    def test_set(self, snr: float | None = ...) -> tuple[Tensor, Tensor, Spectra]:
        """The fixed test set at any SNR (None = noiseless): (x normalised, y, metadata)."""
        x, y = self.noisy_set("test", snr)
        return x, y, self.split("test")

    # --- loaders ------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        train = self.split("train")
        dataset = TensorDataset(torch.as_tensor(train.depth), torch.as_tensor(train.labels))
        return DataLoader(dataset, batch_size=self.batch_size, sampler=EpochSampler(len(train), self.seed),
                          num_workers=int(self.data.get("num_workers", 0)))

    def _eval_loader(self, name: str) -> DataLoader:
        return DataLoader(TensorDataset(*self.noisy_set(name)), batch_size=int(self.data["eval_batch_size"]))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches arrive clean: add this epoch's noise and normalise, on the batch's device."""
        if self.trainer is None or not self.trainer.training:
            return batch
        x, y = batch[0], batch[1]
        epoch = self.trainer.current_epoch
        if self._noise is None or self._noise[0] != epoch:
            generator = torch.Generator(device=x.device)
            generator.manual_seed(stable_seed("train-noise", self.data["noise_seed"], self.seed, epoch,
                                              self.trainer.global_rank))
            self._noise = (epoch, generator)
        return normalise(add_noise(x, self.snr, self._noise[1])), y


__all__ = ["SpectraDataModule", "Spectra", "EpochSampler", "load_planet", "load_splits", "resolve_planets",
           "simulate_fix", "split_rows"]
