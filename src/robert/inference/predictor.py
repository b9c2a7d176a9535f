"""Observed spectra -> one probability per molecule, "detected" and "constrained" flags (the pyfunc's job).

What the training pipeline does to a simulated spectrum, done to an observed one: its rows (validated and
sorted by :mod:`robert.inference.observed`) are averaged onto the model's coverage bins
(:mod:`robert.spectra.resample`, the training transform), min-max normalised
(:func:`robert.spectra.transforms.normalise`) and classified; the calibration stored with the model gives the
per-molecule threshold and, from the spectrum's own SNR, whether the coverage constrains the molecule.

Observed SNR: training noise is white with sigma = mean(depth)/SNR (:mod:`robert.spectra.transforms`), so a
spectrum's equivalent SNR is mean(depth)/median(depth_err) over the model's bins (errors propagated through
the bin averaging). Real errors vary from bin to bin; the median is the typical one.

Spectra sharing the same bins (one instrument, many targets or noise draws) share one averaging matrix
and are processed as one array, which is what makes large batches fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from robert.errors import UserError
from robert.inference.calibration import Calibration
from robert.inference.observed import ObservedSpectra
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.coverage import Coverage, constrained, constraint_snr_index
from robert.spectra.resample import cached_averaging
from robert.spectra.transforms import normalise

# name -> MLflow type of every output column (one row per spectrum and molecule)
OUTPUT_COLUMNS = {"spectrum": "string", "molecule": "string", "probability": "double", "threshold": "double",
                  "detected": "boolean", "constrained": "boolean", "verdict": "string", "min_pair_auc": "double",
                  "confused_with": "string",
                  "snr": "double", "calibration_snr": "double", "coverage": "string", "n_points": "long",
                  "n_dropped": "long", "instrument": "string"}
DETECTED, NOT_DETECTED, NOT_CONSTRAINED = "detected", "not detected", "not constrained"


class CoverageMismatch(UserError):
    """The spectrum's wavelengths do not fit the model's coverage (another coverage model may fit)."""


@dataclass
class CoverageInputs:
    """Observed spectra on the model's coverage bins."""

    depth: np.ndarray                  # (S, n_bins)
    error: np.ndarray                  # (S, n_bins)
    n_used: np.ndarray                 # (S,) rows that entered the averages
    dropped: list[list[int]] = field(default_factory=list)  # per spectrum: input rows left out (outside)

    @property
    def snr(self) -> np.ndarray:
        """mean(depth) / median(error) per spectrum: the training noise convention's SNR."""
        return self.depth.mean(1) / _row_median(self.error)


