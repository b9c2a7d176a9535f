"""Line-by-line H2O cross-sections: Voigt normalisation, windows, line selection, band integrals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import voigt_profile

from robert.opacity import line_by_line as lbl
from robert.opacity.grid import wavenumber_grid
from robert.opacity.hitran import read_par

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"  # populated by `make data` before the suite runs
SPEC = yaml.safe_load((ROOT / "conf/molecules/H2O.yaml").read_text())

# DESIGN.md section 4 band regions (cm-1) and their sum S(296 K) in the HITRAN2012 list
BANDS = {"rotation": (50.0, 1000.0), "nu2 6.2um": (1000.0, 2500.0), "2.67um": (2500.0, 4500.0),
         "1.87um": (4500.0, 6000.0), "1.38um": (6000.0, 8000.0)}


@pytest.fixture(scope="module")
def h2o_lines():
    return read_par(DATA_DIR / SPEC["line_list"])


def _band_integral(sigma: np.ndarray, nu: np.ndarray, lo: float, hi: float) -> float:
    inside = (nu >= lo) & (nu < hi)
    return float(np.sum(sigma[inside] * np.gradient(nu)[inside]))


def test_voigt_sampling_is_area_normalised():
    nu = np.linspace(900.0, 1100.0, 400_001)  # 5e-4 cm-1 spacing: resolves the profile
    line = np.array([1000.0])
    for sigma_d, gamma in [(0.01, 0.05), (0.003, 1e-5), (0.05, 0.5)]:
        widths = np.array([sigma_d]), np.array([gamma])
        full = lbl.sample_voigt_lines(nu, line, np.array([1.0]), *widths, 100.0)
        # area of the truncated Voigt: 1 minus the Lorentz wings beyond the cutoff, (2/pi) gamma / cutoff
        assert np.trapezoid(full, nu) == pytest.approx(1.0 - 2 * gamma / (np.pi * 100.0), rel=2e-3)
        cut = lbl.sample_voigt_lines(nu, line, np.array([2.0]), *widths, 25.0)
        assert np.trapezoid(cut, nu) == pytest.approx(2.0 * (1.0 - 2 * gamma / (np.pi * 25.0)), rel=2e-3)
        assert np.all(cut[np.abs(nu - 1000.0) > 25.0] == 0)


def test_lorentz_wing_limit_matches_scipy_voigt():
    nu = np.linspace(990.0, 1010.0, 20_001)
    sigma_d, gamma = np.array([0.004]), np.array([0.02])
    got = lbl.sample_voigt_lines(nu, np.array([1000.0]), np.array([1.0]), sigma_d, gamma, 25.0)
    exact = voigt_profile(nu - 1000.0, sigma_d[0], gamma[0])
    assert np.max(np.abs(got / exact - 1.0)) < 2e-3


def test_line_windows_match_brute_force():
    nu = np.geomspace(1000.0, 1100.0, 300)
    lines = np.array([995.0, 1000.0, 1050.3, 1099.0, 1130.0])
    grid_index, line_index, offset = lbl.line_windows(nu, lines, 2.0)
    pairs = {(int(g), int(i)) for g, i in zip(grid_index, line_index, strict=True)}
    expected = {(g, i) for i in range(lines.size) for g in range(nu.size) if abs(nu[g] - lines[i]) <= 2.0}
    assert pairs == expected
    np.testing.assert_allclose(offset, nu[grid_index] - lines[line_index])


@pytest.mark.parametrize("temperature_K", [200.0, 1000.0, 3000.0])
def test_line_selection_keeps_999_permille_everywhere(h2o_lines, temperature_K):
    from robert.opacity.hitran import isotopologue_partition
    from robert.opacity.line_strength import scale_line_strength

    ratio = np.ones(len(h2o_lines))
    for iso in np.unique(h2o_lines.isotopologue):
        q = isotopologue_partition(DATA_DIR / SPEC["partition_file"], 1, int(iso))
        ratio[h2o_lines.isotopologue == iso] = q(296.0) / q(temperature_K)
    s = scale_line_strength(h2o_lines.strength_296, h2o_lines.lower_energy_cm, h2o_lines.wavenumber_cm,
                            temperature_K, ratio)
    keep = lbl.strong_line_mask(h2o_lines.wavenumber_cm, s, SPEC["strength_fraction_kept"],
                                SPEC["strength_selection_bin_cm"])
    assert s[keep].sum() / s.sum() >= 0.999
    assert keep.sum() < 0.8 * keep.size  # it does drop lines
    bins = np.floor(h2o_lines.wavenumber_cm / SPEC["strength_selection_bin_cm"]).astype(int)
    kept_per_bin = np.bincount(bins, weights=np.where(keep, s, 0.0))
    total_per_bin = np.bincount(bins, weights=s)
    assert np.all(kept_per_bin >= 0.999 * total_per_bin)


@pytest.mark.parametrize("band", list(BANDS))
def test_band_integrals_match_line_list_at_296K_1bar(h2o_lines, band):
    """sum sigma d nu over each band equals the line list's sum S there (10 %).

    Grid spacing ~0.2 cm-1, comparable to the 1-bar Lorentz widths, so that the sampled integral
    converges; the production R = 3000 grid is tested below.
    """
    lo, hi = BANDS[band]
    resolution = max(3000.0, hi / 0.2)
    nu = wavenumber_grid(1e4 / (hi + 30.0), 1e4 / max(lo - 30.0, 20.0), resolution)
    sigma = lbl.cross_section_grid(SPEC, nu, np.array([296.0]), np.array([1.0]), DATA_DIR)
    assert sigma.shape == (1, 1, nu.size) and sigma.dtype == np.float64 and np.all(sigma >= 0)
    in_band = (h2o_lines.wavenumber_cm >= lo) & (h2o_lines.wavenumber_cm < hi)
    ratio = _band_integral(sigma[0, 0], nu, lo, hi) / h2o_lines.strength_296[in_band].sum()
    assert ratio == pytest.approx(1.0, abs=0.10), f"{band}: integral / sum S = {ratio:.3f}"


def test_production_grid_band_integrals_and_peak(h2o_lines):
    """On the default R = 3000 grid: well-sampled bands within 10 %, peak in the strongest band."""
    nu = wavenumber_grid(0.95, 21.0, 3000)
    sigma = lbl.cross_section_grid(SPEC, nu, np.array([296.0]), np.array([1.0]), DATA_DIR)[0, 0]
    sums = {}
    for band in ["nu2 6.2um", "2.67um", "1.87um"]:
        lo, hi = BANDS[band]
        in_band = (h2o_lines.wavenumber_cm >= lo) & (h2o_lines.wavenumber_cm < hi)
        sums[band] = h2o_lines.strength_296[in_band].sum()
        ratio = _band_integral(sigma, nu, lo, hi) / sums[band]
        assert ratio == pytest.approx(1.0, abs=0.10), f"{band}: integral / sum S = {ratio:.3f}"
    # the strongest band on this grid (the rotation band mostly lies below its 476 cm-1 edge) is nu2
    lo, hi = BANDS[max(sums, key=sums.get)]
    assert lo <= nu[np.argmax(sigma)] < hi


# --- exact bin means (bin_mean_cross_section) --------------------------------------------------------

def _strengths_at(lines, temperature_K: float) -> np.ndarray:
    """S(T) (cm/molecule) of every line of the list, each isotopologue with its own TIPS Q(T)."""
    from robert.opacity.hitran import isotopologue_partition
    from robert.opacity.line_strength import scale_line_strength

    ratio = np.ones(len(lines))
    for iso in np.unique(lines.isotopologue):
        q = isotopologue_partition(DATA_DIR / SPEC["partition_file"], 1, int(iso))
        ratio[lines.isotopologue == iso] = q(296.0) / q(temperature_K)
    return scale_line_strength(lines.strength_296, lines.lower_energy_cm, lines.wavenumber_cm, temperature_K,
                               ratio)


@pytest.mark.parametrize(("sigma_d", "gamma"), [(0.01, 1e-4), (0.01, 0.05), (0.02, 1.0)])
def test_profile_cdf_matches_quadrature(sigma_d, gamma):
    from scipy.integrate import quad

    x = np.array([-3.0, -0.3, 0.0, 0.005, 0.1, 0.49, 0.51, 3.0, 20.0])
    got = lbl.profile_cdf(x, sigma_d, gamma)
    exact = [0.5 + np.sign(v) * quad(voigt_profile, 0.0, abs(v), args=(sigma_d, gamma), points=[sigma_d],
                                     limit=500)[0] for v in x]
    # Voigt quadrature inside 50 sigma_D; beyond, the Lorentz CDF (<= 2.5e-6 gamma / sigma_D off)
    np.testing.assert_allclose(got, exact, rtol=0, atol=max(1e-7, 2.5e-6 * gamma / sigma_d))


def test_bin_mean_lines_equals_finely_resolved_integral():
    """Synthetic lines (one on a bin edge, one within a Doppler width of one): the exact bin means
    equal the trapezoid integral of the sampled sigma on a grid resolving the Doppler core."""
    edges = np.array([990.0, 1000.0, 1000.7, 1012.0, 1030.0])
    lines = np.array([995.0, 1000.0, 1000.702, 1011.0, 1020.0])
    strength = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    doppler = np.full(5, 0.004)
    for gamma in (1e-4, 0.03):
        lorentz = np.full(5, gamma)
        means = lbl.bin_mean_lines(edges, lines, strength, doppler, lorentz, 8.0)
        nu = np.arange(960.0, 1060.0, 2e-5)
        sigma = lbl.sample_voigt_lines(nu, lines, strength, doppler, lorentz, 8.0)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (sigma[1:] + sigma[:-1]) * np.diff(nu))])
        fine = np.diff(np.interp(edges, nu, cum)) / np.diff(edges)
        np.testing.assert_allclose(means, fine, rtol=2e-4)


def test_bin_means_integrate_to_sum_of_line_strengths(h2o_lines):
    """sum over bins of (bin mean x width) = sum S(T) of the lines inside (1 %: cutoff, edges)."""
    edges = np.geomspace(1000.0, 2500.0, 13)
    temps, pressures = np.array([500.0, 1500.0]), np.array([0.01, 1.0])
    means = lbl.bin_mean_cross_section(SPEC, edges, temps, pressures, DATA_DIR)
    assert means.shape == (2, 2, 12) and np.all(means > 0)
    inside = (h2o_lines.wavenumber_cm >= edges[0]) & (h2o_lines.wavenumber_cm < edges[-1])
    for it, t_k in enumerate(temps):
        s_sum = _strengths_at(h2o_lines, t_k)[inside].sum()
        for ip in range(pressures.size):
            assert (means[ip, it] * np.diff(edges)).sum() / s_sum == pytest.approx(1.0, abs=0.01)


def test_bin_means_match_mean_of_samples_at_high_pressure():
    """100 bar: lines (gamma ~ 1-5 cm-1) wider than the R = 3000 spacing (~0.3 cm-1), so the mean of
    the samples converges to the exact bin mean (measured: within 0.3 %)."""
    from robert.opacity.reference import bin_average

    nu = wavenumber_grid(4.0, 10.0, 3000)
    edges_um = np.geomspace(4.3, 9.5, 12)
    temps, pressures = np.array([1000.0]), np.array([100.0])
    sampled = bin_average(nu, lbl.cross_section_grid(SPEC, nu, temps, pressures, DATA_DIR), edges_um)
    exact = lbl.bin_mean_cross_section(SPEC, np.sort(1e4 / edges_um), temps, pressures, DATA_DIR)[..., ::-1]
    np.testing.assert_allclose(sampled, exact, rtol=0.03)
