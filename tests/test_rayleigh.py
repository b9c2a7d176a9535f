"""Rayleigh cross-sections of H2 and He (Dalgarno & Williams 1962)."""

import numpy as np
import pytest

from robert.errors import UserError
from robert.opacity.rayleigh import rayleigh_cross_section


def test_h2_value_at_500_nm():
    # 8.14e-13 L^-4 (1 + 1.572e6 L^-2 + 1.981e12 L^-4) at L = 5000 A
    assert rayleigh_cross_section("H2", np.array([2e4]))[0] == pytest.approx(1.3884e-27, rel=1e-3)


@pytest.mark.parametrize("species", ["H2", "He"])
def test_lambda_minus_four_at_long_wavelength(species):
    sigma = rayleigh_cross_section(species, np.array([1000.0, 500.0]))  # 10 and 20 um
    assert sigma[0] / sigma[1] == pytest.approx(16.0, rel=1e-3)


def test_he_scatters_less_than_h2():
    nu = np.geomspace(500, 10000, 20)
    assert np.all(rayleigh_cross_section("He", nu) < rayleigh_cross_section("H2", nu))


def test_unknown_species():
    with pytest.raises(UserError, match="unknown Rayleigh species 'N2'; expected one of: H2, He"):
        rayleigh_cross_section("N2", np.array([1000.0]))
