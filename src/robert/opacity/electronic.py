"""Electronic band systems of a diatomic from spectroscopic constants (``source: electronic``).

Hand-written because no maintained library builds rovibronic line lists from a handful of
constants offline (PGOPHER is a GUI, Duo needs potential curves and couplings fitted per molecule,
the ExoMol/HITRAN line lists of TiO and VO cannot be downloaded here). Like the vibrational
generator of CO (:mod:`robert.opacity.diatomic`, whose term values and IR line machinery are
reused), it is closed-form spectroscopy; the lines go through the same Voigt sampling
(:func:`robert.opacity.line_by_line.sigma_at_pressures`) or exact bin means
(:func:`robert.opacity.line_by_line.bin_means_at_pressures`) as the line lists.

Model (Herzberg 1950, *Spectra of Diatomic Molecules*; Bernath 2016, *Spectra of Atoms and
Molecules*, ch. 9); everything below is APPROXIMATE and labelled so in the provenance:

* **States**: each electronic state has T0 (energy of v=0 above the ground state's v=0),
  Lambda, multiplicity 2S+1, an optional diagonal spin-orbit constant A (Hund's case (a)
  components at A Lambda Sigma) and Dunham-type constants (we, wexe, Be, alpha_e, De). Levels
  E = T0 + G(v) - G(0) + B_v J(J+1) - D_v J^2(J+1)^2 + A Lambda Sigma with G, B_v, D_v of
  :func:`robert.opacity.diatomic.level_energy_cm`; J runs over integers from Lambda (the spin
  is not coupled to the rotation: no spin-rotation or spin-spin splitting, no Lambda-doubling
  shifts). Each spin component counts 2 - delta(Lambda, 0) times (the Lambda doublet).
* **Partition function**: the direct sum over those levels of every state in the spec
  (v up to the Morse dissociation or 40, J up to 300): the ExoMol way of computing Q, limited to
  the states given (TiO: McKemmish et al. 2019 find the states above ~15,000 cm^-1 change Q by
  0.2 % at 3000 K). No nuclear-spin factor (it cancels in every population fraction).
* **Franck-Condon factors** q(v', v''): squared overlaps of the J = 0 vibrational wavefunctions
  of two Morse potentials (De = we^2 / 4 wexe, r_e from Be and the reduced mass), each solved
  numerically (finite differences on a common grid): the *Morse approximation*, not RKR.
* **Band strengths**: the system's electronic oscillator strength f_el is distributed as
  f(v', v'') = f_el q(v', v'') nu(v', v'') / nu00 (the convention of Larsson 1983, A&A 128, 291,
  used for the TiO f-values of Jorgensen 1994 and Plez 1998), so that from each lower level the
  summed band f-values reproduce f_el (sum rule sum_v' q = 1). Integrated strength per molecule
  in the lower level: S = (pi e^2 / m_e c^2) f = 8.853e-13 f cm/molecule.
* **Rotational structure**: P, Q, R branches with the singlet Honl-London factors (Herzberg 1950,
  ch. V) for Lambda' - Lambda'' = 0, +1 or -1, normalised so that the
  branches from each lower rotational level share that level's f exactly; transitions between
  spin components of equal Sigma only (Delta Sigma = 0, same multiplicity). This keeps the sharp
  band head and the one-sided rotational wing of every vibronic band.
* **Line strength** S = 8.853e-13 f(v',v'') h_branch(J'') g (2J''+1) exp(-c2 E''/T)
  (1 - exp(-c2 nu/T)) / Q(T), Lorentz HWHM ``lorentz_hwhm_296_cm_atm`` (P/1 atm)(296/T)^n for
  every line (assumed; H2/He widths of TiO/VO are not measured), Doppler from ``mass_amu``.
* **Infrared bands** of the ground state (``infrared``): the vibration-rotation P/R lines of
  :func:`robert.opacity.diatomic.generate_lines` from the ground state's constants, with this
  module's partition function (populations of the whole ground electronic state).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import constants as const
from astropy import units as u
from scipy.linalg import eigh_tridiagonal

from robert.errors import UserError
from robert.opacity import diatomic
from robert.opacity.grid import check_axis, check_bin_grid
from robert.opacity.line_by_line import (
    bin_means_at_pressures,
    sigma_at_pressures,
    spec_value,
    strong_line_mask,
)
from robert.opacity.line_strength import T_REF_K
from robert.opacity.partition import C2_CM_K

ELECTRONIC_STRENGTH_CM = float(
    (np.pi * const.e.gauss**2 / (const.m_e * const.c**2)).cgs.value)  # 8.853e-13 cm per unit f
# h / (8 pi^2 c) in cm^-1 amu Angstrom^2: B = ROTATIONAL_CONSTANT_FACTOR / (mu r^2)
ROTATIONAL_CONSTANT_FACTOR = float((const.h / (8 * np.pi**2 * const.c * const.u * u.AA**2)).to("1/cm").value)
STATE_KEYS = {"label", "T0_cm", "Te_cm", "Lambda", "multiplicity", "spin_orbit_cm", "we", "wexe", "weye",
              "Be", "alpha_e", "gamma_e", "De", "beta_e"}
SYSTEM_KEYS = {"name", "upper", "lower", "oscillator_strength", "cite"}
PARTITION_MAX_V = 40
PARTITION_MAX_J = 300
FC_GRID_POINTS = 2000


@dataclass(frozen=True)
class State:
    """One electronic state: T0 (cm^-1, v=0 above the ground state's v=0), symmetry, constants."""

    name: str
    t0_cm: float
    Lambda: int
    multiplicity: int
    spin_orbit_cm: float
    constants: dict

    @property
    def sigma_values(self) -> np.ndarray:
        """Sigma = -S ... S of the spin components."""
        s = (self.multiplicity - 1) / 2.0
        return np.arange(-s, s + 0.5, 1.0)

    @property
    def component_degeneracy(self) -> int:
        """Lambda doubling: 2 for Lambda > 0, 1 for Sigma states."""
        return 1 if self.Lambda == 0 else 2

    def spin_orbit_offset_cm(self, sigma: float) -> float:
        return self.spin_orbit_cm * self.Lambda * sigma

    def max_bound_v(self) -> int:
        """Highest v below the Morse maximum of G(v) (dG/dv > 0), capped at PARTITION_MAX_V."""
        we, wexe = self.constants["we"], self.constants.get("wexe", 0.0)
        if wexe <= 0:
            return PARTITION_MAX_V
        return int(min(PARTITION_MAX_V, np.floor(we / (2 * wexe) - 0.5)))

    def energy_cm(self, v: np.ndarray, j: np.ndarray, sigma: float = 0.0) -> np.ndarray:
        """Level energy (cm^-1) above the ground state's (v=0, J=0) spin-orbit centroid."""
        zero = diatomic.level_energy_cm(self.constants, 0, 0)
        return (self.t0_cm + diatomic.level_energy_cm(self.constants, v, j) - zero
                + self.spin_orbit_offset_cm(sigma))


@dataclass(frozen=True)
class System:
    name: str
    upper: State
    lower: State
    oscillator_strength: float


@dataclass(frozen=True)
class RovibronicLines:
    """Generated lines: position, lower-level energy and the temperature-independent weight."""

    wavenumber_cm: np.ndarray
    lower_energy_cm: np.ndarray
    weight_cm: np.ndarray     # S(T) = weight exp(-c2 E''/T) (1 - exp(-c2 nu/T)) / Q(T), cm/molecule
    system: np.ndarray        # index into the spec's systems (-1: infrared bands)
    upper_v: np.ndarray
    lower_v: np.ndarray
    branch: np.ndarray        # J' - J'' (-1 P, 0 Q, +1 R)


def _number(where: str, value: object, *, positive: bool = False) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{where} must be a number, got {value!r}") from None
    if not np.isfinite(x) or (positive and x <= 0):
        raise UserError(f"{where} must be a {'positive' if positive else 'finite'} number, got {value!r}")
    return x


def parse_states(spec: Mapping) -> dict[str, State]:
    """The ``states`` mapping of a molecule spec, validated; the first one is the ground state."""
    where = f"conf/molecules/{spec.get('name', '?')}.yaml: states"
    raw = spec.get("states")
    if not isinstance(raw, Mapping) or not raw:
        raise UserError(f"{where} must map state names to their constants (T0_cm, Lambda, multiplicity, "
                        f"we, wexe, Be, ...)")
    states: dict[str, State] = {}
    for name, entry in raw.items():
        here = f"{where}.{name}"
        if not isinstance(entry, Mapping):
            raise UserError(f"{here} must be a mapping of constants, got {entry!r}")
        unknown = sorted(set(entry) - STATE_KEYS)
        if unknown:
            raise UserError(f"{here}: unknown field(s) {', '.join(unknown)}; expected: {', '.join(sorted(STATE_KEYS))}")
        for key in ("Lambda", "multiplicity", "we", "Be"):
            if key not in entry:
                raise UserError(f"{here}.{key} is required")
        constants = {k: _number(f"{here}.{k}", entry[k]) for k in diatomic._CONSTANT_KEYS if k in entry}
        for key in ("we", "Be"):
            _number(f"{here}.{key}", entry[key], positive=True)
        lam, mult = entry["Lambda"], entry["multiplicity"]
        if not (isinstance(lam, int) and lam >= 0) or not (isinstance(mult, int) and mult >= 1):
            raise UserError(f"{here}: Lambda must be an integer >= 0 and multiplicity an integer >= 1, "
                            f"got {lam!r} and {mult!r}")
        if ("T0_cm" in entry) == ("Te_cm" in entry):
            raise UserError(f"{here}: give exactly one of T0_cm (v=0 above the ground v=0) or Te_cm (minimum "
                            f"of the potential), cm^-1")
        if "T0_cm" in entry:
            t0 = _number(f"{here}.T0_cm", entry["T0_cm"])
        else:  # T0 = Te + G(0) - G_ground(0); the ground state is the first entry
            ground = next(iter(states.values()), None)
            g0_ground = diatomic.level_energy_cm(ground.constants if ground else constants, 0, 0)
            t0 = _number(f"{here}.Te_cm", entry["Te_cm"]) + diatomic.level_energy_cm(constants, 0, 0) - g0_ground
        states[str(name)] = State(str(name), t0, lam, mult, _number(f"{here}.spin_orbit_cm",
                                                                       entry.get("spin_orbit_cm", 0.0)), constants)
    ground = next(iter(states.values()))
    if ground.t0_cm != 0.0:
        raise UserError(f"{where}: the first state is the ground state and needs T0_cm: 0 (got {ground.t0_cm})")
    return states


def parse_systems(spec: Mapping, states: Mapping[str, State]) -> list[System]:
    where = f"conf/molecules/{spec.get('name', '?')}.yaml: systems"
    raw = spec.get("systems") or []
    if not isinstance(raw, list):
        raise UserError(f"{where} must be a list of band systems (name, upper, lower, oscillator_strength)")
    systems = []
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(entry, Mapping) or not {"name", "upper", "lower", "oscillator_strength"} <= set(entry):
            raise UserError(f"{here} needs name, upper, lower and oscillator_strength, got {entry!r}")
        unknown = sorted(set(entry) - SYSTEM_KEYS)
        if unknown:
            raise UserError(f"{here}: unknown field(s) {', '.join(unknown)}; "
                            f"expected: {', '.join(sorted(SYSTEM_KEYS))}")
        for key in ("upper", "lower"):
            if entry[key] not in states:
                raise UserError(f"{here}.{key}: unknown state {entry[key]!r}; expected one of: {', '.join(states)}")
        upper, lower = states[entry["upper"]], states[entry["lower"]]
        if abs(upper.Lambda - lower.Lambda) > 1 or upper.multiplicity != lower.multiplicity:
            raise UserError(f"{here}: {upper.name}-{lower.name} is not an allowed electric-dipole system "
                            f"(|Delta Lambda| <= 1 and equal multiplicity are required)")
        systems.append(System(str(entry["name"]), upper, lower,
                              _number(f"{here}.oscillator_strength", entry["oscillator_strength"], positive=True)))
    return systems


def reduced_mass_amu(spec: Mapping) -> float:
    masses = spec_value(spec, "atom_masses_amu")
    if not isinstance(masses, list) or len(masses) != 2:
        raise UserError(f"conf/molecules/{spec.get('name')}.yaml: atom_masses_amu must list the two atomic "
                        f"masses (amu)")
    m1, m2 = (float(m) for m in masses)
    return m1 * m2 / (m1 + m2)


# --- partition function and populations -------------------------------------------------------


def _state_levels(state: State) -> tuple[np.ndarray, np.ndarray]:
    """(energy_cm, degeneracy) of every level of one state used in the partition sum (flat arrays)."""
    v = np.arange(state.max_bound_v() + 1)[:, None]
    j = np.arange(state.Lambda, PARTITION_MAX_J + 1)[None, :]
    energies, weights = [], []
    for sigma in state.sigma_values:
        e = state.energy_cm(v, j, sigma)
        energies.append(e.ravel())
        weights.append(np.broadcast_to(state.component_degeneracy * (2 * j + 1.0), e.shape).ravel())
    e, g = np.concatenate(energies), np.concatenate(weights)
    # beyond the top of the centrifugally distorted curve the formula turns over: drop those levels
    return e, np.where(np.isfinite(e), g, 0.0)


class DirectSumPartition:
    """Q(T) = sum over the levels of all states in the spec of g exp(-c2 E / T) (no nuclear spin)."""

    def __init__(self, states: Mapping[str, State]):
        self.label = "direct sum over the rovibronic levels of " + ", ".join(states)
        self._levels = {name: _state_levels(state) for name, state in states.items()}

    def state_sum(self, name: str, temperature_K) -> np.ndarray:
        e, g = self._levels[name]
        t = np.atleast_1d(np.asarray(temperature_K, dtype=float))
        return (g[None, :] * np.exp(-C2_CM_K * e[None, :] / t[:, None])).sum(axis=1).reshape(np.shape(temperature_K))

    def __call__(self, temperature_K) -> np.ndarray:
        return sum(self.state_sum(name, temperature_K) for name in self._levels)

    def fraction(self, name: str, temperature_K) -> np.ndarray:
        """Fraction of the molecules in electronic state ``name`` at T."""
        return self.state_sum(name, temperature_K) / self(temperature_K)


# --- Franck-Condon factors ---------------------------------------------------------------------


def morse_wavefunctions(constants: Mapping[str, float], mu_amu: float, r_angstrom: np.ndarray,
                        n_levels: int) -> np.ndarray:
    """(n_levels, nR) normalised J = 0 vibrational wavefunctions of the Morse potential of a state.

    De = we^2/(4 wexe), a from wexe = a^2 h / (8 pi^2 c mu), r_e from Be; the radial equation is solved
    by second-order finite differences on the uniform grid ``r_angstrom`` (energies in cm^-1).
    """
    we, wexe, be = constants["we"], constants.get("wexe", 0.0), constants["Be"]
    if wexe <= 0:
        raise UserError(f"the Morse approximation needs wexe > 0 (got {wexe})")
    re = np.sqrt(ROTATIONAL_CONSTANT_FACTOR / (mu_amu * be))
    de = we**2 / (4.0 * wexe)
    a = np.sqrt(wexe / (ROTATIONAL_CONSTANT_FACTOR / mu_amu))  # 1/Angstrom
    potential = de * (1.0 - np.exp(-a * (r_angstrom - re))) ** 2
    step = float(r_angstrom[1] - r_angstrom[0])
    kinetic = ROTATIONAL_CONSTANT_FACTOR / mu_amu / step**2  # -hbar^2/2mu d2/dr2 in cm^-1
    _, vectors = eigh_tridiagonal(potential + 2.0 * kinetic, np.full(r_angstrom.size - 1, -kinetic),
                                  select="i", select_range=(0, n_levels - 1))
    return vectors.T


def franck_condon_factors(upper: State, lower: State, mu_amu: float, n_upper: int, n_lower: int) -> np.ndarray:
    """q[v', v''] (n_upper, n_lower) of two Morse potentials, computed numerically (approximate)."""
    re = [np.sqrt(ROTATIONAL_CONSTANT_FACTOR / (mu_amu * s.constants["Be"])) for s in (upper, lower)]
    r = np.linspace(min(re) - 0.6, max(re) + 1.4, FC_GRID_POINTS)
    psi_u = morse_wavefunctions(upper.constants, mu_amu, r, n_upper)
    psi_l = morse_wavefunctions(lower.constants, mu_amu, r, n_lower)
    return (psi_u @ psi_l.T) ** 2


# --- rotational structure -----------------------------------------------------------------------


def honl_london(lambda_upper: int, lambda_lower: int, j_lower: np.ndarray) -> dict[int, np.ndarray]:
    """{Delta J: fraction of the lower level's absorption in that branch} for integer J'' >= Lambda''.

    Singlet Honl-London factors (Herzberg 1950, ch. V), normalised to sum 1 over the
    branches of each J'' (the sum rule: every lower level absorbs the band's f). Zero where
    J' < Lambda'.
    """
    j = np.asarray(j_lower, dtype=float)
    lam = float(lambda_lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        if lambda_upper == lambda_lower:
            raw = {1: (j + 1 + lam) * (j + 1 - lam) / (j + 1),
                   0: (2 * j + 1) * lam**2 / (j * (j + 1)) if lam > 0 else np.zeros_like(j),
                   -1: (j + lam) * (j - lam) / j}
        elif lambda_upper == lambda_lower + 1:
            raw = {1: (j + 2 + lam) * (j + 1 + lam) / (4 * (j + 1)),
                   0: (j + 1 + lam) * (j - lam) * (2 * j + 1) / (4 * j * (j + 1)),
                   -1: (j - 1 - lam) * (j - lam) / (4 * j)}
        elif lambda_upper == lambda_lower - 1:
            raw = {1: (j + 1 - lam) * (j + 2 - lam) / (4 * (j + 1)),
                   0: (j + 1 - lam) * (j + lam) * (2 * j + 1) / (4 * j * (j + 1)),
                   -1: (j - 1 + lam) * (j + lam) / (4 * j)}
        else:
            raise UserError(f"Honl-London factors: |Lambda' - Lambda''| must be <= 1, got {lambda_upper}, "
                            f"{lambda_lower}")
    out = {}
    for dj, h in raw.items():
        h = np.where(np.isfinite(h) & (j + dj >= lambda_upper) & (j + dj >= 0), np.clip(h, 0.0, None), 0.0)
        out[dj] = h
    total = sum(out.values())
    return {dj: np.divide(h, total, out=np.zeros_like(h), where=total > 0) for dj, h in out.items()}


# --- line generation ----------------------------------------------------------------------------


def system_lines(spec: Mapping, system: System, index: int, mu_amu: float) -> RovibronicLines:
    """Every line of one band system: v', v'' = 0 .. max_v, bands with q >= fc_min, J'' = Lambda'' .. max_j."""
    max_v = int(spec_value(spec, "max_v", 10))
    max_j = int(spec_value(spec, "max_j", 150))
    fc_min = float(spec_value(spec, "fc_min", 1e-4))
    upper, lower = system.upper, system.lower
    q = franck_condon_factors(upper, lower, mu_amu, max_v + 1, max_v + 1)
    nu00 = float(upper.t0_cm - lower.t0_cm)
    j_lower = np.arange(lower.Lambda, max_j + 1)
    hl = honl_london(upper.Lambda, lower.Lambda, j_lower)
    vu, vl = np.nonzero(q >= fc_min)
    parts: list[tuple[np.ndarray, ...]] = []
    for sigma in lower.sigma_values:
        origin = upper.energy_cm(vu, 0, sigma) - lower.energy_cm(vl, 0, sigma)
        f_band = system.oscillator_strength * q[vu, vl] * origin / nu00  # (nBands,)
        for dj, h in hl.items():
            keep = h > 0
            jl = j_lower[keep]
            e_low = lower.energy_cm(vl[:, None], jl[None, :], sigma)
            nu = upper.energy_cm(vu[:, None], jl[None, :] + dj, sigma) - e_low
            weight = (ELECTRONIC_STRENGTH_CM * f_band[:, None] * h[keep][None, :]
                      * lower.component_degeneracy * (2 * jl[None, :] + 1.0))
            shape = nu.shape
            parts.append((nu.ravel(), e_low.ravel(), weight.ravel(), np.broadcast_to(vu[:, None], shape).ravel(),
                          np.broadcast_to(vl[:, None], shape).ravel(), np.full(nu.size, dj)))
    nu, e_low, weight, up_v, low_v, branch = (np.concatenate(col) for col in zip(*parts, strict=True))
    good = nu > 0
    return RovibronicLines(nu[good], e_low[good], weight[good], np.full(good.sum(), index), up_v[good],
                           low_v[good], branch[good])


def infrared_lines(spec: Mapping, ground: State, partition: DirectSumPartition
                   ) -> tuple[RovibronicLines, Callable[[float], float]] | None:
    """Vibration-rotation lines of the ground state (diatomic generator), weights on this module's Q."""
    infrared = spec.get("infrared")
    if not infrared:
        return None
    sub = {"name": spec.get("name"), "constants_cm": ground.constants, "bands": infrared.get("bands"),
           "max_lower_v": infrared.get("max_lower_v", 10), "max_j": infrared.get("max_j", spec.get("max_j", 150))}
    # diatomic's lines carry the (2J''+1)-like |m| weight of one rotor: its Q is Q_total divided by the
    # ground state's spin-orbit/Lambda-doubling factor, so that populations are those of the whole X state
    fine = _ground_fine_structure_factor(ground)
    lines = diatomic.generate_lines(sub, float(partition(T_REF_K)) / fine(T_REF_K))
    # diatomic: S = weight nu exp(-c2 E''/T) (1 - exp(-c2 nu/T)) / q_t with q_t = Q / fine(T)
    weight = lines.weight * lines.wavenumber_cm
    n = lines.wavenumber_cm.size
    return RovibronicLines(lines.wavenumber_cm, lines.lower_energy_cm, weight, np.full(n, -1),
                           lines.lower_v + lines.delta_v, lines.lower_v, np.sign(lines.m).astype(int)), fine


def _ground_fine_structure_factor(ground: State) -> Callable[[float], float]:
    def fine(temperature_K: float) -> float:
        return float(sum(ground.component_degeneracy * np.exp(-C2_CM_K * ground.spin_orbit_offset_cm(s)
                                                               / temperature_K) for s in ground.sigma_values))
    return fine


@functools.lru_cache(maxsize=8)
def _model(spec_key: str) -> tuple:
    import json

    spec = json.loads(spec_key)
    states = parse_states(spec)
    systems = parse_systems(spec, states)
    partition = DirectSumPartition(states)
    mu = reduced_mass_amu(spec)
    electronic = [system_lines(spec, s, i, mu) for i, s in enumerate(systems)]
    ir = infrared_lines(spec, next(iter(states.values())), partition)
    return states, systems, partition, electronic, ir


def model(spec: Mapping) -> tuple:
    """(states, systems, partition, electronic line sets, (infrared lines, fine factor) or None), cached."""
    import json

    return _model(json.dumps(spec, default=str))  # key order kept: the first state is the ground state


def line_strengths(spec: Mapping, temperature_K: float, nu_range_cm: tuple[float, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavenumber_cm, S(T) cm/molecule, system index) of every line, optionally within ``nu_range_cm``."""
    _, _, partition, electronic, ir = model(spec)
    q_t = float(partition(temperature_K))
    nus, strengths, systems = [], [], []
    for lines in electronic:
        s = (lines.weight_cm * np.exp(-C2_CM_K * lines.lower_energy_cm / temperature_K)
             * -np.expm1(-C2_CM_K * lines.wavenumber_cm / temperature_K) / q_t)
        nus.append(lines.wavenumber_cm)
        strengths.append(s)
        systems.append(lines.system)
    if ir is not None:
        ir_lines, fine = ir
        s = (ir_lines.weight_cm * np.exp(-C2_CM_K * ir_lines.lower_energy_cm / temperature_K)
             * -np.expm1(-C2_CM_K * ir_lines.wavenumber_cm / temperature_K) / (q_t / fine(temperature_K)))
        nus.append(ir_lines.wavenumber_cm)
        strengths.append(s)
        systems.append(ir_lines.system)
    nu, s, sys_index = (np.concatenate(x) for x in (nus, strengths, systems))
    if nu_range_cm is not None:
        inside = (nu >= nu_range_cm[0]) & (nu <= nu_range_cm[1])
        nu, s, sys_index = nu[inside], s[inside], sys_index[inside]
    return nu, s, sys_index


def band_head_cm(spec: Mapping, system_name: str, v_upper: int, v_lower: int, sigma: float = 0.0) -> float:
    """Band head (cm^-1) of band v'-v'' of a system: the turning point of its R (or P) branch."""
    states, systems, *_ = model(spec)
    system = next((s for s in systems if s.name == system_name), None)
    if system is None:
        raise UserError(f"no band system {system_name!r} in {spec.get('name')}; have: "
                        f"{', '.join(s.name for s in systems)}")
    j = np.arange(system.lower.Lambda, int(spec_value(spec, "max_j", 150)) + 1)
    nu = {dj: system.upper.energy_cm(v_upper, j + dj, sigma) - system.lower.energy_cm(v_lower, j, sigma)
          for dj in (-1, 1)}
    red_degraded = system.upper.constants["Be"] < system.lower.constants["Be"]
    return float(nu[1].max()) if red_degraded else float(nu[-1].min())


# --- cross-sections ------------------------------------------------------------------------------


def _over_temperatures(kernel: Callable[..., np.ndarray], spec: Mapping, grid_cm: np.ndarray, n_out: int,
                       temperature_K: np.ndarray, pressure_bar: np.ndarray) -> np.ndarray:
    gamma_296 = float(spec_value(spec, "lorentz_hwhm_296_cm_atm"))
    n_temp = float(spec_value(spec, "lorentz_temperature_exponent"))
    mass_amu = float(spec_value(spec, "mass_amu"))
    cutoff_cm = float(spec_value(spec, "cutoff_cm", 25.0))
    fraction = float(spec_value(spec, "strength_fraction_kept", 0.999))
    out = np.zeros((pressure_bar.size, temperature_K.size, n_out))
    for it, t_k in enumerate(temperature_K):
        nu, s, _ = line_strengths(spec, float(t_k), (grid_cm[0] - cutoff_cm, grid_cm[-1] + cutoff_cm))
        keep = strong_line_mask(nu, s, fraction, 10.0) & (s > 0)
        out[:, it, :] = kernel(grid_cm, nu[keep], s[keep], gamma_296, n_temp, mass_amu, float(t_k), pressure_bar,
                               cutoff_cm)
    return out


def cross_section_grid(spec: Mapping, wavenumber_cm: np.ndarray, temperature_K: np.ndarray,
                       pressure_bar: np.ndarray, data_dir: Path | None = None) -> np.ndarray:
    """sigma (nP, nT, nW) in cm^2/molecule: the generated lines, Voigt-sampled on the grid."""
    wavenumber_cm = check_axis("wavenumber grid", wavenumber_cm)
    temperature_K = check_axis("temperature_K", temperature_K)
    pressure_bar = check_axis("pressure_bar", pressure_bar)
    return _over_temperatures(sigma_at_pressures, spec, wavenumber_cm, wavenumber_cm.size, temperature_K,
                              pressure_bar)


def bin_mean_cross_section(spec: Mapping, edges_cm: np.ndarray, temperature_K: np.ndarray,
                           pressure_bar: np.ndarray, data_dir: Path | None = None) -> np.ndarray:
    """Exact bin-mean sigma (nP, nT, nBins) in cm^2/molecule between ascending wavenumber ``edges_cm``."""
    edges_cm, temperature_K, pressure_bar = check_bin_grid(edges_cm, temperature_K, pressure_bar)
    return _over_temperatures(bin_means_at_pressures, spec, edges_cm, edges_cm.size - 1, temperature_K,
                              pressure_bar)
