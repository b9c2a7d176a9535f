"""Shared fixtures: the project root, Hydra composition, the data files, the reference tables."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before any test module imports mlflow: see robert/__init__

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT.parent / "shared" / "reference" / "opacity-kdist"


def compose_config(name: str, overrides: list[str] | None = None) -> dict:
    """The resolved config of an entry script, as plain containers (as the scripts see it)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=True)


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


def tiny_generate_config(cache: Path, out_dir: Path, *overrides: str) -> dict:
    """The generate config on the tiny preset, reading ``cache`` and writing under ``out_dir``."""
    return compose_config("generate", ["dataset=tiny", f"cache_dir={cache}", f"dataset.out_dir={out_dir}",
                                       "simulate.compile=false", *overrides])
