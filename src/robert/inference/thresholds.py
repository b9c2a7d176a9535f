"""Detection thresholds set by a false-alarm rate: what "detected" promises, the same for every gas.

One threshold for every gas (P >= 0.5) gives each gas its own false-alarm rate: on the realistic emission test set
from 0.15 % (TiO) to 2.6 % (VO, whose bands resemble TiO's), so a "detection" of one gas meant less than one of
another. Observers state a detection at a false-alarm probability instead. With ``inference.false_alarm_rate``
set, each molecule's threshold is the lowest P that the validation spectra in which it is ABSENT reach at no more
than that rate, over ``inference.calibration_draws`` observations of the validation split under the training prior
(coverage, error bars, noise, as the network was trained). Validation spectra only, never test ones; the rate
holds on average over that prior, not for every single instrument (the headline test set's rates: metrics.json).

The thresholds are stored with the model (``inference.json``), so the CLI, Python and REST verdicts and the
evaluation's scores use the same ones. Versions logged before per-molecule thresholds carry one ``threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robert.config_checks import check_mapping, check_number, check_positive_int


@dataclass(frozen=True)
class ThresholdSettings:
    """``inference.threshold`` / ``false_alarm_rate`` / ``calibration_draws``, validated."""

    threshold: float = 0.5                # every gas's threshold when false_alarm_rate is None
    false_alarm_rate: float | None = None
    calibration_draws: int = 8

    @classmethod
    def from_config(cls, section: Mapping, field: str = "inference") -> ThresholdSettings:
        check_mapping(section, field)
        rate = section.get("false_alarm_rate")
        if rate is not None:
            rate = check_number(rate, f"{field}.false_alarm_rate", minimum=0.0, strictly_above=True, below=1.0)
        return cls(check_number(section.get("threshold", 0.5), f"{field}.threshold", minimum=0.0, maximum=1.0),
                   rate, check_positive_int(section.get("calibration_draws", 8), f"{field}.calibration_draws"))


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


def model_thresholds(settings: Mapping, molecules: Sequence[str]) -> np.ndarray:
    """(M,) the thresholds a model's ``inference.json`` holds, in ``molecules`` order (one ``threshold`` for all in
    versions logged before per-molecule thresholds)."""
    if "thresholds" in settings:
        return np.array([float(settings["thresholds"][m]) for m in molecules])
    return np.full(len(molecules), float(settings["threshold"]))


__all__ = ["ThresholdSettings", "false_alarm_thresholds", "model_thresholds"]
