"""Planck function, Gauss-Legendre angles, the Schwarzschild flux and the binning operator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy import constants as const

from robert.physics.binning import binning_matrix, covering_slice, output_grid_um
from robert.physics.emission import emergent_flux, gauss_legendre_mu, planck_wavenumber
from robert.physics.synthetic import log_wavenumber_grid


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_gauss_legendre_integrates_mu_polynomials_exactly(n: int) -> None:
    mu, w = gauss_legendre_mu(n)
    assert np.all((mu > 0) & (mu < 1))
    for k in range(2 * n):  # exact up to degree 2n - 1
        assert math.isclose(float(np.sum(w * mu**k)), 1 / (k + 1), rel_tol=1e-12)


def test_planck_integrates_to_stefan_boltzmann() -> None:
    nu = torch.linspace(1.0, 40000.0, 400001, dtype=torch.float64)
    radiance = planck_wavenumber(nu, torch.tensor([1000.0], dtype=torch.float64))[0]
    total = float(torch.trapezoid(radiance, nu))  # W m^-2 sr^-1
    assert math.isclose(math.pi * total, float(const.sigma_sb.si.value) * 1000.0**4, rel_tol=1e-5)


def test_single_layer_flux_is_exponential_integral() -> None:
    """One cold-free layer over a dark surface: F / pi B = 1 - 2 E3(tau); 8 angles get close."""
    from scipy.special import expn

    nu = torch.tensor([1000.0], dtype=torch.float64)
    tau = torch.tensor([[[0.3]]], dtype=torch.float64)
    temperature = torch.tensor([[1000.0, 1.0]], dtype=torch.float64)  # layer, then a ~0 K surface
    mu, w = (torch.as_tensor(a) for a in gauss_legendre_mu(8))
    flux = emergent_flux(tau, temperature, nu, mu, 2 * w * mu)
    ratio = float(flux[0, 0] / (math.pi * planck_wavenumber(nu, temperature[:, 0])[0, 0]))
    assert math.isclose(ratio, 1 - 2 * expn(3, 0.3), rel_tol=1e-3)


def test_output_grid_and_binning() -> None:
    centres, edges = output_grid_um(1.0, 20.0, 901)
    assert centres.size == 901 and math.isclose(centres[0], 1.0) and math.isclose(centres[-1], 20.0)
    assert np.allclose(np.log(edges[1:-1]), 0.5 * (np.log(centres[:-1]) + np.log(centres[1:])))
    nu_all = log_wavenumber_grid(0.95, 21.0, 3000)
    nu = nu_all[covering_slice(nu_all, edges)]
    for mode in ("wavenumber", "wavelength"):
        m = binning_matrix(nu, edges, mode)
        assert np.allclose(m.sum(1), 1.0)
        assert np.allclose(m @ np.full(nu.size, 3.0), 3.0)  # a flat spectrum stays flat
    # a linear function of wavenumber averages (per wavenumber) to its value at the bin's mid wavenumber
    m = binning_matrix(nu, edges, "wavenumber")
    mid = 0.5 * (1e4 / edges[:-1] + 1e4 / edges[1:])
    assert np.allclose(m @ nu, mid, rtol=2e-5)
