"""The `opacities` stage: one TauREx-layout file per molecule, CIA files, provenance, resumable."""

from __future__ import annotations

import numpy as np
import yaml

from helpers.config import ROOT, compose_config
from robert.opacity.build import build_cache
from robert.opacity.cia import read_hitran_cia
from robert.opacity.xsec_hdf5 import read_xsec_hdf5


def test_cache_layout_and_provenance(tiny_cache):
    provenance = yaml.safe_load((tiny_cache / "provenance.yaml").read_text())
    assert set(provenance) == {"H2O.xsec.h5", "CO.xsec.h5", "CO2.xsec.h5", "H2-H2.cia", "H2-He.cia"}
    assert provenance["H2O.xsec.h5"].startswith("line-list: HITRAN2012")
    assert provenance["CO2.xsec.h5"].startswith("band-model")
    for name in ("H2O", "CO", "CO2"):
        table = read_xsec_hdf5(tiny_cache / f"{name}.xsec.h5")
        assert table.molecule == name and table.provenance == provenance[f"{name}.xsec.h5"]
        assert table.xsec_cm2.shape == (3, 3, table.wavenumber_cm.size)
        assert np.all(table.xsec_cm2 >= 0) and np.all(np.isfinite(table.xsec_cm2))
    cia = read_hitran_cia(tiny_cache / "H2-H2.cia")
    assert cia.wavenumber_cm[0] <= 1e4 / 21.0 and cia.wavenumber_cm[-1] >= 1e4 / 0.95  # covers the grid


def test_second_build_with_nothing_changed_rebuilds_nothing(tiny_cache):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.xsec.h5")}
    messages: list[str] = []
    cfg = compose_config("opacities", ["opacity=tiny", f"opacity.cache_dir={tiny_cache}"])
    build_cache(cfg["opacity"], cfg["molecules"], cfg["inputs"], ROOT, log=messages.append)
    assert all("up to date" in m for m in messages if ".xsec.h5" in m)
    assert {p.name: p.stat().st_mtime_ns for p in tiny_cache.glob("*.xsec.h5")} == before
