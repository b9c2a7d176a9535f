"""User mistakes at the command line: one line naming the thing and the choices, exit != 0, no traceback."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

from helpers.config import ROOT
from helpers.inference import run_cli, run_command, the_error_line
from helpers.scripts import run_script
from robert.errors import UserError
from robert.inference.observed import validate_frame


@pytest.mark.parametrize(("overrides", "expected"), [
    (["opacity.molecules=[H2O,XYZ]"], "error: unknown molecule (opacity.molecules) 'XYZ'; expected one of: "),
    (["opacity.cia=[H2-N2]"], "error: unknown CIA pair (opacity.cia) 'H2-N2'; expected one of: H2-H2, H2-He"),
    (["opacity.resolution=-3"], "error: opacity.resolution must be > 0"),
    (["opacity.temperature_K=[1000,500]"], "error: opacity.temperature_K must be strictly increasing"),
    (["inputs.data_dir=/nonexistent", "opacity.molecules=[CO2]", "opacity.cia=[H2-H2]",
      "opacity.cache_dir=/tmp/robert-test-missing-data"], "error: missing data file /nonexistent/"),
])
def test_bad_opacity_config_is_one_clear_line(overrides, expected):
    proc = run_script("opacities.py", *overrides)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr


def test_unknown_config_group_option_lists_the_choices():
    proc = run_script("opacities.py", "opacity=huge")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "Could not find 'opacity/huge'" in proc.stderr and "tiny" in proc.stderr


def test_unknown_planet_lists_the_planets():
    proc = run_script("generate.py", "planet=kepler999b")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "Could not find 'planet/kepler999b'" in proc.stderr
    assert all(name in proc.stderr for name in ("gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b"))


def test_molecule_missing_from_the_cache_is_one_clear_line(tmp_path):
    (tmp_path / "provenance.yaml").write_text("H2O.xsec.h5: 'line-list: HITRAN2012'\n")
    proc = run_script("generate.py", f"cache_dir={tmp_path}", "dataset=tiny", "dataset.molecules=[H2O,TiO]")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: molecule(s) TiO have no opacity in the cache"), proc.stderr


# --- robert predict: every mistake in a file or an option is one line naming the file and line (no model needed:
# files are read and their geometry settled before any model is loaded) -----------------------------------------

HEADER = "wavelength_um,depth,depth_err,geometry"


def good_rows(n: int = 28) -> list[str]:
    """HST WFC3-like rows (1.12-1.64 um), an eclipse depth of ~1e-4 with 10 % errors, geometry emission."""
    wavelength = np.linspace(1.12, 1.64, n)
    depth = 1e-4 * (1 + 0.1 * np.sin(np.arange(n)))
    return [f"{w:.5f},{d:.4e},{d / 10:.2e},emission" for w, d in zip(wavelength, depth, strict=True)]


def with_field(row: str, column: int, value: str) -> str:
    fields = row.split(",")
    fields[column] = value
    return ",".join(fields)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing_column", "wavelength_um,depth\n1.2,1e-4\n",
     r": missing column depth_err; expected columns wavelength_um, depth, depth_err .*; found: wavelength_um, depth$"),
    ("nan", lambda rows: [HEADER, rows[0], with_field(rows[1], 1, "nan"), *rows[2:]],
     r" line 3, column depth: expected a finite number, got 'nan'$"),
    ("inf", lambda rows: [HEADER, *rows[:4], with_field(rows[4], 2, "inf"), *rows[5:]],
     r" line 6, column depth_err: expected a finite number, got 'inf'$"),
    ("zero_error", lambda rows: [HEADER, with_field(rows[0], 2, "0"), *rows[1:]],
     r" line 2, column depth_err: expected a 1-sigma error > 0, got '0'$"),
    ("negative_error", lambda rows: [HEADER, *rows[:9], with_field(rows[9], 2, "-3e-5"), *rows[10:]],
     r" line 11, column depth_err: expected a 1-sigma error > 0, got '-3e-5'$"),
    ("duplicated", lambda rows: [HEADER, *rows, rows[3]],
     r" line 5 and .* line 30: duplicated wavelength_um 1\.17778; expected one row per wavelength$"),
    ("too_few", lambda rows: [HEADER, *rows[:2]], r": 2 spectral point\(s\); at least 3 needed$"),
    ("ppm", lambda rows: [HEADER, "1.2,150.0,40.0,emission", *rows[1:]],
     r" line 2, column depth: expected the eclipse depth as a fraction"),
    ("not_a_number", lambda rows: [HEADER, with_field(rows[0], 0, "abc"), *rows[1:]],
     r" line 2, column wavelength_um: expected a number, got 'abc'$"),
    ("ragged", lambda rows: [HEADER, rows[0] + ",9", *rows[1:]],
     r" line 2: 5 field\(s\), but the header \(line 1\) names 4$"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r": not a CSV file \(binary content, not UTF-8 text\)"),
    ("json", '{"wavelength_um": [1.2], "depth": [1e-4]}\n', r": missing column wavelength_um, depth, depth_err"),
    ("empty", "# only a comment\n\n", r": empty; expected a header row"),
    ("one_bin_edge", lambda rows: [HEADER + ",bin_low_um", *(r + ",1.0" for r in rows)],
     r": column bin_low_um given without bin_high_um; give both bin edges or neither$"),
    ("bins_inverted", lambda rows: [HEADER + ",bin_low_um,bin_high_um", *(r + ",," for r in rows[1:]),
                                    rows[0] + ",1.2,1.1"],
     r" line 29, columns bin_low_um/bin_high_um: expected 0 < bin_low_um <= wavelength_um <= bin_high_um"),
    ("unknown_geometry", lambda rows: [HEADER, *(with_field(r, 3, "transit") for r in rows)],
     r": column geometry is 'transit'; expected one of: emission, transmission \(one value per spectrum\)$"),
    ("two_geometries", lambda rows: [HEADER, *rows[:5], *(with_field(r, 3, "transmission") for r in rows[5:])],
     r": column geometry is 'emission, transmission'; expected one of"),
    ("no_geometry", lambda rows: [HEADER.rsplit(",", 1)[0], *(r.rsplit(",", 1)[0] for r in rows)],
     r": geometry unknown: add a column geometry \(emission or transmission\) or pass --geometry "
     r"emission\|transmission$"),
    ("blank_geometry", lambda rows: [HEADER, *(with_field(r, 3, "") for r in rows)],
     r": geometry unknown: add a column geometry \(emission or transmission\) \(blank there\) or pass --geometry"),
    ("one_spectrum_without", lambda rows: [HEADER + ",spectrum", *(r + ",a" for r in rows),
                                           *(with_field(r, 3, "") + ",b" for r in rows)],
     r", spectrum 'b': geometry unknown"),
])
def test_each_bad_file_is_one_line_naming_it(tmp_path, capsys, name, content, expected):
    if callable(content):
        content = "\n".join(content(good_rows())) + "\n"
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = the_error_line(*run_cli(capsys, "predict", str(path), "--tracking-uri", f"sqlite:///{tmp_path}/none.db"))
    assert line.startswith(f"error: {path}") and re.search(expected, line), line
    assert not (tmp_path / "none.db").exists()  # refused before any model store was opened


@pytest.mark.parametrize(("argv", "expected"), [
    (["--geometry", "transmission"], r"^error: {path}: column geometry says emission, but --geometry transmission "
                                     r"was given; drop one of them$"),
    (["--geometry", "transit"], r"^error: robert predict: argument --geometry: invalid choice: 'transit' "),
    (["--format", "xml"], r"^error: robert predict: argument --format: invalid choice: 'xml'"),
    (["--model", "robert"], r"^error: {path} \(emission, from the geometry column\): model URI 'robert' is not of "
                            r"the form models:/<name>/<version> or models:/<name>@<alias>$"),
])
def test_bad_options_are_one_line(tmp_path, capsys, argv, expected):
    path = tmp_path / "ok.csv"
    path.write_text("\n".join([HEADER, *good_rows()]) + "\n")
    line = the_error_line(*run_cli(capsys, "predict", str(path), "--tracking-uri", f"sqlite:///{tmp_path}/m.db",
                                   *argv))
    assert re.search(expected.format(path=re.escape(str(path))), line), line


def test_a_missing_file_and_a_missing_model(tmp_path, capsys):
    line = the_error_line(*run_cli(capsys, "predict", str(tmp_path / "nope.csv")))
    assert line == f"error: {tmp_path / 'nope.csv'}: no such file"
    path = tmp_path / "t.csv"
    path.write_text("\n".join([HEADER, *(with_field(r, 3, "transmission") for r in good_rows())]) + "\n")
    store = f"sqlite:///{tmp_path}/empty.db"
    line = the_error_line(*run_cli(capsys, "predict", str(path), "--tracking-uri", store))
    assert line == (f"error: {path} (transmission, from the geometry column): no transmission model yet: "
                    f"models:/robert-transmission@champion (predict.models.transmission) is not registered in {store}; "
                    "train it with `dvc repro train-transmission` or pass --model")


def test_a_real_process_prints_the_one_line(tmp_path):
    """``python src/predict.py`` as a user runs it: exit status 2, the one line on stderr, nothing else."""
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, *good_rows()[:5], "1.3,nan,1e-5,emission"]) + "\n")
    proc = run_command([sys.executable, str(ROOT / "src" / "predict.py"), str(path)], cwd=tmp_path)
    assert proc.returncode == 2 and not proc.stdout and "Traceback" not in proc.stderr, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"error: {path} line 7, column depth: expected a finite number, got 'nan'"]


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("wavelength_um", np.nan, "column wavelength_um: expected a finite number"),
    ("wavelength_um", -1.0, "column wavelength_um: expected a wavelength in micron > 0"),
    ("depth", np.inf, "column depth: expected a finite number"),
    ("depth", 2.0, "column depth: expected the eclipse depth as a fraction"),
    ("depth_err", 0.0, "column depth_err: expected a 1-sigma error > 0"),
    ("bin_low_um", np.nan, "column bin_low_um: expected both bin edges or neither"),
    ("bin_high_um", np.inf, "column bin_high_um: expected a finite bin edge"),
    ("bin_high_um", 0.5, "columns bin_low_um/bin_high_um: expected 0 < bin_low_um <= wavelength_um"),
])
def test_a_large_table_names_its_one_bad_cell(column, value, expected):
    """A table of many spectra is checked in chunks on threads: one bad cell deep inside is still found and named."""
    n_spectra, n_rows = 1000, 300
    wavelength = np.tile(np.geomspace(1.1, 19.0, n_rows), n_spectra)
    frame = pd.DataFrame({"spectrum": np.repeat(np.arange(n_spectra), n_rows).astype(str),
                          "wavelength_um": wavelength, "bin_low_um": wavelength * 0.995,
                          "bin_high_um": wavelength * 1.005, "depth": 1e-3, "depth_err": 1e-5})
    validate_frame(frame, "table")  # valid as it is
    bad = 287_654
    frame.loc[bad, column] = value
    with pytest.raises(UserError, match=rf"^table row {bad}, {re.escape(expected)}"):
        validate_frame(frame, "table")
