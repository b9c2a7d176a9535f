"""What every recogniser network is: observed spectrum (channels on the model grid) -> one logit per molecule.

The DBN (:mod:`robert.model.dbn`) and its peers (:mod:`robert.model.mlp`, :mod:`robert.model.cnn`) share this
interface, so training, registry, evaluation and inference treat them alike. The input encoding
(:func:`robert.spectra.observation.network_inputs`) belongs to the network: it knows which channels (depth,
error, mask) it was trained on, and inference encodes an observed spectrum the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from robert.config_checks import check_positive_int
from robert.errors import UserError
from robert.spectra.observation import CHANNELS, Observation, network_inputs


def validate_channels(channels: object, field: str = "model.inputs") -> list[str]:
    if isinstance(channels, str) or not isinstance(channels, Sequence) or not channels:
        raise UserError(f"{field} must be a non-empty list of input channels ({', '.join(CHANNELS)}); got {channels!r}")
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or len(set(channels)) != len(channels) or channels[0] != "depth":
        raise UserError(f"{field} must start with depth and list each of {', '.join(CHANNELS)} at most once; "
                        f"got {list(channels)}")
    return list(channels)


class Recogniser(nn.Module):
    """Base class: ``n_grid`` cells x ``channels`` in, ``n_labels`` logits out (sigmoid: P(detected))."""

    kind = "recogniser"

    def __init__(self, n_grid: int, channels: Sequence[str], n_labels: int) -> None:
        super().__init__()
        self.n_grid = check_positive_int(n_grid, "n_grid")
        self.channels = validate_channels(channels)
        self.n_labels = check_positive_int(n_labels, "n_labels")
        # Per-input standardisation of what the classifier reads (identity until fitted): the inputs differ by
        # orders of magnitude in mean and spread (a mask that is 1 almost everywhere, a whitened channel), and
        # unstandardised they train ~2x slower and worse (measured: docs/training.md). Buffers: in state_dict.
        self.register_buffer("input_mean", torch.zeros(self.n_inputs))
        self.register_buffer("input_std", torch.ones(self.n_inputs))

    @property
    def n_inputs(self) -> int:
        return self.n_grid * len(self.channels)

    def encode(self, observation: Observation) -> Tensor:
        """The network input of observed spectra, (B, n_inputs)."""
        return network_inputs(observation, self.channels)

    @torch.no_grad()
    def fit_input_scaling(self, inputs: Tensor, min_std: float = 1e-3) -> None:
        """Set the per-input mean/std from training inputs (encoded, observed as in training)."""
        self.input_mean.copy_(inputs.mean(dim=0))
        self.input_std.copy_(inputs.std(dim=0).clamp(min=min_std))

    def standardise(self, inputs: Tensor) -> Tensor:
        """Inputs as the classifier reads them: each input minus its training mean, over its training std."""
        return (inputs - self.input_mean) / self.input_std

    def output_layer(self) -> nn.Linear:
        """The last layer: one logit per molecule."""
        raise NotImplementedError

    @torch.no_grad()
    def set_output_prior(self, rates: Tensor) -> None:
        """Start the output biases at the log-odds of each label's training rate: an untrained network then
        predicts the prior, not 0.5, and the first steps go into features rather than into the biases (positives
        are ~10-20 % of the pairs)."""
        rates = rates.clamp(1e-3, 1 - 1e-3).to(self.output_layer().bias)
        self.output_layer().bias.copy_(torch.log(rates / (1 - rates)))

    def depth_channel(self, inputs: Tensor) -> Tensor:
        """The normalised spectrum part of inputs (B, n_inputs) -> (B, n_grid)."""
        return inputs[:, : self.n_grid]

    @torch.no_grad()
    def predict_proba(self, inputs: Tensor) -> Tensor:
        """P(detected) per label, (B, n_labels)."""
        return torch.sigmoid(self(inputs))

    def observed_proba(self, observation: Observation) -> Tensor:
        """P(detected) per label for observed spectra, encoded as the network was trained, (B, n_labels)."""
        return self.predict_proba(self.encode(observation))

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        """What supervised training optimises."""
        return self.parameters()

    def spec(self) -> dict[str, Any]:
        """Constructor arguments (JSON), enough to rebuild the network before loading its weights."""
        return {"n_grid": self.n_grid, "channels": self.channels, "n_labels": self.n_labels}


def glorot_(layer: nn.Module, generator: torch.Generator) -> None:
    """Glorot-uniform weights and zero biases from ``generator`` (nn's default init would use the global RNG)."""
    weight = layer.weight
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        weight.copy_((torch.rand(weight.shape, generator=generator) * 2 - 1) * bound)
        if layer.bias is not None:
            layer.bias.zero_()


__all__ = ["Recogniser", "glorot_", "validate_channels"]
