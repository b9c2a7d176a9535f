"""Shared fixtures: the project root, the data files, the reference tables, a tiny real opacity cache."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before any test module imports mlflow: see robert/__init__

import pytest

from helpers.config import REFERENCE_DIR, ROOT, compose_config


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = ROOT / "data"
    if not (path / "MANIFEST.yaml").exists():
        pytest.fail("data/ is not populated: run `make data` (the test command does it first)")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.exists():
        pytest.skip(f"reference opacity tables not present at {REFERENCE_DIR} (validation data, CI has it)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, data_dir) -> Path:
    """A small real opacity cache (opacity=tiny: H2O, CO, CO2 on a coarse grid), built once per session."""
    from robert.opacity.build import build_cache

    cache = tmp_path_factory.mktemp("opacity-tiny")
    cfg = compose_config("opacities", ["opacity=tiny", f"opacity.cache_dir={cache}"])
    build_cache(cfg["opacity"], cfg["molecules"], cfg["inputs"], ROOT, log=lambda m: None)
    return cache
