"""The input-optimisation dream: the spectrum the fine-tuned classifier finds most like a molecule.

Gradient ascent on one molecule's logit with respect to the input spectrum, from a flat spectrum,
with a smoothness prior (a penalty on the squared second differences between neighbouring bins)
and the data's box: after every Adam step the spectrum is clipped back to [0, 1] (projected
gradient ascent). No randomness: the same settings give the same spectrum.

What it shows, against the generative dream: only what the classifier uses to recognise the
molecule. The continuum that every class shares carries no evidence for any one label, so it does
not appear; the reported spectrum is min-max normalised to [0, 1] like the data, so its RMS against
the real spectra is on the same scale as the generative dream's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from robert.dream.result import Dream
from robert.errors import UserError
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.transforms import normalise


@dataclass(frozen=True)
class OptimisationSettings:
    start: float        # value of the flat starting spectrum, in [0, 1]
    steps: int          # Adam steps
    lr: float           # Adam learning rate (spectrum units per step, roughly)
    smoothness: float   # weight of sum((x[i+1] - 2 x[i] + x[i-1])^2) against the logit

    @classmethod
    def from_config(cls, section: Mapping[str, Any], field: str = "dream.optimisation") -> OptimisationSettings:
        try:
            settings = cls(float(section["start"]), int(section["steps"]), float(section["lr"]),
                           float(section["smoothness"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{field} needs numbers start, steps, lr and smoothness; got {dict(section)!r} "
                            f"({exc})") from None
        if not 0.0 <= settings.start <= 1.0:
            raise UserError(f"{field}.start must lie in [0, 1] (the normalised data range); got {settings.start}")
        if settings.steps < 1 or settings.lr <= 0 or settings.smoothness < 0:
            raise UserError(f"{field} needs steps >= 1, lr > 0 and smoothness >= 0; got {settings}")
        return settings


def classifier_activations(network: DeepBeliefNetwork, visible: torch.Tensor) -> list[torch.Tensor]:
    """The fine-tuned classifier's hidden layers L1 ... Ln for ``visible`` (as in its forward pass)."""
    activation, layers = network.scale_input(visible), []
    for layer in network.classifier[:-1]:
        activation = torch.sigmoid(layer(activation))
        layers.append(activation)
    return layers


def optimisation_dream(network: DeepBeliefNetwork, molecules: list[str], label_index: int,
                       settings: OptimisationSettings) -> Dream:
    """Projected gradient ascent on ``logit[label_index] - smoothness * sum(second differences^2)``."""
    spectrum = torch.full((1, network.n_visible), settings.start, dtype=torch.float32, requires_grad=True)
    optimiser = torch.optim.Adam([spectrum], lr=settings.lr)
    with torch.no_grad():
        start_logit = float(network(spectrum)[0, label_index])
    with torch.enable_grad():
        for _ in range(settings.steps):
            curvature = spectrum[0, 2:] - 2 * spectrum[0, 1:-1] + spectrum[0, :-2]
            objective = network(spectrum)[0, label_index] - settings.smoothness * (curvature**2).sum()
            # autograd.grad, not backward(): only the spectrum gets a gradient, never the network's weights
            (spectrum.grad,) = torch.autograd.grad(-objective, spectrum)
            optimiser.step()
            with torch.no_grad():
                spectrum.clamp_(0.0, 1.0)
    with torch.no_grad():
        optimum = spectrum.detach()
        details = {"start_logit": start_logit, "final_logit": float(network(optimum)[0, label_index]),
                   "range_before_normalising": float(optimum.max() - optimum.min())}
        return Dream("optimisation", molecules[label_index], normalise(optimum)[0].double().numpy(), None,
                     [layer[0].double().numpy() for layer in classifier_activations(network, optimum)], details)
