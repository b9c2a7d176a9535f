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
  spectrum, the strongest lines holding ``strength_fraction_kept`` (99.9 %) of that slice's
  sum S(T) are kept, at each temperature. A per-slice (not global) criterion keeps weak bands:
  a global 99.9 % would drop the whole 1.13 um H2O band (6e-4 of the total strength). Hence at
  least 99.9 % of sum S is retained at every T, and in every slice.
* Opacity *sampling*: sigma is the profile sum evaluated at the grid wavenumbers (as in TauREx
  and ExoMol cross-section files), not a bin average; narrow lines between grid points are
  seen only through their wings. Integrated over a band the sampling is unbiased.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import constants
from scipy.special import voigt_profile

from robert.errors import UserError
from robert.opacity.grid import check_axis
from robert.opacity.hitran import isotopologue_partition, read_par
from robert.opacity.line_strength import T_REF_K, scale_line_strength

log = logging.getLogger(__name__)

ATM_BAR = 1.01325  # 1 atm in bar: HITRAN widths are per atm
K_B = constants.k_B.cgs.value   # erg/K
AMU_G = constants.u.cgs.value   # g
C_CM_S = constants.c.cgs.value  # cm/s
VOIGT_CORE_DOPPLER_WIDTHS = 50.0  # beyond this many Doppler sigmas the Lorentzian limit is used
_MAX_WINDOW_POINTS = 4_000_000    # (line, grid point) pairs per chunk: bounds memory to ~100 MB


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


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule from the HITRAN line list named in ``spec['line_list']``."""
    wavenumber_cm = check_axis("wavenumber grid", wavenumber_cm)
    temperature_K = check_axis("temperature_K", temperature_K)
    pressure_bar = check_axis("pressure_bar", pressure_bar)
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    fraction = float(spec_value(spec, "strength_fraction_kept", 0.999))
    bin_cm = float(spec_value(spec, "strength_selection_bin_cm", 10.0))
    mass_amu = float(spec_value(spec, "mass_amu"))
    lines = read_par(Path(data_dir) / str(spec_value(spec, "line_list")),
                     wavenumber_cm[0] - cutoff_cm, wavenumber_cm[-1] + cutoff_cm)
    if not len(lines):
        raise UserError(f"{spec_value(spec, 'line_list')}: no lines within {wavenumber_cm[0]:.1f}-"
                        f"{wavenumber_cm[-1]:.1f} cm-1 (+- {cutoff_cm} cm-1 cutoff)")
    tips_csv = Path(data_dir) / str(spec_value(spec, "partition_file", "tips_2021.csv"))
    pairs = sorted({(int(m), int(i)) for m, i in zip(lines.molecule_id, lines.isotopologue, strict=True)})
    partitions = {pair: isotopologue_partition(tips_csv, *pair) for pair in pairs}
    pair_index = np.searchsorted(np.array([m * 100 + i for m, i in pairs]),
                                 lines.molecule_id.astype(np.int64) * 100 + lines.isotopologue)

    sigma = np.zeros((len(pressure_bar), len(temperature_K), wavenumber_cm.size))
    for it, t_k in enumerate(temperature_K):
        q_ratio = np.array([q(T_REF_K) / q(t_k) for q in partitions.values()])[pair_index]
        strength = scale_line_strength(lines.strength_296, lines.lower_energy_cm, lines.wavenumber_cm, t_k,
                                       q_ratio)
        keep = strong_line_mask(lines.wavenumber_cm, strength, fraction, bin_cm)
        log.info("%s T=%g K: %d of %d lines kept, %.5f of sum S", spec.get("name"), t_k, keep.sum(),
                 keep.size, strength[keep].sum() / strength.sum())
        sigma[:, it, :] = sigma_at_pressures(wavenumber_cm, lines.wavenumber_cm[keep], strength[keep],
                                             lines.gamma_air[keep], lines.n_air[keep], mass_amu, t_k,
                                             pressure_bar, cutoff_cm)
    return sigma
