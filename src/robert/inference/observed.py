"""Observed spectra as published: read a CSV or take a DataFrame, check every row, sort, infer missing bins.

Columns: ``wavelength_um`` (micron), ``depth`` (eclipse depth Fp/Fs as a fraction, not ppm), ``depth_err``
(1-sigma, > 0); optional ``bin_low_um``/``bin_high_um`` (the bin each row averages; photometric bands),
``instrument`` (free text, reported back; for a model trained with free levels between instruments, rows of one
name share one level and each other name gets its own, see :mod:`robert.inference.predictor`) and ``spectrum``
(an id, for several spectra in one table). Rows may come in any order. Every bad row is a
:class:`~robert.errors.UserError` of one line naming the file and line (CSV) or the row (DataFrame), the column, and
what was expected.

Missing bins are inferred per row as symmetric in log wavelength, half the distance to the NEARER
neighbour on each side, so a bin never spans the gap between two instruments.

Hand-written reader (Python's ``csv`` module, not ``pandas.read_csv``): errors must name the file's own
line numbers, with comment (``#``) and blank lines skipped, and never show a parser traceback.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from robert.errors import UserError

REQUIRED_COLUMNS = ("wavelength_um", "depth", "depth_err")
BIN_COLUMNS = ("bin_low_um", "bin_high_um")
TEXT_COLUMNS = ("instrument", "spectrum", "geometry")
GEOMETRIES = ("emission", "transmission")
EXPECTED = "wavelength_um, depth, depth_err (+ optional bin_low_um, bin_high_um, instrument, spectrum, geometry)"
_REL = 1e-9
_PARALLEL_ROWS = 200_000  # below this, threads cost more than they save
_CHECK_ROWS = 32_768      # rows per chunk of the row checks: its temporaries stay in the CPU's caches
T = TypeVar("T")


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
    geometries: list[str] | None = None  # per spectrum: its geometry column ("" if blank); None: no column
    instrument_codes: np.ndarray | None = None  # (R,) each row's instrument (one code per name); None: no column

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _threaded(func: Callable[..., T], items: Sequence, n_rows: int) -> list[T]:
    """``[func(*item) for item in items]``, on as many threads as torch may use when the table is large: sorting
    and gathering release the GIL, so a batch's row work uses the cores its network gets."""
    threads = min(len(items), torch.get_num_threads()) if n_rows >= _PARALLEL_ROWS else 1
    if threads <= 1:
        return [func(*item) for item in items]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda item: func(*item), items))


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True: every check runs over the whole table at once, the row is located only on failure."""
    return int(mask.argmax()) if mask.any() else None


def _numeric(frame: pd.DataFrame, column: str, describe: Callable[[int], str]) -> np.ndarray:
    """A column as float64; a cell that is not a number at all is an error (blank/NaN stay NaN)."""
    raw = frame[column]
    if pd.api.types.is_float_dtype(raw.dtype):  # a DataFrame of numbers (REST, Python): nothing to parse
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(raw):
        return values
    blank = raw.isna().to_numpy() | raw.astype(str).str.strip().isin(["", "nan", "NaN", "NAN"]).to_numpy()
    bad = _first(np.isnan(values) & ~blank)
    if bad is not None:
        raise UserError(f"{describe(bad)}, column {column}: expected a number, got {_show(raw.iloc[bad])}")
    return values


def _show(value: object) -> str:
    """A cell as the user wrote it: quoted text from a file, a plain number from a DataFrame."""
    return repr(value) if isinstance(value, str) else f"{float(value):g}"


def _check(ok: np.ndarray, describe: Callable[[int], str], frame: pd.DataFrame, column: str, expected: str) -> None:
    """Raise for the first row where ``ok`` is False."""
    if not ok.all():
        bad = int(ok.argmin())
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


def _run_starts(ids: pd.Series) -> np.ndarray | None:
    """First row of each run of equal ids (Arrow's vectorised compare); None for strings not held by Arrow."""
    if not (isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow"):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.array(ids.array)
    change = pc.not_equal(values[1:], values[:-1]).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.flatnonzero(change) + 1])


def _spectrum_codes(frame: pd.DataFrame, name: str) -> tuple[np.ndarray | None, list[str], np.ndarray | None]:
    """Each row's spectrum (0, 1, ... in order of first appearance), the spectra's names, and their row offsets
    when each spectrum's rows are contiguous (else None). Codes are None when the offsets say it all.

    Large batches usually keep each spectrum's rows together (a table per spectrum, concatenated): then only
    the first id of each run is hashed, not millions of repeated ids.
    """
    n = len(frame)
    if "spectrum" not in frame.columns:
        return None, [name], np.array([0, n])
    ids = frame["spectrum"].fillna("").astype(str)
    starts = _run_starts(ids)
    if starts is not None:
        _, names = pd.factorize(ids.iloc[starts], sort=False)
        if len(names) == len(starts):  # no id comes back after another one: contiguous spectra
            return None, [str(x) for x in names], np.append(starts, n)
    codes, names = pd.factorize(ids, sort=False)
    return codes, [str(x) for x in names], None


