"""Synthetic opacity tables (Gaussian bands, grey CIA) for tests and the speed benchmark.

Physics-property tests (isothermal limit, inversions, batch independence) do not depend on the
real line lists, and the benchmark needs the default cache's SHAPE even before the cache exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robert.opacity.cia import CiaTable
from robert.opacity.xsec_hdf5 import CrossSectionTable

DEFAULT_TEMPERATURE_K = (200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 1750, 2000, 2500, 3000)
DEFAULT_PRESSURE_BAR = tuple(10.0 ** np.arange(-6, 3))


def log_wavenumber_grid(wavelength_min_um: float, wavelength_max_um: float, resolution: float) -> np.ndarray:
    """Ascending wavenumbers [cm^-1] with nu / d nu = resolution, like the cache builder's grid."""
    return np.exp(np.arange(np.log(1e4 / wavelength_max_um), np.log(1e4 / wavelength_min_um), 1.0 / resolution))


def band_cross_section(molecule: str, wavenumber_cm: np.ndarray, bands_cm: Sequence[tuple[float, float]],
                       peak_cm2: float = 1e-20, floor_cm2: float = 1e-28, mass_amu: float = 18.015,
                       temperature_K: Sequence[float] = DEFAULT_TEMPERATURE_K,
                       pressure_bar: Sequence[float] = DEFAULT_PRESSURE_BAR, seed: int = 0) -> CrossSectionTable:
    """Gaussian bands (centre, width) in cm^-1 with a random fine structure, weakly T dependent."""
    t, p = np.asarray(temperature_K, float), np.asarray(pressure_bar, float)
    shape = sum(np.exp(-0.5 * ((wavenumber_cm - c) / w) ** 2) for c, w in bands_cm)
    lines = 0.5 + np.random.default_rng(seed).random(wavenumber_cm.size)
    sigma = peak_cm2 * shape * lines * np.sqrt(t[:, None] / 1000.0) + floor_cm2
    xsec = np.broadcast_to(sigma, (p.size, t.size, wavenumber_cm.size)).copy()
    return CrossSectionTable(molecule, t, p, wavenumber_cm, xsec, mass_amu, "synthetic bands")


def grey_cia(pair: str, sigma_cm5: float = 1e-46, temperature_K: Sequence[float] = (100.0, 1000.0, 4000.0),
             wavenumber_max_cm: float = 20000.0) -> CiaTable:
    """A CIA table that is flat in wavenumber and grows slowly with T."""
    t = np.asarray(temperature_K, float)
    nu = np.linspace(10.0, wavenumber_max_cm, 200)
    return CiaTable(pair, t, nu, sigma_cm5 * np.sqrt(t / 1000.0)[:, None] * np.ones(nu.size), "synthetic grey")
