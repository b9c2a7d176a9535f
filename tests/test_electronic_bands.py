"""TiO and VO electronic band systems from constants: heads, f-value sums, populations, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robert.errors import UserError
from robert.opacity import electronic, sources
from robert.opacity.partition import C2_CM_K
from robert.opacity.xsec_hdf5 import CrossSectionTable, read_xsec_hdf5, write_xsec_hdf5

ROOT = Path(__file__).resolve().parents[1]
TIO = yaml.safe_load((ROOT / "conf/molecules/TiO.yaml").read_text())
VO = yaml.safe_load((ROOT / "conf/molecules/VO.yaml").read_text())
AIR_N = 1.000274  # refractive index of air near 0.7-1.1 um (Edlen 1966): lambda_air = lambda_vac / n


def head_um(spec, system, v_upper, v_lower, sigma=0.0):
    return 1e4 / electronic.band_head_cm(spec, system, v_upper, v_lower, sigma)


def test_tio_phi_0_0_head_at_published_wavelength():
    # b1Pi-d1Sigma+ (0,0) R head at 1.1035 um (vacuum), the value quoted for the TiO J-band feature of
    # M dwarfs (quoted from the literature; the primary line table was not at hand offline)
    assert head_um(TIO, "phi", 0, 0) == pytest.approx(1.1035, abs=1e-3)
    assert head_um(TIO, "phi", 0, 1) == pytest.approx(1.2425, abs=5e-3)  # the 0-1 band "near 1.25 um"


def test_tio_gamma_heads_are_the_classic_7054_7088_7126_bands():
    """The three A3Phi-X3Delta (0,0) subband heads used to classify M stars (air wavelengths, A;
    e.g. Kirkpatrick, Henry & McCarthy 1991, ApJS 77, 417): a check of T0(A) and both spin-orbit constants."""
    heads = sorted(head_um(TIO, "gamma", 0, 0, sigma) * 1e4 / AIR_N for sigma in (-1.0, 0.0, 1.0))
    np.testing.assert_allclose(heads, [7054.0, 7088.0, 7126.0], atol=10.0)  # 1 nm


@pytest.mark.parametrize(("system", "head_air_angstrom"), [("delta", 8860.0), ("epsilon", 8432.0)])
def test_tio_delta_and_epsilon_heads(system, head_air_angstrom):
    """TiO 8860 A (b1Pi-a1Delta 0-0) and 8432 A (E3Pi-X3Delta 0-0), the other classic M-star heads."""
    assert head_um(TIO, system, 0, 0) * 1e4 / AIR_N == pytest.approx(head_air_angstrom, abs=10.0)


def test_vo_b_x_heads_within_the_classification_bands():
    """VO B4Pi-X4Sigma- (0,0) and (1,0): the late-M classification bands span 7851-7939 and 7334-7406 A
    (air); with the spin-orbit subbands collapsed, the model's single head must fall inside each span."""
    assert 7851.0 <= head_um(VO, "B-X", 0, 0) * 1e4 / AIR_N <= 7939.0
    assert 7334.0 <= head_um(VO, "B-X", 1, 0) * 1e4 / AIR_N <= 7406.0


def test_vo_a_x_0_0_head_in_the_published_band():
    # A4Pi-X4Sigma- 0-0: "1.05 um" (Cheung, Taylor & Merer 1982), "1.06 um" in L dwarfs (Cushing et al.
    # 2005); the four spin-orbit subbands are not split by the model, so the check is the band, +-10 nm.
    assert 1.045 <= head_um(VO, "A-X", 0, 0) <= 1.065
    assert head_um(VO, "A-X", 0, 1) == pytest.approx(1.18, abs=0.01)


@pytest.mark.parametrize("spec", [TIO, VO], ids=["TiO", "VO"])
@pytest.mark.parametrize("temperature_K", [500.0, 1500.0, 3000.0])
def test_integrated_system_strength_reproduces_its_f_value(spec, temperature_K):
    """sum S / (fraction in the lower state) = 8.853e-13 f cm/molecule, to within a few %:
    f(v',v'') carries nu(v',v'')/nu00 (Larsson 1983) and bands with q < fc_min are dropped."""
    states, systems, partition, _, _ = electronic.model(spec)
    _, strength, system = electronic.line_strengths(spec, temperature_K)
    for index, sys_ in enumerate(systems):
        per_lower_molecule = strength[system == index].sum() / partition.fraction(sys_.lower.name, temperature_K)
        stimulated = -np.expm1(-C2_CM_K * (sys_.upper.t0_cm - sys_.lower.t0_cm) / temperature_K)
        ratio = per_lower_molecule / (8.853e-13 * sys_.oscillator_strength * stimulated)
        assert ratio == pytest.approx(1.0, abs=0.07), sys_.name


def test_tio_electronic_populations_match_exomol_toto():
    """McKemmish et al. 2019 (ToTo): X holds 99.7 % at 1000 K and 92.3 % at 3000 K; a 6.1 %, d 1.0 % at 3000 K."""
    *_, partition = electronic.model(TIO)[:3]
    assert partition.fraction("X", 1000.0) == pytest.approx(0.997, abs=0.002)
    assert partition.fraction("X", 3000.0) == pytest.approx(0.923, abs=0.005)
    assert partition.fraction("a", 3000.0) == pytest.approx(0.061, abs=0.005)
    assert partition.fraction("d", 3000.0) == pytest.approx(0.010, abs=0.002)


