"""A published spectrum's rows on the model grid: which cells each row covers, grouped into observed segments.

The recogniser reads any coverage on the model's own grid (901 cells, 1-20 um; :mod:`robert.spectra.observation`):
each observed segment is one measurement spread over the cells it covers, with the cell-equivalent error
sigma_seg * sqrt(n_cells). A row covers the grid cells whose centres lie inside its bin; a row narrower than a
cell (a spectrum at higher resolution than the grid) covers the cell holding its centre, and the rows sharing a
cell are averaged (inverse-variance weights). Rows that do not fit are dropped, each with its reason:

* ``outside``: less than ``min_bin_fraction`` of the row's bin lies on the grid (e.g. a 24 um Spitzer point);
* ``overlap``: most of the row's cells are already covered by finer rows (overlapping instruments: the
  finer-resolved rows are kept). APPROXIMATION: the coarser row's information is not combined with the finer
  ones; a row that shares a few edge cells with a neighbour keeps the rest (its value stands for them).

The mapping depends only on the rows' bins, so spectra of one instrument share it (cached by their bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import sparse

from robert.spectra.observation import Observation, renumber
from robert.spectra.resample import grid_cells_um

OUTSIDE, OVERLAP = "outside the 1-20 um grid", "overlaps finer rows"


@dataclass(frozen=True)
class GridMapping:
    """Rows of one bin layout -> segments on the grid."""

    row_segment: np.ndarray        # (R,) segment of each row, -1 if dropped
    cell_segment: np.ndarray       # (W,) segment of each grid cell, -1 if unobserved
    dropped_reason: tuple[str, ...]  # (R,) "" for kept rows

    @property
    def n_segments(self) -> int:
        return int(self.cell_segment.max()) + 1 if (self.cell_segment >= 0).any() else 0

    @property
    def cells_per_segment(self) -> np.ndarray:
        return np.bincount(self.cell_segment[self.cell_segment >= 0], minlength=self.n_segments)


def _inside_fraction(low: np.ndarray, high: np.ndarray, grid_low: float, grid_high: float) -> np.ndarray:
    """Share of each bin (in log wavelength) on the grid."""
    overlap = np.clip(np.log(np.minimum(high, grid_high)) - np.log(np.maximum(low, grid_low)), 0, None)
    return overlap / np.log(high / low)


def build_mapping(bin_low_um: np.ndarray, bin_high_um: np.ndarray, grid_um: np.ndarray,
                  min_bin_fraction: float) -> GridMapping:
    """The mapping of rows with bins [low, high] (ascending, micron) onto the grid of centres ``grid_um``."""
    cell_low, cell_high = grid_cells_um(grid_um)
    low, high = np.asarray(bin_low_um, float), np.asarray(bin_high_um, float)
    n_rows, n_cells = len(low), len(grid_um)
    reasons = [""] * n_rows
    inside = _inside_fraction(low, high, cell_low[0], cell_high[-1]) >= min_bin_fraction
    first = np.searchsorted(grid_um, low, side="left")       # first cell centre >= low
    stop = np.searchsorted(grid_um, high, side="right")      # past the last cell centre <= high
    centre_cell = np.clip(np.searchsorted(cell_high, np.sqrt(low * high)), 0, n_cells - 1)
    n_covered = np.clip(stop - first, 0, None)
    owner = np.full(n_cells, -1)       # the row whose segment a cell belongs to (-1: none yet)
    multi = np.zeros(n_cells, bool)    # the cell is claimed by a multi-cell row
    # finer rows first: where instruments overlap, the better-resolved rows keep the cells
    for row in np.argsort(np.maximum(n_covered, 1), kind="stable"):
        if not inside[row]:
            reasons[row] = OUTSIDE
            continue
        cells = np.arange(first[row], stop[row]) if n_covered[row] > 0 else np.array([centre_cell[row]])
        if n_covered[row] <= 1:
            cell = cells[0]
            if owner[cell] >= 0 and multi[cell]:
                reasons[row] = OVERLAP
            elif owner[cell] < 0:
                owner[cell] = row
            continue  # a narrow row joins the cell's narrow rows (same segment, see row_segment below)
        free = cells[owner[cells] < 0]
        # adjacent published bins often share an edge cell (bins overlap by round-off): a row keeps its free cells
        # as long as they are most of its range; a row mostly under finer rows is dropped
        if 2 * len(free) < len(cells):
            reasons[row] = OVERLAP
            continue
        owner[free], multi[free] = row, True
    cell_segment = renumber(owner)
    row_segment = np.full(n_rows, -1)
    for row in range(n_rows):
        if reasons[row]:
            continue
        if n_covered[row] > 1:
            row_segment[row] = cell_segment[first[row] + int(np.argmax(owner[first[row]:stop[row]] == row))]
        else:
            row_segment[row] = cell_segment[first[row] if n_covered[row] == 1 else centre_cell[row]]
    return GridMapping(row_segment, cell_segment, tuple(reasons))


@lru_cache(maxsize=64)
def _cached(low: bytes, high: bytes, grid: bytes, min_bin_fraction: float) -> GridMapping:
    return build_mapping(*(np.frombuffer(b, dtype=np.float64) for b in (low, high, grid)), min_bin_fraction)


def cached_mapping(bin_low_um: np.ndarray, bin_high_um: np.ndarray, grid_um: np.ndarray,
                   min_bin_fraction: float) -> GridMapping:
    """:func:`build_mapping`, remembered per layout: spectra of one instrument come on the same bins."""
    return _cached(*(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in (bin_low_um, bin_high_um, grid_um)),
                   float(min_bin_fraction))


def segment_groups(mapping: GridMapping, row_codes: np.ndarray) -> np.ndarray:
    """(n_segments,) instrument group of each segment from its rows' instrument codes (R,): 0 for the instrument
    of the first segment along the grid, then 1, 2, ... (:func:`~robert.spectra.observation.renumber`); a segment
    averaging several narrow rows takes its first row's instrument."""
    kept = np.flatnonzero(mapping.row_segment >= 0)[::-1]  # reversed: the first row of a segment is written last
    group = np.full(mapping.n_segments, -1)
    group[mapping.row_segment[kept]] = np.asarray(row_codes)[kept]
    return renumber(group)


