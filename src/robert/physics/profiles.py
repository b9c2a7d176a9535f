"""Temperature-pressure profiles, batched over parameters: Guillot (2010) and isothermal.

Guillot 2010 (A&A 520, A27) eq. 49, the grey irradiated atmosphere averaged with factor f:
    T^4 = 3/4 T_int^4 (2/3 + tau)
        + 3/4 f T_irr^4 [2/3 + 1/(gamma sqrt3) + (gamma/sqrt3 - 1/(gamma sqrt3)) e^(-gamma tau sqrt3)]
with the thermal optical depth tau = kappa_IR P / g (constant g = surface gravity, as Guillot assumes).
gamma = kappa_v / kappa_IR > 1 makes the upper atmosphere hotter than below: a thermal inversion.
"""

from __future__ import annotations

import math

import torch

BAR_DYN_CM2 = 1.0e6  # 1 bar in dyn/cm^2 (cgs, to match kappa in cm^2/g)
SQRT3 = math.sqrt(3.0)


def guillot_profile(pressure_bar: torch.Tensor, irradiation_temperature_K: torch.Tensor,
                    internal_temperature_K: torch.Tensor, kappa_ir_cm2_g: torch.Tensor, gamma: torch.Tensor,
                    gravity_m_s2: float, redistribution_f: float = 0.25) -> torch.Tensor:
    """T [K] at ``pressure_bar`` (P,) for B parameter sets (each (B,)): returns (B, P)."""
    tau = kappa_ir_cm2_g[:, None] * pressure_bar * BAR_DYN_CM2 / (gravity_m_s2 * 100.0)
    g = gamma[:, None]
    irradiated = 2.0 / 3.0 + 1.0 / (g * SQRT3) + (g / SQRT3 - 1.0 / (g * SQRT3)) * torch.exp(-g * tau * SQRT3)
    t4 = 0.75 * internal_temperature_K[:, None] ** 4 * (2.0 / 3.0 + tau) \
        + 0.75 * redistribution_f * irradiation_temperature_K[:, None] ** 4 * irradiated
    return t4 ** 0.25


def isothermal_profile(pressure_bar: torch.Tensor, temperature_K: torch.Tensor) -> torch.Tensor:
    """T [K] = ``temperature_K`` (B,) at every pressure (P,): (B, P)."""
    return temperature_K[:, None].expand(-1, pressure_bar.shape[0]).clone()