@pytest.mark.parametrize("spec", [TIO, VO], ids=["TiO", "VO"])
def test_partition_function_limits(spec):
    states, _, partition, _, _ = electronic.model(spec)
    ground = next(iter(states.values()))
    assert sum(partition.fraction(name, 2000.0) for name in states) == pytest.approx(1.0)
    # cold: everything in the ground state's lowest spin component, the excited states empty
    assert partition.fraction(ground.name, 100.0) == pytest.approx(1.0, abs=1e-12)
    # warm, electronic excitation negligible: the ground state's rigid rotor x harmonic oscillator x spin
    # components (high-temperature rotor; the spin-orbit ladder of TiO X3Delta is ~100 cm-1, kT ~ 417)
    t = 600.0
    b0 = ground.constants["Be"] - 0.5 * ground.constants["alpha_e"]
    rotor = t / (C2_CM_K * b0) + 1.0 / 3.0 - ground.Lambda**2  # J >= Lambda: the Lambda^2 states below are absent
    vib = 1.0 / -np.expm1(-C2_CM_K * (ground.constants["we"] - 2 * ground.constants["wexe"]) / t)
    fine = sum(ground.component_degeneracy * np.exp(-C2_CM_K * ground.spin_orbit_offset_cm(s) / t)
               for s in ground.sigma_values)
    assert partition(t) == pytest.approx(rotor * vib * fine, rel=0.03)


def test_franck_condon_sum_rule_and_identity():
    states, systems, *_ = electronic.model(TIO)
    mu = electronic.reduced_mass_amu(TIO)
    q = electronic.franck_condon_factors(systems[0].upper, systems[0].lower, mu, 25, 3)
    np.testing.assert_allclose(q.sum(axis=0), 1.0, atol=1e-3)  # sum over v' for each v''
    same = electronic.franck_condon_factors(states["X"], states["X"], mu, 4, 4)
    np.testing.assert_allclose(same, np.eye(4), atol=1e-8)


@pytest.mark.parametrize(("upper", "lower"), [(0, 0), (1, 1), (1, 0), (0, 1), (1, 2), (2, 1)])
def test_honl_london_factors_share_each_level_exactly(upper, lower):
    j = np.arange(lower, 60)
    hl = electronic.honl_london(upper, lower, j)
    np.testing.assert_allclose(sum(hl.values()), 1.0)
    assert all(np.all(h >= 0) for h in hl.values())
    if upper == lower == 0:
        assert not hl[0].any()  # no Q branch in a Sigma-Sigma band
    assert not np.any(hl[-1][j - 1 < upper])  # no P line into J' < Lambda'


def test_phi_band_has_a_sharp_head_and_a_one_sided_wing():
    """phi (0,0): B' < B'' piles the R branch up at the head and spreads P and Q to the red."""
    head = electronic.band_head_cm(TIO, "phi", 0, 0)
    _, systems, partition, lines, _ = electronic.model(TIO)
    band = lines[0]
    in_band = (band.upper_v == 0) & (band.lower_v == 0)
    nu, e_low, weight = band.wavenumber_cm[in_band], band.lower_energy_cm[in_band], band.weight_cm[in_band]
    strength = weight * np.exp(-C2_CM_K * e_low / 1500.0)
    assert nu.max() == pytest.approx(head, abs=1e-6)  # no line beyond the head
    mean_position = np.average(nu, weights=strength)
    assert head - mean_position > 20.0  # the wing is one-sided, tens of cm-1 long
    density_at_head = strength[nu > head - 5.0].sum() / 5.0
    assert density_at_head > 3.0 * strength.sum() / (nu.max() - nu.min())


def test_cross_sections_round_trip_through_the_taurex_export(tmp_path):
    nu = np.geomspace(8800.0, 9200.0, 400)
    temps, pressures = np.array([1000.0, 2500.0]), np.array([1e-3, 1.0])
    sigma = sources.cross_section_grid(VO, nu, temps, pressures, ROOT / "data")
    assert sigma.shape == (2, 2, nu.size) and np.all(sigma >= 0) and sigma.max() > 1e-20
    table = CrossSectionTable("VO", temps, pressures, nu, sigma, VO["mass_amu"], VO["provenance"])
    write_xsec_hdf5(tmp_path / "VO.xsec.h5", table)
    back = read_xsec_hdf5(tmp_path / "VO.xsec.h5")
    np.testing.assert_array_equal(back.xsec_cm2, sigma)
    assert back.provenance.startswith("electronic-band-model (constants:")


def test_hotter_tio_absorbs_more_in_the_phi_band():
    """phi starts from d1Sigma+ (5663 cm-1 up): its strength follows that state's Boltzmann population."""
    band = (8000.0, 9100.0)
    s1500 = electronic.line_strengths(TIO, 1500.0, band)[1].sum()
    s2500 = electronic.line_strengths(TIO, 2500.0, band)[1].sum()
    assert s2500 / s1500 > 5.0


def test_user_errors_name_the_field():
    bad = {**TIO, "systems": [{"name": "x", "upper": "b", "lower": "X", "oscillator_strength": 0.1}]}
    with pytest.raises(UserError, match="not an allowed electric-dipole system"):
        electronic.parse_systems(bad, electronic.parse_states(bad))
    with pytest.raises(UserError, match=r"states.X.Be is required"):
        electronic.parse_states({**TIO, "states": {"X": {"T0_cm": 0, "Lambda": 2, "multiplicity": 3, "we": 1000}}})
    with pytest.raises(UserError, match="unknown state 'Z'"):
        electronic.parse_systems({**TIO, "systems": [{"name": "x", "upper": "Z", "lower": "X",
                                                      "oscillator_strength": 0.1}]}, electronic.parse_states(TIO))
