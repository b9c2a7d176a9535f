"""Detection scores computed by hand (numpy), to check the torchmetrics the training loop and evaluation log."""

from __future__ import annotations

import numpy as np


def scores_by_hand(logits: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Mean binary cross-entropy of the logits, and macro-F1, exact match and Hamming loss of the calls
    (probability >= threshold) against 0/1 ``targets`` (N, M), every entry weighted 1.

    F1 of a molecule with no true and no called positive is 0 (torchmetrics' convention)."""
    logits, truth = np.asarray(logits, dtype=np.float64), np.asarray(targets) > 0.5
    called = 1 / (1 + np.exp(-logits)) >= threshold
    bce = np.logaddexp(0.0, logits) - truth * logits
    tp, fp, fn = ((called & truth).sum(0), (called & ~truth).sum(0), (~called & truth).sum(0))
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return {"loss": float(bce.mean()), "macro_f1": float(f1.mean()),
            "exact_match": float((called == truth).all(1).mean()), "hamming_loss": float((called != truth).mean())}
