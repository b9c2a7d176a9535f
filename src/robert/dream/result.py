"""One dream: the spectrum a method produced for one molecule, with what the network did meanwhile."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = ("generative", "optimisation")


@dataclass(frozen=True)
class Dream:
    """A dreamt spectrum on the model's wavelength grid, in the [0, 1] normalised scale of the data.

    ``spectrum`` is the depth channel; ``network_input`` the whole input vector the classifier is asked about
    (``P(molecule | dream)``): the depth channel as dreamt (the chain mean) or as optimised (before the
    optimisation's min-max normalisation for display, so P is the sigmoid of its final logit), followed by the
    network's other channels (:func:`robert.spectra.observation.network_inputs`), as dreamt by the generative
    method or as held fixed by the optimisation method.
    """

    method: str                      # one of METHODS
    molecule: str
    spectrum: np.ndarray             # (W,) the depth channel
    spread: np.ndarray | None        # (W,) standard deviation over the Gibbs chains (generative only)
    activations: list[np.ndarray]    # hidden layers L1 ... Ln, (width,) each: mean activation while dreaming
    network_input: np.ndarray        # (n_inputs,) = (W * number of channels,)
    details: dict[str, float] = field(default_factory=dict)  # method-specific numbers (e.g. the logit reached)
