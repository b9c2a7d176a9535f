"""Observed spectra as published: read a CSV or take a DataFrame, check every row, sort, infer missing bins.

Columns: ``wavelength_um`` (micron), ``depth`` (eclipse depth Fp/Fs as a fraction, not ppm), ``depth_err``
(1-sigma, > 0); optional ``bin_low_um``/``bin_high_um`` (the bin each row averages; photometric bands),
``instrument`` (free text, reported back) and ``spectrum`` (an id, for several spectra in one table).
Rows may come in any order. Every bad row is a :class:`~robert.errors.UserError` of one line naming the
file and line (CSV) or the row (DataFrame), the column, and what was expected.

Missing bins are inferred per row as symmetric in log wavelength, half the distance to the NEARER
neighbour on each side, so a bin never spans the gap between two instruments.

Hand-written reader (Python's ``csv`` module, not ``pandas.read_csv``): errors must name the file's own
line numbers, with comment (``#``) and blank lines skipped, and never show a parser traceback.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robert.errors import UserError

REQUIRED_COLUMNS = ("wavelength_um", "depth", "depth_err")
BIN_COLUMNS = ("bin_low_um", "bin_high_um")
TEXT_COLUMNS = ("instrument", "spectrum")
EXPECTED = "wavelength_um, depth, depth_err (+ optional bin_low_um, bin_high_um, instrument, spectrum)"
_REL = 1e-9


@dataclass
class ObservedSpectra:
    """Validated spectra: rows grouped by spectrum (first-appearance order), ascending wavelength in each."""

    names: list[str]
    offsets: np.ndarray            # (S + 1,) row range of each spectrum
    wavelength_um: np.ndarray      # (R,)
    depth: np.ndarray              # (R,) fraction
    depth_err: np.ndarray          # (R,)
    bin_low_um: np.ndarray         # (R,) given or inferred
    bin_high_um: np.ndarray        # (R,)
    source_rows: np.ndarray        # (R,) each row's index in the input
    instruments: list[str]         # per spectrum: the distinct instrument names, comma-joined ("" if none)
    describe: Callable[[int], str]  # input row index -> "file.csv line 7" / "row 3"

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _numeric(frame: pd.DataFrame, column: str, describe: Callable[[int], str]) -> np.ndarray:
    """A column as float64; a cell that is not a number at all is an error (blank/NaN stay NaN)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(raw):  # a DataFrame of numbers (REST, Python): nothing to parse
        return values
    blank = raw.isna().to_numpy() | raw.astype(str).str.strip().isin(["", "nan", "NaN", "NAN"]).to_numpy()
    bad = _first(np.isnan(values) & ~blank)
    if bad is not None:
        raise UserError(f"{describe(bad)}, column {column}: expected a number, got {_show(raw.iloc[bad])}")
    return values


def _show(value: object) -> str:
    """A cell as the user wrote it: quoted text from a file, a plain number from a DataFrame."""
    return repr(value) if isinstance(value, str) else f"{float(value):g}"


def _check(mask: np.ndarray, describe: Callable[[int], str], frame: pd.DataFrame, column: str, expected: str) -> None:
    bad = _first(mask)
    if bad is not None:
        raise UserError(f"{describe(bad)}, column {column}: expected {expected}, got {_show(frame[column].iloc[bad])}")


