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
    """``inference.threshold`` / ``false_alarm_rate`` / ``calibration_draws`` / ``preset_false_alarm_rate`` /
    ``preset_calibration_draws``, validated."""

    threshold: float = 0.5                # every gas's threshold when false_alarm_rate is None
    false_alarm_rate: float | None = None
    calibration_draws: int = 8
    preset_false_alarm_rate: float | None = None  # also on each preset's own draws (None: the prior's average only)
    preset_calibration_draws: int = 2

    @classmethod
    def from_config(cls, section: Mapping, field: str = "inference") -> ThresholdSettings:
        check_mapping(section, field)
        rate, preset_rate = (None if section.get(key) is None else
                             check_number(section[key], f"{field}.{key}", minimum=0.0, strictly_above=True, below=1.0)
                             for key in ("false_alarm_rate", "preset_false_alarm_rate"))
        return cls(check_number(section.get("threshold", 0.5), f"{field}.threshold", minimum=0.0, maximum=1.0),
                   rate, check_positive_int(section.get("calibration_draws", 8), f"{field}.calibration_draws"),
                   preset_rate, check_positive_int(section.get("preset_calibration_draws", 2),
                                                   f"{field}.preset_calibration_draws"))


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
