"""Thermal dissociation (Parmentier et al. 2018) and the per-layer chemistry built on it."""

from __future__ import annotations

import math

import pytest
import torch

from robert.physics.chemistry import (
    H2_MASS_AMU,
    HE_MASS_AMU,
    dissociated_chemistry,
    dissociation_fits,
    free_chemistry,
)
from robert.physics.dissociation import PARMENTIER_2018, dissociated_fraction, remaining_fraction

R_HE = 0.172


def water_left(temperature_K: float, pressure_bar: float) -> float:
    fit = PARMENTIER_2018["H2O"]
    return float(remaining_fraction(fit, torch.tensor(temperature_K, dtype=torch.float64),
                                    torch.tensor(math.log10(pressure_bar), dtype=torch.float64)))


@pytest.mark.parametrize(("temperature_K", "pressure_bar", "published"), [
    # The published fit (Parmentier et al. 2018, Table 1: H2O alpha = 2, beta = 4.83e4 K, gamma = 15.9,
    # log10 A_0 = -3.3) evaluated by hand: log10 A_d = 2 log10 P + 48300 / T - 15.9, A / A_0 = (1 + sqrt(A_0/A_d))^-2
    (3000.0, 1e-3, 2.837e-3),  # log10 A_d = -5.8: a WASP-121b-like day side at 1 mbar keeps 0.28 % of its water
    (2500.0, 1e-1, 0.99131),   # log10 A_d = 1.42: at 0.1 bar and 2500 K water is intact
    (2494.0, 1e-3, 0.5000),    # half dissociated: A_d = A_0 / (sqrt 2 - 1)^2, i.e. 48300 / T = 19.365 at 1 mbar
    (1500.0, 1e-6, 1.0000),    # a hot Jupiter's upper atmosphere: nothing dissociates
])
def test_water_fraction_is_parmentier_2018(temperature_K, pressure_bar, published) -> None:
    assert water_left(temperature_K, pressure_bar) == pytest.approx(published, rel=1e-3)


def test_dissociation_grows_with_temperature_and_falls_with_pressure() -> None:
    assert water_left(2800.0, 1e-2) < water_left(2600.0, 1e-2) < water_left(2400.0, 1e-2)
    assert water_left(2800.0, 1e-3) < water_left(2800.0, 1e-2) < water_left(2800.0, 1e-1)
    for name in ("H2", "H2O", "TiO", "VO"):  # fractions left and gone add up to 1, without cancellation
        t = torch.linspace(500.0, 5000.0, 50, dtype=torch.float64)
        logp = torch.full_like(t, -3.0)
        fit = PARMENTIER_2018[name]
        torch.testing.assert_close(remaining_fraction(fit, t, logp) + dissociated_fraction(fit, t, logp),
                                   torch.ones_like(t), rtol=1e-12, atol=0)


def test_oxides_survive_deep_and_are_gone_on_an_ultra_hot_day_side() -> None:
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    for name in ("H2O", "TiO", "VO"):
        fit = PARMENTIER_2018[name]
        deep, day = remaining_fraction(fit, f64(2000.0), f64(0.0)), remaining_fraction(fit, f64(3500.0), f64(-3.0))
        assert float(deep) > 0.999 and float(day) < 1e-3, name


def layered(temperature_K: list[float], log10_p: list[float], deep: list[list[float]], molecules=("H2O", "CO")):
    t = torch.tensor([temperature_K], dtype=torch.float64)
    vmr = torch.tensor(deep, dtype=torch.float64)
    mass = torch.tensor([18.015, 28.010][:len(molecules)], dtype=torch.float64)
    comp = dissociated_chemistry(vmr, mass, R_HE, dissociation_fits(molecules), t.expand(vmr.shape[0], -1),
                                 torch.tensor(log10_p, dtype=torch.float64))
    return comp, vmr, mass


def test_dissociated_chemistry_sums_to_one_and_keeps_co() -> None:
    comp, vmr, _ = layered([1000.0, 2500.0, 3500.0], [-1.0, -3.0, -5.0], [[1e-3, 1e-4], [1e-6, 1e-2]])
    total = comp.h2_vmr + comp.he_vmr + comp.h_vmr + comp.active_vmr.sum(1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=1e-12, atol=0)
    torch.testing.assert_close(comp.active_vmr[:, 1], vmr[:, 1, None].expand(-1, 3))  # CO is not dissociated
    fraction = comp.active_vmr[:, 0] / vmr[:, 0, None]  # the same fraction of water left for any deep abundance
    torch.testing.assert_close(fraction[0], fraction[1], rtol=1e-12, atol=0)
    assert fraction[0, 0] == pytest.approx(1.0, abs=1e-12) and fraction[0, 2] < 1e-3
    # He keeps its ratio to the hydrogen nuclei: x_He / (x_H + 2 x_H2) = r / 2
    torch.testing.assert_close(comp.he_vmr / (comp.h_vmr + 2 * comp.h2_vmr), torch.full_like(comp.he_vmr, R_HE / 2))


def test_cool_layers_reproduce_free_chemistry_and_hot_ones_are_lighter() -> None:
    comp, vmr, mass = layered([800.0, 3500.0], [0.0, -4.0], [[1e-3, 1e-4]])
    free = free_chemistry(vmr, mass, R_HE)
    assert float(comp.mmw_amu[0, 0]) == pytest.approx(float(free.mmw_amu[0]), rel=1e-10)
    assert float(comp.h_vmr[0, 0]) < 1e-10
    # at 3500 K and 0.1 mbar H2 is almost all atomic: mu -> (m_H + r/2 m_He) / (1 + r/2) ~ 1.26 amu
    atomic_mu = (H2_MASS_AMU / 2 + R_HE / 2 * HE_MASS_AMU) / (1 + R_HE / 2)
    assert float(comp.mmw_amu[0, 1]) == pytest.approx(atomic_mu, rel=0.01)
