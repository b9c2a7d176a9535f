"""Our transit depths against TauREx 3's TransmissionModel on the same atmospheres and the same (tiny) opacity cache.

Runs when the optional extra `validate` (taurex) is installed, as `make test` does.
"""

from __future__ import annotations

import numpy as np
from test_taurex_emission import PLANETS, pytestmark  # noqa: F401  (the same planets, the same skip)

from conftest import compose_config
from robert.physics.model import TransmissionModel, forward_model_from_config
from robert.validation.taurex_compare import (
    case_for_taurex,
    compare,
    configure_taurex_cache,
    our_depths,
    random_cases,
    taurex_depth,
)


def test_twenty_random_cases_agree_with_taurex_transmission(tiny_cache):
    # the tiny cache spans 1e-4..1 bar: keep the model atmosphere inside it (no clamping on either side)
    models = {}
    for planet in PLANETS:
        cfg = compose_config("generate", [f"planet={planet}", "dataset=tiny", "simulate=transmission",
                                          "simulate.compile=false", "simulate.pressure_top_bar=1e-4",
                                          "simulate.pressure_bottom_bar=1.0"])
        models[planet] = forward_model_from_config(cfg, cfg["dataset"]["molecules"], tiny_cache)
        assert isinstance(models[planet], TransmissionModel)
    cases = random_cases(models, PLANETS, 20)
    assert {c["planet"] for c in cases} == set(PLANETS) and len({c["molecule"] for c in cases}) == 3
    ours = our_depths(models, cases)
    configure_taurex_cache(tiny_cache)
    theirs = np.array([taurex_depth(case_for_taurex(models, c))[0] for c in cases])
    result = compare(ours, theirs, [{} for _ in cases])
    # the criterion: median |relative difference| of the transit depth <= 1 %, Pearson r >= 0.99
    assert result.median_rel_diff <= 0.01
    assert result.min_pearson >= 0.99
