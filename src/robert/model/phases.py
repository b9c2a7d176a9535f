"""The training schedule as an explicit, typed sequence of phases, one per epoch.

A DBN trains in four kinds of phase (Hinton, Osindero & Teh 2006; :mod:`robert.model.dbn`): greedy CD
pre-training of each stacked RBM, the top associative RBM over (penultimate layer + labels), supervised
fine-tuning of the classifier the stack initialises, and generative fine-tuning (our up-down variant, for the
dreams). A peer network (MLP, CNN) has fine-tuning only. The phase of every epoch is a pure function of the
epoch, which Lightning checkpoints, so a resumed run lands in the right layer and phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PhaseKind(StrEnum):
    PRETRAIN = "rbm"
    TOP_RBM = "top_rbm"
    FINETUNE = "finetune"
    GENERATIVE = "generative"


@dataclass(frozen=True)
class Phase:
    """One epoch's phase; ``layer`` (0-based) is the stacked RBM a PRETRAIN phase trains."""

    kind: PhaseKind
    layer: int | None = None

    @property
    def name(self) -> str:
        """The name metrics are logged under: ``rbm1``, ``rbm2``, ..., ``top_rbm``, ``finetune``, ``generative``."""
        return f"rbm{self.layer + 1}" if self.kind is PhaseKind.PRETRAIN else self.kind.value

    @property
    def trains_rbm(self) -> bool:
        """Contrastive-divergence phases (no optimiser step)."""
        return self.kind in (PhaseKind.PRETRAIN, PhaseKind.TOP_RBM, PhaseKind.GENERATIVE)

    @property
    def uses_top_rbm(self) -> bool:
        return self.kind in (PhaseKind.TOP_RBM, PhaseKind.GENERATIVE)

    @property
    def index(self) -> int:
        """Position of the kind in :class:`PhaseKind` (logged as the ``phase`` metric)."""
        return list(PhaseKind).index(self.kind)


FINETUNE = Phase(PhaseKind.FINETUNE)
GENERATIVE = Phase(PhaseKind.GENERATIVE)
TOP_RBM = Phase(PhaseKind.TOP_RBM)


def dbn_schedule(epochs_per_layer: list[int], top_epochs: int, finetune_epochs: int,
                 generative_epochs: int) -> list[Phase]:
    """Every epoch's phase: each stacked RBM in turn, the top RBM, fine-tuning, generative fine-tuning."""
    schedule = [Phase(PhaseKind.PRETRAIN, layer) for layer, n in enumerate(epochs_per_layer) for _ in range(n)]
    return schedule + [TOP_RBM] * top_epochs + [FINETUNE] * finetune_epochs + [GENERATIVE] * generative_epochs


__all__ = ["FINETUNE", "GENERATIVE", "Phase", "PhaseKind", "TOP_RBM", "dbn_schedule"]
