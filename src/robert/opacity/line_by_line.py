"""Line-by-line cross-sections sigma(P, T, nu) from a HITRAN line list (``source: line_list``).

Hand-written: no maintained library computes line-by-line cross-sections from a local ``.par``
file onto our log-spaced grid offline without a database or GPU stack (``hapi`` is pure-Python
per line and far too slow for 200k lines x 117 (T, P) points; ``exojax``/``radis`` need JAX or
their own databases). The profile itself is scipy's Voigt (``scipy.special.voigt_profile``).

What is computed, and what is approximated (and why):

* Line strengths are scaled from 296 K with TIPS-2021 Q(T) of *each* isotopologue (HITRAN S
  already contains the isotopic abundance, so every line in the file is kept).
* Doppler width (Gaussian standard deviation) nu/c sqrt(k_B T / m) with the molecule's mass
  from the spec for all isotopologues (a <=5 % error in a width far below the grid spacing).
* Lorentz HWHM gamma_air (P / 1 atm) (296 / T)^n_air. *Approximation*: air broadening stands
  in for H2/He broadening (HITRAN2012 has no H2/He parameters; for H2O the H2 values are within
  a factor ~1.5 of air). Pressure shifts are ignored (air shifts, <= 0.01 cm-1/atm, far below
  the grid spacing except at the highest pressures).
* Line wings cut at ``cutoff_cm`` (25 cm-1) from the centre, no continuum or sub-Lorentzian
  wing shape (standard practice; the far-wing continuum of H2O is not modelled).
* Far from the core (|nu - nu0| > 50 Doppler sigma) the Voigt profile is evaluated as its
  Lorentzian limit: relative error ~ 3 sigma^2 / x^2 < 0.12 %, and it is ~8x cheaper than the
  complex error function. Nearly every grid point is in that regime, because the Doppler
  widths (~1e-3-1e-2 cm-1) are far below the grid spacing (nu / 3000 = 0.16-3.5 cm-1).
* Negligible lines are dropped: within each ``strength_selection_bin_cm`` slice of the
  spectrum, the strongest lines holding ``strength_fraction_kept`` (conf/molecules/H2O.yaml: 99.99 %) of that slice's
  sum S(T) are kept, at each temperature. A per-slice (not global) criterion keeps weak bands:
  a global 99.9 % would drop the whole 1.13 um H2O band (6e-4 of the total strength). Hence at
  least that fraction of sum S is retained at every T, and in every slice.
* Opacity *sampling*: sigma is the profile sum evaluated at the grid wavenumbers (as in TauREx
  and ExoMol cross-section files), not a bin average; narrow lines between grid points are
  seen only through their wings. Integrated over a band the sampling is unbiased.
* Bin means: :func:`bin_mean_cross_section` integrates the same truncated profiles exactly over
  wide bins (a Lorentz CDF, arctan, with a Voigt quadrature where an edge falls within 50 Doppler
  sigmas of a line). That is the right estimator of a bin-mean sigma (e.g. to compare with k-tables
  at R ~ 15): at low pressure the mean of the R = 3000 point samples is a heavy-tailed estimator
  of it, usually far below it (most samples fall between narrow lines), occasionally far above.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import constants
from scipy.special import voigt_profile

from robert.errors import UserError
from robert.opacity.grid import check_axis, check_bin_grid
from robert.opacity.hitran import isotopologue_partition, read_par
from robert.opacity.line_strength import T_REF_K, scale_line_strength

log = logging.getLogger(__name__)

ATM_BAR = 1.01325  # 1 atm in bar: HITRAN widths are per atm
K_B = constants.k_B.cgs.value   # erg/K
AMU_G = constants.u.cgs.value   # g
C_CM_S = constants.c.cgs.value  # cm/s
VOIGT_CORE_DOPPLER_WIDTHS = 50.0  # beyond this many Doppler sigmas the Lorentzian limit is used
_MAX_WINDOW_POINTS = 4_000_000    # (line, grid point) pairs per chunk: bounds memory to ~100 MB


@dataclass(frozen=True)
class LineSet:
    """Lines kept at one temperature: position (cm^-1), S(T) (cm/molecule), air HWHM at 296 K
    (cm^-1/atm) and its temperature exponent."""

    wavenumber_cm: np.ndarray
    strength: np.ndarray
    gamma_296_cm_atm: np.ndarray
    n_temperature: np.ndarray


def spec_value(spec: Mapping, key: str, default: object = None) -> object:
    """``spec[key]``, its default, or a UserError naming the molecule file and the key."""
    if key in spec and spec[key] is not None:
        return spec[key]
    if default is None:
        raise UserError(f"conf/molecules/{spec.get('name', '?')}.yaml: missing key {key!r}")
    return default


def doppler_sigma_cm(line_wavenumber_cm: np.ndarray, temperature_K: float, mass_amu: float) -> np.ndarray:
    """Gaussian standard deviation (not HWHM) of thermal Doppler broadening, cm^-1."""
    return line_wavenumber_cm * np.sqrt(K_B * temperature_K / (mass_amu * AMU_G)) / C_CM_S


def lorentz_hwhm_cm(gamma_296_cm_atm: np.ndarray, n_temperature: np.ndarray, temperature_K: float,
                    pressure_bar: float) -> np.ndarray:
    """Pressure-broadened Lorentz HWHM gamma (P / 1 atm) (296 K / T)^n, cm^-1."""
    return gamma_296_cm_atm * (pressure_bar / ATM_BAR) * (T_REF_K / temperature_K) ** n_temperature


def line_windows(wavenumber_cm: np.ndarray, line_wavenumber_cm: np.ndarray,
                 cutoff_cm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (grid point, line) pair with |nu_grid - nu_line| <= cutoff, as flat arrays.

    Returns (grid_index, line_index, offset_cm = nu_grid - nu_line); ``wavenumber_cm`` must be
    ascending. The pairs depend only on positions, so they are reused for every pressure.
    """
    lo = np.searchsorted(wavenumber_cm, line_wavenumber_cm - cutoff_cm, side="left")
    hi = np.searchsorted(wavenumber_cm, line_wavenumber_cm + cutoff_cm, side="right")
    counts = hi - lo
    line_index = np.repeat(np.arange(line_wavenumber_cm.size), counts)
    starts = np.cumsum(counts) - counts  # position of each line's first pair in the flat arrays
    grid_index = np.arange(line_index.size) - np.repeat(starts - lo, counts)
    return grid_index, line_index, wavenumber_cm[grid_index] - line_wavenumber_cm[line_index]


