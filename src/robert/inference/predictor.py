"""Observed spectra -> one verdict per molecule: detected, not detected, or not constrained (the pyfunc's job).

What training does to a simulated spectrum, done to an observed one: its rows (validated and sorted by
:mod:`robert.inference.observed`) are placed on the model grid as observed segments with their errors
(:mod:`robert.inference.grid_mapping`), encoded as the network was trained (its channels; each instrument against
its own level where it was trained with free offsets between instruments) and classified. Whether the spectrum
could show each gas at all is decided from its own coverage and errors (:mod:`robert.inference.constraints`), not
from the network.

Spectra sharing the same bins (one instrument, many targets or noise draws) share one mapping and are processed
as one array, which is what makes large batches fast.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from robert.errors import UserError
from robert.inference.constraints import ConstraintReferences
from robert.inference.grid_mapping import cached_mapping, observe_rows_on_grid, segment_groups
from robert.inference.observed import ObservedSpectra
from robert.inference.thresholds import DetectionThresholds
from robert.model.base import Recogniser

# name -> MLflow type of every output column (one row per spectrum and molecule)
OUTPUT_COLUMNS = {"spectrum": "string", "molecule": "string", "probability": "double", "threshold": "double",
                  "threshold_coverage": "string",
                  "detected": "boolean", "constrained": "boolean", "verdict": "string",
                  "detectable_fraction": "double", "snr": "double", "n_points": "long", "n_dropped": "long",
                  "instrument": "string", "geometry": "string"}
DETECTED, NOT_DETECTED, NOT_CONSTRAINED = "detected", "not detected", "not constrained"
CHUNK_SPECTRA = 2048  # spectra of one layout processed together


def layouts(spectra: ObservedSpectra, by_instrument: bool = False) -> list[list[int]]:
    """Spectra grouped by identical bins (and, ``by_instrument``, identical instruments row by row)."""
    counts = spectra.counts
    columns = [spectra.bin_low_um, spectra.bin_high_um]
    if by_instrument and spectra.instrument_codes is not None:
        columns.append(spectra.instrument_codes)
    if np.all(counts == counts[0]):  # fast path: one reshape instead of S slices
        shaped = [column.reshape(len(spectra), counts[0]) for column in columns]
        if all(np.array_equal(a, np.broadcast_to(a[0], a.shape)) for a in shaped):
            return [list(range(len(spectra)))]
    groups: dict[bytes, list[int]] = {}
    for index in range(len(spectra)):
        rows = spectra.rows(index)
        key = b"|".join(column[rows].tobytes() for column in columns)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def row_median(values: np.ndarray) -> np.ndarray:
    """np.median(values, axis=1) for finite values, by one partition (np.median's NaN checks and general path cost
    as much again on large batches)."""
    half = values.shape[1] // 2
    if values.shape[1] % 2:
        return np.partition(values, half, axis=1)[:, half]
    return np.partition(values, [half - 1, half], axis=1)[:, half - 1:half + 1].mean(axis=1)


def predict_observed(network: Recogniser, molecules: list[str], grid_um: np.ndarray,
                     references: ConstraintReferences, settings: Mapping, spectra: ObservedSpectra,
                     geometry: str, model: str) -> pd.DataFrame:
    """One row per (spectrum, molecule): probability, detected, constrained, verdict, SNR, rows used/dropped.

    ``settings``: ``thresholds`` (a :class:`DetectionThresholds`: the P at or above which a constrained gas is
    "detected", per molecule, for the calibrated coverage the spectrum's cells match, ``threshold_coverage``, or
    for any coverage), ``min_bin_fraction`` (a row
    whose bin lies less than this share on the grid is dropped) and ``level_instruments`` (the model was trained
    with free levels between instruments: each name in the ``instrument`` column is one instrument, read against
    its own level, its offset profiled out of the "not constrained" test; rows without the column are one
    instrument).
    """
    n, m = len(spectra), len(molecules)
    probs, fraction = np.zeros((n, m)), np.zeros((n, m))
    snr, n_used = np.zeros(n), np.zeros(n, dtype=int)
    thresholds, basis = np.zeros((n, m)), np.empty(n, dtype=object)
    rule: DetectionThresholds = settings["thresholds"]
    dropped: dict[str, list[str]] = {}
    by_instrument = bool(settings.get("level_instruments")) and spectra.instrument_codes is not None
    for members in map(np.asarray, layouts(spectra, by_instrument)):
        first = spectra.rows(members[0])
        mapping = cached_mapping(spectra.bin_low_um[first], spectra.bin_high_um[first], grid_um,
                                 float(settings["min_bin_fraction"]))
        if mapping.n_segments == 0:
            raise UserError(f"{spectra.names[members[0]]}: no row lies on the model grid "
                            f"({grid_um[0]:.3g}-{grid_um[-1]:.3g} um; wavelength_um must be in micron)")
        groups = segment_groups(mapping, spectra.instrument_codes[first]) if by_instrument else None
        # the spectra of one layout share their observed cells (indices, not a mask: numpy's [:, mask] is not in C
        # order, and the median's partition along rows then runs 8x slower)
        observed = np.flatnonzero(mapping.cell_segment >= 0)
        thresholds[members] = rule.for_observed(mapping.cell_segment[None] >= 0)
        basis[members] = rule.basis(mapping.cell_segment[None] >= 0)[0]
        full = len(observed) == len(grid_um)  # every cell observed: the arrays are used as they are, no copy
        # in chunks: a chunk's arrays stay in the CPU's caches (one pass over a 10,000-spectrum batch at once
        # was ~1.5x slower, benchmarks/predict.py), and memory stays bounded for any batch size
        for start in range(0, len(members), CHUNK_SPECTRA):
            chunk = members[start:start + CHUNK_SPECTRA]
            rows = spectra.offsets[chunk][:, None] + np.arange(first.stop - first.start)[None, :]
            observation, inverse_variance = observe_rows_on_grid(mapping, spectra.depth[rows],
                                                                 spectra.depth_err[rows], groups)
            probs[chunk] = network.observed_proba(observation).numpy()
            values, sigma = (a.numpy() if full else np.ascontiguousarray(a.numpy()[:, observed])
                             for a in (observation.values, observation.sigma))
            mean_depth = values.sum(1, dtype=np.float64) / len(observed)
            fraction[chunk] = references.detectable_fraction(mapping, mean_depth, inverse_variance, groups)
            snr[chunk] = mean_depth / row_median(sigma)
        n_used[members] = int((mapping.row_segment >= 0).sum())
        for row in np.flatnonzero(mapping.row_segment < 0):
            for member in members:
                source = int(spectra.source_rows[spectra.offsets[member] + row])
                wavelength = spectra.wavelength_um[spectra.offsets[member] + row]
                dropped.setdefault(spectra.names[member], []).append(
                    f"{spectra.describe(source)} ({wavelength:g} um): {mapping.dropped_reason[row]}")
    constrained = np.nan_to_num(fraction, nan=0.0) >= references.min_fraction
    detected = constrained & (probs >= thresholds)
    verdict = np.where(~constrained, NOT_CONSTRAINED, np.where(detected, DETECTED, NOT_DETECTED))
    per_spectrum = {"spectrum": np.asarray(spectra.names, dtype=object), "snr": snr, "n_points": n_used,
                    "n_dropped": np.asarray([len(dropped.get(name, [])) for name in spectra.names], dtype=int),
                    "instrument": np.asarray(spectra.instruments, dtype=object), "threshold_coverage": basis,
                    "geometry": np.full(n, geometry, dtype=object)}
    per_pair = {"probability": probs, "detected": detected, "constrained": constrained, "verdict": verdict,
                "detectable_fraction": fraction, "threshold": thresholds,
                "molecule": np.broadcast_to(np.asarray(molecules, dtype=object), probs.shape)}
    table = {k: np.repeat(v, m) for k, v in per_spectrum.items()} | {k: v.ravel() for k, v in per_pair.items()}
    frame = pd.DataFrame(table, columns=list(OUTPUT_COLUMNS))
    frame.attrs["model"] = model
    if dropped:
        frame.attrs["dropped_rows"] = dropped
    return frame


__all__ = ["DETECTED", "NOT_CONSTRAINED", "NOT_DETECTED", "OUTPUT_COLUMNS", "layouts", "predict_observed"]
