"""Collision-induced absorption: the Borysow tables and our HITRAN-format copies."""

from __future__ import annotations

import numpy as np
import pytest

from robert.errors import UserError
from robert.opacity.cia import read_borysow, read_hitran_cia, restrict, write_hitran_cia


@pytest.fixture(scope="module")
def h2h2(data_dir):
    return read_borysow(data_dir / "CIA_Borysow_H2H2_0060-7000K_0.6-500um.dat")


def test_h2h2_fundamental_peaks_near_2_4_um_at_the_published_strength(h2h2):
    nu = np.linspace(3000.0, 6000.0, 3001)
    sigma = h2h2.at(nu, 1000.0)
    peak_um = 1e4 / nu[np.argmax(sigma)]
    assert 2.3 < peak_um < 2.5
    assert sigma.max() == pytest.approx(1.1e-44, rel=0.10)  # cm^5/molecule^2


def test_h2he_is_positive_and_grows_with_temperature_in_the_fundamental(data_dir):
    table = read_borysow(data_dir / "CIA_Borysow_H2He_0050-7000K_0.5-031um.dat")
    assert table.pair == "H2-He"
    nu = np.array([4200.0])
    assert 0 < table.at(nu, 500.0)[0] < table.at(nu, 2000.0)[0]


def test_hitran_cia_round_trip(h2h2, tmp_path):
    table = restrict(h2h2, 476.0, 10526.0)
    write_hitran_cia(tmp_path / "H2-H2.cia", table)
    back = read_hitran_cia(tmp_path / "H2-H2.cia")
    assert back.pair == "H2-H2"
    np.testing.assert_allclose(back.temperature_K, table.temperature_K)
    np.testing.assert_allclose(back.wavenumber_cm, table.wavenumber_cm)
    np.testing.assert_allclose(back.sigma_cm5, table.sigma_cm5, rtol=1e-4)
    header = (tmp_path / "H2-H2.cia").read_text().splitlines()[0]
    assert len(header) == 100  # the HITRAN CIA header record


def test_malformed_table_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("@SPECIES\nH2 H2\n@TEMPERATURES\n100 200\n@DATA\n20.0 1e-8 x\n")
    with pytest.raises(UserError, match=r"bad.dat line 6: expected numbers"):
        read_borysow(bad)
