"""The Lightning DataModule: seeded splits of the simulated set, every batch observed and labelled on the fly.

Training batches are clean rows (:class:`robert.data.batches.RowFetcher`, one tensor gather per batch) that
:meth:`SpectraDataModule.on_after_batch_transfer` observes on the batch's device: a coverage pattern, an SNR and
an error shape per spectrum from the observation prior (``conf/observation/``), noise, then the detection labels
under exactly that observation (``conf/labels/``). The draws come from a generator seeded by (noise seed, epoch,
rank), so a resumed run repeats the noise of an uninterrupted one. The validation set is observed once from
the same prior with a fixed seed (early stopping watches what training sees); the test sets are fixed too:
:meth:`SpectraDataModule.test_set` is the headline one (the whole grid, white noise at ``data.snr``),
:meth:`SpectraDataModule.observed_set` any other prior (an instrument preset, realistic error bars).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

from robert.data.batches import ObservedBatch, RowFetcher, observe_rows, observe_split
from robert.data.dataset import Spectra, dataset_dir, load_splits
from robert.errors import UserError
from robert.simulate.shards import acceptance_attr
from robert.spectra.coverage import Coverage, coverage_presets
from robert.spectra.detection import LabelSettings
from robert.spectra.nuisance import NuisanceBasis
from robert.spectra.observation import ObservationPrior, Observer, PatternBank, PatternPrior, preset_segments
from robert.spectra.transforms import stable_seed


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


class EpochBatchSampler(BatchSampler):
    """Batches of an :class:`EpochSampler` order; forwards ``set_epoch`` so Lightning reaches the sampler."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


class FixedBatches(torch.utils.data.Dataset):
    """An already observed set served in slices (validation/test loaders)."""

    def __init__(self, batch: ObservedBatch, size: int) -> None:
        self.batch, self.size = batch, size

    def __len__(self) -> int:
        return (len(self.batch) + self.size - 1) // self.size

    def __getitem__(self, index: int) -> ObservedBatch:
        return self.batch.slice(index * self.size, (index + 1) * self.size)


