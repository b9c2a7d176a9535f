"""Scores of a recogniser on an observed set, as the field reports molecule detections.

Duque-Castaño et al. 2025 (MNRAS 539, 1528) report a molecule-presence classifier by per-molecule F1, recall,
precision and true-negative rate, Hamming loss and exact match, broken out by abundance and SNR. Here:

* standard multi-label scores (torchmetrics) against the detection targets, a gas called present where its P reaches
  its threshold (the model's: :mod:`robert.inference.thresholds`; 0.5 where none is given): per-molecule
  precision/recall/F1, macro-F1, exact match, Hamming loss; ``accuracy`` is the paper's (rows with exactly one
  injected gas: the argmax is that gas);
* **completeness**: the share of injected gases called present, per molecule, by feature S/N = sqrt(Delta chi^2)
  under the set's observation (:mod:`robert.spectra.observation`) and by log10 mixing ratio;
* **false-alarm rate**: the share of NOT injected gases called present, per molecule;
* a declared degenerate group (``evaluate.degenerate_groups``, e.g. [TiO, VO]) is also scored as one answer:
  a member counts as found when any member is called; an absent group raises a false alarm when any is called.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.functional.classification import (  # noqa: E402
    multilabel_exact_match,
    multilabel_f1_score,
    multilabel_hamming_distance,
    multilabel_precision,
    multilabel_recall,
)

from robert.model.metrics import IGNORE, THRESHOLD, ignoring_targets  # noqa: E402

SNR_BIN_EDGES = (0.0, 1.0, 3.0, 5.0, 10.0, 20.0, 50.0, np.inf)


def calls_at(probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """(N, M) bool: each molecule called present, P >= its threshold ((M,), default 0.5 for every molecule)."""
    return np.asarray(probs) >= (THRESHOLD if thresholds is None else np.asarray(thresholds, dtype=float))


def classification_metrics(probs: np.ndarray, targets: np.ndarray, molecules: list[str],
                           weights: np.ndarray | None = None, injected: np.ndarray | None = None,
                           thresholds: np.ndarray | None = None) -> dict[str, Any]:
    """Multi-label scores against ``targets`` (entries of weight 0 left out) and single-gas accuracy.

    ``injected`` (default: ``targets``) decides which rows hold exactly one gas for ``accuracy``; ``thresholds``
    (M,): see :func:`calls_at`.
    """
    # the calls as 0/1 integers: torchmetrics then applies no threshold of its own
    p = torch.as_tensor(calls_at(probs, thresholds).astype(np.int64))
    t = ignoring_targets(torch.as_tensor(targets), torch.ones_like(p) if weights is None else torch.as_tensor(weights))
    n = len(molecules)
    kwargs = {"num_labels": n, "ignore_index": IGNORE}
    precision = multilabel_precision(p, t, average="none", **kwargs).numpy()
    recall = multilabel_recall(p, t, average="none", **kwargs).numpy()
    f1 = multilabel_f1_score(p, t, average="none", **kwargs).numpy()
    support = ((t == 1).sum(0)).numpy()
    out: dict[str, Any] = {
        "n_spectra": int(len(p)),
        "exact_match": float(multilabel_exact_match(p, t, **kwargs)),
        "hamming_loss": float(multilabel_hamming_distance(p, t, **kwargs)),
        "macro_f1": float(f1.mean()),
        "per_molecule": {m: {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(s)}
                         for m, a, b, c, s in zip(molecules, precision, recall, f1, support, strict=True)},
    }
    present = np.asarray(targets if injected is None else injected) > 0.5
    single = present.sum(1) == 1
    if single.any():
        out["accuracy"] = float((np.asarray(probs)[single].argmax(1) == present[single].argmax(1)).mean())
    return out


def _group_columns(called: np.ndarray, injected: np.ndarray, molecules: list[str],
                   groups: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Columns merged per degenerate group (any member): (called, injected, names); other columns unchanged."""
    index = {m: i for i, m in enumerate(molecules)}
    merged = {index[m] for g in groups for m in g}
    columns = [([i], m) for i, m in enumerate(molecules) if i not in merged]
    columns += [([index[m] for m in g], "/".join(g)) for g in groups]
    return (np.stack([called[:, c].any(1) for c, _ in columns], 1),
            np.stack([injected[:, c].any(1) for c, _ in columns], 1), [name for _, name in columns])


