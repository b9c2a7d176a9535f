"""Thermal dissociation of H2, H2O, TiO and VO on hot day sides: the Parmentier et al. (2018) fit.

Parmentier et al. 2018 (A&A 617, A110; their Table 1) fit the abundance (volume mixing ratio) of
each species in chemical equilibrium at solar composition, as a function of temperature T and pressure P, by
    1 / sqrt(A) = 1 / sqrt(A_0) + 1 / sqrt(A_d),   log10 A_d = alpha log10(P / 1 bar) + beta / T - gamma,
A_0 the undissociated (deep) abundance and A_d the abundance set by dissociation alone. Table 1 gives
alpha, beta [K], gamma and log10 A_0 per species; the values below are transcribed from it (identical in
the public implementations of POSEIDON and Pytmosph3R, which cite the same table).

How it is used here (an APPROXIMATION, stated in the docs): the simulator samples free deep abundances,
not solar ones, so each layer keeps the fraction of the deep abundance that the fit leaves at solar
composition,
    A(T, P) / A_0 = (1 + sqrt(A_0,sol / A_d(T, P)))^-2,
which does not depend on the sampled deep abundance. That is the equilibrium behaviour of a trace
species (H2O <-> OH + H <-> O + 2 H: the dissociated fraction is set by T, P and the atomic-H
abundance, not by the trace species' own abundance); POSEIDON scales A_d with the deep abundance for the
same reason. It is exact at solar composition and approximate for large departures from it.
CO is not dissociated at these temperatures (its bond is stronger; Parmentier et al. 2018) and keeps its
deep abundance, as do the gases the paper does not fit (CO2, CH4, NH3, HCN, C2H2, SiO: not modelled).
Hand-written: ten lines of arithmetic on our own batched tensors (no library ships it for torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DissociationFit:
    """One row of Parmentier et al. 2018, Table 1 (solar composition)."""

    alpha: float               # power of P [bar]
    beta_K: float              # the 1/T term
    gamma: float               # offset (log10)
    log10_deep_abundance: float  # log10 A_0 at solar composition


# Parmentier et al. 2018, A&A 617, A110, Table 1 (beta given there in units of 1e4 K)
PARMENTIER_2018: dict[str, DissociationFit] = {
    "H2": DissociationFit(alpha=1.0, beta_K=2.41e4, gamma=6.5, log10_deep_abundance=-0.1),
    "H2O": DissociationFit(alpha=2.0, beta_K=4.83e4, gamma=15.9, log10_deep_abundance=-3.3),
    "TiO": DissociationFit(alpha=1.6, beta_K=5.94e4, gamma=23.0, log10_deep_abundance=-7.1),
    "VO": DissociationFit(alpha=1.5, beta_K=5.40e4, gamma=23.8, log10_deep_abundance=-9.2),
    "H-": DissociationFit(alpha=0.6, beta_K=-0.14e4, gamma=7.7, log10_deep_abundance=-8.3),
}
DISSOCIATING_MOLECULES = ("H2O", "TiO", "VO")  # the active gases of our cache that the fit covers


def log10_dissociation_abundance(fit: DissociationFit, temperature_K: torch.Tensor,
                                 log10_pressure_bar: torch.Tensor) -> torch.Tensor:
    """log10 A_d = alpha log10 P + beta / T - gamma, broadcast over T and log10 P."""
    return fit.alpha * log10_pressure_bar + fit.beta_K / temperature_K - fit.gamma


def remaining_fraction(fit: DissociationFit, temperature_K: torch.Tensor,
                       log10_pressure_bar: torch.Tensor) -> torch.Tensor:
    """A / A_0 = (1 + sqrt(A_0 / A_d))^-2 in [0, 1]: 1 where cool and dense, -> 0 where hot and thin."""
    ratio = torch.pow(10.0, 0.5 * (fit.log10_deep_abundance
                                   - log10_dissociation_abundance(fit, temperature_K, log10_pressure_bar)))
    return torch.reciprocal(torch.square(1.0 + ratio))


def dissociated_fraction(fit: DissociationFit, temperature_K: torch.Tensor,
                         log10_pressure_bar: torch.Tensor) -> torch.Tensor:
    """1 - A / A_0, computed without cancellation: s (2 + s) / (1 + s)^2 with s = sqrt(A_0 / A_d)."""
    s = torch.pow(10.0, 0.5 * (fit.log10_deep_abundance
                               - log10_dissociation_abundance(fit, temperature_K, log10_pressure_bar)))
    return s * (2.0 + s) / torch.square(1.0 + s)


def abundance(fit: DissociationFit, temperature_K: torch.Tensor, log10_pressure_bar: torch.Tensor) -> torch.Tensor:
    """The fit's own abundance A(T, P) at solar composition (used to cross-check our H- density)."""
    return math.pow(10.0, fit.log10_deep_abundance) * remaining_fraction(fit, temperature_K, log10_pressure_bar)
