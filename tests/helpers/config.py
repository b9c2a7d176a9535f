"""Hydra composition as the entry scripts do it, and the project's paths."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT.parent / "shared" / "reference" / "opacity-kdist"


def compose_config(name: str, overrides: list[str] | None = None) -> dict:
    """The resolved config of an entry script, as plain containers (as the scripts see it)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=True)


def tiny_generate_config(cache: Path, out_dir: Path, *overrides: str) -> dict:
    """The generate config on the tiny preset (single gas unless overridden), reading ``cache``, writing ``out_dir``."""
    return compose_config("generate", ["dataset=tiny", "composition=single", f"cache_dir={cache}",
                                       f"dataset.out_dir={out_dir}", "simulate.compile=false", *overrides])
