"""One dream: the spectrum a method produced for one molecule, with what the network did meanwhile."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = ("generative", "optimisation")


@dataclass(frozen=True)
class Dream:
    """A dreamt spectrum on the model's wavelength grid, in the [0, 1] normalised scale of the data."""

    method: str                      # one of METHODS
    molecule: str
    spectrum: np.ndarray             # (W,)
    spread: np.ndarray | None        # (W,) standard deviation over the Gibbs chains (generative only)
    activations: list[np.ndarray]    # hidden layers L1 ... Ln, (width,) each: mean activation while dreaming
    details: dict[str, float] = field(default_factory=dict)  # method-specific numbers (e.g. the logit reached)
