"""Our emission spectra against TauREx 3 on the same atmospheres and the same (tiny) opacity cache.

Runs when the optional extra `validate` (taurex) is installed, as `make test` does.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import compose_config
from robert.physics.model import EmissionModel, forward_model_from_config
from robert.validation.taurex_compare import (
    TaurexCase,
    compare,
    configure_taurex_cache,
    our_depths,
    random_cases,
    taurex_eclipse_depth,
)

PLANETS = ("gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b")

pytestmark = [pytest.mark.taurex, pytest.mark.skipif(
    importlib.util.find_spec("taurex") is None,
    reason="TauREx 3 not installed (optional extra: pip install -e '.[validate]')")]


def test_twenty_random_cases_agree_with_taurex(tiny_cache):
    # the tiny cache spans 1e-4..1 bar: keep the model atmosphere inside it (no clamping on either side)
    models = {}
    for planet in PLANETS:
        cfg = compose_config("generate", [f"planet={planet}", "dataset=tiny", "simulate.compile=false",
                                          "simulate.pressure_top_bar=1e-4", "simulate.pressure_bottom_bar=1.0"])
        models[planet] = forward_model_from_config(cfg, cfg["dataset"]["molecules"], tiny_cache)
        assert isinstance(models[planet], EmissionModel)
    cases = random_cases(models, PLANETS, 20)
    assert {c["planet"] for c in cases} == set(PLANETS) and len({c["molecule"] for c in cases}) == 3
    ours = our_depths(models, cases)
    configure_taurex_cache(tiny_cache)
    theirs = np.array([taurex_eclipse_depth(TaurexCase.from_model(models[c["planet"]], c["temperature_K"].numpy(),
                                                                  {c["molecule"]: c["vmr"]}))[0] for c in cases])
    result = compare(ours, theirs, [{} for _ in cases])
    # the criterion: median |relative difference| <= 2 %, the worst case (its median) <= 10 %
    assert result.median_rel_diff <= 0.02
    assert max(case["median_rel_diff"] for case in result.per_case) <= 0.10
    assert result.min_pearson >= 0.99
