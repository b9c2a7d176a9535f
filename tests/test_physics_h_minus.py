"""The H- continuum (John 1988) and its electron and H- densities, against published numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robert.physics import h_minus
from robert.physics.chemistry import dissociated_hydrogen
from robert.physics.dissociation import PARMENTIER_2018, abundance
from robert.physics.h_minus import (
    bound_free_cross_section_cm2,
    electron_density_cm3,
    free_free_coefficient_cm4_dyn,
    saha_h_minus_cm2_dyn,
)

R_HE = 0.172
K_B = h_minus.K_B_CGS


@pytest.mark.parametrize(("wavelength_um", "wishart_1e18_cm2"), [(1.25, 25.71), (0.85, 40.01), (1.5, 7.407)])
def test_bound_free_cross_section_is_wishart_1979_as_fitted_by_john_1988(wavelength_um, wishart_1e18_cm2) -> None:
    # John 1988 fits Wishart's (1979, MNRAS 187, 59P) photodetachment cross-sections; his tabulated values
    # (units of 1e-18 cm^2) at 12500, 8500 (the maximum) and 15000 A; the fit reproduces them to 0.2 %.
    sigma = bound_free_cross_section_cm2(np.array([wavelength_um]))[0]
    assert sigma == pytest.approx(wishart_1e18_cm2 * 1e-18, rel=0.005)


def test_bound_free_vanishes_beyond_the_detachment_threshold() -> None:
    sigma = bound_free_cross_section_cm2(np.array([1.6419, 1.7, 5.0, 20.0]))
    assert np.all(sigma == 0.0)
    assert bound_free_cross_section_cm2(np.array([1.64]))[0] > 0.0


@pytest.mark.parametrize(("wavelength_um", "temperature_K", "bell_berrington_1e26"),
                         [(4.5567, 2520.0, 23.0), (9.1134, 5040.0, 51.9), (15.189, 3150.0, 212.0)])
def test_free_free_coefficient_is_bell_berrington_1987_as_fitted_by_john_1988(
        wavelength_um, temperature_K, bell_berrington_1e26) -> None:
    # Bell & Berrington 1987 (J. Phys. B 20, 801, Table 1), the calculation John 1988 fits: k_ff in
    # 1e-26 cm^4/dyn at theta = 5040/T = 2.0, 1.0, 1.6 and 45567, 91134, 151890 A (the fit: within 0.7 %)
    k = free_free_coefficient_cm4_dyn(np.array([wavelength_um]), temperature_K)[0]
    assert k == pytest.approx(bell_berrington_1e26 * 1e-26, rel=0.01)


def test_saha_factor_is_johns() -> None:
    # John 1988 eq. 3: Phi = 0.750 T^-5/2 exp(alpha / lambda_0 T), alpha = 1.439e4 um K, lambda_0 = 1.6419 um
    assert pytest.approx(0.750, rel=1e-3) == h_minus.H_MINUS_SAHA_CONSTANT
    t = torch.tensor([1500.0, 2500.0, 4000.0], dtype=torch.float64)
    john = 0.750 * t**-2.5 * torch.exp(1.439e4 / (1.6419 * t))
    torch.testing.assert_close(saha_h_minus_cm2_dyn(t), john, rtol=2e-3, atol=0)


def bisection_electron_density(t: float, n: float, x_h: float, nuclei: float) -> float:
    """The same charge balance solved independently by bisection in log n_e (slow, scalar)."""
    kt = h_minus.K_B_EV * t
    donors = [(10 ** (d.log_epsilon - 12) * nuclei * n, d.weight_ratio * h_minus.SAHA_CM3 * t**1.5
               * math.exp(-d.ionisation_eV / kt)) for d in h_minus.METAL_DONORS.values()]
    donors.append((x_h * n, h_minus.SAHA_CM3 * t**1.5 * math.exp(-h_minus.HYDROGEN_IONISATION_EV / kt)))
    low, high = -700.0, math.log(n)
    for _ in range(200):
        mid = 0.5 * (low + high)
        ne = math.exp(mid)
        if ne - sum(count * k / (ne + k) for count, k in donors) > 0:
            high = mid
        else:
            low = mid
    return math.exp(0.5 * (low + high))


def test_electron_density_solves_the_charge_balance() -> None:
    temperatures = torch.tensor([800.0, 1500.0, 2500.0, 3500.0, 5000.0, 6000.0], dtype=torch.float64)
    pressures = torch.tensor([1e-7, 1e-4, 1e-1, 1e2, 1e3], dtype=torch.float64)
    t, p = torch.meshgrid(temperatures, pressures, indexing="ij")
    n = p * 1e6 / (h_minus.K_B_CGS * t)
    h2, x_h = dissociated_hydrogen(torch.ones(1, 1, dtype=torch.float64), 0.0, R_HE, t, torch.log10(p))
    nuclei = 2 * h2 + x_h
    ne = electron_density_cm3(t, n, x_h, nuclei)
    for i, j in np.ndindex(*t.shape):
        expected = bisection_electron_density(float(t[i, j]), float(n[i, j]), float(x_h[i, j]), float(nuclei[i, j]))
        assert float(ne[i, j]) == pytest.approx(expected, rel=1e-8), (float(t[i, j]), float(p[i, j]))


def test_electrons_come_from_the_alkali_metals_at_2000_K() -> None:
    # Na and K dominate below ~3000 K: with everything ionised, n_e ~ n(Na) + n(K); here they are partly ionised
    t, p = torch.tensor([[2000.0]], dtype=torch.float64), torch.tensor([[1e-2]], dtype=torch.float64)
    n = p * 1e6 / (h_minus.K_B_CGS * t)
    ne = float(electron_density_cm3(t, n, torch.zeros_like(t), torch.full_like(t, 1.7))[0, 0])
    alkali = sum(10 ** (h_minus.METAL_DONORS[m].log_epsilon - 12) for m in ("Na", "K")) * 1.7 * float(n[0, 0])
    assert 0.01 * alkali < ne < alkali


@pytest.mark.parametrize("pressure_bar", [1e-4, 1e-2, 1e-1])
def test_h_minus_density_agrees_with_parmentier_2018_at_2500_K(pressure_bar: float) -> None:
    # Parmentier et al. 2018 (Table 1, H- row) fit the H- abundance of full equilibrium chemistry on
    # ultra-hot day sides; our Saha n(H-) = Phi n(H) P_e at 2500 K agrees within a factor 1.5 (0.7-1.2 measured)
    t = torch.tensor([[2500.0]], dtype=torch.float64)
    log_p = torch.tensor([[math.log10(pressure_bar)]], dtype=torch.float64)
    h2, x_h = dissociated_hydrogen(torch.ones(1, 1, dtype=torch.float64), 0.0, R_HE, t, log_p)
    n = pressure_bar * 1e6 / (h_minus.K_B_CGS * 2500.0)
    pe = electron_density_cm3(t, torch.full_like(t, n), x_h, 2 * h2 + x_h) * h_minus.K_B_CGS * t
    ours = float(x_h * pe * saha_h_minus_cm2_dyn(t))
    theirs = float(abundance(PARMENTIER_2018["H-"], t, log_p))
    assert 1 / 1.5 < ours / theirs < 1.5


@pytest.mark.parametrize("dissociation", [True, False])
def test_model_layer_optical_depth_is_the_reference_cross_section_times_the_column(dissociation: bool) -> None:
    from robert.physics import atmosphere
    from robert.physics.config import load_simulate_config
    from robert.physics.model import EmissionModel
    from robert.physics.planet import load_planet
    from robert.physics.synthetic import band_cross_section, grey_cia, log_wavenumber_grid

    settings = load_simulate_config(overrides=["dtype=float64", "chunk_size=4", "compile=false", "n_layers=12",
                                               f"chemistry.dissociation={str(dissociation).lower()}"])
    nu = log_wavenumber_grid(0.95, 21.0, 300)
    xsec = band_cross_section("H2O", nu, [(1500.0, 60.0)], peak_cm2=0.0, floor_cm2=0.0)
    model = EmissionModel(settings, load_planet("wasp12b"), [xsec], [grey_cia("H2-H2", 0.0), grey_cia("H2-He", 0.0)])
    model.opacity.rayleigh.zero_()  # H- is then the only opacity
    t = torch.linspace(1200.0, 3800.0, settings.n_layers + 1, dtype=torch.float64)[None]
    vmr = torch.tensor([[1e-3]], dtype=torch.float64)
    dtau, comp = model.layer_optical_depth(t[:, :-1], vmr)
    mix = model.layer_mixing_ratios(t, vmr)
    column = atmosphere.layer_column_density_cm2(model.levels_bar, model.layer_bar, t[:, :-1], comp.mmw_amu,
                                                 model.planet)
    density = atmosphere.number_density_cm3(model.layer_bar, t[:, :-1])
    for layer in range(settings.n_layers):
        temperature, pe = float(t[0, layer]), float(mix["e-"][0, layer] * density[0, layer]) * K_B * float(t[0, layer])
        expected = float(column[0, layer]) * h_minus.cross_section_cm2(model.wavenumber_grid_cm, temperature,
                                                                       float(mix["H"][0, layer]), pe)
        if expected.max() < 10 * h_minus.NEGLIGIBLE_TAU:  # the cool top: set to exactly 0 by design
            assert float(dtau[0, layer].abs().max()) < 10 * h_minus.NEGLIGIBLE_TAU
            continue
        np.testing.assert_allclose(dtau[0, layer].numpy(), expected, rtol=1e-10)
