"""The input-optimisation dream: the spectrum the fine-tuned classifier finds most like a molecule.

Gradient ascent on one molecule's logit with respect to the depth channel of the network's input, from a
flat spectrum, with a smoothness prior (a penalty on the squared second differences between neighbouring
bins) and the data's box: after every Adam step the spectrum is clipped back to [0, 1] (projected gradient
ascent). No randomness: the same settings give the same spectrum. It works for any recogniser (DBN, MLP,
CNN): only the gradient of the logit is needed.

The other input channels are held fixed, not optimised (a choice of this project): a network reading the
error and mask channels sees a full-coverage observation with typical error bars, those of a white
observation of the class's mean clean spectrum at ``dream.context_snr`` (:mod:`robert.dream.observation`;
mask all ones). Optimising them too would let the ascent "explain" a molecule by the coverage or the error
bars, which says nothing about the molecule's spectrum.

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
from torch import Tensor

from robert.config_checks import check_mapping, check_number, check_positive, check_positive_int, require
from robert.dream.result import Dream
from robert.model.base import Recogniser
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
        check_mapping(section, field)
        return cls(check_number(require(section, "start", f"{field}.start"), f"{field}.start", minimum=0, maximum=1),
                   check_positive_int(require(section, "steps", f"{field}.steps"), f"{field}.steps"),
                   check_positive(require(section, "lr", f"{field}.lr"), f"{field}.lr"),
                   check_number(require(section, "smoothness", f"{field}.smoothness"), f"{field}.smoothness",
                                minimum=0))


def hidden_activations(network: Recogniser, inputs: Tensor) -> list[Tensor]:
    """A DBN classifier's hidden layers L1 ... Ln for ``inputs`` (as in its forward pass), for the Fig.-5 maps;
    none for the other kinds (their ReLU/convolution activations are not the [0, 1] maps the figure draws)."""
    if not isinstance(network, DeepBeliefNetwork):
        return []
    activation, layers = network.standardise(inputs), []
    for layer in network.classifier[:-1]:
        activation = torch.sigmoid(layer(activation))
        layers.append(activation)
    return layers


def optimisation_dream(network: Recogniser, molecules: list[str], label_index: int, settings: OptimisationSettings,
                       context: Tensor) -> Dream:
    """Projected gradient ascent on ``logit[label_index] - smoothness * sum(second differences^2)``.

    ``context`` (1, n_inputs): the input whose channels after the depth channel are held fixed (see the module
    docstring); its depth channel is replaced by the spectrum being optimised.
    """
    held = context[:, network.n_grid:].detach().to(torch.float32)
    spectrum = torch.full((1, network.n_grid), settings.start, dtype=torch.float32, requires_grad=True)

    def inputs(depth: Tensor) -> Tensor:
        return torch.cat([depth, held], dim=1)  # the depth channel comes first (robert.model.base)

    optimiser = torch.optim.Adam([spectrum], lr=settings.lr)
    with torch.no_grad():
        start_logit = float(network(inputs(spectrum))[0, label_index])
    with torch.enable_grad():
        for _ in range(settings.steps):
            curvature = spectrum[0, 2:] - 2 * spectrum[0, 1:-1] + spectrum[0, :-2]
            objective = network(inputs(spectrum))[0, label_index] - settings.smoothness * (curvature**2).sum()
            # autograd.grad, not backward(): only the spectrum gets a gradient, never the network's weights
            (spectrum.grad,) = torch.autograd.grad(-objective, spectrum)
            optimiser.step()
            with torch.no_grad():
                spectrum.clamp_(0.0, 1.0)
    with torch.no_grad():
        optimum = spectrum.detach()
        shown = normalise(optimum)
        details = {"start_logit": start_logit, "final_logit": float(network(inputs(optimum))[0, label_index]),
                   "range_before_normalising": float(optimum.max() - optimum.min())}
        return Dream("optimisation", molecules[label_index], shown[0].double().numpy(), None,
                     [layer[0].double().numpy() for layer in hidden_activations(network, inputs(optimum))],
                     inputs(optimum)[0].double().numpy(), details)