def completeness_by(values: np.ndarray, called: np.ndarray, injected: np.ndarray, edges: Sequence[float],
                    names: list[str]) -> list[dict[str, Any]]:
    """Per bin of ``values`` (N, M) over injected pairs: the share called, per molecule and overall."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = injected & (values >= low) & (values < high)
        row: dict[str, Any] = {"low": float(low), "high": float(high), "n": int(in_bin.sum()),
                               "completeness": float(called[in_bin].mean()) if in_bin.any() else float("nan")}
        for j, name in enumerate(names):
            row[name] = float(called[in_bin[:, j], j].mean()) if in_bin[:, j].any() else float("nan")
        rows.append(row)
    return rows


def detection_report(probs: np.ndarray, injected: np.ndarray, chi2: np.ndarray, log10_vmr: np.ndarray,
                     molecules: list[str], groups: Sequence[Sequence[str]] = (),
                     vmr_edges: Sequence[float] | None = None, thresholds: np.ndarray | None = None) -> dict[str, Any]:
    """Completeness by feature S/N and by log10 VMR, false-alarm rates; each per molecule (and per group)."""
    calls = calls_at(probs, thresholds)
    present = np.asarray(injected) > 0.5
    snr = np.sqrt(np.clip(np.nan_to_num(np.asarray(chi2, float), posinf=1e30), 0, None))
    vmr_edges = list(vmr_edges) if vmr_edges is not None else list(np.arange(-8, -1.5, 1.0))
    report: dict[str, Any] = {}
    views = [("", calls, present, snr, np.where(present, log10_vmr, -np.inf), list(molecules))]
    if groups:
        g_called, g_present, g_names = _group_columns(calls, present, molecules, groups)
        # a group's S/N: its best member's
        g_snr = np.stack([snr[:, [molecules.index(m) for m in name.split("/")]].max(1) for name in g_names], 1)
        views.append(("grouped_", g_called, g_present, g_snr, np.full(g_snr.shape, np.nan), g_names))
    for prefix, c, p, s, v, names in views:
        by_snr = completeness_by(s, c, p, SNR_BIN_EDGES, names)
        absent = ~p
        far = {name: float(c[absent[:, j], j].mean()) if absent[:, j].any() else float("nan")
               for j, name in enumerate(names)}
        strong = {name: _share(c[:, j], p[:, j] & (s[:, j] >= 10)) for j, name in enumerate(names)}
        medium = {name: _share(c[:, j], p[:, j] & (s[:, j] >= 5) & (s[:, j] < 10)) for j, name in enumerate(names)}
        report[f"{prefix}completeness_vs_feature_snr"] = by_snr
        report[f"{prefix}completeness_snr_ge_10"] = strong
        report[f"{prefix}completeness_snr_5_10"] = medium
        report[f"{prefix}false_alarm_rate"] = far
        if not prefix:
            report["completeness_vs_log10_vmr"] = completeness_by(v, c, p, vmr_edges, names)
    return report


def _share(called: np.ndarray, members: np.ndarray) -> float:
    return float(called[members].mean()) if members.any() else float("nan")


def confusion_matrix(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """(M, M) counts: rows true molecule, columns predicted (argmax when every row holds one gas).

    Otherwise, for each true molecule i, the spectra containing i in which molecule j was called present
    (:func:`calls_at`).
    """
    n = labels.shape[1]
    labels = np.asarray(labels) > 0.5
    if (labels.sum(1) == 1).all():
        matrix = np.zeros((n, n), dtype=int)
        np.add.at(matrix, (labels.argmax(1), np.asarray(probs).argmax(1)), 1)
        return matrix
    return labels.T.astype(int) @ calls_at(probs, thresholds).astype(int)


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


__all__ = ["SNR_BIN_EDGES", "calls_at", "classification_metrics", "completeness_by", "confusion_matrix",
           "confusion_pairs", "detection_report", "write_confusion"]
