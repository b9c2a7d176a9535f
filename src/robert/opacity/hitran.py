"""Reader for line lists in the HITRAN/HITEMP 160-character ``.par`` format, and their Q(T).

Hand-written because the format is a fixed-width table that numpy parses in well under a second,
while the maintained readers (``hapi``, ``radis``, ``exojax``) pull in a database layer or a
network client that we do not need offline. Only the fields the cross-section builders use are
decoded; quantum-number labels, uncertainty codes and references are skipped.

Format (Rothman et al. 2005, JQSRT 96, 139, table 1; same in HITRAN2012 and HITEMP):
molecule I2, isotopologue A1, nu F12.6, S E10.3, A E10.3, gamma_air F5.4, gamma_self F5.3,
E'' F10.4, n_air F4.2, delta_air F8.6, then 100 characters of labels, flags and weights.
S is in cm/molecule at 296 K and *includes* the terrestrial isotopic abundance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robert.errors import UserError
from robert.opacity.partition import TipsPartition

RECORD_LENGTH = 160

# (name, first column, last column + 1, Fortran format) of the decoded fields
_FIELDS = (
    ("molecule_id", 0, 2, "I2"),
    ("isotopologue", 2, 3, "A1"),
    ("wavenumber_cm", 3, 15, "F12.6"),
    ("strength_296", 15, 25, "E10.3"),
    ("einstein_a", 25, 35, "E10.3"),
    ("gamma_air", 35, 40, "F5.4"),
    ("gamma_self", 40, 45, "F5.3"),
    ("lower_energy_cm", 45, 55, "F10.4"),
    ("n_air", 55, 59, "F4.2"),
    ("delta_air", 59, 67, "F8.6"),
)
_RECORD_DTYPE = np.dtype({"names": [f[0] for f in _FIELDS] + ["_rest"],
                          "formats": [f"S{f[2] - f[1]}" for f in _FIELDS] + [f"S{RECORD_LENGTH - 67}"],
                          "offsets": [f[1] for f in _FIELDS] + [67], "itemsize": RECORD_LENGTH})

# HITRAN isotopologue character: 1-9, then 0 = 10, A = 11, B = 12 (HITRAN2012 convention)
_ISO_CHARS = {**{str(i).encode(): i for i in range(1, 10)}, b"0": 10, b"A": 11, b"B": 12}

# HITRAN molecule id -> (TIPS molecule name, TIPS isotopologue codes in HITRAN order 1, 2, ...).
# From the HITRAN isotopologue table (hitran.org/docs/iso-meta); the TIPS-2021 columns use the
# same AFGL codes, e.g. H2O_161 (H2^16O) and CO_26 (12C16O).
HITRAN_ISOTOPOLOGUES: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("H2O", ("161", "181", "171", "162", "182", "172", "262", "282", "272")),
    2: ("CO2", ("626", "636", "628", "627", "638", "637", "828", "827", "727", "838", "837", "737")),
    5: ("CO", ("26", "36", "28", "27", "38", "37", "46", "48", "47")),
    6: ("CH4", ("211", "311", "212", "312")),
    8: ("NO", ("46", "56", "48")),
    11: ("NH3", ("4111", "5111")),
    13: ("OH", ("61", "81", "62")),
    23: ("HCN", ("124", "134", "125")),
    26: ("C2H2", ("1221", "1231", "1222")),
}


@dataclass(frozen=True)
class LineList:
    """One array per HITRAN field, all of the same length (one entry per line)."""

    molecule_id: np.ndarray      # HITRAN molecule number (1 = H2O, 5 = CO)
    isotopologue: np.ndarray     # HITRAN isotopologue number, 1 = most abundant
    wavenumber_cm: np.ndarray    # line position, cm^-1
    strength_296: np.ndarray     # S at 296 K, cm/molecule, including isotopic abundance
    einstein_a: np.ndarray       # s^-1
    gamma_air: np.ndarray        # air-broadened Lorentz HWHM at 296 K, 1 atm, cm^-1/atm
    gamma_self: np.ndarray       # self-broadened Lorentz HWHM at 296 K, 1 atm, cm^-1/atm
    lower_energy_cm: np.ndarray  # E'', cm^-1
    n_air: np.ndarray            # temperature exponent of gamma_air
    delta_air: np.ndarray        # air pressure shift at 296 K, cm^-1/atm

    def __len__(self) -> int:
        return int(self.wavenumber_cm.size)


def _decode(column: np.ndarray, name: str, fmt: str, path: Path, line_numbers: np.ndarray) -> np.ndarray:
    """Fixed-width byte strings -> numbers, or a UserError naming the first bad line."""
    try:
        if name == "isotopologue":
            keys, inverse = np.unique(column, return_inverse=True)
            bad = [k for k in keys if k not in _ISO_CHARS]
            if bad:
                raise ValueError(bad[0])
            return np.array([_ISO_CHARS[k] for k in keys], dtype=np.int16)[inverse]
        return column.astype(np.int16 if fmt.startswith("I") else np.float64)
    except ValueError:
        parse = int if fmt.startswith("I") else float
        for raw, line_no in zip(column, line_numbers, strict=True):
            try:
                if name == "isotopologue":
                    _ISO_CHARS[raw]  # noqa: B018 - only checking the key
                else:
                    parse(raw)
            except (ValueError, KeyError):
                text = raw.decode("ascii", "replace")
                raise UserError(f"{path} line {line_no}: field {name} should be {fmt}, "
                                f"got {text!r}") from None
        raise  # pragma: no cover - astype and Python disagreed on a value


def read_par(path: Path, wavenumber_min_cm: float | None = None,
             wavenumber_max_cm: float | None = None) -> LineList:
    """All lines of a ``.par`` file, or only those with wavenumber_min_cm <= nu <= wavenumber_max_cm.

    Lines are kept in file order (HITRAN files are sorted by wavenumber). Blank lines at the end
    are ignored; any other line that is not 160 characters long is an error.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"missing line-list file {path}; run `make data` (python src/fetch_data.py)")
    records = path.read_bytes().splitlines()  # handles the CRLF endings of HITRAN downloads
    while records and not records[-1].strip():
        records.pop()
    if not records:
        raise UserError(f"{path}: no lines, expected 160-character HITRAN records")
    lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
    wrong = np.flatnonzero(lengths != RECORD_LENGTH)
    if wrong.size:
        i = int(wrong[0])
        raise UserError(f"{path} line {i + 1}: expected {RECORD_LENGTH} characters "
                        f"(HITRAN .par record), got {lengths[i]}")
    table = np.frombuffer(b"".join(records), dtype=_RECORD_DTYPE)
    line_numbers = np.arange(1, table.size + 1)
    formats = {name: fmt for name, _, _, fmt in _FIELDS}
    nu = _decode(table["wavenumber_cm"], "wavenumber_cm", "F12.6", path, line_numbers)
    if wavenumber_min_cm is not None or wavenumber_max_cm is not None:
        lo = -np.inf if wavenumber_min_cm is None else wavenumber_min_cm
        hi = np.inf if wavenumber_max_cm is None else wavenumber_max_cm
        keep = (nu >= lo) & (nu <= hi)
        table, line_numbers, nu = table[keep], line_numbers[keep], nu[keep]
    values = {name: _decode(table[name], name, fmt, path, line_numbers)
              for name, fmt in formats.items() if name != "wavenumber_cm"}
    return LineList(wavenumber_cm=nu, **values)


def isotopologue_code(molecule_id: int, isotopologue: int) -> tuple[str, str]:
    """(TIPS molecule name, AFGL isotopologue code) of a HITRAN (molecule, isotopologue) pair."""
    if molecule_id not in HITRAN_ISOTOPOLOGUES:
        raise UserError(f"HITRAN molecule id {molecule_id} is not in robert.opacity.hitran."
                        f"HITRAN_ISOTOPOLOGUES; known: {sorted(HITRAN_ISOTOPOLOGUES)}")
    name, codes = HITRAN_ISOTOPOLOGUES[molecule_id]
    if not 1 <= isotopologue <= len(codes):
        raise UserError(f"{name}: HITRAN isotopologue {isotopologue} unknown, expected 1-{len(codes)}")
    return name, codes[isotopologue - 1]


def isotopologue_partition(tips_csv: Path, molecule_id: int, isotopologue: int) -> TipsPartition:
    """TIPS-2021 Q(T) of a HITRAN isotopologue (e.g. (1, 1) -> H2O_161, (5, 1) -> CO_26)."""
    name, code = isotopologue_code(molecule_id, isotopologue)
    return TipsPartition(tips_csv, name, code)