def _row_order(codes: np.ndarray | None, offsets: np.ndarray | None, wavelength: np.ndarray) -> np.ndarray | None:
    """Rows by (spectrum, wavelength); None when already so. Contiguous spectra are sorted each on its own."""
    if offsets is None:
        return np.lexsort((wavelength, codes))
    counts = np.diff(offsets)
    if np.all(counts == counts[0]):  # equal lengths: sort the rows of an (S, k) view
        view = wavelength.reshape(len(counts), counts[0])
        if np.all(view[:, 1:] > view[:, :-1]):
            return None
        if np.all(view[:, 1:] < view[:, :-1]):  # published in descending wavelength (wavenumber order)
            return (offsets[:-1, None] + np.arange(counts[0] - 1, -1, -1)).ravel()
        # not stable (3x faster): only exact ties could swap, and those are an error reported from a stable sort
        order = np.empty(view.shape, dtype=np.int64)

        def sort(rows: slice) -> None:
            order[rows] = np.argsort(view[rows], axis=1) + offsets[:-1][rows, None]

        chunks = np.linspace(0, len(view), torch.get_num_threads() + 1).astype(int)
        _threaded(sort, [(slice(a, b),) for a, b in zip(chunks[:-1], chunks[1:], strict=True)], len(wavelength))
        return order.ravel()
    ascending = wavelength[1:] > wavelength[:-1]
    ascending[offsets[1:-1] - 1] = True  # across spectra
    if ascending.all():
        return None
    return np.lexsort((wavelength, np.repeat(np.arange(len(counts)), counts)))


def _duplicate(wavelength: np.ndarray, rows: np.ndarray) -> tuple[int, int, float]:
    """The first two of a spectrum's input ``rows`` (ascending) with one wavelength, as a stable sort meets them."""
    rows = rows[np.argsort(wavelength[rows], kind="stable")]
    wl = wavelength[rows]
    i = int(np.flatnonzero(np.abs(wl[1:] - wl[:-1]) <= _REL * wl[1:])[0])
    return int(min(rows[i], rows[i + 1])), int(max(rows[i], rows[i + 1])), float(wl[i])


def _text_codes(column: pd.Series, order: np.ndarray | None) -> tuple[np.ndarray, pd.Index]:
    """Each row's code (in the sorted row order) and the distinct values of a text column."""
    codes, names = pd.factorize(column.fillna("").astype(str), sort=False)
    return (codes if order is None else codes[order]), names


def _distinct_text(codes: np.ndarray, names: pd.Index, offsets: np.ndarray) -> list[str]:
    """Per spectrum, the distinct non-blank values of a text column (:func:`_text_codes`), comma-joined."""
    # only where the instrument changes (a few rows per spectrum) is visited in Python
    starts = np.union1d(np.flatnonzero(np.diff(codes)) + 1, offsets[:-1])
    spectrum_of = np.searchsorted(offsets, starts, side="right") - 1
    found: list[dict[str, None]] = [{} for _ in range(len(offsets) - 1)]
    for spectrum, code in zip(spectrum_of.tolist(), codes[starts].tolist(), strict=True):
        if names[code]:
            found[spectrum][str(names[code])] = None
    return [", ".join(names_of) for names_of in found]


def _rows_valid(wavelength: np.ndarray, depth: np.ndarray, err: np.ndarray, low: np.ndarray | None,
                high: np.ndarray | None) -> tuple[bool, bool]:
    """(every row passes every check of :func:`_raise_first_invalid`, some row has no bin edges).

    The checks as one expression per row (a NaN fails every comparison, so ``0 < x < inf`` is "finite and
    positive"), evaluated in cache-sized chunks on threads: one pass over a large table instead of one per check.
    """
    def chunk(rows: slice) -> tuple[bool, bool]:
        wl, e = wavelength[rows], err[rows]
        ok = (wl > 0) & (wl < np.inf) & (e > 0) & (e < np.inf) & (np.abs(depth[rows]) <= 1)
        if low is None:
            return bool(ok.all()), False
        lo, hi = low[rows], high[rows]
        blank = np.isnan(lo)
        binned = (lo > 0) & (lo < hi) & (hi < np.inf) & (lo <= wl * (1 + _REL)) & (hi >= wl * (1 - _REL))
        ok &= binned | (blank & np.isnan(hi))
        return bool(ok.all()), bool(blank.any())

    edges = list(range(0, len(wavelength), _CHECK_ROWS)) + [len(wavelength)]
    parts = _threaded(chunk, [(slice(a, b),) for a, b in zip(edges[:-1], edges[1:], strict=True)], len(wavelength))
    return all(ok for ok, _ in parts), any(blank for _, blank in parts)


