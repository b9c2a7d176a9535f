"""Hydrostatic structure, chemistry and temperature profiles against analytic results."""

from __future__ import annotations

import math

import numpy as np
import torch

from robert.physics import atmosphere
from robert.physics.chemistry import H2_MASS_AMU, HE_MASS_AMU, free_chemistry
from robert.physics.planet import G_SI, load_planet
from robert.physics.profiles import guillot_profile, isothermal_profile

PLANET = load_planet("hd209458b")
LEVELS = torch.as_tensor(atmosphere.pressure_levels_bar(100, 1e-6, 1e2), dtype=torch.float64)


def isothermal_altitudes(temperature: float, mmw: float, planet=PLANET) -> torch.Tensor:
    t = torch.full((1, 100), temperature, dtype=torch.float64)
    return atmosphere.hydrostatic_altitudes_m(LEVELS, t, torch.tensor([mmw], dtype=torch.float64), planet)[0]


def test_pressure_grid() -> None:
    assert LEVELS[0] == 1e-6 and math.isclose(float(LEVELS[-1]), 1e2)
    layers = atmosphere.layer_pressures_bar(LEVELS.numpy())
    assert np.all(layers > LEVELS[:-1].numpy()) and np.all(layers < LEVELS[1:].numpy())


def test_altitudes_follow_isothermal_scale_height() -> None:
    t, mmw = 1400.0, 2.3
    z = isothermal_altitudes(t, mmw)
    assert float(z[-1]) == 0.0 and torch.all(z[:-1] > z[1:])
    # exact solution with g = G M / r^2: 1/r = 1/Rp - k T ln(P0/P) / (mu m_u G M)
    ln_ratio = torch.log(LEVELS[-1] / LEVELS)
    inv_r = 1 / PLANET.radius_m - atmosphere.K_B_SI * t * ln_ratio / (mmw * atmosphere.AMU_KG * G_SI * PLANET.mass_kg)
    torch.testing.assert_close(z, 1 / inv_r - PLANET.radius_m, rtol=1e-10, atol=1e-6)
    # near the bottom z = H ln(P0/P), H = kT / (mu m_u g0), to first order in z / Rp
    scale_height = atmosphere.K_B_SI * t / (mmw * atmosphere.AMU_KG * PLANET.surface_gravity_m_s2)
    near = (ln_ratio > 0) & (ln_ratio < 3)
    rel = (z[near] / (scale_height * ln_ratio[near]) - 1).abs()
    assert float(rel.max()) < 3 * float(z[near].max()) / PLANET.radius_m


def test_column_density_is_pressure_over_gravity() -> None:
    t = torch.full((1, 100), 1000.0, dtype=torch.float64)
    mmw = torch.tensor([2.3], dtype=torch.float64)
    layers = torch.sqrt(LEVELS[:-1] * LEVELS[1:])
    column = atmosphere.layer_column_density_cm2(LEVELS, layers, t, mmw, PLANET)
    # total column ~ P_bottom / (mu m_u g) within the few per cent by which g drops over the atmosphere
    total = 1e7 / (2.3 * atmosphere.AMU_KG * PLANET.surface_gravity_m_s2) * 1e-4
    assert 1.0 <= float(column.sum()) / total < 1.05
    n = atmosphere.number_density_cm3(layers, t)
    assert math.isclose(float(n[0, -1]), float(layers[-1]) * 1e5 / (atmosphere.K_B_SI * 1000.0) * 1e-6)


def test_mean_molecular_weight_of_fill_gas() -> None:
    comp = free_chemistry(torch.zeros(1, 1), torch.tensor([18.0]), 0.172)
    expected = (H2_MASS_AMU + 0.172 * HE_MASS_AMU) / 1.172
    assert math.isclose(float(comp.mmw_amu[0]), expected, rel_tol=1e-6)
    comp = free_chemistry(torch.tensor([[0.01, 0.02]], dtype=torch.float64), torch.tensor([18.0, 44.0]).double(), 0.172)
    total = comp.h2_vmr + comp.he_vmr + comp.active_vmr.sum(-1)
    assert math.isclose(float(total[0]), 1.0) and math.isclose(float(comp.he_vmr[0] / comp.h2_vmr[0]), 0.172)


def _guillot(p_bar, t_irr, t_int, kappa, gamma, gravity=10.0, f=0.25):
    one = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return guillot_profile(p_bar, one(t_irr), one(t_int), one(kappa), one(gamma), gravity, f)[0]


def test_guillot_limits() -> None:
    p = torch.logspace(-6, 2, 50, dtype=torch.float64)
    tau = 0.01 * p * 1e6 / (10.0 * 100)  # kappa P / g in cgs
    # no irradiation: T^4 = 3/4 T_int^4 (2/3 + tau), the grey Eddington solution
    t = _guillot(p, 0.0, 200.0, 0.01, 0.5)
    torch.testing.assert_close(t**4, 0.75 * 200.0**4 * (2 / 3 + tau))
    # Guillot 2010 eq. 49 at tau = 0: T^4 = T_int^4 / 2 + f T_irr^4 (1/2 + sqrt3 gamma / 4)
    top = _guillot(torch.tensor([0.0], dtype=torch.float64), 1500.0, 100.0, 0.01, 0.4)[0]
    assert math.isclose(float(top) ** 4, 100.0**4 / 2 + 0.25 * 1500.0**4 * (0.5 + math.sqrt(3) * 0.4 / 4))
    # deep: T^4 -> 3/4 T_int^4 (2/3 + tau) + 3/4 f T_irr^4 (2/3 + 1/(gamma sqrt3))
    deep = _guillot(torch.tensor([1e4], dtype=torch.float64), 1500.0, 100.0, 0.01, 0.4)[0]
    tau_deep = 0.01 * 1e4 * 1e6 / 1000
    expected = 0.75 * 100.0**4 * (2 / 3 + tau_deep) + 0.75 * 0.25 * 1500.0**4 * (2 / 3 + 1 / (0.4 * math.sqrt(3)))
    assert math.isclose(float(deep) ** 4, expected, rel_tol=1e-12)
    # gamma = 1: the irradiated part is isothermal; T_int = 0 leaves T^4 = f T_irr^4 (1/2 + sqrt3/4)
    flat = _guillot(p, 1500.0, 0.0, 0.01, 1.0)
    torch.testing.assert_close(flat, torch.full_like(flat, (0.25 * 1500.0**4 * (0.5 + math.sqrt(3) / 4)) ** 0.25))


def test_guillot_gamma_above_one_inverts() -> None:
    p = torch.logspace(-6, 0, 40, dtype=torch.float64)
    # T_int = 0 isolates the irradiated part, whose slope has the sign of 1/gamma - gamma
    assert torch.all(torch.diff(_guillot(p, 1500.0, 0.0, 0.01, 0.3)) > 0)  # warmer downwards
    assert torch.all(torch.diff(_guillot(p, 1500.0, 0.0, 0.01, 3.0)) < 0)  # inversion: warmer upwards


def test_isothermal_profile() -> None:
    t = isothermal_profile(torch.logspace(-6, 2, 5), torch.tensor([300.0, 900.0]))
    assert t.shape == (2, 5) and torch.all(t[1] == 900.0)
