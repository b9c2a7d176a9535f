"""Observing a clean spectrum (robert.spectra.observation, robert.spectra.noise): segment means and their errors,
noise per segment, the SNR convention, the coverage-pattern families, the network's input channels, error shapes.

Delta chi^2 against a hand computation is tests/test_detection.py's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from astropy import units as u
from astropy.modeling.models import BlackBody

from helpers.config import ROOT, compose_config
from robert.errors import UserError
from robert.physics.binning import output_grid_um
from robert.spectra.coverage import coverage_presets
from robert.spectra.noise import NoiseShapes
from robert.spectra.observation import (
    ObservationPrior,
    Observer,
    PatternPrior,
    build_pattern_bank,
    cell_sigma_for,
    detrended_deviation,
    network_inputs,
    observe,
    preset_segments,
    sample_pattern,
)
from robert.spectra.resample import grid_cells_um

GRID_UM, _ = output_grid_um(1.0, 20.0, 901)  # the simulator's 901-cell model grid


@pytest.fixture(scope="module")
def presets():
    return coverage_presets(ROOT / "conf", GRID_UM)


@pytest.fixture(scope="module")
def any_prior() -> PatternPrior:
    """The realistic training prior's coverage patterns (conf/observation/any.yaml)."""
    return ObservationPrior.from_config(compose_config("train", ["observation=any"])["observation"]).coverage


@pytest.fixture(scope="module")
def bank(any_prior, presets):
    return build_pattern_bank(PatternPrior(**{**vars(any_prior), "n_patterns": 1500}), presets, GRID_UM, seed=11)


def segment_cells(pattern: np.ndarray) -> list[np.ndarray]:
    """The cells of each segment of a (W,) pattern, by segment id."""
    return [np.flatnonzero(pattern == s) for s in range(int(pattern.max()) + 1)]


# --- one observation ------------------------------------------------------------------------------------------


def test_a_segment_measures_the_mean_of_its_cells_with_the_error_of_a_mean():
    rng = np.random.default_rng(0)
    depth = torch.as_tensor(rng.uniform(1e-3, 2e-3, (3, 12)))
    cell_sigma = torch.as_tensor(rng.uniform(1e-5, 5e-5, (3, 12)))
    segments = torch.tensor([list(range(12)),                            # native cells
                             [0] * 4 + [1] * 4 + [2] * 4,                # three 4-cell bins
                             [-1, -1, 0, 0, 0, 1, -1, 2, 2, -1, 3, 3]])  # bins with gaps
    clean = observe(depth, segments, None, None)
    noisy = observe(depth, segments, cell_sigma, torch.Generator().manual_seed(1))
    for b in range(3):
        for cells in segment_cells(segments[b].numpy()):
            n = len(cells)
            # every cell of a segment shows the segment's mean (noiseless) and one shared noisy value
            np.testing.assert_allclose(clean.values[b, cells], depth[b, cells].mean(), rtol=1e-12)
            assert len(set(noisy.values[b, cells].tolist())) == 1
            # sigma_seg = sqrt(sum sigma^2) / n; the network sees the cell-equivalent sigma_seg * sqrt(n)
            sigma_seg = math.sqrt(float((cell_sigma[b, cells] ** 2).sum())) / n
            np.testing.assert_allclose(noisy.sigma[b, cells], sigma_seg * math.sqrt(n), rtol=1e-12)
            # so a flat signal s summed over the cells has the segment's own significance (s / sigma_seg)^2
            assert float(((1e-4 / noisy.sigma[b, cells]) ** 2).sum()) == pytest.approx((1e-4 / sigma_seg) ** 2)
    unobserved = segments < 0
    assert torch.equal(noisy.mask, ~unobserved) and torch.all(noisy.values[unobserved] == 0)
    assert torch.all(torch.isinf(noisy.sigma[unobserved]))
    assert torch.all(clean.sigma[~unobserved] == 0)  # noiseless: zero error


