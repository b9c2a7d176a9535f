"""How well a recogniser's probabilities can be trusted: ROC AUC (one-vs-rest and pairwise), reliability, ECE.

* Pairwise ROC AUC: ``pair_auc[m, j]`` is how well P(m) ranks spectra holding m above spectra holding j (rows
  with both or neither left out): the separability of two molecules (e.g. TiO and VO), which a one-vs-rest AUC
  hides when every other gas is easy.
* Reliability (test set, evaluation stage): every (spectrum, molecule) probability against whether the molecule
  is detectable, in equal-width probability bins; ECE = sum_b n_b/N |frequency_b - mean P_b|. Pooled over all
  pairs it is dominated by the many confidently-absent pairs, so the top-label version (each spectrum's highest
  probability against its truth) is given too.

ROC AUC by the rank statistic (Mann-Whitney U, ties averaged) with ``scipy.stats.rankdata``. scipy and
matplotlib are imported where used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robert.atomic import atomic_output, atomic_write_bytes


def roc_auc(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(M,) ROC AUC of each column; NaN where a column has no positives or no negatives."""
    from scipy.stats import rankdata

    truth = labels > 0.5
    ranks = rankdata(probs, axis=0)
    n_pos, n_neg = truth.sum(0), (~truth).sum(0)
    u = (ranks * truth).sum(0) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def pairwise_auc(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(M, M): [m, j] = AUC of P(m) on rows with m but not j against rows with j but not m; NaN on the diagonal."""
    truth = labels > 0.5
    n = probs.shape[1]
    table = np.full((n, n), np.nan)
    for m in range(n):
        for j in range(n):
            if j != m:
                rows = truth[:, m] != truth[:, j]
                table[m, j] = roc_auc(probs[rows][:, [m]], truth[rows][:, [m]])[0]
    return table


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> tuple[list[dict[str, Any]], float]:
    """Reliability table (one row per non-empty bin) and the expected calibration error, all pairs pooled."""
    p, truth = probs.ravel().astype(float), (labels.ravel() > 0.5).astype(float)
    index = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    table, ece = [], 0.0
    for b in range(n_bins):
        members = index == b
        if members.any():
            confidence, frequency = float(p[members].mean()), float(truth[members].mean())
            ece += members.sum() / p.size * abs(frequency - confidence)
            table.append({"bin_low": b / n_bins, "bin_high": (b + 1) / n_bins, "mean_probability": confidence,
                          "observed_frequency": frequency, "n": int(members.sum())})
    return table, float(ece)


def write_reliability(probs: np.ndarray, labels: np.ndarray, molecules: Sequence[str], n_bins: int,
                      directory: Path, title: str) -> tuple[list[Path], dict[str, float]]:
    """reliability.csv (the diagram's points) and reliability.png under ``directory``.

    Returns the paths and ``{"ece": all pairs pooled, "ece_top_label": highest probability per spectrum}``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    table, ece = reliability(probs, labels, n_bins)
    top = probs.argmax(1)
    top_table, ece_top = reliability(probs[np.arange(len(probs)), top], labels[np.arange(len(probs)), top], n_bins)
    per_molecule = {m: reliability(probs[:, [j]], labels[:, [j]], n_bins)[1] for j, m in enumerate(molecules)}
    csv_path, png_path = directory / "reliability.csv", directory / "reliability.png"
    header = "bin_low,bin_high,mean_probability,observed_frequency,n\n"
    atomic_write_bytes(csv_path, (header + "".join(
        f"{r['bin_low']:.4g},{r['bin_high']:.4g},{r['mean_probability']:.6f},{r['observed_frequency']:.6f},{r['n']}\n"
        for r in table)).encode())
    fig, (upper, bottom) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    upper.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    upper.plot([r["mean_probability"] for r in table], [r["observed_frequency"] for r in table], "o-",
               label=f"every spectrum x molecule (ECE {ece:.3f})")
    upper.plot([r["mean_probability"] for r in top_table], [r["observed_frequency"] for r in top_table], "s-",
               label=f"top label per spectrum (ECE {ece_top:.3f})")
    worst = max(per_molecule, key=per_molecule.get)
    upper.set_ylabel("observed frequency")
    upper.set_title(f"{title}\nworst molecule: {worst} (ECE {per_molecule[worst]:.3f})", fontsize=9)
    upper.legend(loc="upper left", fontsize=8)
    bottom.bar([(r["bin_low"] + r["bin_high"]) / 2 for r in table], [r["n"] for r in table], width=1 / n_bins,
               color="tab:blue", alpha=0.6)
    bottom.set_yscale("log")
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("pairs")
    fig.tight_layout()
    with atomic_output(png_path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return [csv_path, png_path], {"ece": ece, "ece_top_label": ece_top}
