"""The input-optimisation dream: the spectrum the fine-tuned classifier finds most like a molecule.

Gradient ascent on one molecule's logit with respect to the depth channel of the network's input, from a
flat spectrum, with a smoothness prior (a penalty on the squared second differences between neighbouring
bins) and the data's box: after every Adam step the spectrum is clipped back to [0, 1] (projected gradient
ascent). No randomness: the same settings give the same spectrum. It works for any recogniser (DBN, MLP,
CNN): only the gradient of the logit is needed.

The spectrum is the only free variable; the observation it is shown in is held fixed (a choice of this
project): that of the class's mean clean spectrum observed white at ``dream.context_snr`` over the whole grid
(:mod:`robert.dream.observation`), whose depth range and error bars turn the [0, 1] spectrum into depths. The
channels that describe the spectrum in sigma (its deviation from its own continuum or from its mean) are computed
from those depths at every step, as for any observed spectrum (:func:`robert.spectra.observation.network_inputs`
is differentiable), so they follow the ascent instead of showing the network a mismatched spectrum; the channels
that describe the observation (error bars, mask) keep the context's values. Optimising those too would let the
ascent "explain" a molecule by the error bars or the coverage, which says nothing about the molecule's spectrum.

What it shows, against the generative dream: only what the classifier uses to recognise the
molecule. The continuum that every class shares carries no evidence for any one label, so it does
not appear; the reported spectrum is min-max normalised to [0, 1] like the data, so its RMS against
the real spectra is on the same scale as the generative dream's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from robert.config_checks import check_mapping, check_number, check_positive, check_positive_int, require
from robert.dream.result import Dream
from robert.model.base import Recogniser
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.observation import Observation
from robert.spectra.transforms import normalise, value_range

# input channels that describe the observation, not the spectrum (robert.spectra.observation.network_inputs): held
# at the context's values, so the ascent cannot explain a molecule by the error bars or the coverage
OBSERVATION_CHANNELS = ("error", "mask")


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
                       context: Observation) -> Dream:
    """Projected gradient ascent on ``logit[label_index] - smoothness * sum(second differences^2)``.

    ``context`` (one row): the observation the spectrum is shown in (see the module docstring); the spectrum x in
    [0, 1] is the depth channel and stands for the depths low + x * span, with the observed range
    [low, low + span] of ``context``, from which the deviation channels are computed.
    """
    low, span = value_range(context.values, context.mask)
    width = network.n_grid
    held = network.encode(context).detach()
    spectrum = torch.full((1, width), settings.start, dtype=torch.float32, requires_grad=True)

    def inputs(x: Tensor) -> Tensor:
        # the depth channel is x itself (a min-max of x would have no gradient at the flat start); the deviation
        # channels are those of the depths x stands for; the error and mask channels, the observation's
        derived = network.encode(replace(context, values=(low + x * span) * context.mask))
        parts = []
        for i, channel in enumerate(network.channels):
            source = held if channel in OBSERVATION_CHANNELS else derived
            parts.append(x if channel == "depth" else source[:, i * width:(i + 1) * width])
        return torch.cat(parts, dim=1)

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
        network_input = inputs(optimum)
        details = {"start_logit": start_logit, "final_logit": float(network(network_input)[0, label_index]),
                   "range_before_normalising": float(optimum.max() - optimum.min())}
        return Dream("optimisation", molecules[label_index], shown[0].double().numpy(), None,
                     [layer[0].double().numpy() for layer in hidden_activations(network, network_input)],
                     network_input[0].double().numpy(), details)
