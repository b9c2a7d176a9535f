"""Batches as the network sees them: rows of clean spectra observed (coverage, errors, noise) and labelled.

The loaders hand out rows of clean spectra with their fingerprints (:class:`RowFetcher`, a whole batch per call:
no per-spectrum Python work); :func:`observe_rows` then draws this batch's observation
(:class:`robert.spectra.observation.Observer`), computes each gas's Delta chi^2 under it and the detection
states and targets (:mod:`robert.spectra.detection`). Training does that on every batch with a fresh draw; the
validation and test sets are drawn once, from fixed seeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from robert.data.dataset import Spectra
from robert.spectra.detection import LabelSettings, gas_chi2, states, targets_and_weights
from robert.spectra.nuisance import NuisanceBasis
from robert.spectra.observation import Observation, Observer


@dataclass
class ObservedBatch:
    """Observed spectra with their labels; tensors (B, W) in ``observation``, (B, M) here, ``rows`` (B,)."""

    observation: Observation
    targets: Tensor        # 0/1 training targets
    weights: Tensor        # 0/1 loss weights (0: undetectable gas under labels.undetectable=ignore)
    states: Tensor         # robert.spectra.detection.State of each (spectrum, gas)
    chi2: Tensor           # Delta chi^2 of each gas under this observation (0 where not injected)
    rows: Tensor           # index of each spectrum in its split

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def slice(self, start: int, stop: int) -> ObservedBatch:
        return ObservedBatch(self.observation.slice(start, stop),
                             *(getattr(self, f.name)[start:stop] for f in fields(self)[1:]))


class RowFetcher(torch.utils.data.Dataset):
    """Rows of a split by index list -> a dict of tensors (clean depth, fingerprints, injected gases)."""

    def __init__(self, spectra: Spectra) -> None:
        self.spectra = spectra
        self.depth = torch.as_tensor(spectra.depth)
        self.injected = torch.as_tensor(spectra.injected)
        # one zero row after the fingerprints stands for the padding (index -1)
        delta = np.concatenate([spectra.delta, np.zeros((1, spectra.delta.shape[1]), dtype=np.float16)])
        self.delta = torch.as_tensor(delta)
        self.pair_index = torch.as_tensor(spectra.pair_index)
        self.pair_molecule = torch.as_tensor(spectra.pair_molecule)

    def __len__(self) -> int:
        return len(self.depth)

    def __getitem__(self, rows: list[int] | Tensor) -> dict[str, Tensor]:
        rows = torch.as_tensor(rows, dtype=torch.long)
        pair = self.pair_index[rows]
        depth = self.depth[rows]
        # relative fingerprints -> absolute differences, in the depth's units
        delta = self.delta[pair].float().mul_(depth.mean(1)[:, None, None])  # in place: one (B, K, W) array, not two
        return {"depth": depth, "delta": delta, "pair_molecule": self.pair_molecule[rows],
                "injected": self.injected[rows], "rows": rows}


def observe_rows(raw: dict[str, Tensor], observer: Observer, generator: torch.Generator,
                 labels: LabelSettings, basis: NuisanceBasis | None = None) -> ObservedBatch:
    """One observation of every row (a :class:`RowFetcher` item) and its labels under that observation.

    ``labels.profile`` "gases" profiles each gas's Delta chi^2 over ``basis`` (required then)."""
    nuisance = exclude = None
    if labels.profile == "gases":
        if basis is None:
            raise ValueError("labels.profile=gases needs the nuisance basis of the training set")
        nuisance = basis.for_rows(raw["depth"].mean(1))
        exclude = basis.exclusions(raw["pair_molecule"])
    observation = observer(raw["depth"], generator, raw["delta"], nuisance, exclude)
    n_molecules = raw["injected"].shape[1]
    chi2 = gas_chi2(observation.chi2, raw["pair_molecule"].to(observation.chi2.device), n_molecules)
    state = states(chi2, raw["injected"], labels.min_chi2)
    targets, weights = targets_and_weights(state, labels)
    return ObservedBatch(replace(observation, chi2=None), targets, weights, state, chi2, raw["rows"])


def _chunks(fetcher: RowFetcher, chunk: int) -> Iterator[dict[str, Tensor]]:
    for start in range(0, len(fetcher), chunk):
        yield fetcher[list(range(start, min(start + chunk, len(fetcher))))]


def observe_split(fetcher: RowFetcher, observer: Observer, seed: int, labels: LabelSettings,
                  chunk: int = 4096, basis: NuisanceBasis | None = None) -> ObservedBatch:
    """A whole split observed once from a fixed seed (validation and test sets), in chunks to bound memory."""
    generator = torch.Generator().manual_seed(seed)
    parts = [observe_rows(raw, observer, generator, labels, basis) for raw in _chunks(fetcher, chunk)]
    return ObservedBatch(Observation.concat([p.observation for p in parts]),
                         *(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(ObservedBatch)[1:]))


def observe_unlabelled(fetcher: RowFetcher, observer: Observer, seed: int, chunk: int = 4096) -> Observation:
    """The observation :func:`observe_split` draws from the same seed (the fingerprints draw no random numbers),
    without the gases' Delta chi^2: about half the cost, for what needs only the injected gases (the false-alarm
    calibration: a gas that was not injected is absent under any observation)."""
    generator = torch.Generator().manual_seed(seed)
    return Observation.concat([observer(raw["depth"], generator) for raw in _chunks(fetcher, chunk)])


__all__ = ["ObservedBatch", "RowFetcher", "observe_rows", "observe_split", "observe_unlabelled"]
