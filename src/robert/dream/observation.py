"""The observation a dream stage shows spectra to the network with: the whole grid, white noise at one SNR.

Why: a network whose inputs hold more than the spectrum (the error and mask channels of
:func:`robert.spectra.observation.network_inputs`) needs those channels for any spectrum it is asked about,
and a clean spectrum has none. The stage uses one typical observation throughout (a choice of this project):
every cell observed (mask 1) and one sigma = mean(depth) / ``dream.context_snr`` in every cell, the
convention of the headline test set (:meth:`robert.data.datamodule.SpectraDataModule.test_set`), with the noise
drawn from a fixed seed. It gives

* the optimisation dream's observation: the coverage, error bars and depth range of this observation of the
  class's mean clean spectrum, from which the dreamt spectrum's deviation channels are computed and whose error
  and mask channels it keeps (:mod:`robert.dream.optimisation`);
* the inputs and detection states of the associative-memory diagnostic (training rows observed so).
"""

from __future__ import annotations

import numpy as np
import torch

from robert.data.batches import ObservedBatch, RowFetcher, observe_rows
from robert.data.dataset import Spectra
from robert.spectra.detection import LabelSettings
from robert.spectra.observation import Observation, ObservationPrior, Observer


def white_observer(wavelength_um: np.ndarray, snr: float) -> Observer:
    """Full coverage, one sigma = mean(depth) / ``snr`` per spectrum (one pattern: no presets are read)."""
    return Observer(ObservationPrior.white(snr), wavelength_um, {}, seed=0)


def context_observation(depth: np.ndarray, wavelength_um: np.ndarray, snr: float, seed: int) -> Observation:
    """Clean spectra ``depth`` (N, W) observed white at ``snr``: the observation the optimisation dream shows its
    spectrum in (:mod:`robert.dream.optimisation`)."""
    generator = torch.Generator().manual_seed(seed)
    return white_observer(wavelength_um, snr)(torch.as_tensor(depth, dtype=torch.float32), generator)


def observed_rows(spectra: Spectra, rows: np.ndarray, labels: LabelSettings, snr: float, seed: int) -> ObservedBatch:
    """Training ``rows`` observed white at ``snr``, with each gas's detection state under that observation."""
    generator = torch.Generator().manual_seed(seed)
    basis = spectra.nuisance_basis() if labels.profile == "gases" else None
    return observe_rows(RowFetcher(spectra)[torch.as_tensor(rows, dtype=torch.long)],
                        white_observer(spectra.wavelength_um, snr), generator, labels, basis)
