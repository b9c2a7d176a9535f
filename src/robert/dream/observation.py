"""The observation a dream stage shows spectra to the network with: the whole grid, white noise at one SNR.

Why: a network whose inputs hold more than the spectrum (the error and mask channels of
:func:`robert.spectra.observation.network_inputs`) needs those channels for any spectrum it is asked about,
and a clean spectrum has none. The stage uses one typical observation throughout (a choice of this project):
every cell observed (mask 1) and one sigma = mean(depth) / ``dream.context_snr`` in every cell, the
convention of the headline test set (:meth:`robert.data.datamodule.SpectraDataModule.test_set`), with the noise
drawn from a fixed seed. It gives

* the optimisation dream's fixed channels: the error and mask channels of this observation of the class's
  mean clean spectrum (:mod:`robert.dream.optimisation`; for white noise the error channel is one value,
  tanh(sigma / range / ERROR_SCALE), across the grid);
* the inputs and detection states of the associative-memory diagnostic (training rows observed so).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from robert.data.batches import ObservedBatch, RowFetcher, observe_rows
from robert.data.dataset import Spectra
from robert.model.base import Recogniser
from robert.spectra.detection import LabelSettings
from robert.spectra.observation import ObservationPrior, Observer


def white_observer(wavelength_um: np.ndarray, snr: float) -> Observer:
    """Full coverage, one sigma = mean(depth) / ``snr`` per spectrum (one pattern: no presets are read)."""
    return Observer(ObservationPrior.white(snr), wavelength_um, {}, seed=0)


def context_inputs(network: Recogniser, depth: np.ndarray, wavelength_um: np.ndarray, snr: float,
                   seed: int) -> Tensor:
    """(N, n_inputs) network inputs of clean spectra ``depth`` (N, W) observed white at ``snr``."""
    generator = torch.Generator().manual_seed(seed)
    observation = white_observer(wavelength_um, snr)(torch.as_tensor(depth, dtype=torch.float32), generator)
    return network.encode(observation).detach()


def observed_rows(spectra: Spectra, rows: np.ndarray, labels: LabelSettings, snr: float, seed: int) -> ObservedBatch:
    """Training ``rows`` observed white at ``snr``, with each gas's detection state under that observation."""
    generator = torch.Generator().manual_seed(seed)
    basis = spectra.nuisance_basis() if labels.profile == "gases" else None
    return observe_rows(RowFetcher(spectra)[torch.as_tensor(rows, dtype=torch.long)],
                        white_observer(spectra.wavelength_um, snr), generator, labels, basis)
