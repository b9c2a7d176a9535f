"""Detection labels: is a gas's fingerprint significant in THIS spectrum, with its coverage and error bars?

A gas is **detected** in a spectrum when its feature's significance Delta chi^2 = sum over the observed bins of
((D_with - D_without) / sigma)^2 (:func:`robert.spectra.observation.observe`) reaches ``labels.min_chi2``
(9 = 3 sigma by default: a stand-in for the Bayes-factor detections of retrievals, Benneke & Seager 2013).
Every (spectrum, gas) pair is in one of three states:

* ``DETECTED``: injected and Delta chi^2 >= min_chi2 -> target 1;
* ``ABSENT``: not injected -> target 0;
* ``UNDETECTABLE``: injected, but Delta chi^2 < min_chi2 (buried in the noise, or outside the coverage).
  ``labels.undetectable`` says how training treats it: ``negative`` (target 0, weight 1: the network learns
  "not detectable here", which is what an observer asks) or ``ignore`` (weight 0: no loss either way). Which
  is better was measured on the realistic set (``python benchmarks/design.py``, docs/training.md); metrics
  always score the three states apart.

``labels.profile: gases`` uses the Delta chi^2 left after a smooth continuum and every other gas's template are
fitted (:mod:`robert.spectra.nuisance`): a feature another gas can imitate is then not a detection; ``none`` (the
default) is the plain with/without comparison.

``labels.kind: injected`` keeps the paper's protocol: the target is 1 for every injected gas, however faint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from robert.config_checks import check_choice, check_mapping, check_number

LABEL_KINDS = ("detection", "injected")
UNDETECTABLE_POLICIES = ("negative", "ignore")
PROFILES = ("none", "gases")


class State(IntEnum):
    ABSENT = 0
    DETECTED = 1
    UNDETECTABLE = 2


@dataclass(frozen=True)
class LabelSettings:
    """``conf/labels/*.yaml``, validated."""

    kind: str = "detection"
    min_chi2: float = 9.0
    undetectable: str = "negative"
    profile: str = "none"

    @classmethod
    def from_config(cls, section: Mapping, field: str = "labels") -> LabelSettings:
        check_mapping(section, field)
        kind = check_choice(section.get("kind"), f"{field}.kind", LABEL_KINDS)
        min_chi2 = check_number(section.get("min_chi2", 9.0), f"{field}.min_chi2", minimum=0.0, strictly_above=True)
        undetectable = check_choice(section.get("undetectable", "negative"), f"{field}.undetectable",
                                    UNDETECTABLE_POLICIES)
        profile = check_choice(section.get("profile", "none"), f"{field}.profile", PROFILES)
        return cls(str(kind), min_chi2, str(undetectable), str(profile))

    def describe(self) -> str:
        if self.kind == "injected":
            return "injected"
        profiled = ", profiled over the other gases" if self.profile == "gases" else ""
        return f"detection (chi2>={self.min_chi2:g}{profiled}, undetectable {self.undetectable})"


def gas_chi2(pair_chi2: Tensor, pair_molecule: Tensor, n_molecules: int) -> Tensor:
    """(B, M) Delta chi^2 per molecule from (B, K) per stored difference and its molecule index (-1 = padding)."""
    out = torch.zeros(pair_chi2.shape[0], n_molecules + 1, device=pair_chi2.device, dtype=pair_chi2.dtype)
    column = torch.where(pair_molecule >= 0, pair_molecule, torch.full_like(pair_molecule, n_molecules))
    out.scatter_add_(1, column.long(), torch.nan_to_num(pair_chi2, posinf=torch.finfo(pair_chi2.dtype).max))
    return out[:, :n_molecules]


def states(chi2: Tensor, injected: Tensor, min_chi2: float) -> Tensor:
    """(B, M) :class:`State` of every (spectrum, gas) pair."""
    injected = injected > 0.5
    detected = injected & (chi2 >= min_chi2)
    return torch.where(detected, int(State.DETECTED),
                       torch.where(injected, int(State.UNDETECTABLE), int(State.ABSENT))).to(torch.int8)


def targets_and_weights(state: Tensor, settings: LabelSettings) -> tuple[Tensor, Tensor]:
    """(B, M) training targets in {0, 1} and loss weights in {0, 1} for the given states."""
    if settings.kind == "injected":
        target = (state != int(State.ABSENT)).float()
        return target, torch.ones_like(target)
    target = (state == int(State.DETECTED)).float()
    if settings.undetectable == "ignore":
        return target, (state != int(State.UNDETECTABLE)).float()
    return target, torch.ones_like(target)


__all__ = ["LABEL_KINDS", "PROFILES", "LabelSettings", "State", "gas_chi2", "states", "targets_and_weights"]