def _row_median(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=1)`` by one partial sort (numpy's median spends 4x longer in its checks)."""
    half = values.shape[1] // 2
    kth = [half] if values.shape[1] % 2 else [half - 1, half]
    return np.partition(values, kth, axis=1)[:, kth].mean(1)


def _layouts(spectra: ObservedSpectra) -> list[list[int]]:
    """Spectra grouped by identical bins."""
    counts = spectra.counts
    if np.all(counts == counts[0]):  # fast path: one reshape instead of S slices
        low = spectra.bin_low_um.reshape(len(spectra), counts[0])
        high = spectra.bin_high_um.reshape(len(spectra), counts[0])
        if np.array_equal(low, np.broadcast_to(low[0], low.shape)) and \
                np.array_equal(high, np.broadcast_to(high[0], high.shape)):
            return [list(range(len(spectra)))]
    groups: dict[bytes, list[int]] = {}
    for index in range(len(spectra)):
        rows = spectra.rows(index)
        key = spectra.bin_low_um[rows].tobytes() + b"|" + spectra.bin_high_um[rows].tobytes()
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def _member_rows(spectra: ObservedSpectra, members: list[int], keep: np.ndarray) -> np.ndarray | slice:
    """Index of the kept rows of ``members`` (spectra of identical bins) as an (len(members), n_kept) array."""
    if keep.all() and len(members) == len(spectra):  # the whole table, one layout: a reshape, no copy
        return slice(None)
    return spectra.offsets[members][:, None] + np.flatnonzero(keep)[None, :]


def to_coverage(spectra: ObservedSpectra, coverage: Coverage, min_bin_fraction: float, drop_outside: bool,
                model: str) -> CoverageInputs:
    """Average every spectrum onto the coverage's bins; rows outside it are an error unless dropped."""
    n = len(spectra)
    groups = _layouts(spectra)
    depth = error = None
    if len(groups) > 1:
        depth, error = np.zeros((n, coverage.n_bins)), np.zeros((n, coverage.n_bins))
    n_used, dropped = np.zeros(n, dtype=int), [[] for _ in range(n)]
    where = f"model {model} (coverage {coverage.name}: {coverage.ranges_text()})"
    for members in groups:
        first = spectra.rows(members[0])
        low, high = spectra.bin_low_um[first], spectra.bin_high_um[first]
        averaging = cached_averaging(low, high, coverage.bin_low_um, coverage.bin_high_um)
        keep = averaging.source_inside >= min_bin_fraction
        if not keep.all() and not drop_outside:
            row = first.start + int(np.flatnonzero(~keep)[0])
            wavelength = spectra.wavelength_um[row]
            hint = " (wavelength_um must be in micron)" if wavelength > 100 else ""
            raise CoverageMismatch(
                f"{spectra.describe(int(spectra.source_rows[row]))}: wavelength_um {wavelength:g}{hint} (bin "
                f"{low[row - first.start]:.4g}-{high[row - first.start]:.4g} um) lies outside what {where} knows; "
                "remove such rows or drop them with --drop-outside (REST/Python: params drop_outside=true)")
        if not keep.any():
            raise CoverageMismatch(f"{spectra.names[members[0]]}: no row lies inside {where}")
        if not keep.all():
            averaging = cached_averaging(low[keep], high[keep], coverage.bin_low_um, coverage.bin_high_um)
        missing = np.flatnonzero(averaging.target_covered < min_bin_fraction)
        if missing.size:
            raise CoverageMismatch(
                f"{spectra.names[members[0]]}: covers {coverage.n_bins - missing.size} of the {coverage.n_bins} bins "
                f"of {where} (each needs >= {min_bin_fraction:.0%} covered); first uncovered bin "
                f"{coverage.bin_low_um[missing[0]]:.4g}-{coverage.bin_high_um[missing[0]]:.4g} um")
        rows = _member_rows(spectra, members, keep)
        shape = (len(members), int(keep.sum()))
        group_depth = averaging.apply(spectra.depth[rows].reshape(shape))
        group_error = averaging.apply_errors(spectra.depth_err[rows].reshape(shape))
        if depth is None:  # one layout: its arrays are the batch's
            depth, error = group_depth, group_error
        else:
            depth[members], error[members] = group_depth, group_error
        n_used[members] = int(keep.sum())
        if not keep.all():
            for member in members:
                dropped[member] = [int(spectra.source_rows[spectra.offsets[member] + j]) for j in np.flatnonzero(~keep)]
    return CoverageInputs(depth, error, n_used, dropped)


def predict_observed(network: DeepBeliefNetwork, molecules: list[str], coverage: Coverage,
                     calibration: Calibration, matching: Mapping, spectra: ObservedSpectra, model: str,
                     drop_outside: bool = False) -> pd.DataFrame:
    """One row per (spectrum, molecule): probability, threshold, detected, constrained, verdict, SNR..."""
    inputs = to_coverage(spectra, coverage, float(matching["min_bin_fraction"]), drop_outside, model)
    with torch.no_grad():
        probs = network.predict_proba(normalise(torch.as_tensor(inputs.depth, dtype=torch.float32))).numpy()
    snr = inputs.snr
    is_constrained, auc, partner = constrained(*calibration.separability(), calibration.snr_grid, snr,
                                               calibration.min_auc)
    detected = probs >= calibration.thresholds[None, :]
    verdict = np.where(~is_constrained, NOT_CONSTRAINED, np.where(detected, DETECTED, NOT_DETECTED))
    n, m = probs.shape
    per_spectrum = {"spectrum": np.asarray(spectra.names, dtype=object), "snr": snr,
                    "calibration_snr": np.asarray(calibration.snr_grid, float)[
                        constraint_snr_index(calibration.snr_grid, snr)],
                    "coverage": np.full(n, coverage.name, dtype=object), "n_points": inputs.n_used,
                    "n_dropped": np.asarray([len(d) for d in inputs.dropped], dtype=int),
                    "instrument": np.asarray(spectra.instruments, dtype=object)}
    per_pair = {"probability": probs.astype(float), "detected": detected, "constrained": is_constrained,
                "verdict": verdict, "min_pair_auc": auc,
                "confused_with": np.where(is_constrained, "", np.asarray(molecules, dtype=object)[partner]),
                "threshold": np.broadcast_to(calibration.thresholds, probs.shape),
                "molecule": np.broadcast_to(np.asarray(molecules, dtype=object), probs.shape)}
    table = {k: np.repeat(v, m) for k, v in per_spectrum.items()} | {k: v.ravel() for k, v in per_pair.items()}
    frame = pd.DataFrame(table, columns=list(OUTPUT_COLUMNS))
    if any(inputs.dropped):
        wavelength_of = dict(zip(spectra.source_rows.tolist(), spectra.wavelength_um.tolist(), strict=True))
        frame.attrs["dropped_rows"] = {name: [f"{spectra.describe(r)} ({wavelength_of[r]:g} um)" for r in rows]
                                       for name, rows in zip(spectra.names, inputs.dropped, strict=True) if rows}
    return frame
