"""Band-model cross-sections agree with the HELIOS-K/HITEMP k-tables (Wogan et al.) within a factor 3.

Needs the validation data in ``<project root>/../shared/reference/opacity-kdist``; skipped when absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from robert.opacity.grid import wavenumber_grid
from robert.opacity.reference import default_reference_dir

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = default_reference_dir(ROOT)

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"validation data {REFERENCE} absent"),
]


@pytest.mark.parametrize("molecule", ["CO2", "CH4", "NH3", "C2H2"])
def test_band_model_within_factor_3_of_reference(molecule: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from validate_opacity import TOLERANCE, compare
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rows = compare(molecule, REFERENCE, wavenumber_grid(0.95, 21.0, 1500))
    assert rows, "no reference bin above the threshold"
    bad = [r for r in rows if r["factor"] > TOLERANCE]
    assert not bad, f"{len(bad)} of {len(rows)} bins outside 3x, worst {max(bad, key=lambda r: r['factor'])}"
