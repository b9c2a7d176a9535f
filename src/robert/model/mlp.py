"""The plain multilayer perceptron peer: the DBN's widths, ReLU units, no pre-training (a control for what
pre-training buys)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from robert.model.base import Recogniser, glorot_


class MLPNetwork(Recogniser):
    kind = "mlp"

    def __init__(self, n_grid: int, channels: Sequence[str], n_labels: int, hidden: Sequence[int] = (500, 200, 50),
                 dropout: float = 0.0, seed: int = 0) -> None:
        super().__init__(n_grid, channels, n_labels)
        self.hidden, self.dropout, self.seed = [int(h) for h in hidden], float(dropout), int(seed)
        generator = torch.Generator().manual_seed(seed)
        sizes = [self.n_inputs, *self.hidden, n_labels]
        layers: list[nn.Module] = []
        for n_in, n_out in pairwise(sizes):
            linear = nn.Linear(n_in, n_out)
            glorot_(linear, generator)
            layers += [linear, nn.ReLU(), nn.Dropout(self.dropout)]
        self.layers = nn.Sequential(*layers[:-2])  # no activation or dropout after the output layer

    def forward(self, inputs: Tensor) -> Tensor:
        return self.layers(self.standardise(inputs))

    def output_layer(self) -> nn.Linear:
        return self.layers[-1]

    def spec(self) -> dict[str, Any]:
        return super().spec() | {"hidden": self.hidden, "dropout": self.dropout, "seed": self.seed}