def sample_voigt_lines(wavenumber_cm: np.ndarray, line_wavenumber_cm: np.ndarray, strength: np.ndarray,
                       doppler_sigma: np.ndarray, lorentz_hwhm: np.ndarray, cutoff_cm: float,
                       windows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """sigma(nu) in cm^2/molecule: sum of S_i V(nu - nu_i; sigma_i, gamma_i) at the grid points.

    The one function that turns lines (position cm^-1, strength cm/molecule, Doppler sigma and
    Lorentz HWHM in cm^-1) into a sampled cross-section; ``windows`` from :func:`line_windows`
    may be passed to reuse them.
    """
    grid_index, line_index, offset = windows or line_windows(wavenumber_cm, line_wavenumber_cm, cutoff_cm)
    gamma = lorentz_hwhm[line_index]
    profile = gamma / np.pi / (offset * offset + gamma * gamma)  # Lorentzian limit of the wings
    core = np.flatnonzero(np.abs(offset) < VOIGT_CORE_DOPPLER_WIDTHS * doppler_sigma[line_index])
    if core.size:
        profile[core] = voigt_profile(offset[core], doppler_sigma[line_index[core]], gamma[core])
    profile *= strength[line_index]
    return np.bincount(grid_index, weights=profile, minlength=wavenumber_cm.size)


def sigma_at_pressures(wavenumber_cm: np.ndarray, line_wavenumber_cm: np.ndarray, strength: np.ndarray,
                       gamma_296_cm_atm: np.ndarray, n_temperature: np.ndarray, mass_amu: float,
                       temperature_K: float, pressure_bar: np.ndarray, cutoff_cm: float) -> np.ndarray:
    """sigma (nP, nW) at one temperature for lines with strengths already scaled to that T."""
    sigma = np.zeros((len(pressure_bar), wavenumber_cm.size))
    doppler = doppler_sigma_cm(line_wavenumber_cm, temperature_K, mass_amu)
    gamma_296 = np.broadcast_to(gamma_296_cm_atm, line_wavenumber_cm.shape)
    n_temp = np.broadcast_to(n_temperature, line_wavenumber_cm.shape)
    # chunks of lines so that the flat (line, grid point) arrays stay small
    lo = np.searchsorted(wavenumber_cm, line_wavenumber_cm - cutoff_cm)
    hi = np.searchsorted(wavenumber_cm, line_wavenumber_cm + cutoff_cm, side="right")
    edges = np.searchsorted(np.cumsum(hi - lo), np.arange(_MAX_WINDOW_POINTS, (hi - lo).sum(),
                                                          _MAX_WINDOW_POINTS))
    for part in np.split(np.arange(line_wavenumber_cm.size), edges):
        if not part.size:
            continue
        nu_part = line_wavenumber_cm[part]
        windows = line_windows(wavenumber_cm, nu_part, cutoff_cm)
        for ip, p_bar in enumerate(pressure_bar):
            gamma = lorentz_hwhm_cm(gamma_296[part], n_temp[part], temperature_K, float(p_bar))
            sigma[ip] += sample_voigt_lines(wavenumber_cm, nu_part, strength[part], doppler[part], gamma,
                                            cutoff_cm, windows)
    return sigma


# composite Gauss-Legendre rule on [0, 1] for the Voigt CDF near a line centre: 25 panels x 6 nodes
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)
_CDF_PANELS = 25
_CDF_NODES = ((np.arange(_CDF_PANELS)[:, None] + 0.5 * (_GL_X[None, :] + 1.0)) / _CDF_PANELS).ravel()
_CDF_WEIGHTS = np.tile(0.5 * _GL_W / _CDF_PANELS, _CDF_PANELS)


