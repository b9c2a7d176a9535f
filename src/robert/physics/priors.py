"""Draw forward-model parameters from the ranges in ``conf/simulate/*.yaml`` (the training prior)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robert.physics.config import SimulateSettings
from robert.physics.planet import Planet


@dataclass
class TemperatureParameters:
    """One temperature profile per spectrum, all (B,). Isothermal rows use ``isothermal_temperature_K``."""

    isothermal: torch.Tensor  # bool
    isothermal_temperature_K: torch.Tensor
    irradiation_temperature_K: torch.Tensor
    internal_temperature_K: torch.Tensor
    kappa_ir_cm2_g: torch.Tensor
    gamma: torch.Tensor

    def __getitem__(self, rows: slice | torch.Tensor) -> TemperatureParameters:
        return TemperatureParameters(**{k: v[rows] for k, v in vars(self).items()})

    def __len__(self) -> int:
        return self.isothermal.shape[0]


def _uniform(low_high: tuple[float | torch.Tensor, float | torch.Tensor], size: int | tuple[int, ...],
             gen: torch.Generator) -> torch.Tensor:
    """Uniform draws of shape ``size`` in [low, high): bounds are numbers or tensors broadcast over ``size``."""
    low, high = low_high
    return low + (high - low) * torch.rand(size, generator=gen, dtype=torch.float64)


def sample_parameters(settings: SimulateSettings, planet: Planet, n_spectra: int, molecules: Sequence[str],
                      generator: torch.Generator) -> tuple[TemperatureParameters, torch.Tensor]:
    """Temperature parameters and log-uniform active VMRs (n_spectra, len(molecules)), on ``settings.device``.

    Each molecule's VMR is drawn from its own range (:meth:`SimulateSettings.vmr_range_of`) with one uniform number
    per (spectrum, molecule): a cap on one gas rescales its draws and leaves every other gas's as they were."""
    prior, teq = settings.temperature, planet.equilibrium_temperature_K
    params = TemperatureParameters(
        isothermal=torch.rand(n_spectra, generator=generator, dtype=torch.float64) < prior.isothermal_fraction,
        isothermal_temperature_K=teq * _uniform(prior.isothermal_scale, n_spectra, generator),
        # T_irr = s 4^(1/4) Teq: with f = 1/4 the irradiation term then matches Teq at s = 1
        irradiation_temperature_K=teq * 4**0.25 * _uniform(prior.irradiation_scale, n_spectra, generator),
        internal_temperature_K=_uniform(prior.internal_temperature_K, n_spectra, generator),
        kappa_ir_cm2_g=10 ** _uniform(prior.log10_kappa_ir_cm2_g, n_spectra, generator),
        gamma=10 ** _uniform(prior.log10_gamma, n_spectra, generator),
    )
    low, high = torch.tensor([settings.vmr_range_of(m) for m in molecules], dtype=torch.float64).reshape(-1, 2).T
    vmr = 10 ** _uniform((low, high), (n_spectra, len(molecules)), generator)
    moved = {k: v.to(settings.device, settings.dtype if v.is_floating_point() else v.dtype)
             for k, v in vars(params).items()}
    return TemperatureParameters(**moved), vmr.to(settings.device, settings.dtype)
