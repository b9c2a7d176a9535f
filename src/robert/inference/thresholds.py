"""Detection thresholds set by a false-alarm rate: what "detected" promises, the same for every gas.

One threshold for every gas (P >= 0.5) gives each gas its own false-alarm rate: on the realistic emission test set
from 0.15 % (TiO) to 2.6 % (VO, whose bands resemble TiO's), so a "detection" of one gas meant less than one of
another. Observers state a detection at a false-alarm probability instead. With ``inference.false_alarm_rate``
set, each molecule's threshold is the lowest P that the validation spectra in which it is ABSENT reach at no more
than that rate, over ``inference.calibration_draws`` observations of the validation split under the training prior
(coverage, error bars, noise, as the network was trained). That rate holds on average over the prior, and an
average can hide one instrument where a gas is called too often (measured: 1.3 % on WFC3+Spitzer at SNR 10 where
the prior's rate was 0.5 %). So with ``inference.preset_false_alarm_rate`` set, the threshold is raised where needed
until each instrument preset of the prior (``observation.coverage.presets``), observed ``preset_calibration_draws``
times at the prior's SNRs and error shapes, reaches at most that rate as well. Validation spectra only, never test
ones (the test sets' rates: metrics.json).

Thresholds by coverage. A gas's false-alarm rate depends on the coverage: one threshold per gas, set where the
worst preset needs it, calls gases too rarely on every other coverage (measured on the realistic emission set at
SNR 10: the whole grid's worst completeness at S/N >= 10 0.21 with the shared thresholds, 0.26 with its own; NIRISS
SOSS 0.05 -> 0.23). So each calibrated coverage (the whole grid and each preset of the prior) also keeps its own
thresholds, set at ``preset_false_alarm_rate`` on its own draws, and a spectrum is called at the thresholds of the
calibrated coverage its observed cells match (Jaccard index of the observed model-grid cells >=
``inference.coverage_match``); any other coverage (a sub-range, a re-binned or gapped spectrum, an unlisted
instrument) gets the shared ones, which hold on every calibrated coverage and the prior at once.

The thresholds are stored with the model (``inference.json``), so the CLI, Python and REST verdicts and the
evaluation's scores use the same ones. Versions logged before per-molecule thresholds carry one ``threshold``,
versions logged before coverage thresholds the shared ones only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robert.config_checks import check_mapping, check_number, check_positive_int


@dataclass(frozen=True)
class ThresholdSettings:
    """``inference.threshold`` / ``false_alarm_rate`` / ``calibration_draws`` / ``preset_false_alarm_rate`` /
    ``preset_calibration_draws``, validated."""

    threshold: float = 0.5                # every gas's threshold when false_alarm_rate is None
    false_alarm_rate: float | None = None
    calibration_draws: int = 8
    preset_false_alarm_rate: float | None = None  # also on each preset's own draws (None: the prior's average only)
    preset_calibration_draws: int = 4
    coverage_match: float = 0.8   # Jaccard index of observed cells at which a spectrum takes a coverage's thresholds

    @classmethod
    def from_config(cls, section: Mapping, field: str = "inference") -> ThresholdSettings:
        check_mapping(section, field)
        rate, preset_rate = (None if section.get(key) is None else
                             check_number(section[key], f"{field}.{key}", minimum=0.0, strictly_above=True, below=1.0)
                             for key in ("false_alarm_rate", "preset_false_alarm_rate"))
        return cls(check_number(section.get("threshold", 0.5), f"{field}.threshold", minimum=0.0, maximum=1.0),
                   rate, check_positive_int(section.get("calibration_draws", 8), f"{field}.calibration_draws"),
                   preset_rate, check_positive_int(section.get("preset_calibration_draws", 4),
                                                   f"{field}.preset_calibration_draws"),
                   check_number(section.get("coverage_match", 0.8), f"{field}.coverage_match", minimum=0.0,
                                strictly_above=True, maximum=1.0))


def false_alarm_thresholds(probs: np.ndarray, absent: np.ndarray, rate: float, fallback: float) -> np.ndarray:
    """(M,) per molecule: the lowest threshold t with share(P >= t among its absent rows) <= ``rate``.

    ``probs`` and ``absent`` (N, M); a molecule absent from no row keeps ``fallback``."""
    thresholds = np.full(probs.shape[1], float(fallback))
    for j in range(probs.shape[1]):
        negatives = np.sort(np.asarray(probs[absent[:, j], j], dtype=np.float64))[::-1]
        if len(negatives):
            allowed = int(np.floor(rate * len(negatives)))  # this many absent rows may reach the threshold
            # just above the first value that would exceed the allowance (ties stay below the threshold)
            thresholds[j] = 0.0 if allowed >= len(negatives) else float(np.nextafter(negatives[allowed], np.inf))
    return thresholds


ANY_COVERAGE = "any"  # the basis named for a spectrum called at the shared thresholds


@dataclass(frozen=True)
class DetectionThresholds:
    """Each molecule's threshold on P for any coverage: a calibrated coverage's own where a spectrum's observed
    cells match it, the shared ones elsewhere."""

    shared: np.ndarray                       # (M,) any coverage
    coverage_names: tuple[str, ...] = ()
    coverage_cells: np.ndarray | None = None  # (C, W) bool: the model-grid cells each calibrated coverage observes
    per_coverage: np.ndarray | None = None   # (C, M)
    coverage_match: float = 0.8

    def coverage_of(self, observed: np.ndarray) -> np.ndarray:
        """(N,) index of the calibrated coverage each row of ``observed`` ((N, W) bool) matches best with a
        Jaccard index >= ``coverage_match``; -1: none (the shared thresholds)."""
        observed = np.atleast_2d(np.asarray(observed, dtype=bool))
        if self.coverage_cells is None or not len(self.coverage_names):
            return np.full(len(observed), -1)
        cells = self.coverage_cells.astype(np.float64)
        both = observed.astype(np.float64) @ cells.T
        either = observed.sum(1, keepdims=True) + cells.sum(1)[None, :] - both
        jaccard = both / np.maximum(either, 1.0)
        best = jaccard.argmax(1)
        return np.where(jaccard[np.arange(len(observed)), best] >= self.coverage_match, best, -1)

    def for_observed(self, observed: np.ndarray) -> np.ndarray:
        """(N, M) the thresholds of each row of ``observed`` ((N, W) bool: its observed model-grid cells)."""
        index = self.coverage_of(observed)
        table = self.shared[None, :] if self.per_coverage is None else np.vstack([self.per_coverage,
                                                                                   self.shared[None, :]])
        return table[np.where(index < 0, len(table) - 1, index)]

    def basis(self, observed: np.ndarray) -> list[str]:
        """The name of the coverage whose thresholds each row gets (``any`` for the shared ones)."""
        return [self.coverage_names[i] if i >= 0 else ANY_COVERAGE for i in self.coverage_of(observed)]

    def to_settings(self, molecules: Sequence[str]) -> dict:
        """The ``inference.json`` entries: ``thresholds`` (shared) and ``coverage_thresholds`` (cell indices and
        thresholds of each calibrated coverage)."""
        out = {"thresholds": dict(zip(molecules, self.shared.tolist(), strict=True)),
               "coverage_match": self.coverage_match, "coverage_thresholds": {}}
        for i, name in enumerate(self.coverage_names):
            out["coverage_thresholds"][name] = {
                "cells": np.flatnonzero(self.coverage_cells[i]).tolist(),
                "thresholds": dict(zip(molecules, self.per_coverage[i].tolist(), strict=True))}
        return out


def model_thresholds(settings: Mapping, molecules: Sequence[str]) -> DetectionThresholds:
    """The thresholds a model's ``inference.json`` holds, in ``molecules`` order (one ``threshold`` for all in
    versions logged before per-molecule thresholds; shared ones only before coverage thresholds)."""
    if "thresholds" not in settings:
        return DetectionThresholds(np.full(len(molecules), float(settings["threshold"])))
    shared = np.array([float(settings["thresholds"][m]) for m in molecules])
    by_coverage = settings.get("coverage_thresholds") or {}
    if not by_coverage:
        return DetectionThresholds(shared)
    n_cells = len(settings["grid_um"])
    cells = np.zeros((len(by_coverage), n_cells), dtype=bool)
    for i, entry in enumerate(by_coverage.values()):
        cells[i, entry["cells"]] = True
    per_coverage = np.array([[float(entry["thresholds"][m]) for m in molecules] for entry in by_coverage.values()])
    return DetectionThresholds(shared, tuple(by_coverage), cells, per_coverage, float(settings["coverage_match"]))


__all__ = ["ANY_COVERAGE", "DetectionThresholds", "ThresholdSettings", "false_alarm_thresholds", "model_thresholds"]
