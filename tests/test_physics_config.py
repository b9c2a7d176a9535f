"""Planet files and simulate-config validation: user mistakes give one-line UserErrors naming the field."""

from __future__ import annotations

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
