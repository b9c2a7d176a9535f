"""Rayleigh scattering cross-sections of H2 and He (Dalgarno & Williams 1962).

sigma_H2 = 8.14e-13 L^-4 (1 + 1.572e6 L^-2 + 1.981e12 L^-4) cm^2
sigma_He = 5.484e-14 L^-4 (1 + 2.44e5 L^-2) cm^2,   L = wavelength in Angstrom (DESIGN.md section 3).
"""

from __future__ import annotations

import numpy as np

from robert.errors import choice_error

RAYLEIGH_SPECIES = ("H2", "He")


def rayleigh_cross_section(species: str, wavenumber_cm: np.ndarray) -> np.ndarray:
    """Rayleigh cross-section in cm^2/molecule at the given wavenumbers (cm^-1)."""
    wavelength_A = 1e8 / np.asarray(wavenumber_cm, dtype=float)
    inv2 = wavelength_A**-2
    if species == "H2":
        return 8.14e-13 * inv2**2 * (1 + 1.572e6 * inv2 + 1.981e12 * inv2**2)
    if species == "He":
        return 5.484e-14 * inv2**2 * (1 + 2.44e5 * inv2)
    raise choice_error("Rayleigh species", species, RAYLEIGH_SPECIES)
