"""The tiny forward model set-ups shared by the hot-day-side physics tests and the TauREx H- comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helpers.config import compose_config
from robert.physics.model import ForwardModel, forward_model_from_config
from robert.physics.priors import sample_parameters

# the ultra-hot physics switched off: the spectra of before it existed
OFF = ("simulate.chemistry.dissociation=false", "simulate.continuum.h_minus=false")

def tiny_model(cache: Path, planet: str, geometry: str, *overrides: str) -> ForwardModel:
    """The tiny preset inside the tiny cache's pressure range (1e-4 - 1 bar), no compile."""
    cfg = compose_config("generate", [f"planet={planet}", "dataset=tiny", "simulate.compile=false",
                                      "simulate.pressure_top_bar=1e-4", "simulate.pressure_bottom_bar=1.0",
                                      *(["simulate=transmission"] if geometry == "transmission" else []), *overrides])
    return forward_model_from_config(cfg, cfg["dataset"]["molecules"], cache)


def spectra(model: ForwardModel, n: int = 6, seed: int = 5) -> np.ndarray:
    """n spectra of the model's own prior (cloud-free), as the generator draws them."""
    params, vmr = sample_parameters(model.settings, model.planet, n, model.molecules,
                                    torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.depth_from_profiles(model.temperature_profiles(params), vmr).cpu().numpy()


def hot_day_side(model: ForwardModel) -> torch.Tensor:
    """A WASP-12 b-like day side without inversion: 2300 K at 0.1 mbar rising to 3300 K at 1 bar (log-linear)."""
    log_p = torch.log10(model.profile_bar.double())
    return (2800.0 + 250.0 * (log_p + 2.0))[None].to(model.settings.dtype)
