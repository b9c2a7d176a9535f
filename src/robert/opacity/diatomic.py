"""Vibration-rotation lines of a diatomic molecule from molecular constants (``source: diatomic``).

Hand-written: only the HITEMP 2-0 sample of CO ships offline, and no maintained library
generates diatomic line lists from constants; the generator is a few lines of closed-form
spectroscopy, and the lines are turned into cross-sections by the same Voigt sampling as the
line lists (:func:`robert.opacity.line_by_line.sigma_at_pressures`), or integrated exactly over
wide bins by the same code as the line lists (:func:`bin_mean_cross_section`).

Model (a 1Sigma+ ground state such as CO X 1Sigma+; Herzberg 1950, Spectra of Diatomic Molecules):

* Levels E(v, J) = G(v) + B_v J(J+1) - D_v J^2 (J+1)^2 with
  G(v) = we (v+1/2) - wexe (v+1/2)^2 + weye (v+1/2)^3, B_v = Be - alpha_e (v+1/2) + gamma_e (v+1/2)^2,
  D_v = De + beta_e (v+1/2); lower-state energies are measured from (v=0, J=0), as in HITRAN.
* Bands v'' -> v'' + dv for dv = 1, 2, 3 and v'' = 0 .. ``max_lower_v`` (hot bands), P and R
  branches (no Q branch for Sigma-Sigma), m = J''+1 (R) or -J'' (P), Honl-London factor |m|.
* Line strength S = K_dv binom(v''+dv, dv) nu |m| exp(-c2 E''/T) (1 - exp(-c2 nu/T)) / Q(T)
  with Q(T) from TIPS-2021. K_dv is set so that the cold band (v''=0 -> dv) at 296 K sums to
  the band strength in the spec. *Approximation*: hot bands are scaled as a harmonic
  oscillator would be, |<v''+dv|q^dv|v''>|^2 / |<dv|q^dv|0>|^2 = binom(v''+dv, dv), i.e.
  (v''+1) for the fundamental sequence; no Herman-Wallis factors (P/R asymmetry within a band
  of a few to ~20 % at high J is ignored).
* The strength of the minor isotopologues (~1.2 % of the 2-0 sample) is folded into the main
  one's lines, because the band strengths in the spec are totals over isotopologues.
* One Lorentz HWHM for every line (spec, typical CO air value at low J), scaled (296/T)^n;
  air again stands in for H2/He broadening.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import comb

from robert.errors import UserError
from robert.opacity.grid import check_axis, check_bin_grid
from robert.opacity.line_by_line import bin_means_at_pressures, sigma_at_pressures, spec_value
from robert.opacity.line_strength import T_REF_K
from robert.opacity.partition import C2_CM_K, TipsPartition

_CONSTANT_KEYS = ("we", "wexe", "weye", "Be", "alpha_e", "gamma_e", "De", "beta_e")


@dataclass(frozen=True)
class DiatomicLines:
    """Positions and 296-K-independent quantities of the generated lines, one entry per line."""

    wavenumber_cm: np.ndarray    # line position, cm^-1
    lower_energy_cm: np.ndarray  # E'' above (v=0, J=0), cm^-1
    lower_v: np.ndarray          # v''
    delta_v: np.ndarray          # v' - v''
    m: np.ndarray                # J''+1 (R branch) or -J'' (P branch)
    weight: np.ndarray           # K_dv binom(v''+dv, dv) |m|: strength = weight nu Boltzmann stim / Q


def level_energy_cm(constants: Mapping[str, float], v: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Term value E(v, J) in cm^-1 (zero-point included) from Dunham-type constants."""
    h = np.asarray(v, dtype=float) + 0.5
    jj = np.asarray(j, dtype=float) * (np.asarray(j, dtype=float) + 1.0)
    c = {k: float(constants.get(k, 0.0)) for k in _CONSTANT_KEYS}
    vib = c["we"] * h - c["wexe"] * h**2 + c["weye"] * h**3
    b_v = c["Be"] - c["alpha_e"] * h + c["gamma_e"] * h**2
    d_v = c["De"] + c["beta_e"] * h
    return vib + b_v * jj - d_v * jj**2


