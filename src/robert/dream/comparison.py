"""Dream against real spectra: Pearson r, RMS, and the dream confusion matrix.

Why a "signature" matrix beside the plain one: min-max normalised emission spectra are dominated by
the planet's continuum, which every class shares. On the paper-scale set the class means correlate
with each other at r >= 0.99, so "dream i correlates best with class mean j" on the raw spectra is
decided by noise, and a raw r >= 0.9 says only that the dream has the continuum's shape (the mean of
all training spectra scores that too: ``baseline_pearson_r``). The class-specific part of a spectrum is
its signature, the class mean minus the mean over all classes; a dream's signature is the dream minus
the mean over all dreams (the same construction). The dream confusion matrix and
``best_matching_class`` use the signatures; the raw matrix is reported beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two spectra (NaN when either is constant)."""
    a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    denominator = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denominator) if denominator > 0 else float("nan")


def rms(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference, in the units of the spectra (here: the [0, 1] normalised scale)."""
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def correlation_matrix(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(R, C) Pearson r of every row spectrum against every column spectrum."""
    return np.array([[pearson_r(row, column) for column in columns] for row in rows])


def signatures(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum minus the mean over the set: what tells one class (or one dream) from the others.

    Differences at the level of float rounding are set to 0: identical spectra have no signature (else their
    rounding noise would correlate with something)."""
    spectra = np.asarray(spectra, float)
    mean = spectra.mean(axis=0)
    return np.where(np.isclose(spectra, mean, rtol=1e-12, atol=0.0), 0.0, spectra - mean)


def best_index(row: np.ndarray) -> int | None:
    """The position of the highest r in a row, ignoring NaNs; None when every r is NaN (a constant dream or
    signature: e.g. every molecule dreams the same spectrum, so no dream matches any class)."""
    row = np.asarray(row, float)
    return None if np.isnan(row).all() else int(np.nanargmax(row))


@dataclass(frozen=True)
class ConfusionResult:
    """Dreams (rows) against class means (columns), molecules in the same order."""

    molecules: list[str]
    raw: np.ndarray            # r(dream_i, class mean_j)
    signature: np.ndarray      # r(dream signature_i, class signature_j)

    def best_match(self, index: int) -> str | None:
        best = best_index(self.signature[index])
        return None if best is None else self.molecules[best]

    @property
    def diagonal(self) -> list[bool]:
        return [self.best_match(i) == molecule for i, molecule in enumerate(self.molecules)]


def dream_confusion(dreams: np.ndarray, class_means: np.ndarray, molecules: Sequence[str]) -> ConfusionResult:
    """The raw and the signature dream confusion matrices (see the module docstring)."""
    return ConfusionResult(list(molecules), correlation_matrix(dreams, class_means),
                           correlation_matrix(signatures(dreams), signatures(class_means)))


@dataclass(frozen=True)
class Distinguishability:
    """Which classes' mean spectra can be told apart at all (their signatures are not near-copies)."""

    similarity: np.ndarray     # (M, M) r between class signatures
    most_similar: list[str]    # per molecule: the other class whose signature is closest
    most_similar_r: list[float]
    distinguishable: list[bool]


def class_distinguishability(class_means: np.ndarray, molecules: Sequence[str],
                             max_similarity_r: float) -> Distinguishability:
    """A class is distinguishable when its signature correlates below ``max_similarity_r`` with every other's."""
    similarity = correlation_matrix(signatures(class_means), signatures(class_means))
    others = np.where(np.eye(len(molecules), dtype=bool), -np.inf, similarity)
    closest = others.argmax(axis=1)
    closest_r = others[np.arange(len(molecules)), closest]
    return Distinguishability(similarity, [molecules[j] for j in closest], [float(r) for r in closest_r],
                              [bool(r < max_similarity_r) for r in closest_r])
