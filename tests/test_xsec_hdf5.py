"""Cross-section files in the TauREx layout: round trip, determinism, and TauREx itself reading them."""

from __future__ import annotations

import importlib.util

import h5py
import numpy as np
import pytest

from robert.errors import UserError
from robert.opacity.xsec_hdf5 import CrossSectionTable, read_xsec_hdf5, write_xsec_hdf5


@pytest.fixture()
def table():
    rng = np.random.default_rng(0)  # arbitrary numbers: this checks storage, not physics
    nu = np.geomspace(500.0, 10000.0, 50)
    return CrossSectionTable("H2O", np.array([300.0, 1000.0, 2000.0]), np.array([1e-4, 1e-2, 1.0]), nu,
                             10 ** rng.uniform(-25, -19, size=(3, 3, 50)), 18.0106, "line-list: HITRAN2012")


def test_round_trip_and_layout(table, tmp_path):
    path = tmp_path / "H2O.xsec.h5"
    write_xsec_hdf5(path, table)
    back = read_xsec_hdf5(path)
    np.testing.assert_array_equal(back.xsec_cm2, table.xsec_cm2)
    assert back.molecule == "H2O" and back.provenance == "line-list: HITRAN2012"
    with h5py.File(path) as f:
        assert f["mol_name"][()].tolist() == [b"H2O"]
        assert f["p"].attrs["units"] == "bar" and f["xsecarr"].shape == (3, 3, 50)
        assert f["bin_edges"].attrs["units"] == "cm^-1"


def test_same_table_same_bytes(table, tmp_path):
    write_xsec_hdf5(tmp_path / "a.h5", table)
    write_xsec_hdf5(tmp_path / "b.h5", table)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_not_an_xsec_file(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"nope")
    with pytest.raises(UserError, match="x.h5 is not a TauREx-layout cross-section HDF5 file"):
        read_xsec_hdf5(tmp_path / "x.h5")
    with pytest.raises(UserError, match="run `dvc repro opacities`"):
        read_xsec_hdf5(tmp_path / "missing.h5")


@pytest.mark.taurex
@pytest.mark.skipif(importlib.util.find_spec("taurex") is None,
                    reason="TauREx 3 not installed (optional extra: pip install -e '.[validate]')")
def test_taurex_hdf5opacity_reads_our_values(table, tmp_path):
    from taurex.opacity.hdf5opacity import HDF5Opacity

    path = tmp_path / "H2O.xsec.h5"
    write_xsec_hdf5(path, table)
    opac = HDF5Opacity(str(path), interpolation_mode="linear", in_memory=True)
    assert opac.moleculeName == "H2O"
    np.testing.assert_allclose(opac.wavenumberGrid, table.wavenumber_cm)
    # TauREx works in SI: pressure in Pa in, cross-section in m^2 out (1 cm^2 = 1e-4 m^2);
    # at a grid node it must return our value exactly
    sigma_m2 = opac.opacity(1000.0, 1e-2 * 1e5)
    np.testing.assert_allclose(sigma_m2, table.xsec_cm2[1, 1] * 1e-4, rtol=1e-10)
