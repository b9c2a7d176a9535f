"""Grey cloud deck for transmission: opaque (optical depth infinite) below its top pressure.

Real transmission spectra are muted mostly by clouds, so the training prior includes them: a share
``cloudy_fraction`` of the spectra gets a deck whose top pressure is drawn log-uniform from
``log10_top_pressure_bar``, the rest none (top pressure +inf). The deck is treated exactly rather than as
a large opacity added to whole layers: every ray with impact parameter below the deck's radius is
blocked, so the spectrum changes smoothly with the deck pressure instead of in layer-sized steps.
The deck's radius comes from the same hydrostatic solution as the layers: inside an isothermal
layer 1/r is linear in ln P (:mod:`robert.physics.atmosphere`), so interpolating 1/r between the
two levels around the deck is exact.
"""

from __future__ import annotations

import torch

from robert.physics.config import CloudPrior
from robert.physics.opacity import interpolation_weights

NO_CLOUD_BAR = float("inf")  # the top pressure recorded for a cloud-free spectrum


def sample_cloud_top_pressure_bar(prior: CloudPrior, n_spectra: int, generator: torch.Generator) -> torch.Tensor:
    """(n_spectra,) float64 deck-top pressures [bar]: +inf (no deck) or log-uniform in the prior's range."""
    cloudy = torch.rand(n_spectra, generator=generator, dtype=torch.float64) < prior.cloudy_fraction
    low, high = prior.log10_top_pressure_bar
    log_p = low + (high - low) * torch.rand(n_spectra, generator=generator, dtype=torch.float64)
    return torch.where(cloudy, 10.0**log_p, torch.full_like(log_p, NO_CLOUD_BAR))


def deck_inverse_radius(cloud_top_bar: torch.Tensor, levels_bar: torch.Tensor,
                        level_inverse_radius: torch.Tensor) -> torch.Tensor:
    """1/r [1/m] at each spectrum's deck top, (B,), from 1/r at the levels (B, L + 1), ``levels_bar`` ascending.

    Pressures beyond the grid clamp to its ends: a cloud-free spectrum (+inf) gets the bottom level, 1/Rp.
    """
    log_levels = torch.log(levels_bar)
    index, weight = interpolation_weights(log_levels, torch.log(cloud_top_bar.to(log_levels.dtype)))
    low = level_inverse_radius.gather(1, index[:, None])[:, 0]
    high = level_inverse_radius.gather(1, index[:, None] + 1)[:, 0]
    return low + weight * (high - low)
