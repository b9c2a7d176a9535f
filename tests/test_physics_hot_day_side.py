"""Thermal dissociation and H- in the forward model: switched off they change nothing, on they act where hot.

The reference spectra in tests/data/spectra_before_hot_day_side.npz were computed by the code before
these switches existed (commit c9f81de), with

    cd tests && PYTHONPATH=<that checkout>/src python test_physics_hot_day_side.py \
        --write data/spectra_before_hot_day_side.npz

on the tiny opacity cache; the switched-off model must reproduce them to float32 rounding. Not bit for bit: the
layer sum now starts from the Rayleigh term in one fused pass (a different float32 summation order), and
vectorised reductions differ between CPUs; measured worst 7.5e-6 relative, where the physics switched on
changes the spectra by > 1e-3 (the next test).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from helpers.config import ROOT, compose_config
from helpers.hot_day_side import OFF, hot_day_side, spectra, tiny_model

REFERENCE = Path(__file__).resolve().parent / "data" / "spectra_before_hot_day_side.npz"
CASES = [(planet, geometry) for planet in ("gj1214b", "hd209458b", "wasp12b")
         for geometry in ("emission", "transmission")]


def test_switched_off_spectra_are_those_of_before(tiny_cache) -> None:
    reference = np.load(REFERENCE)
    for planet, geometry in CASES:
        now = spectra(tiny_model(tiny_cache, planet, geometry, *OFF))
        np.testing.assert_allclose(now, reference[f"{planet}_{geometry}"], rtol=3e-5, atol=0,
                                   err_msg=f"{planet} {geometry}")


def test_a_cool_planet_gets_no_h_minus_and_a_hot_one_does(tiny_cache) -> None:
    # GJ 1214 b (Teq 600 K) has no free electrons: its H- coefficients are exactly 0 and the spectra unchanged
    cool_on = spectra(tiny_model(tiny_cache, "gj1214b", "emission", "simulate.chemistry.dissociation=false"))
    cool_off = spectra(tiny_model(tiny_cache, "gj1214b", "emission", *OFF))
    np.testing.assert_array_equal(cool_on, cool_off)
    hot_on = spectra(tiny_model(tiny_cache, "wasp12b", "emission", "simulate.chemistry.dissociation=false"))
    hot_off = spectra(tiny_model(tiny_cache, "wasp12b", "emission", *OFF))
    assert np.median(np.abs(hot_on / hot_off - 1)) > 1e-3


def test_h_minus_and_dissociation_mute_the_water_band(tiny_cache) -> None:
    # Parmentier et al. 2018, Arcangeli et al. 2018: on ultra-hot day sides the 1.4 um water band is weakened by
    # H- continuum opacity and by the dissociation of water where the band forms. Measured band contrast
    # |continuum / band - 1|: 0.36 without either, 0.002 with H-, 0.05 with both (the H- bound-free
    # cross-section falls from 1.2 to 1.6 um, so a water-free day side is darker at 1.24 um than at 1.4 um)
    band = {}
    for label, overrides in {"neither": OFF, "h_minus": ("simulate.chemistry.dissociation=false",),
                             "both": ()}.items():
        model = tiny_model(tiny_cache, "wasp12b", "emission", *overrides)
        x = torch.zeros(1, len(model.molecules), dtype=model.settings.dtype)
        x[0, model.molecules.index("H2O")] = 1e-3
        depth = model.depth_from_profiles(hot_day_side(model), x)[0].double().numpy()
        wl = model.wavelength_um
        in_band = depth[(wl > 1.33) & (wl < 1.48)].mean()
        continuum = depth[(wl > 1.20) & (wl < 1.28)].mean()
        band[label] = abs(continuum / in_band - 1.0)  # T falls with height: water makes the band darker
    assert band["neither"] > 0.2
    assert band["h_minus"] < 0.2 * band["neither"] and band["both"] < 0.2 * band["neither"]


def test_dissociation_puffs_up_an_ultra_hot_atmosphere(tiny_cache) -> None:
    # H2 -> 2 H lowers the mean molecular weight where hot (3300 K): a larger scale height, the top level higher
    from robert.physics.atmosphere import hydrostatic_altitudes_m

    top = {}
    for label, overrides in {"off": OFF, "on": ("simulate.continuum.h_minus=false",)}.items():
        model = tiny_model(tiny_cache, "wasp12b", "transmission", *overrides)
        t = torch.full((1, model.settings.n_layers), 3300.0, dtype=torch.float64)
        comp = model.composition(t.to(model.settings.dtype), torch.full((1, 3), 1e-4, dtype=model.settings.dtype))
        top[label] = float(hydrostatic_altitudes_m(model.levels_bar.double(), t, comp.mmw_amu.double(),
                                                   model.planet)[0, 0])
    assert top["on"] > 1.2 * top["off"]


def test_every_planet_from_temperate_to_ultra_hot_simulates(tiny_cache) -> None:
    from robert.physics.planet import available_planets, load_planet

    planets = available_planets()
    teq = sorted(load_planet(p).equilibrium_temperature_K for p in planets)
    assert teq[0] < 450 and teq[-1] > 2600  # the prior spans ~400 K (TOI-270 d) to ~2600 K (WASP-189 b)
    for planet in planets:
        for geometry in ("emission", "transmission"):
            depth = spectra(tiny_model(tiny_cache, planet, geometry), n=4)
            assert np.all(np.isfinite(depth)) and np.all(depth > 0), (planet, geometry)


def write_reference(path: Path) -> None:
    """Compute the reference spectra with whatever code is on PYTHONPATH (see the module docstring)."""
    import tempfile

    from robert.opacity.build import build_cache

    with tempfile.TemporaryDirectory() as cache:
        cfg = compose_config("opacities", ["opacity=tiny", f"opacity.cache_dir={cache}"])
        build_cache(cfg["opacity"], cfg["molecules"], cfg["inputs"], ROOT, log=lambda m: None)
        # the code before the switches ignores these overrides (it has no such settings)
        np.savez_compressed(path, **{f"{planet}_{geometry}": spectra(tiny_model(Path(cache), planet, geometry, *OFF))
                                     for planet, geometry in CASES})


if __name__ == "__main__":
    write_reference(Path(sys.argv[sys.argv.index("--write") + 1]).resolve())
