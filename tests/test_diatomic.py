"""CO line generator against the real HITEMP 2-0 sample, and its cross-sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robert.errors import UserError
from robert.opacity import diatomic
from robert.opacity.grid import wavenumber_grid
from robert.opacity.hitran import read_par
from robert.opacity.line_strength import scale_line_strength

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"  # populated by `make data` before the suite runs
SPEC = yaml.safe_load((ROOT / "conf/molecules/CO.yaml").read_text())


@pytest.fixture(scope="module")
def sample():
    return read_par(DATA_DIR / "CO_hitemp_2-0_sample.par")


@pytest.fixture(scope="module")
def q():
    return diatomic.partition_function(SPEC, DATA_DIR)


@pytest.fixture(scope="module")
def lines(q):
    return diatomic.generate_lines(SPEC, float(q(296.0)))


def test_fundamental_band_origin(lines):
    # 12C16O 1-0 band origin 2143.27 cm-1 (e.g. HITRAN); R(0) = origin + 2 B ~ 2147.08
    r0 = (lines.delta_v == 1) & (lines.lower_v == 0) & (lines.m == 1)
    assert lines.wavenumber_cm[r0][0] == pytest.approx(2147.08, abs=0.05)


def test_2_0_band_strength_matches_hitemp_sample(lines, q, sample):
    s = diatomic.line_strengths(lines, 296.0, float(q(296.0)))
    in_window = (lines.wavenumber_cm >= 4100) & (lines.wavenumber_cm <= 4401)
    assert s[in_window].sum() == pytest.approx(sample.strength_296.sum(), rel=0.05)
    assert s[(lines.delta_v == 2) & (lines.lower_v == 0)].sum() == pytest.approx(7.65e-20, rel=0.05)


def test_20_strongest_sample_lines_reproduced(lines, q, sample):
    s = diatomic.line_strengths(lines, 296.0, float(q(296.0)))
    cold = (lines.delta_v == 2) & (lines.lower_v == 0)
    strongest = np.argsort(sample.strength_296)[::-1][:20]
    nu_gen, nu_sample = lines.wavenumber_cm[cold], sample.wavenumber_cm[strongest]
    nearest = np.abs(nu_gen[None, :] - nu_sample[:, None]).argmin(axis=1)
    position_error = nu_gen[nearest] - nu_sample
    assert np.max(np.abs(position_error)) < 0.05  # measured: < 0.003 cm-1
    np.testing.assert_allclose(lines.lower_energy_cm[cold][nearest], sample.lower_energy_cm[strongest],
                               atol=0.05)
    # no Herman-Wallis factor: R lines ~5 % too weak, P lines ~5 % too strong at J ~ 10
    np.testing.assert_allclose(s[cold][nearest], sample.strength_296[strongest], rtol=0.10)


@pytest.mark.parametrize(("temperature_K", "tolerance"), [(1000.0, 0.05), (2000.0, 0.10), (3000.0, 0.20)])
def test_hot_bands_follow_the_sample_at_high_temperature(lines, q, sample, temperature_K, tolerance):
    """The sample holds the 3-1, 4-2 ... hot bands too: scale it to T and compare within its window."""
    s_sample = scale_line_strength(sample.strength_296, sample.lower_energy_cm, sample.wavenumber_cm,
                                   temperature_K, float(q(296.0) / q(temperature_K)))
    s = diatomic.line_strengths(lines, temperature_K, float(q(temperature_K)))
    in_window = (lines.wavenumber_cm >= 4100) & (lines.wavenumber_cm <= 4401)
    # measured 0.98, 0.93, 0.87: the harmonic hot-band scaling is somewhat weak at high v''
    assert s[in_window].sum() / s_sample.sum() == pytest.approx(1.0, abs=tolerance)
    assert s[(lines.delta_v == 2) & (lines.lower_v > 0)].sum() > 0.1 * s[lines.delta_v == 2].sum()


def test_cross_section_grid_fundamental(lines, q):
    nu = wavenumber_grid(4.4, 5.2, 20_000)  # ~0.1 cm-1 spacing: resolves 1-bar lines
    temps, pressures = np.array([296.0, 1500.0]), np.array([1e-3, 1.0])
    sigma = diatomic.cross_section_grid(SPEC, nu, temps, pressures, DATA_DIR)
    assert sigma.shape == (2, 2, nu.size) and sigma.dtype == np.float64 and np.all(sigma >= 0)
    integral = np.sum(sigma[1, 0] * np.gradient(nu))
    fundamental = (lines.delta_v == 1) & (lines.lower_v == 0) & (lines.wavenumber_cm > nu[0] + 25)
    assert integral == pytest.approx(1.0e-17, rel=0.05)  # the spec's 1-0 band strength
    assert fundamental.sum() > 50
    assert 2000 < nu[np.argmax(sigma[1, 0])] < 2250
    # at 1500 K (hot bands, high J) the integral still equals the lines' sum S(T) in the window
    window = (lines.wavenumber_cm > nu[0] + 25) & (lines.wavenumber_cm < nu[-1] - 25)
    s_hot = diatomic.line_strengths(lines, 1500.0, float(q(1500.0)))[window].sum()
    inner = (nu > nu[0] + 25) & (nu < nu[-1] - 25)
    assert np.sum((sigma[1, 1] * np.gradient(nu))[inner]) == pytest.approx(s_hot, rel=0.05)


def test_default_grid_shape_and_bands():
    nu = wavenumber_grid(0.95, 21.0, 300)
    sigma = diatomic.cross_section_grid(SPEC, nu, np.array([1000.0]), np.array([1.0]), DATA_DIR)
    assert sigma.shape == (1, 1, nu.size)
    for lo, hi in [(2000, 2250), (4150, 4360), (6250, 6400)]:  # 1-0, 2-0, 3-0
        assert sigma[0, 0, (nu > lo) & (nu < hi)].max() > 0


def test_bad_bands_entry_is_a_user_error(q):
    with pytest.raises(UserError, match="bands needs delta_v"):
        diatomic.generate_lines({**SPEC, "bands": [{"strength_296": 1e-20}]}, float(q(296.0)))
    with pytest.raises(UserError, match="constants_cm"):
        diatomic.generate_lines({**SPEC, "constants_cm": {"Be": 1.9}}, float(q(296.0)))


def test_bin_means_integrate_to_sum_of_line_strengths(lines, q):
    """sum over bins of (bin mean x width) = sum S(T) of the generated lines inside (1 %)."""
    edges = np.geomspace(1700.0, 2500.0, 9)
    temps, pressures = np.array([500.0, 1500.0]), np.array([0.01, 1.0])
    means = diatomic.bin_mean_cross_section(SPEC, edges, temps, pressures, DATA_DIR)
    assert means.shape == (2, 2, 8) and np.all(means >= 0)
    inside = (lines.wavenumber_cm >= edges[0]) & (lines.wavenumber_cm < edges[-1])
    for it, t_k in enumerate(temps):
        s_sum = diatomic.line_strengths(lines, t_k, float(q(t_k)))[inside].sum()
        for ip in range(pressures.size):
            assert (means[ip, it] * np.diff(edges)).sum() / s_sum == pytest.approx(1.0, abs=0.01)


def test_bin_means_match_mean_of_samples_at_high_pressure():
    """100 bar: Lorentz HWHM ~2.5 cm-1 at 1000 K, wider than the R = 3000 spacing (~0.7 cm-1), so the
    mean of the samples converges to the exact bin mean (measured: within 0.1 %)."""
    from robert.opacity.reference import bin_average

    nu = wavenumber_grid(4.0, 6.0, 3000)
    edges_um = np.geomspace(4.3, 5.5, 12)
    temps, pressures = np.array([1000.0]), np.array([100.0])
    sampled = bin_average(nu, diatomic.cross_section_grid(SPEC, nu, temps, pressures, DATA_DIR), edges_um)
    exact = diatomic.bin_mean_cross_section(SPEC, np.sort(1e4 / edges_um), temps, pressures,
                                            DATA_DIR)[..., ::-1]
    np.testing.assert_allclose(sampled, exact, rtol=0.03)
