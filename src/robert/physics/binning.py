"""Bin the emergent high-resolution FLUX (never the opacity) onto the output wavelength grid.

Output grid: ``n_bins`` centres evenly spaced in log wavelength from ``wavelength_min_um`` to
``wavelength_max_um``; bin edges halfway (in log) between centres, the outer edges half a step beyond
the end centres. Each high-resolution point stands for a cell reaching halfway (in log) to its
neighbours; a bin's value is the average of the flux over the bin, weighting each cell by its overlap
with the bin measured in wavenumber (``binning: wavenumber``, the average per cm^-1) or in wavelength
(``binning: wavelength``). The weights form a sparse (n_bins, W) matrix with rows summing to 1.
"""

from __future__ import annotations

import numpy as np
import torch

from robert.errors import UserError


def output_grid_um(wavelength_min_um: float, wavelength_max_um: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres (n_bins,) and edges (n_bins + 1,) in micron."""
    log_c = np.linspace(np.log(wavelength_min_um), np.log(wavelength_max_um), n_bins)
    step = log_c[1] - log_c[0] if n_bins > 1 else 1e-3
    log_e = np.concatenate([[log_c[0] - step / 2], (log_c[:-1] + log_c[1:]) / 2, [log_c[-1] + step / 2]])
    return np.exp(log_c), np.exp(log_e)


def cell_edges_log(log_x: np.ndarray) -> np.ndarray:
    """Edges (n + 1,) of the cells of ascending points ``log_x``: halfway to each neighbour, the ends mirrored."""
    mid = (log_x[:-1] + log_x[1:]) / 2
    return np.concatenate([[log_x[0] - (mid[0] - log_x[0])], mid, [log_x[-1] + (log_x[-1] - mid[-1])]])


def covering_slice(wavenumber_cm: np.ndarray, edges_um: np.ndarray, stride: int = 1) -> np.ndarray:
    """Indices of every ``stride``-th point of an ascending grid, spanning the bins with one point spare."""
    nu_lo, nu_hi = 1e4 / edges_um[-1], 1e4 / edges_um[0]
    if wavenumber_cm[0] > nu_lo or wavenumber_cm[-1] < nu_hi:
        raise UserError(f"simulate.output covers {edges_um[0]:.4g}-{edges_um[-1]:.4g} um but the opacity cache "
                        f"covers {1e4 / wavenumber_cm[-1]:.4g}-{1e4 / wavenumber_cm[0]:.4g} um; narrow "
                        "simulate.output.wavelength_min_um/max_um or rebuild the cache")
    first = max(int(np.searchsorted(wavenumber_cm, nu_lo)) - stride, 0)
    last = min(int(np.searchsorted(wavenumber_cm, nu_hi, side="right")) + stride, wavenumber_cm.size)
    return np.arange(first, last, stride)


def binning_matrix(wavenumber_cm: np.ndarray, edges_um: np.ndarray, mode: str = "wavenumber") -> np.ndarray:
    """Dense (n_bins, W) averaging weights; use :func:`to_sparse` for the torch operator."""
    log_nu = np.log(wavenumber_cm)
    cell = cell_edges_log(log_nu)  # ascending in nu
    bin_hi, bin_lo = np.log(1e4 / edges_um[:-1]), np.log(1e4 / edges_um[1:])  # per bin, ln nu
    overlap = np.clip(np.minimum(cell[1:], bin_hi[:, None]) - np.maximum(cell[:-1], bin_lo[:, None]), 0, None)
    measure = wavenumber_cm if mode == "wavenumber" else 1e4 / wavenumber_cm  # d nu = nu dln, d lambda = lambda dln
    weights = overlap * measure
    total = weights.sum(1, keepdims=True)
    if np.any(total <= 0):
        raise UserError("simulate.output bins fall outside the model wavenumber grid; check the output range")
    return weights / total


def to_sparse(matrix: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(matrix, dtype=dtype).to_sparse().coalesce().to(device)  # COO: stable on CPU and GPU


def bin_flux(matrix: torch.Tensor, flux: torch.Tensor) -> torch.Tensor:
    """(B, W) high-resolution flux -> (B, n_bins) bin averages."""
    return torch.sparse.mm(matrix, flux.T).T
