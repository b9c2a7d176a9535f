"""HITRAN .par reader: real totals of the shipped line lists, windows, malformed input, Q(T) lookup."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from robert.errors import UserError
from robert.opacity.hitran import RECORD_LENGTH, isotopologue_code, isotopologue_partition, read_par

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # populated by `make data`
H2O_PAR = DATA_DIR / "H2O_hitran2012.par"
CO_PAR = DATA_DIR / "CO_hitemp_2-0_sample.par"


def test_h2o_hitran2012_totals_and_parse_time():
    start = time.perf_counter()
    lines = read_par(H2O_PAR)
    elapsed = time.perf_counter() - start
    assert len(lines) == 224_515
    assert lines.strength_296.sum() == pytest.approx(7.37e-17, rel=0.01)
    assert lines.wavenumber_cm.min() == pytest.approx(0.007002)
    assert lines.wavenumber_cm.max() == pytest.approx(25_711, abs=1)
    assert set(np.unique(lines.molecule_id)) == {1}
    assert set(np.unique(lines.isotopologue)) == {1, 2, 3, 4, 5, 6}
    assert np.all(lines.gamma_air > 0) and np.all(lines.lower_energy_cm >= 0)
    assert elapsed < 10.0  # ~0.7 s measured on 2 cores


def test_co_hitemp_sample_is_the_whole_2_0_band():
    lines = read_par(CO_PAR)
    assert len(lines) == 12_992
    assert lines.strength_296.sum() == pytest.approx(7.65e-20, rel=0.01)
    assert set(np.unique(lines.molecule_id)) == {5}
    assert lines.wavenumber_cm.min() >= 4100 and lines.wavenumber_cm.max() <= 4401
    # first record: " 51 4100.0087333.186E-127 ..." (HITEMP uses three-digit exponents)
    assert lines.strength_296[0] == pytest.approx(3.186e-127)
    assert lines.delta_air[0] == pytest.approx(-0.008358)


def test_wavenumber_window():
    full = read_par(CO_PAR)
    part = read_par(CO_PAR, 4200.0, 4250.0)
    inside = (full.wavenumber_cm >= 4200) & (full.wavenumber_cm <= 4250)
    assert len(part) == inside.sum() > 0
    np.testing.assert_array_equal(part.strength_296, full.strength_296[inside])


def _records(n: int) -> list[bytes]:
    with open(CO_PAR, "rb") as fh:
        return [fh.readline().rstrip(b"\r\n") for _ in range(n)]


def test_short_line_names_file_and_line(tmp_path):
    bad = tmp_path / "x.par"
    recs = _records(3)
    recs[2] = recs[2][:80]
    bad.write_bytes(b"\n".join(recs) + b"\n")
    with pytest.raises(UserError, match=r"x\.par line 3: expected 160 characters .* got 80"):
        read_par(bad)


def test_unparseable_field_names_file_line_and_field(tmp_path):
    bad = tmp_path / "y.par"
    recs = _records(4)
    recs[1] = recs[1][:3] + b"  4100.xx6ab" + recs[1][15:]
    assert len(recs[1]) == RECORD_LENGTH
    bad.write_bytes(b"\r\n".join(recs))
    with pytest.raises(UserError, match=r"y\.par line 2: field wavenumber_cm should be F12\.6"):
        read_par(bad)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="missing line-list file"):
        read_par(tmp_path / "nope.par")


def test_isotopologue_codes_and_partition():
    assert isotopologue_code(1, 1) == ("H2O", "161")
    assert isotopologue_code(1, 4) == ("H2O", "162")
    assert isotopologue_code(5, 1) == ("CO", "26")
    assert isotopologue_code(5, 4) == ("CO", "27")
    with pytest.raises(UserError):
        isotopologue_code(5, 13)
    q_co = isotopologue_partition(DATA_DIR / "tips_2021.csv", 5, 1)
    assert float(q_co(296.0)) == pytest.approx(107.4, rel=0.01)  # TIPS-2021 12C16O at 296 K
