"""EmissionModel physics properties on synthetic opacity (fast: R = 300, no compile)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robert.physics.binning import bin_flux
from robert.physics.config import load_simulate_config
from robert.physics.emission import planck_wavenumber
from robert.physics.model import EmissionModel
from robert.physics.planet import load_planet
from robert.physics.priors import TemperatureParameters, sample_parameters
from robert.physics.synthetic import band_cross_section, grey_cia, log_wavenumber_grid

BAND_CM = 1500.0  # ~6.7 um


def make_model(*overrides: str, peak_cm2: float = 1e-20) -> EmissionModel:
    settings = load_simulate_config(overrides=["dtype=float64", "chunk_size=4", "compile=false", *overrides])
    nu = log_wavenumber_grid(0.95, 21.0, 300)
    xsec = band_cross_section("H2O", nu, [(BAND_CM, 60.0)], peak_cm2=peak_cm2)
    return EmissionModel(settings, load_planet("hd209458b"), [xsec], [grey_cia("H2-H2"), grey_cia("H2-He")])


def guillot(n: int, gamma: float, model: EmissionModel) -> TemperatureParameters:
    full = lambda v: torch.full((n,), v, dtype=torch.float64)  # noqa: E731
    return TemperatureParameters(isothermal=torch.zeros(n, dtype=torch.bool), isothermal_temperature_K=full(0.0),
                                 irradiation_temperature_K=full(1450 * 4**0.25), internal_temperature_K=full(150.0),
                                 kappa_ir_cm2_g=full(0.01), gamma=full(gamma))


@pytest.fixture(scope="module")
def model() -> EmissionModel:
    return make_model()


def test_isothermal_atmosphere_is_blackbody_ratio(model: EmissionModel) -> None:
    t_planet = torch.tensor([900.0, 1500.0], dtype=torch.float64)
    temperature = t_planet[:, None].expand(-1, model.settings.n_layers + 1)
    depth = model.eclipse_depth_from_profiles(temperature, torch.tensor([[1e-3], [1e-5]], dtype=torch.float64))
    bb_planet = bin_flux(model.binning, planck_wavenumber(model.wavenumber_cm, t_planet))
    bb_star = bin_flux(model.binning, planck_wavenumber(model.wavenumber_cm, torch.tensor([6065.0]).double()))
    expected = bb_planet / bb_star * model.planet.radius_ratio**2
    torch.testing.assert_close(depth, expected, rtol=1e-4, atol=0)
    # and, unbinned, against B at the bin centres to the accuracy of a smooth function's bin average
    # (beyond 3 um; ~5 samples per bin at the default stride, so 0.5 %; in the steep Wien tail the
    # samples do not average to the centre value)
    nu_c = torch.as_tensor(1e4 / model.wavelength_um)
    centre = planck_wavenumber(nu_c, t_planet) / planck_wavenumber(nu_c, torch.tensor([6065.0]).double())
    smooth = torch.as_tensor(model.wavelength_um >= 3.0)
    assert torch.allclose(depth[:, smooth], (centre * model.planet.radius_ratio**2)[:, smooth], rtol=5e-3)


def test_isothermal_float32_to_1e4() -> None:
    m32 = make_model("dtype=float32")
    temperature = torch.full((1, m32.settings.n_layers + 1), 1200.0)
    flux = m32.emergent_flux(temperature, torch.tensor([[1e-2]]))
    expected = math.pi * planck_wavenumber(m32.wavenumber_cm, temperature[:, 0])
    assert torch.max(torch.abs(flux / expected - 1)) < 1e-4


def test_no_opacity_gives_bottom_blackbody() -> None:
    model = make_model("continuum.h_minus=false", peak_cm2=0.0)  # no opacity at all: H- is an opacity too
    model.opacity.rows.zero_()
    model.opacity.rayleigh.zero_()
    params = guillot(3, 0.3, model)
    temperature = model.temperature_profiles(params)
    flux = model.emergent_flux(temperature, torch.full((3, 1), 1e-3, dtype=torch.float64))
    expected = math.pi * planck_wavenumber(model.wavenumber_cm, temperature[:, -1])
    torch.testing.assert_close(flux, expected, rtol=1e-10, atol=0)


def band_contrast(model: EmissionModel, gamma: float) -> float:
    """Eclipse depth at the band centre over the mean of two continuum bins either side."""
    depth = model(guillot(1, gamma, model), torch.tensor([[1e-3]], dtype=torch.float64))[0]
    wl = model.wavelength_um
    at = lambda um: depth[int(np.argmin(np.abs(wl - um)))]  # noqa: E731
    centre = 1e4 / BAND_CM
    return float(at(centre) / (0.5 * (at(centre * 0.85) + at(centre * 1.15))))


def test_inversion_turns_absorption_into_emission(model: EmissionModel) -> None:
    assert band_contrast(model, gamma=0.1) < 0.9  # T falls with height: the band is dark
    assert band_contrast(model, gamma=5.0) > 1.1  # thermal inversion: the band shines


def test_batch_size_independence(model: EmissionModel) -> None:
    settings = model.settings
    params, vmr = sample_parameters(settings, model.planet, 7, model.molecules, torch.Generator().manual_seed(3))
    params = TemperatureParameters(**{k: v.double() if v.is_floating_point() else v for k, v in vars(params).items()})
    vmr = vmr.double()
    together = model(params, vmr)
    alone = torch.cat([model(params[i:i + 1], vmr[i:i + 1]) for i in range(7)])
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=0)
    assert together.shape == (7, settings.n_bins)
    assert torch.all(torch.isfinite(together)) and torch.all(together > 0)


def test_vmr_shape_is_checked(model: EmissionModel) -> None:
    with pytest.raises(ValueError, match="active_vmr"):
        model.emergent_flux(torch.full((2, model.settings.n_layers + 1), 1000.0).double(), torch.zeros(2, 3).double())


def test_from_cache_reads_the_cache_layout(tmp_path) -> None:
    from robert.errors import UserError
    from robert.opacity.cia import write_hitran_cia
    from robert.opacity.xsec_hdf5 import write_xsec_hdf5

    nu = log_wavenumber_grid(0.95, 21.0, 200)
    write_xsec_hdf5(tmp_path / "CO.xsec.h5", band_cross_section("CO", nu, [(2143.0, 40.0)], mass_amu=28.0))
    for pair in ("H2-H2", "H2-He"):
        write_hitran_cia(tmp_path / f"{pair}.cia", grey_cia(pair))
    settings = load_simulate_config(overrides=["compile=false", "n_layers=20", "output.n_bins=50"])
    model = EmissionModel.from_cache(settings, load_planet("gj1214b"), ["CO"], tmp_path)
    params, vmr = sample_parameters(settings, model.planet, 3, model.molecules, torch.Generator().manual_seed(0))
    depth = model(params, vmr)
    assert depth.shape == (3, 50) and depth.dtype == torch.float32 and torch.all(depth > 0)
    with pytest.raises(UserError, match="missing cross-section file"):
        EmissionModel.from_cache(settings, model.planet, ["CH4"], tmp_path)


def test_float32_agrees_with_float64(model: EmissionModel) -> None:
    m32 = make_model("dtype=float32")
    params, vmr = sample_parameters(model.settings, model.planet, 4, model.molecules, torch.Generator().manual_seed(11))
    depth64 = model(params, vmr)
    params32 = TemperatureParameters(**{k: v.float() if v.is_floating_point() else v for k, v in vars(params).items()})
    depth32 = m32(params32, vmr.float())
    assert float(((depth32.double() - depth64).abs() / depth64).max()) < 1e-4
