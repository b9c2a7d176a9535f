"""Our cross-sections (line lists and band models) agree with the HELIOS-K/HITEMP k-tables within 3x.

Needs the validation data in ``<project root>/../shared/reference/opacity-kdist``; skipped when absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from robert.opacity.grid import wavenumber_grid
from robert.opacity.reference import TOLERANCE, compare, default_reference_dir

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = default_reference_dir(ROOT)

pytestmark = [
    pytest.mark.reference,
    pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"validation data {REFERENCE} absent"),
]


@pytest.mark.parametrize("molecule", ["H2O", "CO", "CO2", "CH4", "NH3", "C2H2"])
def test_within_factor_3_of_reference(molecule: str) -> None:
    spec = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "molecules" / f"{molecule}.yaml"), resolve=True)
    rows = compare(molecule, spec, REFERENCE, wavenumber_grid(0.95, 21.0, 1500), ROOT / "data")
    assert rows, "no reference bin above the threshold"
    bad = [r for r in rows if r["factor"] > TOLERANCE]
    assert not bad, f"{len(bad)} of {len(rows)} bins outside 3x, worst {max(bad, key=lambda r: r['factor'])}"