def _raise_first_invalid(frame: pd.DataFrame, values: dict[str, np.ndarray], describe: Callable[[int], str]) -> None:
    """The first failed check, named by its row and column (only called when :func:`_rows_valid` found one)."""
    for column in REQUIRED_COLUMNS:
        _check(np.isfinite(values[column]), describe, frame, column, "a finite number")
    wavelength, depth, err = values["wavelength_um"], values["depth"], values["depth_err"]
    _check(wavelength > 0, describe, frame, "wavelength_um", "a wavelength in micron > 0")
    _check(err > 0, describe, frame, "depth_err", "a 1-sigma error > 0")
    _check(np.abs(depth) <= 1, describe, frame, "depth", "the eclipse depth as a fraction Fp/Fs (|depth| <= 1; "
           "ppm values must be divided by 1e6)")
    if "bin_low_um" in values:
        low, high = values["bin_low_um"], values["bin_high_um"]
        blank = np.isnan(low)
        _check(blank == np.isnan(high), describe, frame, "bin_low_um", "both bin edges or neither")
        _check(~np.isinf(low), describe, frame, "bin_low_um", "a finite bin edge")
        _check(~np.isinf(high), describe, frame, "bin_high_um", "a finite bin edge")
        ok = (low > 0) & (low < high) & (low <= wavelength * (1 + _REL)) & (high >= wavelength * (1 - _REL))
        bad = _first(~(ok | blank))
        if bad is not None:
            raise UserError(f"{describe(bad)}, columns bin_low_um/bin_high_um: expected 0 < bin_low_um <= "
                            f"wavelength_um <= bin_high_um with bin_low_um < bin_high_um, got {low[bad]:g}-"
                            f"{high[bad]:g} around {wavelength[bad]:g}")
    raise AssertionError("_rows_valid and _raise_first_invalid disagree")  # the two must state the same checks


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
    wavelength, depth, err = values["wavelength_um"], values["depth"], values["depth_err"]
    low, high = (values["bin_low_um"], values["bin_high_um"]) if given_bins else (None, None)
    valid, any_blank = _rows_valid(wavelength, depth, err, low, high)
    if not valid:
        _raise_first_invalid(frame, values, describe)

    codes, names, offsets = _spectrum_codes(frame, default_name or source)
    source_wavelength = wavelength
    order = _row_order(codes, offsets, wavelength)
    if order is not None:
        columns = [wavelength, depth, err] + ([] if low is None else [low, high])
        columns = _threaded(np.take, [(column, order) for column in columns], len(order))
        wavelength, depth, err = columns[:3]
        if low is not None:
            low, high = columns[3:]
    if offsets is None:  # rows now grouped by spectrum
        offsets = np.searchsorted(codes[order], np.arange(len(names) + 1))
    same = wavelength[:-1] >= wavelength[1:] * (1 - _REL)  # ascending now: within _REL of the next row
    same[offsets[1:-1] - 1] = False  # across spectra
    dup = _first(same)
    if dup is not None:
        spectrum = int(np.searchsorted(offsets, dup, side="right") - 1)
        rows = slice(int(offsets[spectrum]), int(offsets[spectrum + 1]))
        first, second, value = _duplicate(source_wavelength, np.sort(order[rows]) if order is not None
                                          else np.arange(rows.start, rows.stop))
        raise UserError(f"{describe(first)} and {describe(second)}: duplicated wavelength_um {value:g}; "
                        "expected one row per wavelength")
    counts = np.diff(offsets)
    few = _first(counts < min_points)
    if few is not None:
        which = f"{source}" if len(names) == 1 else f"{source}, spectrum {names[few]!r}"
        raise UserError(f"{which}: {counts[few]} spectral point(s); at least {min_points} needed")

    if low is None:
        low, high = _infer_bins(wavelength, offsets)
    elif any_blank:  # some rows without bins
        blank = np.isnan(low)
        inferred_low, inferred_high = _infer_bins(wavelength, offsets)
        low, high = np.where(blank, inferred_low, low), np.where(blank, inferred_high, high)
    instruments, instrument_codes = [""] * len(names), None
    if "instrument" in frame.columns:
        instrument_codes, instrument_names = _text_codes(frame["instrument"], order)
        instruments = _distinct_text(instrument_codes, instrument_names, offsets)
    geometries = None
    if "geometry" in frame.columns:
        geometries = _distinct_text(*_text_codes(frame["geometry"], order), offsets)
        for name, geometry in zip(names, geometries, strict=True):
            if geometry and geometry not in GEOMETRIES:
                where = source if len(names) == 1 else f"{source}, spectrum {name!r}"
                raise UserError(f"{where}: column geometry is {geometry!r}; expected one of: {', '.join(GEOMETRIES)} "
                                "(one value per spectrum)")
    source_rows = np.arange(len(frame)) if order is None else order
    return ObservedSpectra(names, offsets, wavelength, depth, err, low, high, source_rows, instruments, describe,
                           geometries, instrument_codes)


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
