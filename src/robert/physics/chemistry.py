"""Free chemistry: volume mixing ratios of the active gases, H2 + He fill; optionally thermally dissociated.

x_H2 + x_He = 1 - sum(active), x_He / x_H2 = he_h2_ratio (0.172, DESIGN.md section 3).
Mean molecular weight mu = sum_i x_i m_i in amu. Batched over spectra: active VMRs are (B, M).

Without dissociation (:func:`free_chemistry`) the mixing ratios are constant with altitude. With it
(:func:`dissociated_chemistry`, ``simulate.chemistry.dissociation``) the sampled VMRs are the deep
abundances and every layer keeps the fraction :func:`robert.physics.dissociation.remaining_fraction` of
them (Parmentier et al. 2018): H2O, TiO and VO, and H2 of the filler, which becomes atomic H. The atoms
are booked as in Pytmosph3R's implementation of the same fit: He keeps its ratio to all hydrogen nuclei,
x_He = r (x_H + 2 x_H2) / 2, and H and He fill what the molecules leave,
    x_H = 2 [(1 - f_H2)(1 - sum_deep) + (sum_deep - sum_layer)] / (2 + r),   x_H2 = f_H2 (1 - sum_deep) / (1 + r),
so the layer's mixing ratios sum to 1 and mu falls where H2 dissociates (APPROXIMATE: the O, Ti and V
freed from the molecules are not tracked; their share, at most the sampled trace VMRs, goes to H and He).
The layer quantities are then (B, L) and the active VMRs (B, M, L).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robert.physics.dissociation import (
    DISSOCIATING_MOLECULES,
    PARMENTIER_2018,
    DissociationFit,
    dissociated_fraction,
    remaining_fraction,
)

H2_MASS_AMU = 2.01588   # 2 x 1.00794, IUPAC standard atomic weight of H
H_MASS_AMU = H2_MASS_AMU / 2
HE_MASS_AMU = 4.002602  # IUPAC standard atomic weight of He


@dataclass
class Composition:
    h2_vmr: torch.Tensor      # (B,), or (B, L) with dissociation
    he_vmr: torch.Tensor      # (B,), or (B, L)
    active_vmr: torch.Tensor  # (B, M), or (B, M, L)
    mmw_amu: torch.Tensor     # (B,), or (B, L)
    h_vmr: torch.Tensor | None = None  # (B, L) atomic hydrogen, with dissociation


def free_chemistry(active_vmr: torch.Tensor, active_mass_amu: torch.Tensor, he_h2_ratio: float) -> Composition:
    """Fill the rest of the gas with H2 and He; a sum of active VMRs above 1 leaves no filler (clamped at 0)."""
    filler = torch.clamp(1.0 - active_vmr.sum(-1), min=0.0)
    h2 = filler / (1.0 + he_h2_ratio)
    he = h2 * he_h2_ratio
    mmw = h2 * H2_MASS_AMU + he * HE_MASS_AMU + (active_vmr * active_mass_amu).sum(-1)
    return Composition(h2_vmr=h2, he_vmr=he, active_vmr=active_vmr, mmw_amu=mmw)


def dissociation_fits(molecules: Sequence[str]) -> list[DissociationFit | None]:
    """The Parmentier et al. 2018 fit of each active molecule, None for those it does not cover (kept as sampled)."""
    return [PARMENTIER_2018[m] if m in DISSOCIATING_MOLECULES else None for m in molecules]


def dissociated_hydrogen(deep_filler: torch.Tensor, freed: torch.Tensor | float, he_h2_ratio: float,
                         temperature_K: torch.Tensor, log10_pressure_bar: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_H2, x_H), each (B, L), for the filler share 1 - sum_deep (B, 1) (see the module docstring)."""
    fit = PARMENTIER_2018["H2"]
    h2 = remaining_fraction(fit, temperature_K, log10_pressure_bar) * deep_filler / (1.0 + he_h2_ratio)
    h = 2.0 * (dissociated_fraction(fit, temperature_K, log10_pressure_bar) * deep_filler + freed) \
        / (2.0 + he_h2_ratio)
    return h2, h


def dissociated_chemistry(active_vmr: torch.Tensor, active_mass_amu: torch.Tensor, he_h2_ratio: float,
                          fits: Sequence[DissociationFit | None], temperature_K: torch.Tensor,
                          log10_pressure_bar: torch.Tensor) -> Composition:
    """Per-layer composition for deep VMRs (B, M), layer temperatures (B, L) at log10 pressures (L,) [bar]."""
    columns = [active_vmr[:, m, None] * remaining_fraction(fit, temperature_K, log10_pressure_bar)
               if fit is not None else active_vmr[:, m, None].expand_as(temperature_K)
               for m, fit in enumerate(fits)]
    layered = torch.stack(columns, dim=1)  # (B, M, L)
    deep_sum = active_vmr.sum(-1, keepdim=True)
    deep_filler = torch.clamp(1.0 - deep_sum, min=0.0)
    freed = deep_sum - layered.sum(1)  # the dissociated trace molecules' share (>= 0)
    h2, h = dissociated_hydrogen(deep_filler, freed, he_h2_ratio, temperature_K, log10_pressure_bar)
    he = 0.5 * he_h2_ratio * (h + 2.0 * h2)
    mmw = h2 * H2_MASS_AMU + he * HE_MASS_AMU + h * H_MASS_AMU + (layered * active_mass_amu[:, None]).sum(1)
    return Composition(h2_vmr=h2, he_vmr=he, active_vmr=layered, mmw_amu=mmw, h_vmr=h)
