"""The spectral and thermodynamic grids that every cross-section file shares."""

from __future__ import annotations

import numpy as np

from robert.errors import UserError


def wavenumber_grid(wavelength_min_um: float, wavelength_max_um: float, resolution: float) -> np.ndarray:
    """Ascending wavenumbers in cm^-1, evenly spaced in log (constant resolving power R = nu/d nu)."""
    if not 0 < wavelength_min_um < wavelength_max_um:
        raise UserError(f"opacity.wavelength_min_um ({wavelength_min_um}) must be > 0 and below "
                        f"opacity.wavelength_max_um ({wavelength_max_um})")
    if resolution <= 0:
        raise UserError(f"opacity.resolution must be > 0, got {resolution}")
    nu_min, nu_max = 1e4 / wavelength_max_um, 1e4 / wavelength_min_um
    n = int(np.ceil(resolution * np.log(nu_max / nu_min))) + 1
    return np.geomspace(nu_min, nu_max, n)


def check_axis(name: str, values, *, positive: bool = True) -> np.ndarray:
    """A strictly increasing, non-empty, (positive) 1-D axis, or a one-line error naming it."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise UserError(f"{name} must be a non-empty list of numbers")
    if np.any(np.diff(arr) <= 0):
        raise UserError(f"{name} must be strictly increasing, got {arr.tolist()}")
    if positive and arr[0] <= 0:
        raise UserError(f"{name} must be positive, got {arr.tolist()}")
    return arr


def check_bin_grid(edges_cm, temperature_K, pressure_bar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (bin edges in cm^-1, temperatures in K, pressures in bar) of an exact bin-mean table, each checked by
    :func:`check_axis`; at least two edges (one bin)."""
    edges_cm = check_axis("bin edges (cm-1)", edges_cm)
    if edges_cm.size < 2:
        raise UserError("bin edges (cm-1) need at least two values")
    return edges_cm, check_axis("temperature_K", temperature_K), check_axis("pressure_bar", pressure_bar)