def observe_rows_on_grid(mapping: GridMapping, depth: np.ndarray, depth_err: np.ndarray,
                         groups: np.ndarray | None = None) -> tuple[Observation, np.ndarray]:
    """Spectra sharing one layout, (S, R) depths and errors -> their :class:`Observation` on the grid, and the
    (S, n_segments) inverse variances of the segments (what the significance of a fingerprint needs).
    ``groups`` (n_segments,): each segment's instrument group (:func:`segment_groups`), for a network that reads
    each instrument against its own level; None: one level for the whole spectrum."""
    kept = mapping.row_segment >= 0
    row_segment = mapping.row_segment[kept]
    depth, depth_err = np.asarray(depth, float), np.asarray(depth_err, float)
    if not kept.all():
        depth, depth_err = depth[:, kept], depth_err[:, kept]
    n_segments = mapping.n_segments
    one_row_per_segment = np.array_equal(row_segment, np.arange(n_segments))  # in order (most spectra)
    cells = mapping.cell_segment
    observed = cells >= 0
    if one_row_per_segment and np.array_equal(cells, np.arange(len(cells))):  # a row per cell: nothing to gather
        values, sigma = depth.astype(np.float32), depth_err.astype(np.float32)
        # in float32, as the significance test multiplies them (:mod:`robert.inference.constraints`)
        return _observation(values, sigma, observed, cells, groups), np.reciprocal(np.square(sigma))
    inverse_variance = 1.0 / depth_err**2
    if one_row_per_segment:
        value_seg = depth
    else:
        # rows -> segments as one sparse product for every spectrum of the layout (6x faster than np.add.at)
        to_segments = sparse.csr_array((np.ones(len(row_segment)), (np.arange(len(row_segment)), row_segment)),
                                       shape=(len(row_segment), n_segments))
        value_seg = (to_segments.T @ (inverse_variance * depth).T).T
        inverse_variance = (to_segments.T @ inverse_variance.T).T
        value_seg /= inverse_variance
    # segment -> cell expansion with one gather per array (float32, as the network reads it); the unobserved cells
    # read a padding segment: value 0, sigma inf
    sigma_cell = (inverse_variance ** -0.5) * np.sqrt(mapping.cells_per_segment)
    gather = np.where(observed, cells, n_segments)
    pad = lambda a, fill: np.concatenate(  # noqa: E731
        [a.astype(np.float32), np.full((len(a), 1), fill, np.float32)], axis=1)
    values, sigma = pad(value_seg, 0.0).take(gather, axis=1), pad(sigma_cell, np.inf).take(gather, axis=1)
    return _observation(values, sigma, observed, cells, groups), inverse_variance


def _observation(values: np.ndarray, sigma: np.ndarray, observed: np.ndarray, cells: np.ndarray,
                 groups: np.ndarray | None) -> Observation:
    """The :class:`Observation` of (S, W) float32 cell values and errors; ``groups`` per segment, or None."""
    mask = torch.from_numpy(np.broadcast_to(observed, values.shape).copy())
    cell_groups = None
    if groups is not None:
        per_cell = np.append(groups, -1)[np.where(observed, cells, len(groups))]  # the padding slot reads -1
        cell_groups = torch.from_numpy(np.broadcast_to(per_cell, values.shape).copy())
    return Observation(torch.from_numpy(values), torch.from_numpy(sigma), mask, groups=cell_groups)


__all__ = ["GridMapping", "OUTSIDE", "OVERLAP", "build_mapping", "cached_mapping", "observe_rows_on_grid",
           "segment_groups"]
