"""TransmissionModel physics on synthetic opacity (R = 300, no compile), clouds, and the transmission dataset."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from helpers.config import tiny_generate_config
from helpers.scripts import run_script
from robert.errors import UserError
from robert.opacity.xsec_hdf5 import CrossSectionTable
from robert.physics import atmosphere
from robert.physics.chemistry import free_chemistry
from robert.physics.clouds import NO_CLOUD_BAR, sample_cloud_top_pressure_bar
from robert.physics.config import load_simulate_config
from robert.physics.model import EmissionModel, ForwardModel, TransmissionModel, forward_model
from robert.physics.planet import G_SI, load_planet
from robert.physics.priors import TemperatureParameters, sample_parameters
from robert.physics.synthetic import grey_cia, log_wavenumber_grid
from robert.physics.transmission import planet_terms, transit_geometry
from robert.simulate.generate import generate_planet
from robert.simulate.shards import list_shards, read_shard

NU = log_wavenumber_grid(0.95, 21.0, 300)
BAND_CM = 2000.0  # 5 um
PLANET = load_planet("hd189733b")  # high gravity: H / Rp ~ 2e-3, so sphericity terms stay small


def table(molecule: str, sigma_cm2: np.ndarray | float, mass_amu: float) -> CrossSectionTable:
    """A cross-section that depends on wavenumber only (not on T or P)."""
    t, p = np.array([100.0, 4000.0]), np.array([1e-8, 1e3])
    xsec = np.broadcast_to(np.asarray(sigma_cm2, dtype=float), (2, 2, NU.size)).copy()
    return CrossSectionTable(molecule, t, p, NU, xsec, mass_amu, "test")


def band(floor_cm2: float = 1e-26, peak_cm2: float = 1e-21) -> np.ndarray:
    return floor_cm2 + peak_cm2 * np.exp(-0.5 * ((NU - BAND_CM) / 150.0) ** 2)


def make_model(tables: list[CrossSectionTable], *overrides: str, planet=PLANET, continuum: bool = False,
               cls: type[ForwardModel] = TransmissionModel) -> ForwardModel:
    """float64 model; without CIA and Rayleigh unless ``continuum`` (only the given tables absorb)."""
    settings = load_simulate_config("transmission", ["dtype=float64", "chunk_size=4", "compile=false", *overrides])
    cias = [grey_cia("H2-H2", 1e-46 if continuum else 0.0), grey_cia("H2-He", 1e-46 if continuum else 0.0)]
    model = cls(settings, planet, tables, cias)
    if not continuum:
        model.opacity.rayleigh.zero_()
    return model


def isothermal(model: ForwardModel, temperature_K: float, n: int = 1) -> torch.Tensor:
    return torch.full((n, model.settings.n_layers + 1), temperature_K, dtype=torch.float64)


def amplitude(depth: torch.Tensor) -> torch.Tensor:
    return depth.max(-1).values - depth.min(-1).values


def test_grey_opacity_gives_a_flat_transit_depth() -> None:
    model = make_model([table("X", 1e-24, 18.0)])
    depth = model.transit_depth_from_profiles(isothermal(model, 1000.0), torch.tensor([[1e-3]], dtype=torch.float64))
    assert float(amplitude(depth)[0] / depth.mean()) < 1e-10
    assert float(depth.min()) > PLANET.radius_ratio**2  # the atmosphere adds to the opaque disc


def brute_force_depth(temperature_K: float, mmw_amu: float, sigma_n_per_bar: float, top_bar: float,
                      bottom_bar: float, planet=PLANET) -> float:
    """(R/Rs)^2 of an isothermal grey atmosphere by direct quadrature, independent of the layer model.

    1/r = 1/Rp - s ln(P_bottom / P) (exact, g ~ 1/r^2); absorption coefficient sigma n = c P; the chord
    optical depth 2 int c P(sqrt(b^2 + l^2)) dl and the area integral on fine grids.
    """
    s = atmosphere.K_B_SI * temperature_K / (mmw_amu * atmosphere.AMU_KG * G_SI * planet.mass_kg)
    r_top = 1.0 / (1.0 / planet.radius_m - s * math.log(bottom_bar / top_bar))
    pressure = lambda r: bottom_bar * np.exp(-(1.0 / planet.radius_m - 1.0 / r) / s)  # noqa: E731
    b = planet.radius_m + (r_top - planet.radius_m) * np.linspace(0.0, 1.0, 2001)
    tau = np.empty_like(b)
    for i, bi in enumerate(b):
        l_max = math.sqrt(max(r_top**2 - bi**2, 0.0))
        l_grid = l_max * np.linspace(0.0, 1.0, 8001) ** 3  # dense near the tangent point
        tau[i] = 2.0 * sigma_n_per_bar * np.trapezoid(pressure(np.sqrt(bi**2 + l_grid**2)), l_grid)
    area = np.trapezoid(-np.expm1(-tau) * 2 * b, b)
    return (planet.radius_m**2 + area) / planet.star.radius_m**2


@pytest.mark.parametrize(("n_layers", "tolerance"), [(50, 0.04), (100, 0.015)])  # measured: 0.026, 0.0083
def test_chord_geometry_agrees_with_direct_quadrature(n_layers: int, tolerance: float) -> None:
    """The layer model converges to the exact answer at second order: the default 50 layers are within 0.04 H."""
    # grey absorber of constant sigma at 1e-3 VMR: sigma n = sigma x P / (k T)
    temperature, vmr, sigma = 1200.0, 1e-3, 1e-24
    model = make_model([table("X", sigma, 18.0)], f"n_layers={n_layers}")
    depth = float(model.transit_depth_from_profiles(isothermal(model, temperature),
                                                    torch.tensor([[vmr]], dtype=torch.float64))[0, 0])
    mmw = float(free_chemistry(torch.tensor([[vmr]]), torch.tensor([18.0]), 0.172).mmw_amu[0])
    # sigma [cm^2] x n [cm^-3] per bar, in m^-1: sigma x P / (k T) x 1e-6 (cm^-3 -> ...) x 1e2 (cm^-1 -> m^-1)
    per_bar = sigma * vmr * 1e5 / (atmosphere.K_B_SI * temperature) * 1e-6 * 1e2
    reference = brute_force_depth(temperature, mmw, per_bar, model.settings.pressure_top_bar,
                                  model.settings.pressure_bottom_bar)
    scale_height = atmosphere.K_B_SI * temperature / (mmw * atmosphere.AMU_KG * PLANET.surface_gravity_m_s2)
    offset = (math.sqrt(depth) - math.sqrt(reference)) * PLANET.star.radius_m / scale_height
    assert abs(offset) < tolerance, f"transit radius off by {offset:.4f} scale heights"


def scale_height_ratios(cases: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """amplitude x mu / T of the transit depth, and of 1/R_eff, for isothermal (T, inert-gas VMR) cases."""
    # an inert heavy gas (no opacity) changes mu without touching the absorber's number density
    model = make_model([table("A", band(), 18.0), table("N", 0.0, 40.0)])
    depth_ratio, inverse_radius_ratio = [], []
    for temperature, inert in cases:
        vmr = torch.tensor([[1e-3, inert]], dtype=torch.float64)
        depth = model.transit_depth_from_profiles(isothermal(model, temperature), vmr)
        mmw = float(free_chemistry(vmr, model.opacity.mass_amu, 0.172).mmw_amu[0])
        depth_ratio.append(float(amplitude(depth)[0]) * mmw / temperature)
        inverse_radius = 1.0 / (depth.sqrt() * PLANET.star.radius_m)
        inverse_radius_ratio.append(float(amplitude(inverse_radius)[0]) * mmw / temperature)
    return depth_ratio, inverse_radius_ratio


def spread(values: list[float]) -> float:
    return max(values) / min(values) - 1


def test_feature_amplitude_follows_the_scale_height() -> None:
    # thin atmosphere (H / Rp <= 1.6e-3 here): the depth's feature amplitude is proportional to T / mu
    depth_ratio, _ = scale_height_ratios([(400.0, 0.0), (800.0, 0.0), (800.0, 0.3), (600.0, 0.1)])
    assert spread(depth_ratio) < 0.05, depth_ratio
    # and it is ln(peak / floor) scale heights of the band's cross-section contrast
    scale_height = atmosphere.K_B_SI * 800.0 / (2.31 * atmosphere.AMU_KG * PLANET.surface_gravity_m_s2)
    expected = 2 * PLANET.radius_m * scale_height * math.log(1e-21 / 1e-26) / PLANET.star.radius_m**2
    assert 0.95 < depth_ratio[1] * 800.0 / 2.31 / expected < 1.1
    # thicker atmospheres add sphericity (g ~ 1/r^2, area ~ r^2), which the exact hydrostatic law
    # 1/r = 1/Rp - (k T / mu m_u G M) ln(P_bottom / P) absorbs: the amplitude of 1/R_eff stays ~ T / mu
    depth_ratio, inverse_radius_ratio = scale_height_ratios([(600.0, 0.0), (1200.0, 0.0), (1200.0, 0.5)])
    assert spread(depth_ratio) > 0.05 and spread(inverse_radius_ratio) < 0.01, inverse_radius_ratio


def test_high_cloud_deck_flattens_features() -> None:
    model = make_model([table("A", band(), 18.0)], continuum=True)
    t = isothermal(model, 1000.0, 4)
    vmr = torch.full((4, 1), 1e-3, dtype=torch.float64)
    decks = torch.tensor([NO_CLOUD_BAR, 50.0, 1e-3, 1e-5], dtype=torch.float64)
    clear, deep, mid, high = model.transit_depth_from_profiles(t, vmr, decks)
    assert float(amplitude(high)) < 0.05 * float(amplitude(clear))  # features gone
    assert float(amplitude(mid)) < 0.7 * float(amplitude(clear))
    # a deck below where the continuum forms changes nothing; a deck never makes the planet smaller
    assert float((deep - clear).abs().max()) < 1e-3 * float(amplitude(clear))
    assert torch.all(mid >= clear - 1e-15) and torch.all(high >= mid - 1e-15)
    # the deck is an opaque disc at the hydrostatic radius of its top pressure
    mmw = free_chemistry(vmr[:1], model.opacity.mass_amu, 0.172).mmw_amu
    inv_r = atmosphere.inverse_radius_at_pressures(torch.tensor([1e-5], dtype=torch.float64), model.levels_bar,
                                                   t[:1, :-1], mmw, PLANET.radius_m, PLANET.mass_kg)
    disc = (1.0 / float(inv_r[0, 0]) / PLANET.star.radius_m) ** 2
    assert disc <= float(high.min()) < disc * (1 + 1e-4)


def test_depth_changes_smoothly_with_the_deck_pressure() -> None:
    # exact deck radius, not whole opaque layers: no layer-sized steps as the deck moves
    model = make_model([table("A", band(), 18.0)], continuum=True)
    decks = torch.logspace(-4, -2, 41, dtype=torch.float64)
    depth = model.transit_depth_from_profiles(isothermal(model, 1000.0, 41), torch.full((41, 1), 1e-3).double(),
                                              decks)
    continuum = depth.min(1).values
    steps = continuum[:-1] - continuum[1:]
    assert torch.all(steps > 0)  # a deeper deck, a smaller planet
    assert float(steps.max() / steps.min()) < 2.0  # even: about one step per 0.05 dex


def test_emission_and_transmission_share_the_atmosphere() -> None:
    tables = [table("A", band(), 18.0)]
    emission = make_model(tables, continuum=True, cls=EmissionModel)
    transmission = make_model(tables, continuum=True)
    assert isinstance(emission, ForwardModel) and isinstance(transmission, ForwardModel)
    params, vmr = sample_parameters(transmission.settings, PLANET, 3, ["H2O"], torch.Generator().manual_seed(2))
    t = transmission.temperature_profiles(params)
    torch.testing.assert_close(t, emission.temperature_profiles(params), rtol=0, atol=0)
    dtau_e, comp_e = emission.layer_optical_depth(t[:, :-1], vmr)
    dtau_t, comp_t = transmission.layer_optical_depth(t[:, :-1], vmr)
    assert torch.equal(dtau_e, dtau_t) and torch.equal(comp_e.mmw_amu, comp_t.mmw_amu)
    assert torch.equal(emission.levels_bar, transmission.levels_bar)


def test_forward_model_picks_the_geometry(tiny_cache) -> None:
    for name, cls in (("default", EmissionModel), ("transmission", TransmissionModel)):
        settings = load_simulate_config(name, ["compile=false", "n_layers=10", "output.n_bins=20",
                                               "output.wavelength_max_um=5"])
        assert type(forward_model(settings, PLANET, ["H2O"], tiny_cache)) is cls


def test_a_model_moved_to_another_planet_is_that_planets_model(tiny_cache) -> None:
    # generate planet=all builds the opacity table once and moves the model from planet to planet
    hot, temperate = load_planet("wasp18b"), load_planet("gj1214b")
    for name in ("default", "transmission"):
        settings = load_simulate_config(name, ["compile=false", "n_layers=10", "output.n_bins=20",
                                               "output.wavelength_max_um=5"])
        first = forward_model(settings, hot, ["H2O"], tiny_cache)
        moved, built = first.for_planet(temperate), forward_model(settings, temperate, ["H2O"], tiny_cache)
        params, vmr = sample_parameters(settings, temperate, 3, ["H2O"], torch.Generator().manual_seed(2))
        assert moved.opacity is first.opacity and moved.planet is temperate and first.planet is hot
        assert torch.equal(moved(params, vmr), built(params, vmr))
        assert not torch.equal(moved(params, vmr), first(params, vmr))


def test_one_compiled_geometry_serves_every_planet() -> None:
    # the planet enters the compiled geometry as tensors, not constants: moving between the nine planets of
    # planet=all recompiles nothing (dynamo's limit of 8 graphs per function would send the ninth to eager code)
    torch._dynamo.reset()
    compiled = torch.compile(transit_geometry, dynamic=False)
    levels = torch.as_tensor(atmosphere.pressure_levels_bar(12, 1e-6, 10.0))
    layers = torch.sqrt(levels[:-1] * levels[1:])
    t, mmw, decks = torch.full((3, 12), 900.0), torch.full((3,), 2.3), torch.tensor([math.inf, 1e-2, 1e-4])
    with torch._dynamo.config.patch(error_on_recompile=True):
        for key in ("hd189733b", "gj1214b", "wasp18b"):
            terms = planet_terms(load_planet(key), "cpu")
            for got, expected in zip(compiled(levels, layers, t, mmw, decks, *terms),
                                     transit_geometry(levels, layers, t, mmw, decks, *terms), strict=True):
                torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_batches_chunks_and_precision() -> None:
    model = make_model([table("A", band(), 18.0)], continuum=True)
    params, vmr = sample_parameters(model.settings, PLANET, 7, model.molecules, torch.Generator().manual_seed(5))
    params = TemperatureParameters(**{k: v.double() if v.is_floating_point() else v for k, v in vars(params).items()})
    decks = sample_cloud_top_pressure_bar(model.settings.clouds, 7, torch.Generator().manual_seed(1))
    together = model(params, vmr.double(), decks)
    alone = torch.cat([model(params[i:i + 1], vmr[i:i + 1].double(), decks[i:i + 1]) for i in range(7)])
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=0)
    settings32 = load_simulate_config("transmission", ["dtype=float32", "chunk_size=4", "compile=false"])
    m32 = TransmissionModel(settings32, PLANET, [table("A", band(), 18.0)], [grey_cia("H2-H2"), grey_cia("H2-He")])
    p32 = TemperatureParameters(**{k: v.float() if v.is_floating_point() else v for k, v in vars(params).items()})
    depth32 = m32(p32, vmr.float(), decks)
    # float32 keeps the features (~1e-4 of the depth) to 1e-3 of their size
    assert float(((depth32.double() - together).abs().max(1).values / amplitude(together)).max()) < 1e-3


def test_cloud_prior_draws() -> None:
    prior = load_simulate_config("transmission", ["clouds.cloudy_fraction=0.5",
                                                  "clouds.log10_top_pressure_bar=[-3,-1]"]).clouds
    decks = sample_cloud_top_pressure_bar(prior, 4000, torch.Generator().manual_seed(0))
    cloudy = torch.isfinite(decks)
    assert 0.45 < float(cloudy.double().mean()) < 0.55
    assert float(decks[cloudy].min()) >= 1e-3 and float(decks[cloudy].max()) <= 1e-1
    assert abs(float(torch.log10(decks[cloudy]).mean()) + 2) < 0.05  # log-uniform
    assert torch.equal(decks, sample_cloud_top_pressure_bar(prior, 4000, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize(("name", "override", "message"), [
    ("transmission", "geometry=reflection", "simulate.geometry is 'reflection'; expected one of: emission"),
    ("transmission", "clouds.log10_top_pressure_bar=[0,-3]", "simulate.clouds.log10_top_pressure_bar is inverted"),
    ("transmission", "clouds.log10_top_pressure_bar=[-9,0]", "must lie inside the model atmosphere"),
    ("transmission", "clouds.cloudy_fraction=1.5", "simulate.clouds.cloudy_fraction must be in"),
    ("transmission", "geometry=emission", "grey cloud decks are modelled in transmission only"),
    ("transmission", "clouds.log10_top_pressure_bar=low", "simulate.clouds.log10_top_pressure_bar must be a"),
])
def test_bad_transmission_config_names_the_field(name: str, override: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_simulate_config(name, [override])


def test_bad_call_arguments() -> None:
    model = make_model([table("A", band(), 18.0)])
    t, vmr = isothermal(model, 1000.0, 2), torch.full((2, 1), 1e-3, dtype=torch.float64)
    with pytest.raises(ValueError, match="cloud_top_bar must be"):
        model.transit_depth_from_profiles(t, vmr, torch.ones(3, dtype=torch.float64))
    emission = make_model([table("A", band(), 18.0)], "geometry=emission", "clouds.cloudy_fraction=0",
                          cls=EmissionModel)
    with pytest.raises(ValueError, match="transmission only"):
        emission.depth_from_profiles(t, vmr, torch.ones(2, dtype=torch.float64))


def test_transmission_dataset_lives_beside_the_emission_one(tiny_cache, tmp_path, root) -> None:
    out = tmp_path / "datasets"
    cfg = tiny_generate_config(tiny_cache, out, "simulate=transmission", "dataset.spectra_per_planet=6",
                               "dataset.shard_size=6", "simulate.clouds.cloudy_fraction=0.5",
                               "simulate.output.n_bins=300")
    planet_dir = generate_planet(cfg, "gj1214b", root, log=lambda m: None, progress=False)
    assert planet_dir == tmp_path / "datasets-transmission" / "single" / "gj1214b" and not out.exists()
    shard = read_shard(list_shards(planet_dir)[0])
    assert shard.geometry == "transmission"
    decks = shard.params["cloud_top_pressure_bar"]
    assert np.isinf(decks).any() and np.isfinite(decks).any()
    planet = load_planet("gj1214b")
    assert np.all(shard.eclipse_depth > planet.radius_ratio**2 * 0.999)  # float32: the opaque disc and more
    with h5py.File(list_shards(planet_dir)[0]) as f:
        assert "transit_depth" in f and "eclipse_depth" not in f
    before = list_shards(planet_dir)[0].read_bytes()
    generate_planet(cfg, "gj1214b", root, log=lambda m: None, progress=False)  # same seed: nothing rewritten
    assert list_shards(planet_dir)[0].read_bytes() == before


@pytest.mark.parametrize(("override", "expected"), [
    ("simulate.geometry=reflection", "error: simulate.geometry is 'reflection'; expected one of: emission"),
    ("simulate.clouds.log10_top_pressure_bar=[0,-3]", "error: simulate.clouds.log10_top_pressure_bar is inverted"),
])
def test_bad_geometry_at_the_command_line_is_one_line(override: str, expected: str, tmp_path) -> None:
    proc = run_script("generate.py", "planet=gj1214b", "simulate=transmission", "dataset=tiny",
                      f"dataset.out_dir={tmp_path / 'datasets'}", override)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert not any(tmp_path.iterdir())  # nothing written, neither datasets/ nor datasets-transmission/
