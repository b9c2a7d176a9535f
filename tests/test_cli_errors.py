"""User mistakes at the command line: one line naming the thing and the choices, exit != 0, no traceback."""

from __future__ import annotations

import pytest

from helpers.scripts import run_script


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
