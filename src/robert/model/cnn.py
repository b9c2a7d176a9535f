"""The 1-D convolutional peer, of the kind used for retrievals from spectra (Yip et al. 2021, AJ 162, 195;
Ardévol Martínez et al. 2022, A&A 662, A108): convolution + ReLU + max-pooling blocks along wavelength, the
input channels (depth, error, mask) as convolution channels, then dense layers to one logit per molecule.
No global pooling: where a band sits is what identifies the molecule."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from robert.model.base import Recogniser, glorot_


class ConvNetwork(Recogniser):
    kind = "cnn"

    def __init__(self, n_grid: int, channels: Sequence[str], n_labels: int, filters: Sequence[int] = (16, 32, 64),
                 kernel_size: int = 7, pool: int = 2, dense: Sequence[int] = (128,), dropout: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__(n_grid, channels, n_labels)
        self.filters, self.kernel_size, self.pool = [int(f) for f in filters], int(kernel_size), int(pool)
        self.dense, self.dropout, self.seed = [int(d) for d in dense], float(dropout), int(seed)
        generator = torch.Generator().manual_seed(seed)
        blocks: list[nn.Module] = []
        length = n_grid
        for n_in, n_out in pairwise([len(self.channels), *self.filters]):
            conv = nn.Conv1d(n_in, n_out, self.kernel_size, padding=self.kernel_size // 2)
            glorot_(conv, generator)
            blocks += [conv, nn.ReLU(), nn.MaxPool1d(self.pool)]
            length //= self.pool
        self.features = nn.Sequential(*blocks)
        layers: list[nn.Module] = []
        for n_in, n_out in pairwise([self.filters[-1] * length, *self.dense, n_labels]):
            linear = nn.Linear(n_in, n_out)
            glorot_(linear, generator)
            layers += [linear, nn.ReLU(), nn.Dropout(self.dropout)]
        self.head = nn.Sequential(*layers[:-2])

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.standardise(inputs).view(inputs.shape[0], len(self.channels), self.n_grid)
        return self.head(self.features(x).flatten(1))

    def output_layer(self) -> nn.Linear:
        return self.head[-1]

    def spec(self) -> dict[str, Any]:
        return super().spec() | {"filters": self.filters, "kernel_size": self.kernel_size, "pool": self.pool,
                                 "dense": self.dense, "dropout": self.dropout, "seed": self.seed}
