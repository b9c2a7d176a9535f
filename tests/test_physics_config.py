"""Planet files and simulate-config validation: user mistakes give one-line UserErrors naming the field."""

from __future__ import annotations

import math
import re

import pytest

from robert.errors import UserError
from robert.physics.config import CONF_DIR, load_simulate_config
from robert.physics.planet import (
    available_planets,
    load_planet,
    planet_from_config,
    zero_albedo_equilibrium_temperature_K,
)


def test_all_planets_load_and_teq_is_consistent() -> None:
    names = available_planets()
    assert {"gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b"} <= set(names)
    for name in names:
        planet = load_planet(name)
        assert 0.03 < planet.radius_ratio < 0.3
        teq = zero_albedo_equilibrium_temperature_K(planet)
        assert abs(teq / planet.equilibrium_temperature_K - 1) < 0.06, name


def test_units_conversion() -> None:
    jupiter = load_planet("hd189733b")
    assert 7.8e7 < jupiter.radius_m < 8.3e7 and 2.0e27 < jupiter.mass_kg < 2.3e27
    neptune = load_planet("gj1214b")
    assert 1.7e7 < neptune.radius_m < 1.8e7 and 4.7e25 < neptune.mass_kg < 5.0e25


def test_unknown_planet_names_the_choices() -> None:
    with pytest.raises(UserError, match="unknown planet 'hd999b'.*hd209458b"):
        load_planet("hd999b")


def test_planet_needs_one_radius_unit() -> None:
    cfg = {"radius_rjup": 1.0, "radius_rearth": 11.0, "mass_mjup": 1.0, "equilibrium_temperature_K": 1000,
           "semi_major_axis_AU": 0.05, "star": {"radius_rsun": 1.0, "temperature_K": 5800}}
    with pytest.raises(UserError, match="exactly one of radius_rjup or radius_rearth"):
        planet_from_config(cfg)
    del cfg["radius_rearth"]
    cfg["star"]["temperature_K"] = -5
    with pytest.raises(UserError, match=r"planet.star.temperature_K must be a positive number"):
        planet_from_config(cfg)


@pytest.mark.parametrize(("override", "field"), [
    ("n_layers=0", "simulate.n_layers"),
    ("n_angles=-1", "simulate.n_angles"),
    ("output.n_bins=0", "simulate.output.n_bins"),
    ("chunk_size=0", "simulate.chunk_size"),
    ("pressure_top_bar=1e3", "simulate.pressure_top_bar"),
    ("mixing_ratio.log10_range=[-2,-8]", "simulate.mixing_ratio.log10_range is inverted"),
    ("mixing_ratio.log10_range=[]", "simulate.mixing_ratio.log10_range must be a"),
    ("temperature.log10_gamma=[1,-1]", "simulate.temperature.log10_gamma is inverted"),
    ("temperature.internal_temperature_K=[-10,100]", "simulate.temperature.internal_temperature_K must be positive"),
    ("temperature.isothermal_fraction=1.5", "simulate.temperature.isothermal_fraction"),
    ("output.wavelength_min_um=30", "simulate.output.wavelength_min_um"),
    ("output.binning=frequency", "simulate.output.binning"),
    ("dtype=float16", "simulate.dtype"),
    ("device=gpu0", "simulate.device"),
    ("chemistry.dissociation=maybe", "simulate.chemistry.dissociation must be true or false, got 'maybe'"),
    ("continuum.h_minus=1", "simulate.continuum.h_minus must be true or false, got 1"),
    ("continuum.hminus=false", "simulate.continuum has unknown key(s) hminus; expected: h_minus"),
    ("mixing_ratio.log10_max.VO=-9", "simulate.mixing_ratio.log10_max.VO must be a number above the range's floor"),
    ("mixing_ratio.log10_max.TiO=low", "simulate.mixing_ratio.log10_max.TiO must be a number"),
    ("mixing_ratio.log10_max.Tio=-6", "unknown molecule (simulate.mixing_ratio.log10_max, conf/molecules/) 'Tio'; "
     "expected one of: C2H2, CH4, CO, CO2, H2O, HCN, NH3, SiO, TiO, VO"),
])
def test_bad_config_names_the_field(override: str, field: str) -> None:
    with pytest.raises(UserError, match=re.escape(field)):
        load_simulate_config(overrides=[override])


def test_default_config_is_valid() -> None:
    settings = load_simulate_config()
    # the paper's output grid: 901 points, 1-20 um
    assert (settings.n_bins, settings.wavelength_min_um, settings.wavelength_max_um) == (901, 1.0, 20.0)
    with pytest.raises(UserError, match="unknown simulate config"):
        load_simulate_config("nope")
    # the physics of ultra-hot day sides is on by default ...
    assert settings.dissociation and settings.h_minus


def test_absent_physics_switches_mean_off_and_a_bad_section_is_one_line() -> None:
    from omegaconf import OmegaConf

    from robert.physics.config import SimulateSettings, _compose_simulate_file

    cfg = OmegaConf.to_container(_compose_simulate_file("default", CONF_DIR))
    del cfg["chemistry"], cfg["continuum"]  # a config written before they existed: the spectra of before
    settings = SimulateSettings.from_config(cfg)
    assert not settings.dissociation and not settings.h_minus
    cfg["chemistry"] = "on"
    with pytest.raises(UserError, match=r"^simulate\.chemistry must be a mapping"):
        SimulateSettings.from_config(cfg)


def test_capped_gases_are_drawn_below_their_metal_budget_and_the_others_as_before() -> None:
    import torch

    from robert.physics.priors import sample_parameters

    capped, plain = load_simulate_config(), load_simulate_config(overrides=["mixing_ratio.log10_max=null"])
    molecules = ["H2O", "TiO", "VO", "SiO"]
    # the caps are each metal's whole budget in its monoxide at 30x solar (Asplund et al. 2009), to 0.01 dex
    solar = {"TiO": 4.95, "VO": 3.93, "SiO": 7.51}
    for molecule, log_eps in solar.items():
        budget = log_eps - 12 + math.log10(30 * 2 / (1 + capped.he_h2_ratio))
        assert capped.vmr_range_of(molecule) == (-8.0, pytest.approx(budget, abs=0.01))
    assert capped.vmr_range_of("H2O") == plain.vmr_range_of("TiO") == (-8.0, -2.0)
    planet = load_planet("hd209458b")
    _, vmr = sample_parameters(capped, planet, 4000, molecules, torch.Generator().manual_seed(1))
    _, vmr_plain = sample_parameters(plain, planet, 4000, molecules, torch.Generator().manual_seed(1))
    log_vmr = torch.log10(vmr.double())
    for j, molecule in enumerate(molecules):
        low, high = capped.vmr_range_of(molecule)
        assert low - 1e-5 <= log_vmr[:, j].min() < low + 0.05 and high - 0.05 < log_vmr[:, j].max() <= high + 1e-5
    assert torch.equal(vmr[:, 0], vmr_plain[:, 0])  # one uniform number per (spectrum, gas): H2O's draws unchanged
