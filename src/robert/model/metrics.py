"""Validation metrics of a recogniser, from torchmetrics: what the training loop logs every epoch.

Detection targets (:mod:`robert.spectra.detection`) with loss weight 0 are left out (torchmetrics'
``ignore_index``). ``accuracy`` is the paper's: over spectra with exactly one injected gas, the argmax of the
outputs is that gas.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
)

from robert.spectra.detection import State

IGNORE = -1
THRESHOLD = 0.5


def ignoring_targets(targets: Tensor, weights: Tensor) -> Tensor:
    """Integer targets with the weight-0 entries set to :data:`IGNORE`."""
    return torch.where(weights > 0, targets, torch.full_like(targets, IGNORE)).int()


class DetectionMetrics(nn.Module):
    """macro-F1, exact match, Hamming loss (threshold 0.5), the weighted BCE and single-gas accuracy."""

    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.multilabel = MetricCollection({
            "macro_f1": MultilabelF1Score(n_labels, threshold=THRESHOLD, average="macro", ignore_index=IGNORE),
            "exact_match": MultilabelExactMatch(n_labels, threshold=THRESHOLD, ignore_index=IGNORE),
            "hamming_loss": MultilabelHammingDistance(n_labels, threshold=THRESHOLD, ignore_index=IGNORE)})
        self.accuracy = MulticlassAccuracy(n_labels, average="micro")
        self.loss = MeanMetric()
        self.has_single = False

    def update(self, logits: Tensor, targets: Tensor, weights: Tensor, states: Tensor) -> None:
        logits = logits.float()
        self.multilabel.update(torch.sigmoid(logits), ignoring_targets(targets, weights))
        bce = nn.functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        self.loss.update(bce, weights.float())
        injected = states != int(State.ABSENT)
        single = injected.sum(1) == 1
        if bool(single.any()):
            self.accuracy.update(logits[single], injected[single].float().argmax(1))
            self.has_single = True

    def compute(self) -> dict[str, Tensor]:
        out = {"loss": self.loss.compute(), **self.multilabel.compute()}
        if self.has_single:
            out["accuracy"] = self.accuracy.compute()
        return out

    def reset(self) -> None:
        self.multilabel.reset()
        self.accuracy.reset()
        self.loss.reset()
        self.has_single = False


__all__ = ["DetectionMetrics", "IGNORE", "THRESHOLD", "ignoring_targets"]