def _infer_bins(wavelength: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric bins in log wavelength: half the gap to the nearer neighbour within the same spectrum."""
    log_wl = np.log(wavelength)
    gap = np.diff(log_wl)
    left = np.concatenate([[np.inf], gap])
    right = np.concatenate([gap, [np.inf]])
    left[offsets[:-1]] = np.inf   # no neighbour across spectra
    right[offsets[1:] - 1] = np.inf
    half = 0.5 * np.minimum(left, right)
    return np.exp(log_wl - half), np.exp(log_wl + half)


def _row_order(codes: np.ndarray, wavelength: np.ndarray) -> np.ndarray | None:
    """Rows by (spectrum, wavelength); None when already so. Large batches usually keep each spectrum's rows
    together (a table per spectrum, concatenated): then only each spectrum's own rows are sorted."""
    if np.all(codes[1:] >= codes[:-1]):
        same = codes[1:] == codes[:-1]
        if np.all(wavelength[1:][same] > wavelength[:-1][same]):
            return None
        counts = np.bincount(codes)
        if np.all(counts == counts[0]):  # equal lengths: sort the rows of an (S, k) view
            within = np.argsort(wavelength.reshape(len(counts), counts[0]), axis=1, kind="stable")
            return (within + np.arange(0, len(codes), counts[0])[:, None]).ravel()
    return np.lexsort((wavelength, codes))


def validate_frame(frame: pd.DataFrame, source: str, describe: Callable[[int], str] | None = None,
                   min_points: int = 3, default_name: str | None = None) -> ObservedSpectra:
    """Check an observed-spectrum table; ``describe`` names an input row (default: ``<source> row <i>``)."""
    describe = describe or (lambda i: f"{source} row {i}")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise UserError(f"{source}: missing column {', '.join(missing)}; expected columns {EXPECTED}; "
                        f"found: {found}")
    given_bins = [c for c in BIN_COLUMNS if c in frame.columns]
    if len(given_bins) == 1:
        other = BIN_COLUMNS[1 - BIN_COLUMNS.index(given_bins[0])]
        raise UserError(f"{source}: column {given_bins[0]} given without {other}; give both bin edges or neither")
    if len(frame) == 0:
        raise UserError(f"{source}: no data rows; expected one row per spectral point with columns {EXPECTED}")
    values = {c: _numeric(frame, c, describe) for c in (*REQUIRED_COLUMNS, *given_bins)}
    for column in REQUIRED_COLUMNS:
        _check(~np.isfinite(values[column]), describe, frame, column, "a finite number")
    wavelength, depth, err = values["wavelength_um"], values["depth"], values["depth_err"]
    _check(wavelength <= 0, describe, frame, "wavelength_um", "a wavelength in micron > 0")
    _check(err <= 0, describe, frame, "depth_err", "a 1-sigma error > 0")
    _check(np.abs(depth) > 1, describe, frame, "depth", "the eclipse depth as a fraction Fp/Fs (|depth| <= 1; "
           "ppm values must be divided by 1e6)")

    if given_bins:
        low, high = values["bin_low_um"], values["bin_high_um"]
        _check(np.isnan(low) != np.isnan(high), describe, frame, "bin_low_um", "both bin edges or neither")
        _check(np.isinf(low), describe, frame, "bin_low_um", "a finite bin edge")
        _check(np.isinf(high), describe, frame, "bin_high_um", "a finite bin edge")
        has = ~np.isnan(low)
        bad = _first(has & ~((low > 0) & (low < high) & (low <= wavelength * (1 + _REL))
                             & (high >= wavelength * (1 - _REL))))
        if bad is not None:
            raise UserError(f"{describe(bad)}, columns bin_low_um/bin_high_um: expected 0 < bin_low_um <= "
                            f"wavelength_um <= bin_high_um with bin_low_um < bin_high_um, got {low[bad]:g}-"
                            f"{high[bad]:g} around {wavelength[bad]:g}")
    else:
        low = high = np.full(len(frame), np.nan)

    if "spectrum" in frame.columns:
        codes, names = pd.factorize(frame["spectrum"].fillna("").astype(str), sort=False)
    else:
        codes, names = np.zeros(len(frame), dtype=np.int64), [default_name or source]
    order = _row_order(codes, wavelength)
    if order is None:
        order = np.arange(len(codes))
    else:
        codes, wavelength, depth, err, low, high = (a[order] for a in (codes, wavelength, depth, err, low, high))
    same = (codes[1:] == codes[:-1]) & (np.abs(wavelength[1:] - wavelength[:-1]) <= _REL * wavelength[1:])
    dup = _first(same)
    if dup is not None:
        first, second = sorted((int(order[dup]), int(order[dup + 1])))
        raise UserError(f"{describe(first)} and {describe(second)}: duplicated wavelength_um {wavelength[dup]:g}; "
                        "expected one row per wavelength")
    offsets = np.concatenate([[0], np.flatnonzero(np.diff(codes)) + 1, [len(codes)]])
    counts = np.diff(offsets)
    few = _first(counts < min_points)
    if few is not None:
        which = f"{source}" if len(names) == 1 else f"{source}, spectrum {names[few]!r}"
        raise UserError(f"{which}: {counts[few]} spectral point(s); at least {min_points} needed")

    blank = np.isnan(low)
    if blank.any():
        inferred_low, inferred_high = _infer_bins(wavelength, offsets)
        low, high = np.where(blank, inferred_low, low), np.where(blank, inferred_high, high)
    instruments = [""] * len(names)
    if "instrument" in frame.columns:
        instrument = frame["instrument"].fillna("").astype(str).to_numpy()[order]
        instruments = [", ".join(dict.fromkeys(x for x in instrument[a:b] if x))
                       for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return ObservedSpectra([str(n) for n in names], offsets, wavelength, depth, err, low, high, order,
                           instruments, describe)


def read_csv_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The CSV's header and rows as strings, with each row's line number in the file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    payload = path.read_bytes()
    try:
        if b"\x00" in payload:
            raise UnicodeDecodeError("utf-8", payload, 0, 1, "NUL byte")
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a CSV file (binary content, not UTF-8 text); expected a comma-separated "
                        f"table with a header row naming {EXPECTED}") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise UserError(f"{path}: empty; expected a header row naming {EXPECTED}")
    try:
        rows = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered)), strict=True))
    except csv.Error as exc:
        raise UserError(f"{path}: not a readable CSV file ({exc})") from None
    if len(rows) != len(numbered):  # a quoted field spanning lines: numbering would be wrong
        raise UserError(f"{path}: a quoted field spans several lines; expected one row per line")
    header = [field.strip() for field in rows[0]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UserError(f"{path} line {numbered[0][0]}: column {repeated[0]} appears twice in the header")
    for (line, _), row in zip(numbered[1:], rows[1:], strict=True):
        if len(row) != len(header):
            raise UserError(f"{path} line {line}: {len(row)} field(s), but the header (line {numbered[0][0]}) "
                            f"names {len(header)}")
    frame = pd.DataFrame([[field.strip() for field in row] for row in rows[1:]], columns=header, dtype=object)
    return frame, [line for line, _ in numbered[1:]]


def read_observed_csv(path: Path, min_points: int = 3) -> ObservedSpectra:
    """A published-spectrum CSV file, validated; errors name ``<path> line <n>``."""
    frame, lines = read_csv_table(path)
    return validate_frame(frame, str(path), lambda i: f"{path} line {lines[i]}", min_points,
                          default_name=str(path))
