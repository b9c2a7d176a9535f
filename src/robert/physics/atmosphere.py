"""Vertical structure: log-spaced pressure grid, hydrostatic altitudes with g(r) = G Mp / r^2.

Index 0 is the TOP of the atmosphere. ``n_layers`` layers lie between ``n_layers + 1`` levels
(boundaries) log-spaced from ``pressure_top_bar`` to ``pressure_bottom_bar``; a layer's pressure is
the geometric mean of its boundaries. The planet radius Rp sits at the bottom level (TauREx's convention).
Each layer is isothermal, so hydrostatic balance dP/P = -mu m_u g(r) dr / (k T) with g = G Mp / r^2
integrates exactly to 1/r_top - 1/r_bottom = k T ln(P_bottom / P_top) / (mu m_u G Mp).
Column densities use the exact hydrostatic column mass dP / g, so they need no altitude quadrature.
The mean molecular weight is one per spectrum (B,), or one per layer (B, L) where thermal dissociation
makes it vary with height (:mod:`robert.physics.chemistry`); within a layer it is constant either way.
"""

from __future__ import annotations

import numpy as np
import torch
from astropy import constants as const

from robert.physics.planet import G_SI, Planet

K_B_SI = float(const.k_B.si.value)
AMU_KG = float(const.u.si.value)
BAR_PA = 1.0e5


def pressure_levels_bar(n_layers: int, pressure_top_bar: float, pressure_bottom_bar: float) -> np.ndarray:
    """The ``n_layers + 1`` layer boundaries, top to bottom, evenly spaced in log pressure."""
    return np.geomspace(pressure_top_bar, pressure_bottom_bar, n_layers + 1)


def layer_pressures_bar(levels_bar: np.ndarray) -> np.ndarray:
    """Layer pressures: geometric means of adjacent levels."""
    return np.sqrt(levels_bar[:-1] * levels_bar[1:])


def per_layer(mmw_amu: torch.Tensor) -> torch.Tensor:
    """(B, 1) for one mean molecular weight per spectrum, (B, L) unchanged: broadcasts against (B, L)."""
    return mmw_amu[:, None] if mmw_amu.dim() == 1 else mmw_amu


def inverse_radius_at_pressures(
    pressure_bar: torch.Tensor, levels_bar: torch.Tensor, temperature_K: torch.Tensor,
    mmw_amu: torch.Tensor, radius_m: float | torch.Tensor, mass_kg: float | torch.Tensor,
) -> torch.Tensor:
    """1/r [1/m] at ``pressure_bar`` (P,) inside the layered isothermal atmosphere, batched: (B, P).

    ``temperature_K`` (B, L) per layer, ``mmw_amu`` (B,) or (B, L); the planet's radius (at the bottom level) and
    mass as numbers or 0-d tensors (a compiled kernel takes tensors, so one graph serves every planet). Pressures
    outside the grid are clamped.
    """
    log_levels = torch.log(levels_bar)
    # step in 1/r across each whole layer, bottom layer first, accumulated upwards from 1/Rp
    scale = K_B_SI * temperature_K / (per_layer(mmw_amu) * AMU_KG * G_SI * mass_kg)  # (B, L) [m^-1]
    step = scale * (log_levels[1:] - log_levels[:-1])
    below = torch.flip(torch.cumsum(torch.flip(step, [1]), 1), [1]) - step  # sum over layers below each layer
    log_p = torch.log(pressure_bar).clamp(log_levels[0], log_levels[-1])
    layer = torch.clamp(torch.searchsorted(log_levels, log_p, right=True) - 1, 0, len(levels_bar) - 2)
    inside = scale[:, layer] * (log_levels[layer + 1] - log_p)  # from the layer's bottom up to P
    return 1.0 / radius_m - below[:, layer] - inside


def hydrostatic_altitudes_m(levels_bar: torch.Tensor, temperature_K: torch.Tensor, mmw_amu: torch.Tensor,
                            planet: Planet) -> torch.Tensor:
    """Altitude above Rp of every level, (B, L+1); NaN where the atmosphere is unbound (1/r <= 0)."""
    inv_r = inverse_radius_at_pressures(levels_bar, levels_bar, temperature_K, mmw_amu, planet.radius_m,
                                        planet.mass_kg)
    r = torch.where(inv_r > 0, 1.0 / inv_r, torch.full_like(inv_r, float("nan")))
    return r - planet.radius_m


def layer_column_density_cm2(levels_bar: torch.Tensor, layer_bar: torch.Tensor, temperature_K: torch.Tensor,
                             mmw_amu: torch.Tensor, planet: Planet) -> torch.Tensor:
    """Molecules per cm^2 in each layer, (B, L): dP / (mu m_u g(r_layer)), g at the layer's own altitude."""
    inv_r = inverse_radius_at_pressures(layer_bar, levels_bar, temperature_K, mmw_amu, planet.radius_m,
                                        planet.mass_kg)
    # an unbound atmosphere (1/r <= 0) only happens for absurd priors; keep g small but positive there
    gravity = G_SI * planet.mass_kg * torch.clamp(inv_r, min=1e-3 / planet.radius_m) ** 2
    dp_pa = (levels_bar[1:] - levels_bar[:-1]) * BAR_PA
    return dp_pa / (per_layer(mmw_amu) * AMU_KG * gravity) * 1e-4  # m^-2 -> cm^-2


def number_density_cm3(layer_bar: torch.Tensor, temperature_K: torch.Tensor) -> torch.Tensor:
    """Ideal-gas number density n = P / (k T) in cm^-3, (B, L)."""
    return layer_bar * BAR_PA / (K_B_SI * temperature_K) * 1e-6
