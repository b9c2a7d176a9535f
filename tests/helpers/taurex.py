"""Our spectra against TauREx 3 on the tiny opacity cache: the models and the comparison both geometries share."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from helpers.config import compose_config
from robert.physics.model import ForwardModel, forward_model_from_config
from robert.validation.taurex_compare import (
    Comparison,
    case_for_taurex,
    compare,
    configure_taurex_cache,
    our_depths,
    random_cases,
    taurex_depth,
)

PLANETS = ("gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b")

# the marks of every TauREx comparison module (``pytestmark = TAUREX``)
TAUREX = [pytest.mark.taurex, pytest.mark.skipif(
    importlib.util.find_spec("taurex") is None,
    reason="TauREx 3 not installed (optional extra: pip install -e '.[validate]')")]


def tiny_cache_models(cache: Path, *overrides: str) -> dict[str, ForwardModel]:
    """One forward model per planet over the tiny opacity cache."""
    # the tiny cache spans 1e-4..1 bar: keep the model atmosphere inside it (no clamping on either side)
    models = {}
    for planet in PLANETS:
        cfg = compose_config("generate", [f"planet={planet}", "dataset=tiny", "simulate.compile=false",
                                          "simulate.pressure_top_bar=1e-4", "simulate.pressure_bottom_bar=1.0",
                                          *overrides])
        models[planet] = forward_model_from_config(cfg, cfg["dataset"]["molecules"], cache)
    return models


def agreement_with_taurex(models: dict[str, ForwardModel], cache: Path) -> Comparison:
    """Our spectra against TauREx's for 20 random cases over every planet and the cache's three gases."""
    cases = random_cases(models, PLANETS, 20)
    assert {c["planet"] for c in cases} == set(PLANETS) and len({c["molecule"] for c in cases}) == 3
    ours = our_depths(models, cases)
    configure_taurex_cache(cache)
    theirs = np.array([taurex_depth(case_for_taurex(models, c))[0] for c in cases])
    return compare(ours, theirs, [{} for _ in cases])