def test_noise_is_one_gaussian_draw_per_segment_with_the_segments_sigma():
    n_rows, n_cells, size = 20000, 12, 4
    depth = torch.full((n_rows, n_cells), 1e-3, dtype=torch.float64)
    cell_sigma = torch.linspace(1e-5, 4e-5, n_cells, dtype=torch.float64).expand(n_rows, n_cells)
    segments = (torch.arange(n_cells) // size).expand(n_rows, n_cells)
    observation = observe(depth, segments, cell_sigma, torch.Generator().manual_seed(2))
    first_cells = observation.values[:, ::size]  # one value per segment
    sigma_seg = (cell_sigma[0] ** 2).reshape(-1, size).sum(1).sqrt() / size
    pulls = ((first_cells - 1e-3) / sigma_seg).numpy()
    # N(0, 1) for every segment (20000 draws: 1 % on the mean and the spread), independent between segments
    np.testing.assert_allclose(pulls.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(pulls.std(0), 1.0, atol=0.03)
    assert np.abs(np.corrcoef(pulls.T) - np.eye(3)).max() < 0.03
    again = observe(depth, segments, cell_sigma, torch.Generator().manual_seed(2))
    assert torch.equal(again.values, observation.values)  # the same generator: the same draws


def test_the_median_per_cell_sigma_over_the_observed_cells_is_mean_depth_over_snr():
    rng = np.random.default_rng(3)
    n_cells = 101
    depth = torch.as_tensor(rng.uniform(1e-3, 3e-3, (4, n_cells)))
    mask = torch.ones(4, n_cells, dtype=torch.bool)
    mask[1, :50] = False          # 51 observed cells
    mask[2, ::2] = False          # 50 observed cells (even: torch's median is the lower middle value)
    mask[3, 20:81] = False        # 40 cells, in two pieces
    shape = torch.as_tensor(10 ** rng.uniform(-1, 1, (4, n_cells)))
    snr = torch.tensor([5.0, 20.0, 50.0, 7.0], dtype=torch.float64)
    sigma = cell_sigma_for(depth, mask, snr, shape)
    for b in range(4):
        observed = mask[b].numpy()
        mean_depth = depth[b].numpy()[observed].mean()
        ordered = np.sort(sigma[b].numpy()[observed])
        lower_median = ordered[(len(ordered) - 1) // 2]
        assert lower_median == pytest.approx(mean_depth / float(snr[b]), rel=1e-12)
        np.testing.assert_allclose(sigma[b] / shape[b], sigma[b, 0] / shape[b, 0], rtol=1e-12)  # the shape kept


def test_the_observers_snr_is_log_uniform_in_its_range_per_spectrum():
    n_rows, n_cells = 4000, 31
    depth = torch.as_tensor(np.random.default_rng(4).uniform(1e-3, 2e-3, (n_rows, n_cells)))
    prior = ObservationPrior((3.0, 100.0), NoiseShapes({"white": 1.0, "smooth": 1.0}), PatternPrior.full_only())
    observer = Observer(prior, np.geomspace(1, 20, n_cells), {}, seed=0)
    observation = observer(depth, torch.Generator().manual_seed(5))
    # full coverage: one cell per segment, so the cell-equivalent sigma is the per-cell sigma (31 cells: odd)
    snr = depth.mean(1) / observation.sigma.median(1).values
    log_snr = np.log(snr.numpy())
    assert log_snr.min() >= math.log(3.0) - 1e-9 and log_snr.max() <= math.log(100.0) + 1e-9
    quartiles = np.quantile(log_snr, [0.25, 0.5, 0.75])
    expected = math.log(3.0) + np.array([0.25, 0.5, 0.75]) * (math.log(100.0) - math.log(3.0))
    np.testing.assert_allclose(quartiles, expected, atol=0.06)  # uniform in log SNR
    fixed = Observer(ObservationPrior.white(20.0), np.geomspace(1, 20, n_cells), {}, seed=0)
    sigma = fixed(depth, torch.Generator().manual_seed(6)).sigma
    torch.testing.assert_close(sigma, (depth.mean(1, keepdim=True) / 20.0).expand_as(sigma))  # one sigma per row


def test_an_observer_repeats_itself_for_the_same_seeds():
    depth = torch.as_tensor(np.random.default_rng(7).uniform(1e-3, 2e-3, (64, len(GRID_UM))), dtype=torch.float32)
    prior = ObservationPrior.from_config(compose_config("train", ["observation=any",
                                                                  "observation.coverage.n_patterns=32"])["observation"])
    presets = coverage_presets(ROOT / "conf", GRID_UM)
    first = Observer(prior, GRID_UM, presets, seed=9)
    second = Observer(prior, GRID_UM, presets, seed=9)
    assert torch.equal(first.bank.segments, second.bank.segments) and first.bank.families == second.bank.families
    a, b = (o(depth, torch.Generator().manual_seed(1)) for o in (first, second))
    assert torch.equal(a.values, b.values) and torch.equal(a.mask, b.mask) and torch.equal(a.sigma, b.sigma)
    c = first(depth, torch.Generator().manual_seed(2))
    assert not torch.equal(a.values, c.values)
    other = Observer(prior, GRID_UM, presets, seed=10)
    assert not torch.equal(other.bank.segments, first.bank.segments)


# --- coverage patterns ----------------------------------------------------------------------------------------


def test_a_preset_observes_exactly_the_cells_whose_centres_lie_in_its_bins(presets):
    low, high = grid_cells_um(GRID_UM)
    for name in ("irac", "wfc3", "nirspec_g395h", "full"):
        coverage, pattern = presets[name], preset_segments(presets[name], GRID_UM)
        inside = np.zeros(len(GRID_UM), dtype=int) - 1
        for j, (a, b) in enumerate(zip(coverage.bin_low_um, coverage.bin_high_um, strict=True)):
            inside[(a <= GRID_UM) & (b >= GRID_UM)] = j
        np.testing.assert_array_equal(pattern >= 0, inside >= 0, err_msg=name)
        # one segment per bin that holds a cell centre, in wavelength order
        assert pattern.max() + 1 == len(np.unique(inside[inside >= 0])), name
    irac = preset_segments(presets["irac"], GRID_UM)
    assert irac.max() + 1 == 4 and all(GRID_UM[c].min() >= 3.2 and GRID_UM[c].max() <= 9.0
                                       for c in segment_cells(irac))
    assert np.all(preset_segments(presets["full"], GRID_UM) == np.arange(len(GRID_UM)))
    assert low[0] < GRID_UM[0] and high[-1] > GRID_UM[-1]


def test_every_family_keeps_min_cells_and_measures_whole_contiguous_bins(bank, any_prior, presets):
    patterns, families = bank.segments.numpy(), np.array(bank.families)
    assert set(families) == set(any_prior.weights) and patterns.shape == (1500, len(GRID_UM))
    preset_bins = {tuple(cells) for name in any_prior.presets
                   for cells in segment_cells(preset_segments(presets[name], GRID_UM))}
    preset_patterns = [preset_segments(presets[name], GRID_UM) for name in any_prior.presets]
    for pattern, family in zip(patterns, families, strict=True):
        observed = np.flatnonzero(pattern >= 0)
        assert len(observed) >= any_prior.min_cells, family
        # ids 0..S-1 in wavelength order: a segment id never reaches past the row (the scatter slots)
        ids = pattern[observed]
        assert ids[0] == 0 and np.all(np.diff(ids) >= 0) and ids.max() < len(GRID_UM)
        cells = segment_cells(pattern)
        assert all(c[-1] - c[0] + 1 == len(c) for c in cells), family  # a bin is contiguous in wavelength
        if family == "full":
            assert np.array_equal(pattern, np.arange(len(GRID_UM)))
        elif family == "preset":
            assert any(np.array_equal(pattern, p) for p in preset_patterns)
        elif family == "subrange":
            assert len(cells) == len(observed) and observed[-1] - observed[0] + 1 == len(observed)
        elif family == "binned":
            sizes = [len(c) for c in cells]
            low, high = any_prior.bin_cells
            assert observed[-1] - observed[0] + 1 == len(observed)
            assert low <= sizes[0] <= high and len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]
        else:  # union, gapped: single cells, or an instrument's bin whole
            assert all(len(c) == 1 or tuple(c) in preset_bins for c in cells), family


def test_instrument_groups_follow_the_presets_of_a_union(bank, any_prior, presets):
    """A union's cells carry the group of the preset they came from, in wavelength order; other families are one
    instrument. The groups are what the offset prior shifts against each other."""
    patterns, groups, families = bank.segments.numpy(), bank.groups.numpy(), np.array(bank.families)
    assert np.array_equal(groups >= 0, patterns >= 0)
    for family in ("full", "preset", "subrange", "binned"):
        assert np.all(groups[(families == family)[:, None] & (patterns >= 0)] == 0), family
    union = groups[families == "union"]
    # two or three presets; one group where a preset lies wholly inside an earlier one (the first keeps cells)
    assert (union.max(1) <= 2).all() and (union.max(1) >= 1).mean() > 0.5
    preset_cells = [preset_segments(presets[name], GRID_UM) >= 0 for name in any_prior.presets]
    for pattern, group in zip(patterns[families == "union"], union, strict=True):
        # each group lies inside one preset's coverage, and a segment never spans two groups
        for g in range(group.max() + 1):
            assert any(np.all(cells[group == g]) for cells in preset_cells)
        for s in np.unique(pattern[pattern >= 0]):
            assert len(np.unique(group[pattern == s])) == 1


def test_a_gap_removes_a_broad_band_whole():
    """Spitzer IRAC's four bands as the only preset: a gap through a band takes the band, not part of it."""
    presets = coverage_presets(ROOT / "conf", GRID_UM)
    irac = preset_segments(presets["irac"], GRID_UM)
    bands = {tuple(c) for c in segment_cells(irac)}
    prior = PatternPrior({"gapped": 1.0}, 1, 30, (2, 8), 3, ("irac",))
    rng = np.random.default_rng(12)
    n_cut = 0
    for _ in range(300):
        pattern = sample_pattern("gapped", prior, [irac], len(GRID_UM), rng)
        cells = [np.flatnonzero(pattern == s) for s in np.unique(pattern[pattern >= 0])]
        assert all(len(c) == 1 or tuple(c) in bands for c in cells)
        n_cut += sum(len(c) > 1 for c in cells) < 4 and (pattern >= 0).sum() < (irac >= 0).sum()
    assert n_cut > 0  # some gaps did fall on the bands


def test_the_bank_is_the_same_for_the_same_seed(any_prior, presets, bank):
    prior = PatternPrior(**{**vars(any_prior), "n_patterns": 1500})
    again = build_pattern_bank(prior, presets, GRID_UM, seed=11)
    assert torch.equal(again.segments, bank.segments) and again.families == bank.families
    assert not torch.equal(build_pattern_bank(prior, presets, GRID_UM, seed=12).segments, bank.segments)
    with pytest.raises(UserError, match="observation.coverage.presets names nosuch"):
        build_pattern_bank(PatternPrior(**{**vars(prior), "presets": ("nosuch",)}), presets, GRID_UM, seed=0)


@pytest.mark.parametrize(("section", "message"), [
    ({"weights": {"full": 1, "everything": 1}}, r"observation\.coverage\.weights"),
    ({"weights": {"full": 1}, "min_cells": 0}, r"observation\.coverage\.min_cells must be a positive integer"),
    ({"weights": {"full": 1}, "bin_cells": [8, 2]}, r"observation\.coverage\.bin_cells"),
    ({"weights": {"full": 1}, "presets": "wfc3"}, r"observation\.coverage\.presets must be a list"),
])
def test_bad_coverage_settings_are_one_line_errors(section, message):
    with pytest.raises(UserError, match=message):
        PatternPrior.from_config(section)


# --- what the network sees ------------------------------------------------------------------------------------


def test_network_inputs_are_in_unit_range_with_unobserved_cells_at_error_1_and_depth_0(bank):
    n_rows = 256
    depth = torch.as_tensor(np.random.default_rng(13).uniform(1e-3, 2e-3, (n_rows, len(GRID_UM))),
                            dtype=torch.float32)
    prior = ObservationPrior((3.0, 100.0), NoiseShapes({"white": 1, "smooth": 1, "photon": 1}),
                             PatternPrior.full_only())
    observation = Observer(prior, GRID_UM, {}, seed=0, bank=bank)(depth, torch.Generator().manual_seed(14))
    x = network_inputs(observation, ["depth", "error", "mask"])
    assert x.shape == (n_rows, 3 * len(GRID_UM)) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    depth_channel, error, mask = x.view(n_rows, 3, -1).unbind(1)
    unobserved = ~observation.mask
    assert unobserved.any() and torch.all(depth_channel[unobserved] == 0) and torch.all(error[unobserved] == 1)
    assert torch.equal(mask, observation.mask.float())
    # the depth channel spans [0, 1] over each row's observed cells; larger errors read larger
    observed_depth = torch.where(observation.mask, depth_channel, torch.nan)
    torch.testing.assert_close(observed_depth.nan_to_num(2).amin(1), torch.zeros(n_rows))
    torch.testing.assert_close(observed_depth.nan_to_num(-1).amax(1), torch.ones(n_rows))
    row = int(torch.argmax(observation.mask.sum(1)))
    cells = observation.mask[row]
    order = torch.argsort(observation.sigma[row, cells])
    assert torch.all(torch.diff(error[row, cells][order]) >= 0)
    # the channels come in the order asked for; a noiseless observation has zero error
    assert torch.equal(network_inputs(observation, ["depth"]), depth_channel)
    clean = observe(depth[:2], torch.arange(len(GRID_UM)).expand(2, -1), None, None)
    assert torch.all(network_inputs(clean, ["error"]) == 0)
    with pytest.raises(UserError, match="unknown input channel 'flux'"):
        network_inputs(observation, ["depth", "flux"])


def test_detrended_channel_ignores_a_quadratic_continuum_and_shows_a_band_in_sigma(bank):
    """Adding any quadratic in log wavelength (the grid is log-uniform) to the observed values leaves the channel as it
    was, over any coverage; scaling values and errors together too; a band of 5 sigma per cell stands out at its own
    size against the noise however steep the continuum under it (~50 sigma); an unobserved cell reads 0.5."""
    n_rows, n_cells = 64, len(GRID_UM)
    rng = np.random.default_rng(21)
    log_um = torch.as_tensor(np.log(GRID_UM))
    band = torch.as_tensor(np.exp(-0.5 * ((GRID_UM - 6.3) / 0.4) ** 2))  # an absorption band at 6.3 um
    steep = 5e-3 * (log_um / log_um.max()) ** 2  # a continuum rising by ~100 sigma across the grid
    depth = (steep - 5e-4 * band).expand(n_rows, -1).float()
    prior = ObservationPrior((3.0, 100.0), NoiseShapes({"white": 1, "smooth": 1}), PatternPrior.full_only())
    observation = Observer(prior, GRID_UM, {}, seed=0, bank=bank)(depth, torch.Generator().manual_seed(22))
    values, observed, sigma = observation.values.double(), observation.mask.double(), observation.sigma.double()
    z = detrended_deviation(values, observed, sigma)
    coefficients = torch.as_tensor(rng.normal(0, 1e-3, (n_rows, 3)))
    shifted = values + (coefficients[:, :1] + coefficients[:, 1:2] * log_um + coefficients[:, 2:] * log_um ** 2
                        ) * observed
    torch.testing.assert_close(detrended_deviation(shifted, observed, sigma), z, atol=1e-4, rtol=0.0)
    torch.testing.assert_close(detrended_deviation(7.0 * values, observed, 7.0 * sigma), z, atol=1e-9, rtol=1e-9)
    assert torch.all(z[~observation.mask] == 0)
    # on the whole grid at SNR 10: off the band the noise (|z| ~ 1); in the band the feature's own size in sigma
    white = observe(depth[:1], torch.arange(n_cells)[None], torch.full((1, n_cells), 1e-4), torch.Generator()
                    .manual_seed(23))
    z_white = detrended_deviation(white.values.double(), white.mask.double(), white.sigma.double())[0]
    in_band, off_band = band > 0.8, band < 1e-3
    assert 0.7 < float(z_white[off_band].std()) < 1.3
    assert float(z_white[in_band].mean()) == pytest.approx(-5.0 * float(band[in_band].mean()), abs=1.0)
    channel = network_inputs(observation, ["depth", "detrended"]).view(n_rows, 2, -1)[:, 1]
    assert torch.all(channel[~observation.mask] == 0.5) and float(channel.min()) >= 0 and float(channel.max()) <= 1


# --- error-bar shapes -----------------------------------------------------------------------------------------


def test_white_noise_is_flat_and_smooth_noise_spans_its_amplitude_in_dex():
    wavelength = torch.as_tensor(GRID_UM)
    white = NoiseShapes.white_only().sample(wavelength, 8, torch.Generator().manual_seed(0))
    assert torch.all(white == 1)
    smooth = NoiseShapes({"smooth": 1.0}, smooth_amplitude_dex=(1.3, 1.3)).sample(
        wavelength, 200, torch.Generator().manual_seed(1))
    span_dex = torch.log10(smooth.amax(1) / smooth.amin(1))
    torch.testing.assert_close(span_dex, torch.full((200,), 1.3), atol=1e-5, rtol=0)
    ranged = NoiseShapes({"smooth": 1.0}, smooth_amplitude_dex=(0.2, 1.0)).sample(
        wavelength, 2000, torch.Generator().manual_seed(2))
    span_dex = torch.log10(ranged.amax(1) / ranged.amin(1))
    assert float(span_dex.min()) >= 0.2 - 1e-5 and float(span_dex.max()) <= 1.0 + 1e-5
    assert float(span_dex.mean()) == pytest.approx(0.6, abs=0.02)  # uniform in the range
    # smooth: a few modes, not white noise from cell to cell
    assert float(torch.diff(torch.log10(smooth), dim=1).abs().max()) < 0.05


def test_photon_noise_follows_the_stars_photon_count_and_rises_to_long_wavelengths_for_a_cool_star():
    wavelength = torch.as_tensor(GRID_UM)
    cool = NoiseShapes({"photon": 1.0}, star_temperature_K=(3000.0, 3000.0)).sample(
        wavelength, 2, torch.Generator().manual_seed(0))[0].double().numpy()
    # photons per unit ln(lambda) from astropy's Planck function: B_lambda * lambda / (h c / lambda)
    b_lambda = BlackBody(3000 * u.K, scale=1 * u.erg / (u.cm**2 * u.s * u.AA * u.sr))(GRID_UM * u.um).value
    expected = (b_lambda * GRID_UM**2) ** -0.5
    np.testing.assert_allclose(cool / cool[0], expected / expected[0], rtol=1e-5)
    # past the photon-count peak (~1.7 um at 3000 K) sigma rises all the way to 20 um, by > 5x from its minimum
    peak = int(np.argmin(cool))
    assert 1.4 < GRID_UM[peak] < 2.1 and np.all(np.diff(cool[peak:]) > 0) and cool[-1] / cool[peak] > 5


def test_a_row_takes_one_family_by_the_weights():
    wavelength = torch.as_tensor(GRID_UM)
    shapes = NoiseShapes({"white": 1.0, "photon": 3.0}).sample(wavelength, 4000, torch.Generator().manual_seed(3))
    flat = torch.all(shapes == 1, dim=1)
    assert float(flat.float().mean()) == pytest.approx(0.25, abs=0.03)
    assert torch.all(shapes[~flat, -1] > shapes[~flat, len(GRID_UM) // 2])  # photon rows rise to 20 um


def test_observation_presets_and_priors_in_conf_are_valid():
    for name in sorted(p.stem for p in (ROOT / "conf" / "observation").glob("*.yaml")):
        prior = ObservationPrior.from_config(compose_config("train", [f"observation={name}"])["observation"])
        assert prior.snr is not None and prior.snr[0] <= prior.snr[1], name
    white = ObservationPrior.from_config(compose_config("train", ["observation=white"])["observation"])
    assert white.full_coverage_only and white.snr == (10.0, 10.0)  # data.snr of the default data settings