def profile_cdf(offset_cm: np.ndarray, doppler_sigma: np.ndarray, lorentz_hwhm: np.ndarray) -> np.ndarray:
    """Integral of the builder's line profile from -infinity to ``offset_cm`` (untruncated), per element.

    The profile is the one :func:`sample_voigt_lines` evaluates: Voigt within
    ``VOIGT_CORE_DOPPLER_WIDTHS`` Doppler sigmas of the centre, its Lorentzian limit beyond.

    * |x| >= 50 sigma_D: the Lorentz CDF 1/2 + arctan(x / gamma) / pi. It differs from the CDF of
      that piecewise profile only by the Voigt-minus-Lorentz area inside 50 sigma_D, which is the
      integral of the wing difference V - L ~ L 3 sigma_D^2 / x^2 beyond it,
      <= gamma / (pi 50^3 sigma_D) = 2.5e-6 gamma / sigma_D of the line's strength (measured
      against adaptive quadrature: 1.2e-5 at gamma = 5 sigma_D; tests/test_line_by_line.py).
    * |x| < 50 sigma_D (a bin edge close to a line centre): 1/2 + sign(x) int_0^|x| V dt by
      composite Gauss-Legendre (25 panels x 6 nodes, panels <= 2 sigma_D wide: error < 1e-8).
      For bins much wider than the Doppler width only a tiny fraction of lines needs this, but
      without it a line sitting on an edge would be split 50/50 (Lorentz, gamma << sigma_D) instead
      of by its Gaussian core.

    All arguments in cm^-1, broadcast together; returns a dimensionless array in [0, 1].
    """
    x, sd, gamma = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (offset_cm, doppler_sigma,
                                                                                lorentz_hwhm)))
    cdf = 0.5 + np.arctan2(x, gamma) / np.pi
    core = np.flatnonzero(np.abs(x) < VOIGT_CORE_DOPPLER_WIDTHS * sd)
    for part in np.array_split(core, max(1, core.size // 20_000)):  # bounded memory: 20k x 150 nodes
        if not part.size:
            continue
        span = np.abs(x.flat[part])
        t = span[:, None] * _CDF_NODES[None, :]
        v = voigt_profile(t, sd.flat[part][:, None], gamma.flat[part][:, None])
        cdf.flat[part] = 0.5 + np.sign(x.flat[part]) * span * (v @ _CDF_WEIGHTS)
    return cdf


def bin_mean_lines(edges_cm: np.ndarray, line_wavenumber_cm: np.ndarray, strength: np.ndarray,
                   doppler_sigma: np.ndarray, lorentz_hwhm: np.ndarray, cutoff_cm: float) -> np.ndarray:
    """Exact mean of sigma (cm^2/molecule) over each bin between ascending ``edges_cm`` (cm^-1).

    sum_i S_i [F_i(min(b - nu_i, c)) - F_i(max(a - nu_i, -c))]^+ / (b - a) for bin [a, b], with
    F_i the profile CDF of :func:`profile_cdf` and c the cutoff: the integral of the very profile
    that :func:`sample_voigt_lines` samples (Voigt core, Lorentz wings, truncated at |nu - nu_i| <= c,
    not renormalised), so a well-resolved sampled sigma averaged over the bin converges to this.
    Computed through the cumulative integral at the edges: lines wholly below an edge contribute
    their truncated area S_i [F_i(c) - F_i(-c)] (a cumulative sum), lines within c of it the
    partial area (the (edge, line) pairs of :func:`line_windows`).
    """
    order = np.argsort(line_wavenumber_cm, kind="stable")
    nu0, s = line_wavenumber_cm[order], strength[order]
    sd, gamma = doppler_sigma[order], lorentz_hwhm[order]
    f_lo = profile_cdf(np.full(nu0.shape, -cutoff_cm), sd, gamma)
    area = s * (profile_cdf(np.full(nu0.shape, cutoff_cm), sd, gamma) - f_lo)
    # lines with nu_i + c < edge: whole truncated area (line_windows takes |edge - nu_i| <= c as partial)
    below = np.searchsorted(nu0 + cutoff_cm, edges_cm, side="left")
    cumulative = np.concatenate([[0.0], np.cumsum(area)])[below]
    lo = np.searchsorted(edges_cm, nu0 - cutoff_cm, side="left")
    hi = np.searchsorted(edges_cm, nu0 + cutoff_cm, side="right")
    chunks = np.searchsorted(np.cumsum(hi - lo), np.arange(_MAX_WINDOW_POINTS, (hi - lo).sum(),
                                                           _MAX_WINDOW_POINTS))
    for part in np.split(np.arange(nu0.size), chunks):  # bounded (edge, line) pair arrays
        if not part.size:
            continue
        grid_index, line_index, offset = line_windows(edges_cm, nu0[part], cutoff_cm)
        line_index = part[line_index]
        partial = s[line_index] * (profile_cdf(offset, sd[line_index], gamma[line_index]) - f_lo[line_index])
        cumulative += np.bincount(grid_index, weights=partial, minlength=edges_cm.size)
    return np.diff(cumulative) / np.diff(edges_cm)


def bin_means_at_pressures(edges_cm: np.ndarray, line_wavenumber_cm: np.ndarray, strength: np.ndarray,
                           gamma_296_cm_atm: np.ndarray | float, n_temperature: np.ndarray | float,
                           mass_amu: float, temperature_K: float, pressure_bar: np.ndarray,
                           cutoff_cm: float) -> np.ndarray:
    """Exact bin-mean sigma (nP, nBins) in cm^2/molecule at one T, the bin-mean twin of
    :func:`sigma_at_pressures` (same widths: Doppler from ``mass_amu``, Lorentz from
    ``gamma_296_cm_atm`` [cm^-1/atm] and ``n_temperature``; strengths already scaled to T)."""
    doppler = doppler_sigma_cm(line_wavenumber_cm, temperature_K, mass_amu)
    gamma_296 = np.broadcast_to(gamma_296_cm_atm, line_wavenumber_cm.shape)
    n_temp = np.broadcast_to(n_temperature, line_wavenumber_cm.shape)
    means = np.zeros((len(pressure_bar), edges_cm.size - 1))
    for ip, p_bar in enumerate(pressure_bar):
        gamma = lorentz_hwhm_cm(gamma_296, n_temp, temperature_K, float(p_bar))
        means[ip] = bin_mean_lines(edges_cm, line_wavenumber_cm, strength, doppler, gamma, cutoff_cm)
    return means


def strong_line_mask(line_wavenumber_cm: np.ndarray, strength: np.ndarray, fraction_kept: float,
                     bin_width_cm: float) -> np.ndarray:
    """Lines to keep: in each bin of ``bin_width_cm``, the strongest holding >= fraction_kept of sum S."""
    if not 0 < fraction_kept <= 1:
        raise UserError(f"strength_fraction_kept must be in (0, 1], got {fraction_kept}")
    bins = np.floor(line_wavenumber_cm / bin_width_cm).astype(np.int64)
    order = np.lexsort((-strength, bins))  # by bin, strongest first within a bin
    s_sorted, b_sorted = strength[order], bins[order]
    cumulative = np.cumsum(s_sorted)
    first = np.r_[True, b_sorted[1:] != b_sorted[:-1]]
    group = np.cumsum(first) - 1
    before_bin = (cumulative - s_sorted)[first][group]   # sum S of all earlier bins
    bin_total = np.add.reduceat(s_sorted, np.flatnonzero(first))[group]
    # keep a line while the stronger lines of its bin hold less than the target fraction
    keep_sorted = (cumulative - s_sorted - before_bin) < fraction_kept * bin_total
    keep = np.empty_like(keep_sorted)
    keep[order] = keep_sorted
    return keep


def _selected_lines(spec: Mapping, nu_min_cm: float, nu_max_cm: float, temperature_K: np.ndarray,
                    data_dir: Path) -> Iterator[tuple[float, LineSet]]:
    """(T, lines kept at T) for each temperature: the lines of ``spec['line_list']`` that can reach
    [nu_min_cm, nu_max_cm] (within the cutoff), strengths scaled to T (cm/molecule), and the
    per-slice strongest-line selection applied. Shared by the sampled and the bin-mean builders.
    """
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    fraction = float(spec_value(spec, "strength_fraction_kept", 0.999))
    bin_cm = float(spec_value(spec, "strength_selection_bin_cm", 10.0))
    lines = read_par(Path(data_dir) / str(spec_value(spec, "line_list")), nu_min_cm - cutoff_cm,
                     nu_max_cm + cutoff_cm)
    if not len(lines):
        raise UserError(f"{spec_value(spec, 'line_list')}: no lines within {nu_min_cm:.1f}-"
                        f"{nu_max_cm:.1f} cm-1 (+- {cutoff_cm} cm-1 cutoff)")
    tips_csv = Path(data_dir) / str(spec_value(spec, "partition_file", "tips_2021.csv"))
    pairs = sorted({(int(m), int(i)) for m, i in zip(lines.molecule_id, lines.isotopologue, strict=True)})
    partitions = {pair: isotopologue_partition(tips_csv, *pair) for pair in pairs}
    pair_index = np.searchsorted(np.array([m * 100 + i for m, i in pairs]),
                                 lines.molecule_id.astype(np.int64) * 100 + lines.isotopologue)
    for t_k in temperature_K:
        q_ratio = np.array([q(T_REF_K) / q(t_k) for q in partitions.values()])[pair_index]
        strength = scale_line_strength(lines.strength_296, lines.lower_energy_cm, lines.wavenumber_cm, t_k,
                                       q_ratio)
        keep = strong_line_mask(lines.wavenumber_cm, strength, fraction, bin_cm)
        log.info("%s T=%g K: %d of %d lines kept, %.5f of sum S", spec.get("name"), t_k, keep.sum(),
                 keep.size, strength[keep].sum() / strength.sum())
        yield float(t_k), LineSet(lines.wavenumber_cm[keep], strength[keep], lines.gamma_air[keep],
                                  lines.n_air[keep])


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule from the HITRAN line list named in ``spec['line_list']``."""
    wavenumber_cm = check_axis("wavenumber grid", wavenumber_cm)
    temperature_K = check_axis("temperature_K", temperature_K)
    pressure_bar = check_axis("pressure_bar", pressure_bar)
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    mass_amu = float(spec_value(spec, "mass_amu"))
    sigma = np.zeros((len(pressure_bar), len(temperature_K), wavenumber_cm.size))
    selected = _selected_lines(spec, wavenumber_cm[0], wavenumber_cm[-1], temperature_K, data_dir)
    for it, (t_k, kept) in enumerate(selected):
        sigma[:, it, :] = sigma_at_pressures(wavenumber_cm, kept.wavenumber_cm, kept.strength,
                                             kept.gamma_296_cm_atm, kept.n_temperature, mass_amu, t_k,
                                             pressure_bar, cutoff_cm)
    return sigma


def bin_mean_cross_section(spec: Mapping, edges_cm: np.ndarray, temperature_K: np.ndarray,
                           pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """Exact bin-mean sigma (nP, nT, nBins) in cm^2/molecule between ascending wavenumber ``edges_cm``.

    The same lines, strengths and truncated profiles as :func:`cross_section_grid`, integrated
    analytically over each bin (:func:`bin_means_at_pressures`) instead of sampled at grid points.
    """
    edges_cm, temperature_K, pressure_bar = check_bin_grid(edges_cm, temperature_K, pressure_bar)
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    mass_amu = float(spec_value(spec, "mass_amu"))
    means = np.zeros((len(pressure_bar), len(temperature_K), edges_cm.size - 1))
    for it, (t_k, kept) in enumerate(_selected_lines(spec, edges_cm[0], edges_cm[-1], temperature_K,
                                                     data_dir)):
        means[:, it, :] = bin_means_at_pressures(edges_cm, kept.wavenumber_cm, kept.strength,
                                                 kept.gamma_296_cm_atm, kept.n_temperature, mass_amu, t_k,
                                                 pressure_bar, cutoff_cm)
    return means
