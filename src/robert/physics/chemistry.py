"""Free chemistry: constant-with-altitude volume mixing ratios of the active gases, H2 + He fill.

x_H2 + x_He = 1 - sum(active), x_He / x_H2 = he_h2_ratio (0.172, DESIGN.md section 3).
Mean molecular weight mu = sum_i x_i m_i in amu. Batched over spectra: active VMRs are (B, M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

H2_MASS_AMU = 2.01588   # 2 x 1.00794, IUPAC standard atomic weight of H
HE_MASS_AMU = 4.002602  # IUPAC standard atomic weight of He


@dataclass
class Composition:
    h2_vmr: torch.Tensor      # (B,)
    he_vmr: torch.Tensor      # (B,)
    active_vmr: torch.Tensor  # (B, M)
    mmw_amu: torch.Tensor     # (B,)


def free_chemistry(active_vmr: torch.Tensor, active_mass_amu: torch.Tensor, he_h2_ratio: float) -> Composition:
    """Fill the rest of the gas with H2 and He; a sum of active VMRs above 1 leaves no filler (clamped at 0)."""
    filler = torch.clamp(1.0 - active_vmr.sum(-1), min=0.0)
    h2 = filler / (1.0 + he_h2_ratio)
    he = h2 * he_h2_ratio
    mmw = h2 * H2_MASS_AMU + he * HE_MASS_AMU + (active_vmr * active_mass_amu).sum(-1)
    return Composition(h2_vmr=h2, he_vmr=he, active_vmr=active_vmr, mmw_amu=mmw)
