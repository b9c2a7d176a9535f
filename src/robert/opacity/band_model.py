"""Band-model cross-sections: smooth P/Q/R rotational envelopes, one per vibrational (or electronic) band.

APPROXIMATE BY DESIGN (provenance ``band-model (...)``): for molecules without a real line list
offline (DESIGN.md section 4) each band is replaced by the *mean* absorption of its lines, so
the result is right on average over a few cm^-1 to tens of cm^-1 but has no line structure.
Written by hand because no maintained library builds band models offline from a handful of
band constants; the whole model is the few formulas below.

What is approximated, and how:

* **Envelope** (``shape: PR`` or ``PQR``): for a rigid rotor the R(J) line sits at
  x = nu - nu0 = 2B(J+1) with intensity ~ (2J+1) exp(-c2 B J(J+1)/T); in the continuum limit each
  branch is ``f(x) = 2 a |x| exp(-a x^2)`` on its side of the centre, a = c2 / (4 B T w^2), with
  ``w`` the band's ``width_factor`` (1 = rigid rotor; calibrated values absorb anharmonicity,
  unresolved hot bands and K structure). ``asymmetry`` s (default 1) narrows the R branch by sqrt(s)
  and widens the P branch by the same factor (s > 1 stands for B' < B'', which piles the R branch
  up towards a band head and spreads the P branch). Each of P and R carries (1 - q)/2 of the
  strength; a Q branch (``q_fraction`` q) is a Gaussian at the centre with sigma = 0.25 / sqrt(2 a).
  ``shape: gaussian`` (electronic bands of TiO/VO, or blends) is a Gaussian of ``fwhm_cm``.
  Every envelope integrates to 1, so the band integrates to its strength S(T).
* **Strength**: S(T) = S(296) [Qv(296)/Qv(T)] exp(-c2 E''(1/T - 1/296))
  [1-exp(-c2 nu0/T)]/[1-exp(-c2 nu0/296)]
  (the HITRAN scaling of :func:`robert.opacity.line_strength.scale_line_strength` summed over the
  band's rotational lines, which cancels the rotational partition function). Qv is the
  vibrational partition function: TIPS-2021 Q(T) divided by the classical rotational part
  (T^1 linear, T^1.5 non-linear) where TIPS has the isotopologue, else the harmonic-oscillator
  product over ``partition.vibrational_modes_cm`` (:class:`RigidRotorPartition`). ``E''`` is the
  band's vibrational lower-state energy (0 for bands from the ground state; in calibrated configs an
  effective value fitted to the reference's temperature dependence). ``hot_bands: true``
  multiplies by Qv(T)/Qv(296): for a harmonic oscillator the fundamental plus all its hot bands
  keeps a temperature-independent total strength, so this stands for the hot bands that lie
  (unresolved) under the same envelope. Electronic bands: S = 8.853e-13 f cm/molecule.
* **Pressure**: the envelope is convolved with a Lorentzian of HWHM
  gamma = ``hwhm_cm_per_bar`` P (296/T)^n, truncated at +-``wing_cutoff_cm`` (a stand-in for the
  sub-Lorentzian far wings) and renormalised, so higher pressure smooths but conserves the integral.
  As the envelope is already the line-averaged absorption, this matters only above ~10 bar.

Values are sampled at the requested wavenumbers (cm^-1) and returned in cm^2/molecule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import constants as const
from scipy.signal import fftconvolve
from scipy.special import erf

from robert.errors import UserError
from robert.opacity.line_strength import T_REF_K, scale_line_strength
from robert.opacity.partition import RigidRotorPartition, TipsPartition

C2_CM_K = float((const.h * const.c / const.k_B).cgs.value)  # second radiation constant, cm K
ELECTRONIC_STRENGTH_CM = float(
    (np.pi * const.e.gauss**2 / (const.m_e * const.c**2)).cgs.value)  # 8.853e-13 cm per unit f
Q_BRANCH_WIDTH = 0.25  # Q-branch Gaussian sigma in units of the P/R envelope scale 1/sqrt(2a)
ENVELOPE_EXTENT = 6.0  # envelopes are evaluated out to this many scales 1/sqrt(a) (tails ~ exp(-36))
SHAPES = ("PR", "PQR", "gaussian")
BAND_KEYS = {"center_cm", "center_um", "strength_296", "oscillator_strength", "lower_energy_cm", "shape",
             "q_fraction", "width_factor", "asymmetry", "fwhm_cm", "hot_bands", "cite"}
BROADENING_DEFAULTS = {"hwhm_cm_per_bar": 0.07, "temperature_exponent": 0.5, "wing_cutoff_cm": 25.0}


@dataclass(frozen=True)
class Band:
    """One band, validated; strengths in cm/molecule, wavenumbers in cm^-1."""

    center_cm: float
    strength_296: float
    lower_energy_cm: float
    shape: str
    q_fraction: float
    width_factor: float
    asymmetry: float
    fwhm_cm: float
    hot_bands: bool


def _number(where: str, value: object, *, positive: bool = False, nonneg: bool = False) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{where} must be a number, got {value!r}") from None
    if not np.isfinite(x) or (positive and x <= 0) or (nonneg and x < 0):
        kind = "positive" if positive else "non-negative" if nonneg else "finite"
        raise UserError(f"{where} must be a {kind} number, got {value!r}")
    return x


def parse_band(name: str, index: int, raw: Mapping) -> Band:
    """Validate one entry of ``bands``; errors name the molecule and the field."""
    where = f"molecule {name}: bands[{index}]"
    if not isinstance(raw, Mapping):
        raise UserError(f"{where} must be a mapping of band parameters, got {raw!r}")
    unknown = sorted(set(raw) - BAND_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                        f"expected: {', '.join(sorted(BAND_KEYS))}")
    if ("center_cm" in raw) == ("center_um" in raw):
        raise UserError(f"{where}: give exactly one of center_cm (cm^-1) or center_um (um)")
    center_cm = (_number(f"{where}.center_cm", raw["center_cm"], positive=True) if "center_cm" in raw
                 else 1e4 / _number(f"{where}.center_um", raw["center_um"], positive=True))
    if ("strength_296" in raw) == ("oscillator_strength" in raw):
        raise UserError(f"{where}: give exactly one of strength_296 (cm/molecule) or oscillator_strength")
    strength = (_number(f"{where}.strength_296", raw["strength_296"], positive=True) if "strength_296" in raw
                else ELECTRONIC_STRENGTH_CM * _number(f"{where}.oscillator_strength",
                                                      raw["oscillator_strength"], positive=True))
    shape = raw.get("shape", "PR")
    if shape not in SHAPES:
        raise UserError(f"{where}.shape: unknown band shape {shape!r}; expected one of: {', '.join(SHAPES)}")
    q_fraction = _number(f"{where}.q_fraction", raw.get("q_fraction", 0.3 if shape == "PQR" else 0.0),
                         nonneg=True)
    if q_fraction >= 1 or (shape != "PQR" and q_fraction > 0):
        raise UserError(f"{where}.q_fraction must be in [0, 1) and only set for shape PQR, got {q_fraction}")
    if shape == "gaussian" and "fwhm_cm" not in raw:
        raise UserError(f"{where}.fwhm_cm is required for shape gaussian")
    fwhm = _number(f"{where}.fwhm_cm", raw.get("fwhm_cm", 1.0), positive=True)
    hot = raw.get("hot_bands", False)
    if not isinstance(hot, bool):
        raise UserError(f"{where}.hot_bands must be true or false, got {hot!r}")
    lower_energy = _number(f"{where}.lower_energy_cm", raw.get("lower_energy_cm", 0.0), nonneg=True)
    return Band(center_cm=center_cm, strength_296=strength, lower_energy_cm=lower_energy,
                shape=shape, q_fraction=q_fraction,
                width_factor=_number(f"{where}.width_factor", raw.get("width_factor", 1.0), positive=True),
                asymmetry=_number(f"{where}.asymmetry", raw.get("asymmetry", 1.0), positive=True),
                fwhm_cm=fwhm, hot_bands=hot)


def parse_bands(spec: Mapping) -> list[Band]:
    name = spec.get("name", "?")
    bands = spec.get("bands")
    if not isinstance(bands, Sequence) or isinstance(bands, str) or len(bands) == 0:
        raise UserError(f"molecule {name}: bands must be a non-empty list")
    return [parse_band(name, i, b) for i, b in enumerate(bands)]


def rotational_constant(spec: Mapping) -> float:
    where = f"molecule {spec.get('name', '?')}: rotational_constant_cm"
    if "rotational_constant_cm" not in spec:
        raise UserError(f"{where} is required for a band model")
    return _number(where, spec["rotational_constant_cm"], positive=True)


def broadening(spec: Mapping) -> dict[str, float]:
    raw = dict(spec.get("broadening") or {})
    where = f"molecule {spec.get('name', '?')}: broadening"
    unknown = sorted(set(raw) - set(BROADENING_DEFAULTS))
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; expected: "
                        f"{', '.join(BROADENING_DEFAULTS)}")
    out = {**BROADENING_DEFAULTS, **raw}
    return {k: _number(f"{where}.{k}", v, nonneg=True) for k, v in out.items()}


# --- temperature scaling ---------------------------------------------------------------------


def vibrational_partition_ratio(spec: Mapping, temperature_K: np.ndarray, data_dir: Path | None) -> tuple[
        np.ndarray, str]:
    """Qv(T)/Qv(296 K) and a label saying where it came from (TIPS-2021 or harmonic oscillators)."""
    name = spec.get("name", "?")
    part = dict(spec.get("partition") or {})
    rotor = part.get("rotor", "linear")
    if rotor not in ("linear", "nonlinear"):
        raise UserError(f"molecule {name}: partition.rotor must be 'linear' or 'nonlinear', got {rotor!r}")
    rot_exponent = 1.0 if rotor == "linear" else 1.5
    t = np.asarray(temperature_K, dtype=float)
    tips_key = part.get("tips")
    if tips_key and data_dir is not None:
        molecule, _, iso = str(tips_key).partition("_")
        try:
            q = TipsPartition(Path(data_dir) / "tips_2021.csv", molecule, iso)
        except UserError:
            q = None  # isotopologue (or table) absent: fall back to the harmonic estimate below
        if q is not None:
            ratio = q(t) / q(T_REF_K) / (t / T_REF_K) ** rot_exponent
            return ratio, f"{q.label} / classical rotor"
    modes = part.get("vibrational_modes_cm")
    if not isinstance(modes, Sequence) or isinstance(modes, str) or len(modes) == 0:
        raise UserError(f"molecule {name}: partition.vibrational_modes_cm (a list, degenerate modes "
                        f"repeated) is needed when TIPS-2021 has no partition function for it")
    modes_cm = [_number(f"molecule {name}: partition.vibrational_modes_cm", m, positive=True) for m in modes]
    rr = RigidRotorPartition(rotational_constant(spec), modes_cm)

    def vibrational(temp: np.ndarray) -> np.ndarray:  # rr's total divided by its own rotational factor
        return rr(temp) / (np.asarray(temp) / (C2_CM_K * rr.b) + 1.0 / 3.0)

    ratio = vibrational(t) / vibrational(np.array([T_REF_K]))[0]
    return ratio, "harmonic-oscillator vibrational partition (approximate)"


def band_strengths(spec: Mapping, bands: Sequence[Band], temperature_K: np.ndarray,
                   data_dir: Path | None) -> np.ndarray:
    """S(T) of every band, shape (nBands, nT), cm/molecule."""
    t = np.asarray(temperature_K, dtype=float)
    qv_ratio, _ = vibrational_partition_ratio(spec, t, data_dir)
    out = np.empty((len(bands), t.size))
    for i, band in enumerate(bands):
        q_296_over_t = np.ones_like(t) if band.hot_bands else 1.0 / qv_ratio
        for j, temp in enumerate(t):
            out[i, j] = scale_line_strength(
                np.array([band.strength_296]), np.array([band.lower_energy_cm]), np.array([band.center_cm]),
                float(temp), float(q_296_over_t[j]))[0]
    return out


# --- envelopes -------------------------------------------------------------------------------


def envelope_scale_cm(band: Band, b_cm: float, temperature_K: float) -> float:
    """1/sqrt(a) for P/R bands (cm^-1): the branch maximum sits at 1/sqrt(2a) from the centre."""
    if band.shape == "gaussian":
        return band.fwhm_cm * band.width_factor / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return band.width_factor * np.sqrt(4.0 * b_cm * temperature_K / C2_CM_K)


def envelope(band: Band, b_cm: float, offset_cm: np.ndarray, temperature_K: float) -> np.ndarray:
    """Unit-area envelope (cm) of one band at offsets nu - nu0 (cm^-1)."""
    x = np.asarray(offset_cm, dtype=float)
    scale = envelope_scale_cm(band, b_cm, temperature_K)
    if band.shape == "gaussian":
        return np.exp(-0.5 * (x / scale) ** 2) / (scale * np.sqrt(2.0 * np.pi))
    a = np.where(x > 0, band.asymmetry, 1.0 / band.asymmetry) / scale**2  # R branch at x > 0
    branches = (1.0 - band.q_fraction) * a * np.abs(x) * np.exp(-a * x**2)  # P + R, each half
    if band.q_fraction == 0:
        return branches
    q_sigma = Q_BRANCH_WIDTH * scale / np.sqrt(2.0)
    return branches + band.q_fraction * np.exp(-0.5 * (x / q_sigma) ** 2) / (q_sigma * np.sqrt(2.0 * np.pi))


def envelope_bin_fraction(band: Band, b_cm: float, lo_cm: np.ndarray, hi_cm: np.ndarray,
                          temperature_K: float) -> np.ndarray:
    """Exact fraction of the unit envelope between offsets lo and hi (for calibration fits)."""
    scale = envelope_scale_cm(band, b_cm, temperature_K)

    def gauss_cdf(x: np.ndarray, sigma: float) -> np.ndarray:
        return 0.5 * (1.0 + erf(x / (sigma * np.sqrt(2.0))))

    if band.shape == "gaussian":
        return gauss_cdf(hi_cm, scale) - gauss_cdf(lo_cm, scale)

    def branch_cdf(x: np.ndarray) -> np.ndarray:  # CDF of the P + R branches, normalised to 1
        a = np.where(x > 0, band.asymmetry, 1.0 / band.asymmetry) / scale**2
        tail = 0.5 * np.exp(-a * x**2)
        return np.where(x < 0, tail, 1.0 - tail)

    frac = (1.0 - band.q_fraction) * (branch_cdf(hi_cm) - branch_cdf(lo_cm))
    if band.q_fraction:
        q_sigma = Q_BRANCH_WIDTH * scale / np.sqrt(2.0)
        frac = frac + band.q_fraction * (gauss_cdf(hi_cm, q_sigma) - gauss_cdf(lo_cm, q_sigma))
    return frac


def lorentz_kernel(step_cm: float, hwhm_cm: float, cutoff_cm: float) -> np.ndarray:
    """Cell-integrated Lorentzian on a uniform grid, truncated at +-cutoff and renormalised to sum 1."""
    half = max(int(np.ceil(cutoff_cm / step_cm)), 1) if hwhm_cm > 0.05 * step_cm else 0
    x = np.arange(-half, half + 1) * step_cm
    if half == 0 or hwhm_cm <= 0:
        return np.ones(1)
    k = np.arctan((x + 0.5 * step_cm) / hwhm_cm) - np.arctan((x - 0.5 * step_cm) / hwhm_cm)
    return k / k.sum()


# --- the builder -----------------------------------------------------------------------------


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path | None) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule of a band-model molecule, sampled at ``wavenumber_cm``."""
    nu = np.asarray(wavenumber_cm, dtype=float)
    temps = np.asarray(temperature_K, dtype=float)
    press = np.asarray(pressure_bar, dtype=float)
    if np.any(temps <= 0) or np.any(press < 0):
        raise UserError(f"molecule {spec.get('name', '?')}: temperatures must be > 0 K "
                        "and pressures >= 0 bar")
    bands = parse_bands(spec)
    b_cm = rotational_constant(spec)
    broad = broadening(spec)
    strengths = band_strengths(spec, bands, temps, data_dir)
    sigma = np.zeros((press.size, temps.size, nu.size))
    spacing = np.gradient(nu) if nu.size > 1 else np.ones(1)
    for i, band in enumerate(bands):
        scales = [envelope_scale_cm(band, b_cm, t) for t in temps]
        stretch = 1.0 if band.shape == "gaussian" else np.sqrt(max(band.asymmetry, 1.0 / band.asymmetry))
        half_width = ENVELOPE_EXTENT * max(scales) * stretch + broad["wing_cutoff_cm"]
        near = np.abs(nu - band.center_cm) <= half_width
        if not near.any():
            continue
        step = min(0.5 * float(np.min(spacing[near])), 0.05 * min(scales) / stretch)
        offsets = np.arange(-half_width, half_width + step, step)
        for j, temp in enumerate(temps):
            profile = strengths[i, j] * envelope(band, b_cm, offsets, temp)
            for k, p in enumerate(press):
                hwhm = broad["hwhm_cm_per_bar"] * p * (T_REF_K / temp) ** broad["temperature_exponent"]
                kernel = lorentz_kernel(step, hwhm, broad["wing_cutoff_cm"])
                smooth = profile if kernel.size == 1 else fftconvolve(profile, kernel, mode="same")
                sigma[k, j, near] += np.interp(nu[near] - band.center_cm, offsets, np.clip(smooth, 0.0, None))
    return sigma
