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
from functools import cached_property, lru_cache

import numpy as np
from scipy import sparse

from robert.physics.binning import cell_edges_log  # the simulator's own cell convention (halfway in log)


def grid_cells_um(centres_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) edges in micron of the cells of a grid of ascending centres: halfway in log, as simulated."""
    edges = np.exp(cell_edges_log(np.log(np.asarray(centres_um, dtype=float))))
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

    @cached_property
    def _selection(self) -> np.ndarray | None:
        """The source bin of each target bin when every target bin IS one source bin (weight 1), else None:
        observed bins that are the model's own bins, the usual case, need no arithmetic at all."""
        nonzero = self.weights != 0
        if not (np.all(nonzero.sum(1) == 1) and np.all(self.weights[nonzero] == 1.0)):
            return None
        return nonzero.argmax(1)

    @cached_property
    def _identity(self) -> bool:
        return self._selection is not None and np.array_equal(self._selection, np.arange(self.weights.shape[1]))

    @cached_property
    def _sparse(self) -> sparse.csr_array:
        # a target bin overlaps a few source bins: sparse is ~6x faster than the dense product for 901 bins
        return sparse.csr_array(self.weights)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """(..., n_source) -> (..., n_target) averages."""
        values = np.asarray(values)
        if self._selection is not None:  # may return ``values`` itself: the target bins are the source bins
            return values if self._identity else values[..., self._selection]
        flat = values.reshape(-1, values.shape[-1])
        return (self._sparse @ flat.T).T.reshape(*values.shape[:-1], self.weights.shape[0])

    def apply_errors(self, errors: np.ndarray) -> np.ndarray:
        """1-sigma errors of :meth:`apply` for independent source errors."""
        errors = np.asarray(errors)
        if self._selection is not None:  # sqrt(w^2 e^2) with w = 1
            return np.abs(errors if self._identity else errors[..., self._selection])
        flat = errors.reshape(-1, errors.shape[-1])
        return np.sqrt((self._sparse.power(2) @ (flat**2).T).T).reshape(*errors.shape[:-1], self.weights.shape[0])


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


def cached_averaging(source_low_um: np.ndarray, source_high_um: np.ndarray, target_low_um: np.ndarray,
                     target_high_um: np.ndarray) -> Averaging:
    """:func:`averaging_matrix`, remembered for recent sets of bins (keyed by their bytes): spectra of one
    instrument come on the same bins in every call, and building the matrix costs more than applying it."""
    return _remembered(*(np.ascontiguousarray(edges, dtype=np.float64).tobytes()
                         for edges in (source_low_um, source_high_um, target_low_um, target_high_um)))


@lru_cache(maxsize=16)  # <= 16 x (n_target x n_source) doubles: ~100 MB at 901 x 901
def _remembered(*edges: bytes) -> Averaging:
    return averaging_matrix(*(np.frombuffer(b, dtype=np.float64) for b in edges))
