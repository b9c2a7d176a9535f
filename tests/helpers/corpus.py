"""The RBM/DBN test corpus: real, deterministic, labelled vectors, and the same rows as observed batches.

Log10 cross-sections of H2O, CO and CO2 from the tiny opacity cache (built once per session by
``src/opacities.py opacity=tiny``), one vector per (molecule, T, P) slice, resampled to a log-wavelength grid
over 1-20 um and min-max normalised like a spectrum; label = molecule. If the opacity builder fails, the
Borysow CIA tables (H2-H2 vs H2-He at many temperatures) stand in.
"""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers.config import ROOT
from robert.data.batches import ObservedBatch
from robert.data.datamodule import FixedBatches
from robert.spectra.detection import State
from robert.spectra.observation import Observation

N_POINTS = 256  # resampled length of each vector: big enough to keep the bands, small enough to be fast
DYNAMIC_RANGE_DEX = 10.0  # cross-sections below max * 1e-10 are floored (zeros exist between bands)
WAVELENGTH_UM = np.geomspace(1.0, 20.0, N_POINTS)
OPACITY_SOURCE = "opacity cache (opacity=tiny)"


@dataclass(frozen=True)
class Corpus:
    """Vectors in [0, 1] with one-hot labels, split into train and held-out rows."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor
    label_names: tuple[str, ...]
    source: str


def spectrum_like(wavenumber_cm: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log10 sigma on the 1-20 um log grid, floored and min-max scaled to [0, 1]."""
    on_grid = np.interp(1e4 / WAVELENGTH_UM, wavenumber_cm, sigma)
    floor = on_grid.max() * 10.0 ** (-DYNAMIC_RANGE_DEX)
    logged = np.log10(np.maximum(on_grid, floor))
    return (logged - logged.min()) / (logged.max() - logged.min())


def _opacity_vectors() -> tuple[list[np.ndarray], list[str], list[str], str]:
    """Vectors from the tiny opacity cache, interpolated between the (T, log P) grid points.

    Interpolating (bilinear in T and log P, on log sigma) turns 9 slices per molecule into 81,
    as the simulator itself interpolates the table. Every third point (by grid index) is held out.
    """
    from robert.opacity.xsec_hdf5 import read_xsec_hdf5

    with tempfile.TemporaryDirectory() as cache_dir:
        result = subprocess.run([sys.executable, "src/opacities.py", "opacity=tiny", f"opacity.cache_dir={cache_dir}"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        tables = [read_xsec_hdf5(path) for path in sorted(Path(cache_dir).glob("*.xsec.h5"))]
    vectors, labels, splits = [], [], []
    for table in tables:
        log_sigma = np.log10(np.maximum(table.xsec_cm2, 1e-300))
        log_p = np.log10(table.pressure_bar)
        for (i, temperature), (j, pressure) in itertools.product(
                enumerate(np.linspace(table.temperature_K[0], table.temperature_K[-1], 9)),
                enumerate(np.linspace(log_p[0], log_p[-1], 9))):
            it = int(np.clip(np.searchsorted(table.temperature_K, temperature) - 1, 0, len(table.temperature_K) - 2))
            ip = int(np.clip(np.searchsorted(log_p, pressure) - 1, 0, len(log_p) - 2))
            wt = (temperature - table.temperature_K[it]) / (table.temperature_K[it + 1] - table.temperature_K[it])
            wp = (pressure - log_p[ip]) / (log_p[ip + 1] - log_p[ip])
            corners = log_sigma[ip:ip + 2, it:it + 2]
            mixed = ((1 - wp) * ((1 - wt) * corners[0, 0] + wt * corners[0, 1])
                     + wp * ((1 - wt) * corners[1, 0] + wt * corners[1, 1]))
            vectors.append(spectrum_like(table.wavenumber_cm, 10.0 ** mixed))
            labels.append(table.molecule)
            splits.append("heldout" if (i + j) % 3 == 0 else "train")
    return vectors, labels, splits, OPACITY_SOURCE


def _cia_vectors() -> tuple[list[np.ndarray], list[str], list[str], str]:
    """Fallback: H2-H2 vs H2-He CIA at 120 temperatures each; every third temperature held out."""
    from robert.opacity.cia import read_borysow

    vectors, labels, splits = [], [], []
    for name in ("CIA_Borysow_H2H2_0060-7000K_0.6-500um.dat", "CIA_Borysow_H2He_0050-7000K_0.5-031um.dat"):
        table = read_borysow(ROOT / "data" / name)
        for index, temperature in enumerate(np.geomspace(100.0, 6000.0, 120)):
            vectors.append(spectrum_like(table.wavenumber_cm, table.at(table.wavenumber_cm, temperature)))
            labels.append(table.pair)
            splits.append("heldout" if index % 3 == 0 else "train")
    return vectors, labels, splits, "CIA tables (fallback)"


@functools.cache
def spectra_corpus() -> Corpus:
    """The test corpus, built once per session."""
    try:
        vectors, labels, splits, source = _opacity_vectors()
    except (RuntimeError, subprocess.TimeoutExpired, OSError):
        vectors, labels, splits, source = _cia_vectors()
    names = tuple(dict.fromkeys(labels))
    x = torch.tensor(np.stack(vectors), dtype=torch.float32)
    y = torch.nn.functional.one_hot(torch.tensor([names.index(label) for label in labels]), len(names)).float()
    # A fixed shuffle mixes the classes within minibatches (the builders emit them class by class).
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    train = torch.tensor([splits[i] == "train" for i in order])
    return Corpus(x[train], y[train], x[~train], y[~train], names, source)


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread: these matrices are tiny, and two threads on a busy 2-core machine spin-wait
    (measured: an RBM fit 0.08 s with one thread, 1.3 s with two while other tests ran)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def observed(x: torch.Tensor, y: torch.Tensor) -> ObservedBatch:
    """Corpus rows as the training loop's batches: every cell observed, noiseless, injected = detected = label.

    The rows are already min-max scaled, so the network's depth channel reads them unchanged."""
    observation = Observation(x, torch.zeros_like(x), torch.ones_like(x, dtype=torch.bool))
    states = torch.where(y > 0.5, int(State.DETECTED), int(State.ABSENT)).to(torch.int8)
    return ObservedBatch(observation, y, torch.ones_like(y), states, torch.zeros_like(y), torch.arange(len(x)))


def observed_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    """Batches of :func:`observed` rows in their fixed order (the DataModule's evaluation loader)."""
    return DataLoader(FixedBatches(observed(x, y), batch_size), batch_size=None)
