"""Classification metrics and the confusion matrix (JSON + PNG), shared by training and evaluation.

Single gas (one label per row): the predicted molecule is the most probable one (argmax), as in the
paper's accuracy. Mixtures: a molecule is present when P > 0.5; the "confusion matrix" then counts,
for each true molecule i, the spectra containing i in which molecule j was predicted present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

THRESHOLD = 0.5


def single_gas_rows(labels: np.ndarray) -> np.ndarray:
    return labels.sum(axis=1) == 1


def classification_metrics(probs: np.ndarray, labels: np.ndarray, molecules: list[str]) -> dict[str, Any]:
    """Accuracy (single-gas rows, argmax), exact match, per-molecule precision/recall/F1, macro-F1."""
    truth, predicted = labels > 0.5, probs > THRESHOLD
    single = single_gas_rows(labels)
    tp = (predicted & truth).sum(0).astype(float)
    fp = (predicted & ~truth).sum(0).astype(float)
    fn = (~predicted & truth).sum(0).astype(float)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)
    out: dict[str, Any] = {
        "n_spectra": int(len(labels)),
        "exact_match": float((predicted == truth).all(1).mean()),
        "macro_f1": float(f1.mean()),
        "per_molecule": {m: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                         for m, p, r, f, s in zip(molecules, precision, recall, f1, truth.sum(0), strict=True)},
    }
    if single.any():
        out["accuracy"] = float((probs[single].argmax(1) == labels[single].argmax(1)).mean())
    return out


def confusion_matrix(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(M, M) counts: rows true molecule, columns predicted (argmax when every row holds one gas)."""
    n = labels.shape[1]
    if single_gas_rows(labels).all():
        matrix = np.zeros((n, n), dtype=int)
        np.add.at(matrix, (labels.argmax(1), probs.argmax(1)), 1)
        return matrix
    return ((labels > 0.5).T.astype(int) @ (probs > THRESHOLD).astype(int))


def confusion_pairs(matrix: np.ndarray, molecules: list[str]) -> list[dict[str, Any]]:
    """Off-diagonal cells with counts, largest first: which molecule is taken for which."""
    pairs = [{"true": molecules[i], "predicted": molecules[j], "count": int(matrix[i, j])}
             for i in range(len(molecules)) for j in range(len(molecules)) if i != j and matrix[i, j] > 0]
    return sorted(pairs, key=lambda p: -p["count"])


def write_confusion(matrix: np.ndarray, molecules: list[str], directory: Path, title: str) -> list[Path]:
    """confusion_matrix.json and confusion_matrix.png under ``directory``; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, png_path = directory / "confusion_matrix.json", directory / "confusion_matrix.png"
    json_path.write_text(json.dumps({"molecules": molecules, "rows": "true", "columns": "predicted",
                                     "matrix": matrix.tolist(), "pairs": confusion_pairs(matrix, molecules)},
                                    indent=2))
    size = 1.5 + 0.55 * len(molecules)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(molecules)), molecules, rotation=45, ha="right")
    ax.set_yticks(range(len(molecules)), molecules)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return [json_path, png_path]
