"""Band-model cross-sections: band integrals, peaks, temperature scaling, pressure smoothing, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from robert.errors import UserError
from robert.opacity import band_model as bm
from robert.opacity.grid import wavenumber_grid

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BAND_MODEL_MOLECULES = ("CO2", "CH4", "NH3", "HCN", "C2H2", "SiO")  # TiO, VO: tests/test_electronic_bands.py
NU = wavenumber_grid(0.5, 25.0, 3000)  # wide enough to hold every band's envelope


def spec_of(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "molecules" / f"{name}.yaml"), resolve=True)


def one_band(spec: dict, index: int) -> dict:
    return {**spec, "bands": [spec["bands"][index]]}


@pytest.mark.parametrize("name", BAND_MODEL_MOLECULES)
def test_band_integral_equals_strength_at_296K(name: str) -> None:
    spec = spec_of(name)
    for i, band in enumerate(bm.parse_bands(spec)):
        sigma = bm.cross_section_grid(one_band(spec, i), NU, np.array([296.0]), np.array([1e-3]), DATA)[0, 0]
        assert np.trapezoid(sigma, NU) == pytest.approx(band.strength_296, rel=0.10), (name, i)


@pytest.mark.parametrize("name", BAND_MODEL_MOLECULES)
def test_peak_inside_strongest_band(name: str) -> None:
    spec = spec_of(name)
    nu = wavenumber_grid(1.0, 20.0, 3000)
    bands = [b for b in bm.parse_bands(spec) if 500 <= b.center_cm <= 1e4]
    strongest = max(bands, key=lambda b: b.strength_296)
    sigma = bm.cross_section_grid(spec, nu, np.array([296.0]), np.array([0.1]), DATA)[0, 0]
    half_width = 4 * bm.envelope_scale_cm(strongest, bm.rotational_constant(spec), 296.0)
    assert abs(nu[np.argmax(sigma)] - strongest.center_cm) < half_width


def test_strength_scales_with_temperature_as_configured() -> None:
    spec = {"name": "X", "rotational_constant_cm": 1.0,
            "partition": {"rotor": "linear", "vibrational_modes_cm": [700.0]},
            "bands": [{"center_cm": 2000.0, "strength_296": 1e-18, "lower_energy_cm": 700.0}]}
    temps = np.array([296.0, 1000.0])
    sigma = bm.cross_section_grid(spec, NU, temps, np.array([1e-3]), None)[0]
    integral = np.trapezoid(sigma, NU, axis=-1)
    qv = 1.0 / (1.0 - np.exp(-bm.C2_CM_K * 700.0 / temps))
    expected = (1e-18 * qv[0] / qv * np.exp(-bm.C2_CM_K * 700.0 * (1 / temps - 1 / 296.0))
                * -np.expm1(-bm.C2_CM_K * 2000.0 / temps) / -np.expm1(-bm.C2_CM_K * 2000.0 / 296.0))
    np.testing.assert_allclose(integral, expected, rtol=0.03)
    hot = {**spec, "bands": [{"center_cm": 2000.0, "strength_296": 1e-18, "hot_bands": True}]}
    integral_hot = np.trapezoid(bm.cross_section_grid(hot, NU, temps, np.array([1e-3]), None)[0], NU, axis=-1)
    assert integral_hot[1] == pytest.approx(integral_hot[0] * expected[1] / expected[0] * qv[1] / qv[0]
                                            * np.exp(bm.C2_CM_K * 700.0 * (1 / 1000.0 - 1 / 296.0)), rel=0.03)


def test_pressure_smooths_and_conserves_integral() -> None:
    spec = spec_of("CO2")
    sigma = bm.cross_section_grid(one_band(spec, 1), NU, np.array([500.0]), np.array([1e-3, 1e2]), DATA)[:, 0]
    low, high = np.trapezoid(sigma, NU, axis=-1)
    assert high == pytest.approx(low, rel=0.02)
    assert sigma[1].max() < sigma[0].max()  # smoother: lower peak
    assert np.abs(np.diff(sigma[1])).max() < np.abs(np.diff(sigma[0])).max()


@pytest.mark.parametrize(("band", "field"), [
    ({"center_cm": 1000.0, "strength_296": -1.0}, "strength_296"),
    ({"center_cm": 1000.0, "strength_296": 1e-18, "shape": "PQX"}, "shape"),
    ({"center_cm": 1000.0, "strength_296": 1e-18, "colour": "red"}, "colour"),
    ({"center_cm": "abc", "strength_296": 1e-18}, "center_cm"),
    ({"strength_296": 1e-18}, "center_cm"),
    ({"center_cm": 1000.0, "strength_296": 1e-18, "shape": "PR", "q_fraction": 0.2}, "q_fraction"),
    ({"center_um": 1.0, "oscillator_strength": 0.01, "shape": "gaussian"}, "fwhm_cm"),
    ({"center_cm": 1000.0, "strength_296": 1e-18, "width_factor": 0}, "width_factor"),
])
def test_invalid_band_parameters_name_the_field(band: dict, field: str) -> None:
    spec = {"name": "X", "rotational_constant_cm": 1.0, "partition": {"vibrational_modes_cm": [700.0]},
            "bands": [band]}
    with pytest.raises(UserError, match=field):
        bm.cross_section_grid(spec, NU[:10], np.array([300.0]), np.array([1.0]), None)


def test_electronic_strength_from_oscillator_strength() -> None:
    raw = {"center_um": 1.0, "oscillator_strength": 0.01, "shape": "gaussian", "fwhm_cm": 500}
    band = bm.parse_band("X", 0, raw)
    assert band.strength_296 == pytest.approx(8.853e-15, rel=1e-3)
