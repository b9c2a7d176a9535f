"""Bin averaging between wavelength bins: the ONE transform from any spectrum onto a model's coverage bins.

A model of coverage C sees, for each of C's bins, the average of a spectrum over that bin. Training
builds that from the simulator's grid (each grid cell = a bin reaching halfway, in log, to its
neighbours, as :mod:`robert.physics.binning` defines the 901-point output grid); inference builds it
from the observed bins (``bin_low_um``-``bin_high_um``). Both go through :func:`averaging_matrix`,
so an observed spectrum whose bins are the coverage's bins, or tile them, gives exactly the input the
training transform gives for the same underlying spectrum.

Overlaps are measured in wavenumber, as the simulator averages flux per unit wavenumber
(``simulate.output.binning: wavenumber``): the wavenumber-weighted mean of bin means is then the mean
over their union. Hand-written because :func:`robert.physics.binning.binning_matrix` takes contiguous
edges and point cells, while coverages have gaps (photometric bands) and observed bins are arbitrary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robert.physics.binning import _cell_edges_log  # the simulator's own cell convention (halfway in log)


def grid_cells_um(centres_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) edges in micron of the cells of a grid of ascending centres: halfway in log, as simulated."""
    edges = np.exp(_cell_edges_log(np.log(np.asarray(centres_um, dtype=float))))
    return edges[:-1], edges[1:]


def overlap_matrix(source_low_um: np.ndarray, source_high_um: np.ndarray, target_low_um: np.ndarray,
                   target_high_um: np.ndarray) -> np.ndarray:
    """(n_target, n_source) overlap of every source bin with every target bin, in cm^-1."""
    s_lo, s_hi = 1e4 / np.asarray(source_high_um, float), 1e4 / np.asarray(source_low_um, float)  # wavenumber
    t_lo, t_hi = 1e4 / np.asarray(target_high_um, float), 1e4 / np.asarray(target_low_um, float)
    return np.clip(np.minimum(s_hi[None, :], t_hi[:, None]) - np.maximum(s_lo[None, :], t_lo[:, None]), 0, None)


@dataclass(frozen=True)
class Averaging:
    """Source bins -> target bins: ``values_target = weights @ values_source``."""

    weights: np.ndarray            # (n_target, n_source), rows sum to 1 where anything overlaps
    target_covered: np.ndarray     # (n_target,) share of each target bin the sources cover, in [0, 1]
    source_inside: np.ndarray      # (n_source,) share of each source bin inside the targets, in [0, 1]

    def apply(self, values: np.ndarray) -> np.ndarray:
        """(..., n_source) -> (..., n_target) averages."""
        return values @ self.weights.T

    def apply_errors(self, errors: np.ndarray) -> np.ndarray:
        """1-sigma errors of :meth:`apply` for independent source errors."""
        return np.sqrt((errors**2) @ (self.weights**2).T)


def averaging_matrix(source_low_um: np.ndarray, source_high_um: np.ndarray, target_low_um: np.ndarray,
                     target_high_um: np.ndarray) -> Averaging:
    """Overlap-weighted averaging of source bins onto target bins (both sets of bins: low < high, in um)."""
    overlap = overlap_matrix(source_low_um, source_high_um, target_low_um, target_high_um)
    target_width = 1e4 / np.asarray(target_low_um, float) - 1e4 / np.asarray(target_high_um, float)
    source_width = 1e4 / np.asarray(source_low_um, float) - 1e4 / np.asarray(source_high_um, float)
    total = overlap.sum(1, keepdims=True)
    weights = np.divide(overlap, total, out=np.zeros_like(overlap), where=total > 0)
    return Averaging(weights, np.clip(total[:, 0] / target_width, 0, 1),
                     np.clip(overlap.sum(0) / source_width, 0, 1))