class SpectraDataModule(pl.LightningDataModule):
    """Train/val/test over the selected planets' shards; batches are :class:`ObservedBatch` objects."""

    def __init__(self, cfg: Mapping, planets: Sequence[str], root: Path, batch_size: int, seed: int) -> None:
        super().__init__()
        self.data = dict(cfg["data"])
        self.composition = cfg["composition"]["kind"]
        self.planets = list(planets)
        self.root = Path(root)
        self.directory = dataset_dir(cfg, root)
        self.regenerate = str(self.data.get("regenerate") or "python src/generate.py planet={planet}")
        self.expected = {"acceptance": acceptance_attr(cfg["dataset"])}
        self.batch_size, self.seed = batch_size, seed
        self.snr = self.data.get("snr")
        if self.snr is not None and not (isinstance(self.snr, int | float) and self.snr > 0):
            raise UserError(f"data.snr must be > 0 or null (noiseless); got {self.snr!r}")
        self.labels = LabelSettings.from_config(cfg["labels"])
        self.prior = ObservationPrior.from_config(cfg["observation"])
        self.splits: dict[str, Spectra] | None = None
        self.observer: Observer | None = None
        self._fetchers: dict[str, RowFetcher] = {}
        self._observed: dict[str, ObservedBatch] = {}
        self._noise: tuple[int, torch.Generator] | None = None

    # --- data ---------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:  # idempotent: Lightning and the training code may both call it
            return
        if not self.directory.is_dir():
            raise UserError(f"no dataset at {self.directory}: run `{self.regenerate.format(planet=self.planets[0])}` "
                            "(one per planet)")
        self.splits = load_splits(self.directory, self.composition, self.planets, self.data, self.regenerate,
                                  self.expected)
        grid = self.wavelength_um
        self.observer = Observer(self.prior, grid, self.presets, stable_seed("patterns", self.data["noise_seed"]))

    @cached_property
    def nuisance_basis(self) -> NuisanceBasis:
        """What a profiled Delta chi^2 fits besides the gas (``labels.profile``): from the training split."""
        return self.split("train").nuisance_basis()

    def _basis_for(self, labels: LabelSettings) -> NuisanceBasis | None:
        return self.nuisance_basis if labels.profile == "gases" else None

    @cached_property
    def presets(self) -> dict[str, Coverage]:
        """The coverage presets of ``conf/instrument/`` on this set's grid."""
        return coverage_presets(self.root / "conf", self.wavelength_um)

    def split(self, name: str) -> Spectra:
        self.setup()
        assert self.splits is not None
        return self.splits[name]

    def fetcher(self, name: str) -> RowFetcher:
        if name not in self._fetchers:
            self._fetchers[name] = RowFetcher(self.split(name))
        return self._fetchers[name]

    @property
    def molecules(self) -> list[str]:
        return self.split("train").molecules

    @property
    def wavelength_um(self) -> np.ndarray:
        return self.split("train").wavelength_um

    @property
    def n_grid(self) -> int:
        return int(self.split("train").depth.shape[1])

    def preset_view(self, name: str, snr: tuple[float, float] | None = None,
                    field: str = "observation.coverage.presets") -> tuple[ObservationPrior, PatternBank]:
        """One instrument preset's coverage (``conf/instrument/<name>.yaml``) with the training prior's error shapes,
        at SNRs drawn from ``snr`` (default: the training prior's range): a prior and its one-pattern bank.
        ``field``: the setting that named the preset (for the error when there is no such preset)."""
        if name not in self.presets:
            raise UserError(f"{field} names {name!r}; conf/instrument/ has: {', '.join(sorted(self.presets))}")
        prior = ObservationPrior(self.prior.snr if snr is None else snr, self.prior.noise, PatternPrior.full_only())
        return prior, PatternBank.single(preset_segments(self.presets[name], self.wavelength_um), name)

    def observer_for(self, prior: ObservationPrior | None, bank: PatternBank | None, seed: int) -> Observer:
        """An observer of ``prior`` (default: the training prior's) through ``bank`` (default: a bank of that prior's
        coverage patterns drawn from ``seed``, which also draws its error shapes)."""
        return Observer(prior or self.prior, self.wavelength_um, self.presets, seed, bank)

    def observed_set(self, name: str, prior: ObservationPrior | None = None, key: str = "training prior",
                     bank: PatternBank | None = None, labels: LabelSettings | None = None) -> ObservedBatch:
        """Split ``name`` observed once from a fixed seed under ``prior`` (default: the training prior), labelled by
        ``labels`` (default: the configured ones; the same observation under any labels: they draw no noise)."""
        labels = labels or self.labels
        cache_key = f"{name}/{key}" + ("" if labels == self.labels else f"/{labels}")
        if cache_key not in self._observed:
            self.setup()
            observer = self.observer if prior is None and bank is None else self.observer_for(
                prior, bank, stable_seed("patterns", self.data["noise_seed"], key))
            self._observed[cache_key] = observe_split(self.fetcher(name), observer,
                                                      stable_seed(name, self.data["noise_seed"], key), labels,
                                                      basis=self._basis_for(labels))
        return self._observed[cache_key]

    def test_set(self, snr: float | None = ..., split: str = "test", labels: LabelSettings | None = None
                 ) -> ObservedBatch:
        """The headline set at any SNR: the whole grid, white noise sigma = mean(depth)/snr (None: noiseless)."""
        snr = self.snr if snr is ... else snr
        return self.observed_set(split, ObservationPrior.white(snr), f"white@{snr}", labels=labels)

    def scaling_sample(self, n_rows: int = 20000) -> ObservedBatch:
        """Up to ``n_rows`` training spectra as the network sees them (training prior, fixed seed)."""
        return self.observed_set("train", key="scaling").slice(0, n_rows)

    # --- loaders ------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        fetcher = self.fetcher("train")
        sampler = EpochBatchSampler(EpochSampler(len(fetcher), self.seed), self.batch_size, drop_last=False)
        return DataLoader(fetcher, sampler=sampler, batch_size=None, num_workers=int(self.data.get("num_workers", 0)))

    def _eval_loader(self, batch: ObservedBatch) -> DataLoader:
        return DataLoader(FixedBatches(batch, int(self.data["eval_batch_size"])), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.observed_set("val"))

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set())

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training rows arrive clean: observe and label them with this epoch's generator, on the batch's device."""
        if not isinstance(batch, dict):
            return batch  # an already observed evaluation batch
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        rank = self.trainer.global_rank if self.trainer is not None else 0
        if self._noise is None or self._noise[0] != epoch:
            generator = torch.Generator().manual_seed(stable_seed("train-noise", self.data["noise_seed"], self.seed,
                                                                  epoch, rank))
            self._noise = (epoch, generator)
        assert self.observer is not None
        return observe_rows(batch, self.observer, self._noise[1], self.labels, self._basis_for(self.labels))


__all__ = ["EpochBatchSampler", "EpochSampler", "SpectraDataModule"]