def band_positions(constants: Mapping[str, float], lower_v: int, delta_v: int,
                   max_j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavenumber_cm, lower_energy_cm, m) of the P and R lines of band lower_v -> lower_v + delta_v."""
    j_r = np.arange(0, max_j + 1)        # R(J''): J' = J''+1
    j_p = np.arange(1, max_j + 1)        # P(J''): J' = J''-1
    j_lower = np.concatenate([j_r, j_p])
    j_upper = np.concatenate([j_r + 1, j_p - 1])
    m = np.concatenate([j_r + 1, -j_p])
    e_lower = level_energy_cm(constants, lower_v, j_lower)
    nu = level_energy_cm(constants, lower_v + delta_v, j_upper) - e_lower
    return nu, e_lower - level_energy_cm(constants, 0, 0), m


def _boltzmann_line_factor(lines: DiatomicLines, temperature_K: float) -> np.ndarray:
    """nu exp(-c2 E''/T) (1 - exp(-c2 nu/T)) per line (without Q and normalisation)."""
    return (lines.wavenumber_cm * np.exp(-C2_CM_K * lines.lower_energy_cm / temperature_K)
            * -np.expm1(-C2_CM_K * lines.wavenumber_cm / temperature_K))


def generate_lines(spec: Mapping, q_296: float) -> DiatomicLines:
    """All lines of the bands in ``spec['bands']`` and their hot bands, normalised at 296 K.

    ``q_296`` is the partition function at 296 K used for the normalisation (the same table is
    then used at every T, so S(296 K) of each cold band equals its spec value exactly).
    """
    constants = spec_value(spec, "constants_cm")
    if not isinstance(constants, Mapping) or not {"we", "Be"} <= set(constants):
        raise UserError(f"conf/molecules/{spec.get('name')}.yaml: constants_cm must map at least we and Be "
                        f"(cm-1) to numbers")
    max_v = int(spec_value(spec, "max_lower_v", 10))
    max_j = int(spec_value(spec, "max_j", 100))
    parts: list[DiatomicLines] = []
    for band in spec_value(spec, "bands"):
        if not isinstance(band, Mapping) or "delta_v" not in band or "strength_296" not in band:
            raise UserError(f"conf/molecules/{spec.get('name')}.yaml: each entry of bands needs delta_v and "
                            f"strength_296 (cm/molecule), got {band!r}")
        dv = int(band["delta_v"])
        band_lines = []
        for v in range(max_v + 1):
            nu, e_lower, m = band_positions(constants, v, dv, max_j)
            n = nu.size
            band_lines.append(DiatomicLines(nu, e_lower, np.full(n, v), np.full(n, dv), m,
                                            comb(v + dv, dv) * np.abs(m).astype(float)))
        cold = band_lines[0]
        s_cold_296 = (cold.weight * _boltzmann_line_factor(cold, T_REF_K)).sum() / q_296
        norm = float(band["strength_296"]) / s_cold_296
        parts += [DiatomicLines(b.wavenumber_cm, b.lower_energy_cm, b.lower_v, b.delta_v, b.m,
                                b.weight * norm) for b in band_lines]
    fields = DiatomicLines.__dataclass_fields__
    return DiatomicLines(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def line_strengths(lines: DiatomicLines, temperature_K: float, q_t: float) -> np.ndarray:
    """S(T) in cm/molecule of every generated line; ``q_t`` = Q(T)."""
    return lines.weight * _boltzmann_line_factor(lines, temperature_K) / q_t


def partition_function(spec: Mapping, data_dir: Path) -> TipsPartition:
    """TIPS-2021 Q(T) of the isotopologue named in the spec (e.g. CO_26)."""
    return TipsPartition(Path(data_dir) / str(spec_value(spec, "partition_file", "tips_2021.csv")),
                         str(spec_value(spec, "tips_molecule")), str(spec_value(spec, "tips_isotopologue")))


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule from the generated lines, Voigt-sampled on the grid."""
    wavenumber_cm = check_axis("wavenumber grid", wavenumber_cm)
    temperature_K = check_axis("temperature_K", temperature_K)
    pressure_bar = check_axis("pressure_bar", pressure_bar)
    return _over_temperatures(sigma_at_pressures, spec, wavenumber_cm, wavenumber_cm.size, temperature_K,
                              pressure_bar, data_dir)


def bin_mean_cross_section(spec: Mapping, edges_cm: np.ndarray, temperature_K: np.ndarray,
                           pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """Exact bin-mean sigma (nP, nT, nBins) in cm^2/molecule between ascending wavenumber ``edges_cm``.

    The lines and truncated Voigt profiles of :func:`cross_section_grid`, integrated over each bin
    by :func:`robert.opacity.line_by_line.bin_means_at_pressures`.
    """
    edges_cm, temperature_K, pressure_bar = check_bin_grid(edges_cm, temperature_K, pressure_bar)
    return _over_temperatures(bin_means_at_pressures, spec, edges_cm, edges_cm.size - 1, temperature_K,
                              pressure_bar, data_dir)


def _over_temperatures(kernel: Callable[..., np.ndarray], spec: Mapping, grid_cm: np.ndarray, n_out: int,
                       temperature_K: np.ndarray, pressure_bar: np.ndarray, data_dir: Path) -> np.ndarray:
    """(nP, nT, n_out): the generated lines at each temperature through ``kernel`` (sampled sigma or bin means)."""
    q = partition_function(spec, data_dir)
    lines = generate_lines(spec, float(q(T_REF_K)))
    gamma_296 = float(spec_value(spec, "lorentz_hwhm_296_cm_atm"))
    n_temp = float(spec_value(spec, "lorentz_temperature_exponent"))
    mass_amu = float(spec_value(spec, "mass_amu"))
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    out = np.zeros((pressure_bar.size, temperature_K.size, n_out))
    for it, t_k in enumerate(temperature_K):
        strength = line_strengths(lines, t_k, float(q(t_k)))
        out[:, it, :] = kernel(grid_cm, lines.wavenumber_cm, strength, gamma_296, n_temp, mass_amu, t_k,
                               pressure_bar, cutoff_cm)
    return out
