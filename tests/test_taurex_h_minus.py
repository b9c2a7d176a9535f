"""Our H- continuum and dissociated chemistry against TauREx 3 (its ``HydrogenIon`` contribution, John 1988).

Runs when the optional extra `validate` (taurex) is installed, as `make test` does.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers.hot_day_side import OFF, hot_day_side, tiny_model
from helpers.taurex import TAUREX
from robert.physics.chemistry import dissociated_hydrogen
from robert.physics.h_minus import K_B_CGS, THRESHOLD_UM, cross_section_cm2, electron_density_cm3
from robert.physics.synthetic import log_wavenumber_grid
from robert.validation.taurex_compare import TaurexCase, configure_taurex_cache, john_hydrogen_ion, taurex_depth

pytestmark = TAUREX  # the same skip as every TauREx comparison when TauREx is absent

T_K, P_BAR = 2500.0, 1e-2  # an ultra-hot day side's photosphere
NU = log_wavenumber_grid(0.95, 21.0, 1000)


def one_layer_state() -> tuple[float, float]:
    """Our atomic-H mixing ratio and electron pressure [dyn/cm^2] at (T_K, P_BAR), solar, no trace gases."""
    t = torch.tensor([[T_K]], dtype=torch.float64)
    h2, h = dissociated_hydrogen(torch.ones(1, 1, dtype=torch.float64), 0.0, 0.172, t,
                                 torch.tensor([[np.log10(P_BAR)]], dtype=torch.float64))
    n = P_BAR * 1e6 / (K_B_CGS * T_K)
    ne = electron_density_cm3(t, torch.full_like(t, n), h, 2 * h2 + h)
    return float(h), float(ne) * K_B_CGS * T_K


def taurex_layer_cm2(contribution, x_h: float, x_e: float) -> np.ndarray:
    """TauREx's H- cross-section per particle [cm^2] for one layer, from its own ``prepare_each``."""
    mix = {"H": np.array([x_h]), "e-": np.array([x_e])}
    layer = SimpleNamespace(nLayers=1, pressureProfile=np.array([P_BAR * 1e5]), temperatureProfile=np.array([T_K]),
                            chemistry=SimpleNamespace(activeGases=[], inactiveGases=["H", "e-"],
                                                      get_gas_mix_profile=mix.__getitem__))
    (name, sigma_m2), = list(contribution.prepare_each(layer, NU))
    assert name == "HydrogenIon"
    return sigma_m2[0] * 1e4


def test_one_layer_agrees_with_taurex_hydrogen_ion() -> None:
    from taurex.contributions.hm import HydrogenIon

    x_h, pe = one_layer_state()
    ours = cross_section_cm2(NU, T_K, x_h, pe)
    x_e = pe / (P_BAR * 1e6)
    free_free_only = 1e4 / NU > THRESHOLD_UM
    # free-free (all of 1.64-21 um): TauREx's own code, to its float rounding
    theirs = taurex_layer_cm2(HydrogenIon(), x_h, x_e)
    np.testing.assert_allclose(theirs[free_free_only], ours[free_free_only], rtol=1e-9)
    # bound-free: with John's polynomial the same to his rounded Saha constant (0.750 vs our 0.7496)
    corrected = taurex_layer_cm2(john_hydrogen_ion(), x_h, x_e)
    np.testing.assert_allclose(corrected, ours, rtol=1e-3)
    # TauREx 3.3.2's own bound-free list (1, 52.519, ... for 152.519, ...) is 4-5x too small at 1-1.2 um
    at_1um = np.argmin(np.abs(1e4 / NU - 1.0))
    assert 3.5 < ours[at_1um] / theirs[at_1um] < 5.5


@pytest.mark.parametrize("geometry", ["emission", "transmission"])
def test_ultra_hot_day_side_agrees_with_taurex(tiny_cache, geometry) -> None:
    # WASP-12 b, 2300-3300 K: water dissociated above ~10 mbar, H- the continuum; TauREx gets our layers'
    # mixing ratios (H2O, H2, He, H, e-) and its HydrogenIon contribution (John's bound-free polynomial)
    configure_taurex_cache(tiny_cache)
    changed, agreement = [], []
    on, off = tiny_model(tiny_cache, "wasp12b", geometry), tiny_model(tiny_cache, "wasp12b", geometry, *OFF)
    t = hot_day_side(on)
    for vmr in (1e-3, 1e-5):
        x = torch.zeros(1, len(on.molecules), dtype=on.settings.dtype)
        x[0, on.molecules.index("H2O")] = vmr
        ours = on.depth_from_profiles(t, x)[0].double().numpy()
        before = off.depth_from_profiles(t, x)[0].double().numpy()
        theirs, _ = taurex_depth(TaurexCase.from_model(on, t[0].double().numpy(), {"H2O": vmr}))
        changed.append(np.median(np.abs(ours / before - 1)))
        agreement.append(np.median(np.abs(ours / theirs - 1)))
    # measured: the physics changes the spectra by 2-7 % (median over bins), the two codes agree to 1e-4 - 4e-4
    assert min(changed) > 0.01  # the new physics matters here ...
    assert max(agreement) < 0.1 * min(changed) and max(agreement) < 0.002  # ... and both codes agree on it


def test_layers_whose_species_sum_past_one_reach_taurex_scaled_to_one(tiny_cache) -> None:
    # our free electrons are counted beside the other species: where H2 is gone the sum reaches 1 + 1e-4 (WASP-12 b,
    # the simulator benchmark's cases), which TauREx refuses (InvalidChemistryException); the comparison scales it
    configure_taurex_cache(tiny_cache)
    model = tiny_model(tiny_cache, "wasp12b", "emission")
    case = TaurexCase.from_model(model, hot_day_side(model)[0].double().numpy(), {"H2O": 1e-5})
    others = sum(profile for name, profile in case.layer_vmr.items() if name not in ("H2", "H"))
    past_one, at_one = (replace(case, layer_vmr=case.layer_vmr | {"H": total - others}) for total in (1 + 1e-4, 1.0))
    np.testing.assert_allclose(taurex_depth(past_one)[0], taurex_depth(at_one)[0], rtol=1e-3)
