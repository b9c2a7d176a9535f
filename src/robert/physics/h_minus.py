"""H- continuum opacity: bound-free and free-free absorption of the negative hydrogen ion (John 1988).

The continuum that mutes the water bands of ultra-hot day sides (Arcangeli et al. 2018; Parmentier
et al. 2018). Per atom of neutral H and per unit electron pressure P_e, John (1988, A&A 193, 189) gives
analytic fits to the best calculations (Wishart 1979 for the photodetachment cross-section, Bell &
Berrington 1987 for the free-free coefficient), lambda in micron, theta = 5040 K / T:
  bound-free (his eqs. 3-5), zero beyond the detachment threshold lambda_0 = 1.6419 um,
    sigma_bf = 1e-18 lambda^3 (1/lambda - 1/lambda_0)^(3/2) sum_n=1..6 C_n (1/lambda - 1/lambda_0)^((n-1)/2) cm^2,
    k_bf = Phi(T) (1 - exp(-alpha / lambda T)) sigma_bf,  Phi = 0.750 T^(-5/2) exp(alpha / lambda_0 T),
  free-free (his eq. 6 with Tables 3a, lambda > 0.3645 um, and 3b, 0.1823-0.3645 um),
    k_ff = 1e-29 sum_n=1..6 theta^((n+1)/2) (A_n lambda^2 + B_n + C_n/lambda + D_n/lambda^2 + E_n/lambda^3
           + F_n/lambda^4) cm^4/dyn,
and the absorption per particle is x_H P_e (k_bf + k_ff), x_H the atomic-H mixing ratio. Phi(T) is the
Saha factor n(H-) / (n(H) P_e) = (1/4) lambda_th^3 exp(chi / kT) / kT; it is computed here from astropy's
constants (0.7496 instead of John's rounded 0.750) with chi = h c / lambda_0 as John.
John's fits are quoted for 1400 K <= T <= 10080 K (0.5 <= theta <= 3.6); theta is clamped to that range
(below 1400 K there are too few free electrons for H- to matter, see below).

The densities (an APPROXIMATION, stated in the docs), everything in LTE at the layer's T and P:
  * atomic H from the thermal dissociation of H2 (Parmentier et al. 2018, Table 1;
    :func:`robert.physics.chemistry.dissociated_hydrogen`), whether or not ``chemistry.dissociation``
    also dissociates the molecules and lowers the mean molecular weight;
  * free electrons from the Saha equation of the thermal ionisation of the elements with low ionisation
    energies, at solar abundances (Asplund et al. 2009, ARA&A 47, 481, Table 1) relative to the hydrogen
    nuclei: the alkali metals Na and K (the donors below ~3000 K), Ca, Al, Mg, Fe and Si (above), and
    atomic H itself (at > 4000 K and low pressure). Ionisation energies from NIST; partition functions
    replaced by the statistical weights of the ground terms (2 U+/U0 below; within ~20 % except Fe, ~40 %);
    metals all atomic (no condensation into clouds, no metal-bearing molecules), H- itself not counted as
    an electron sink (n(H-) << n(e-)). Charge balance n_e = sum_i N_i K_i / (n_e + K_i),
    K_i = 2 U+/U0 (2 pi m_e k T / h^2)^(3/2) exp(-chi_i / kT), is solved by Newton's method from the largest
    single-donor root (a lower bound, from which the iteration rises monotonically: the balance is concave).
At 2500 K, 1e-4 to 0.1 bar, the resulting n(H-) = Phi n(H) P_e agrees with the H- abundance that
Parmentier et al. 2018 fit to full equilibrium chemistry to within ~30 % (tests/test_physics_h_minus.py);
their fit is not used directly because it holds only in the ultra-hot regime it was fitted in (at 1500 K
it exceeds the Saha value by four orders of magnitude).
Hand-written: TauREx 3's ``HydrogenIon`` is numpy, one layer at a time (and its bound-free coefficient
list reads 1, 52.519, ... for John's 152.519, see tests/test_taurex_h_minus.py); ours is batched torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from astropy import constants as const
from astropy import units as u

from robert.physics.atmosphere import number_density_cm3
from robert.physics.emission import PLANCK_C2_CM_K

THRESHOLD_UM = 1.6419  # John 1988: photodetachment threshold lambda_0
# John 1988 eq. 5: the bound-free polynomial C_1..C_6
BOUND_FREE_C = (152.519, 49.534, -118.858, 92.536, -34.194, 4.982)
# John 1988 Table 3a (lambda > 0.3645 um) and 3b (0.1823 < lambda <= 0.3645 um): rows n = 1..6 of (A, B, C, D, E, F)
FREE_FREE_LONG = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [2483.3460, 285.8270, -2054.2910, 2827.7760, -1341.5370, 208.9520],
    [-3449.8890, -1158.3820, 8746.5230, -11485.6320, 5303.6090, -812.9390],
    [2200.0400, 2427.7190, -13651.1050, 16755.5240, -7510.4940, 1132.7380],
    [-696.2710, -1841.4000, 8642.9700, -10051.5300, 4400.0670, -655.0200],
    [88.2830, 444.5170, -1863.8640, 2095.2880, -901.7880, 132.9850],
])
FREE_FREE_SHORT = np.array([
    [518.1021, -734.8666, 1021.1775, -479.0721, 93.1373, -6.4285],
    [473.2636, 1443.4137, -1977.3395, 922.3575, -178.9275, 12.3600],
    [-482.2089, -737.1616, 1096.8827, -521.1341, 101.7963, -7.0571],
    [115.5291, 169.6374, -245.6490, 114.2430, -21.9972, 1.5097],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
])
FREE_FREE_SPLIT_UM, FREE_FREE_MIN_UM = 0.3645, 0.1823
FREE_FREE_POWERS = np.arange(1, 7) / 2.0 + 0.5  # theta^((n+1)/2), n = 1..6
THETA_RANGE = (0.5, 3.6)  # John 1988: the fits hold for 1400-10080 K

K_B_CGS = float(const.k_B.cgs.value)
K_B_EV = float((const.k_B / const.e.si).value)  # [eV / K]
SAHA_CM3 = float(((2 * np.pi * const.m_e * const.k_B / const.h**2) ** 1.5).to(u.cm**-3 * u.K**-1.5).value)
DETACHMENT_K = PLANCK_C2_CM_K * 1e4 / THRESHOLD_UM  # chi / k = h c / (lambda_0 k) = alpha / lambda_0
H_MINUS_SAHA_CONSTANT = 1.0 / (4.0 * K_B_CGS * SAHA_CM3)  # John's 0.750: g(H-) / (g(H) g(e)) / (k Saha)


@dataclass(frozen=True)
class Donor:
    """An electron donor: log10 abundance per H nucleus (12 scale), first ionisation energy, 2 U+/U0."""

    log_epsilon: float
    ionisation_eV: float
    weight_ratio: float


# Asplund et al. 2009, Table 1 (photosphere); NIST ionisation energies; ground-term statistical weights
METAL_DONORS: dict[str, Donor] = {
    "Na": Donor(6.24, 5.139076, 2 * 1 / 2),
    "K": Donor(5.03, 4.340663, 2 * 1 / 2),
    "Ca": Donor(6.34, 6.113155, 2 * 2 / 1),
    "Al": Donor(6.45, 5.985769, 2 * 1 / 6),
    "Mg": Donor(7.60, 7.646236, 2 * 2 / 1),
    "Fe": Donor(7.50, 7.902468, 2 * 30 / 25),
    "Si": Donor(7.51, 8.151683, 2 * 6 / 9),
}
HYDROGEN_IONISATION_EV, HYDROGEN_WEIGHT_RATIO = 13.598434, 2 * 1 / 2
NEWTON_STEPS = 8  # converges to < 1e-10 relative over 300-6000 K, 1e-7-1e3 bar (tests/test_physics_h_minus.py)
NEGLIGIBLE_TAU = 1e-10  # a layer's H- optical depth below this is set to exactly 0 (no float32 denormals)


def bound_free_cross_section_cm2(wavelength_um: np.ndarray) -> np.ndarray:
    """John 1988 eqs. 4-5: the H- photodetachment cross-section [cm^2], zero at and beyond 1.6419 um."""
    lam = np.asarray(wavelength_um, dtype=float)
    x = np.clip(1.0 / lam - 1.0 / THRESHOLD_UM, 0.0, None)
    poly = sum(c * x ** (n / 2) for n, c in enumerate(BOUND_FREE_C))
    return np.where(lam < THRESHOLD_UM, 1e-18 * lam**3 * x**1.5 * poly, 0.0)


def free_free_rows(wavelength_um: np.ndarray) -> np.ndarray:
    """(6, W): the bracket of John 1988 eq. 6 for n = 1..6, i.e. k_ff = 1e-29 sum_n theta^((n+1)/2) row_n."""
    lam = np.asarray(wavelength_um, dtype=float)
    powers = np.stack([lam**2, np.ones_like(lam), 1 / lam, lam**-2, lam**-3, lam**-4])  # (6 terms, W)
    long, short = FREE_FREE_LONG @ powers, FREE_FREE_SHORT @ powers
    return np.where(lam > FREE_FREE_SPLIT_UM, long, np.where(lam > FREE_FREE_MIN_UM, short, 0.0))


def free_free_coefficient_cm4_dyn(wavelength_um: np.ndarray, temperature_K: float) -> np.ndarray:
    """k_ff [cm^4/dyn] per H atom and unit electron pressure (John 1988 eq. 6), theta clamped to 0.5-3.6."""
    theta = float(np.clip(5040.0 / temperature_K, *THETA_RANGE))
    return 1e-29 * (theta ** FREE_FREE_POWERS) @ free_free_rows(wavelength_um)


def cross_section_cm2(wavenumber_cm: np.ndarray, temperature_K: float, h_vmr: float,
                      electron_pressure_dyn_cm2: float) -> np.ndarray:
    """H- absorption per particle of the gas [cm^2] for one layer: x_H P_e (k_bf + k_ff), in plain numpy.

    The reference the batched kernels are tested against (and TauREx's ``HydrogenIon`` is compared with).
    """
    nu = np.asarray(wavenumber_cm, dtype=float)
    wavelength_um = 1e4 / nu
    phi = float(saha_h_minus_cm2_dyn(torch.tensor(temperature_K, dtype=torch.float64)))
    bound_free = phi * -np.expm1(-PLANCK_C2_CM_K * nu / temperature_K) * bound_free_cross_section_cm2(wavelength_um)
    free_free = free_free_coefficient_cm4_dyn(wavelength_um, temperature_K)
    return h_vmr * electron_pressure_dyn_cm2 * (bound_free + free_free)


def saha_h_minus_cm2_dyn(temperature_K: torch.Tensor) -> torch.Tensor:
    """Phi(T) = n(H-) / (n(H) P_e) [1 / (dyn cm^-2)]: John's 0.750 T^-5/2 exp(alpha / lambda_0 T)."""
    return H_MINUS_SAHA_CONSTANT * temperature_K**-2.5 * torch.exp(DETACHMENT_K / temperature_K)


def electron_density_cm3(temperature_K: torch.Tensor, density_cm3: torch.Tensor, h_vmr: torch.Tensor,
                         h_nuclei_vmr: torch.Tensor, steps: int = NEWTON_STEPS) -> torch.Tensor:
    """n_e [cm^-3] from the Saha charge balance of the donors (module docstring), all (B, L), in float64."""
    t, n = temperature_K.double(), density_cm3.double()
    quantum = SAHA_CM3 * t**1.5
    nuclei = h_nuclei_vmr.double() * n
    donors = [(10.0 ** (d.log_epsilon - 12.0) * nuclei, d.weight_ratio, d.ionisation_eV) for d in METAL_DONORS.values()]
    donors.append((h_vmr.double() * n, HYDROGEN_WEIGHT_RATIO, HYDROGEN_IONISATION_EV))
    total = torch.stack([count for count, _, _ in donors])  # (D, B, L)
    saha = torch.stack([w * quantum * torch.exp(-chi / (K_B_EV * t)) for _, w, chi in donors])
    # each donor alone: n^2 + K n - N K = 0, in the form without cancellation; the largest is a lower bound
    alone = 2 * total * saha / (saha + torch.sqrt(saha * saha + 4 * total * saha)).clamp_min(1e-300)
    ne = alone.amax(0)
    for _ in range(steps):
        share = total * saha / (ne + saha).clamp_min(1e-300)
        slope = 1.0 + (share / (ne + saha).clamp_min(1e-300)).sum(0)
        ne = ne - (ne - share.sum(0)) / slope
    return ne


def h_minus_coefficients(temperature_K: torch.Tensor, layer_bar: torch.Tensor, column_cm2: torch.Tensor,
                         h_vmr: torch.Tensor, h_nuclei_vmr: torch.Tensor, powers: torch.Tensor,
                         ff_row_max: torch.Tensor, bf_row_max: float, sigma_unit_cm2: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per layer: free-free coefficients (B, L, K) and the bound-free coefficient (B, L), in column's dtype.

    tau_H-(nu) = sum_k ff_k row_k(nu) + bf sigma_bf(nu) (1 - exp(-c2 nu / T)) with the rows of
    :class:`HMinusContinuum` (in units of ``sigma_unit_cm2``). Layers whose H- optical depth cannot reach
    NEGLIGIBLE_TAU get exactly 0, so cool layers cost nothing and leave no denormals.
    """
    t = temperature_K.double()
    density = number_density_cm3(layer_bar.double(), t)
    electron_pressure = electron_density_cm3(t, density, h_vmr, h_nuclei_vmr) * K_B_CGS * t  # [dyn / cm^2]
    per_column = column_cm2.double() * sigma_unit_cm2 * h_vmr.double() * electron_pressure
    theta = (5040.0 / t).clamp(*THETA_RANGE)
    ff = per_column[..., None] * theta[..., None] ** powers.double()
    bf = per_column * saha_h_minus_cm2_dyn(t)
    keep = (ff.abs() * ff_row_max.double()).sum(-1) + bf * bf_row_max >= NEGLIGIBLE_TAU
    dtype = column_cm2.dtype
    return (torch.where(keep[..., None], ff, 0.0).to(dtype), torch.where(keep, bf, 0.0).to(dtype))


def continuum_optical_depth(rayleigh_coef: torch.Tensor, rayleigh: torch.Tensor, ff_coef: torch.Tensor,
                            ff_rows: torch.Tensor, bf_coef: torch.Tensor, bf_sigma: torch.Tensor,
                            bf_c2nu: torch.Tensor, temperature_K: torch.Tensor, bf_start: int) -> torch.Tensor:
    """Rayleigh plus H- optical depth (B, L, W): the start of each layer's sum, as one pass when compiled.

    The Rayleigh term is :func:`robert.physics.opacity.layer_optical_depth`'s own start, taken in here so
    that H- costs no extra pass over (B, L, W). The free-free part is a sum of K products, not a matrix
    product (K = 5 is too small for one to pay); the bound-free part exists from ``bf_start`` on and is
    padded with zeros below it (padding fuses; an in-place slice update or a concatenation did not, measured).
    """
    dtau = rayleigh_coef[..., None] * rayleigh
    for k in range(ff_rows.shape[0]):
        dtau = dtau + ff_coef[..., k, None] * ff_rows[k]
    stimulated = -torch.expm1(-bf_c2nu / temperature_K[..., None])  # 1 - exp(-h c nu / k T)
    bound_free = bf_coef[..., None] * bf_sigma * stimulated
    return dtau + torch.nn.functional.pad(bound_free, (bf_start, 0))


class HMinusContinuum:
    """The H- rows on a model's wavenumber grid (ascending), in units of ``sigma_unit_cm2``."""

    def __init__(self, wavenumber_cm: np.ndarray, sigma_unit_cm2: float, device: torch.device, dtype: torch.dtype):
        wavelength_um = 1e4 / np.asarray(wavenumber_cm, dtype=float)
        rows = free_free_rows(wavelength_um)
        used = np.any(rows != 0.0, axis=1)  # longward of 0.3645 um the n = 1 row is zero
        as_t = lambda a: torch.as_tensor(a, device=device, dtype=dtype)  # noqa: E731
        self.sigma_unit_cm2 = sigma_unit_cm2
        self.ff_rows = as_t(rows[used] * 1e-29 / sigma_unit_cm2)  # (K, W)
        self.powers = as_t(FREE_FREE_POWERS[used])
        self.ff_row_max = as_t(np.abs(rows[used]).max(axis=1) * 1e-29 / sigma_unit_cm2)
        # the bound-free part exists shortward of the threshold only: the high-wavenumber end of the grid
        self.bf_start = int(np.searchsorted(wavenumber_cm, 1e4 / THRESHOLD_UM, side="right"))
        sigma = bound_free_cross_section_cm2(wavelength_um[self.bf_start:])
        self.bf_sigma = as_t(sigma / sigma_unit_cm2)
        self.bf_row_max = float(sigma.max() / sigma_unit_cm2) if sigma.size else 0.0
        self.bf_c2nu = as_t(PLANCK_C2_CM_K * np.asarray(wavenumber_cm, dtype=float)[self.bf_start:])

    def coefficients(self, temperature_K: torch.Tensor, layer_bar: torch.Tensor, column_cm2: torch.Tensor,
                     h_vmr: torch.Tensor, h_nuclei_vmr: torch.Tensor,
                     kernel=h_minus_coefficients) -> tuple[torch.Tensor, torch.Tensor]:
        return kernel(temperature_K, layer_bar, column_cm2, h_vmr, h_nuclei_vmr, self.powers, self.ff_row_max,
                      self.bf_row_max, self.sigma_unit_cm2)

    def start(self, rayleigh_coef: torch.Tensor, rayleigh: torch.Tensor, ff_coef: torch.Tensor,
              bf_coef: torch.Tensor, temperature_K: torch.Tensor, kernel=continuum_optical_depth) -> torch.Tensor:
        """:func:`continuum_optical_depth` on this grid: Rayleigh and H-, (B, L, W)."""
        return kernel(rayleigh_coef, rayleigh, ff_coef, self.ff_rows, bf_coef, self.bf_sigma, self.bf_c2nu,
                      temperature_K.to(ff_coef.dtype), self.bf_start)
