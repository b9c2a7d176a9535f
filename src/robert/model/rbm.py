"""Restricted Boltzmann machine trained by contrastive divergence (CD-k) or persistent CD.

Why hand-written: no maintained library implements RBMs / deep belief networks with CD training
for torch or Lightning (scikit-learn's ``BernoulliRBM`` is numpy-only, single layer, PCD-only and
has no Gaussian units; the old torch RBM repositories are unmaintained tutorials). The model is
small, so owning it costs little and lets every random draw take an explicit ``torch.Generator``.

Why manual parameter updates: the CD update ``<v h>_data - <v h>_model`` is not the gradient of any
loss that autograd could differentiate (the log-likelihood gradient's model term is intractable; CD
replaces it by a few Gibbs steps whose samples are not differentiated through). The parameters are
therefore ``nn.Parameter(requires_grad=False)`` (so they live in ``state_dict`` and move with
``.to(device)``) and :meth:`RBM.contrastive_divergence_step` updates them in place.

Units:

* hidden units are always Bernoulli;
* ``visible_type="bernoulli"``: visible values in [0, 1] are treated as probabilities (the usual
  practice for grey-scale data, and what a min-max normalised spectrum is);
* ``visible_type="gaussian"``: linear visible units with **unit variance**, p(v|h) = N(b + W h, 1).
  Unit variance is only right for data standardised per feature (zero mean, unit variance); with
  data in [0, 1] the model's noise dominates the signal, so use a smaller learning rate (about
  10x, Hinton 2010, "A practical guide to training RBMs", section 13.2) and expect samples to
  need clamping to [0, 1] (the DBN's ``dream`` does this).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from robert.errors import choice_error

VISIBLE_TYPES = ("bernoulli", "gaussian")

# Applied to the sufficient statistics of one CD step before the update; under DDP the Lightning
# module passes an all-reduce mean so every process makes the same update.
StatisticsReducer = Callable[[Tensor], Tensor]


def uniform_like(reference: Tensor, generator: torch.Generator) -> Tensor:
    """U(0, 1) draws of ``reference``'s shape, drawn on the generator's device.

    Drawing on the generator's device (then moving) means a CPU generator gives the same numbers
    whether the model sits on CPU or GPU, and a GPU generator works too.
    """
    draws = torch.rand(reference.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return draws.to(device=reference.device, dtype=reference.dtype)


def normal_like(reference: Tensor, generator: torch.Generator) -> Tensor:
    """N(0, 1) draws of ``reference``'s shape (same device rule as :func:`uniform_like`)."""
    draws = torch.randn(reference.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return draws.to(device=reference.device, dtype=reference.dtype)


def bernoulli_sample(probabilities: Tensor, generator: torch.Generator) -> Tensor:
    """Binary states with P(1) = ``probabilities``."""
    return (uniform_like(probabilities, generator) < probabilities).to(probabilities.dtype)


class RBM(nn.Module):
    """A restricted Boltzmann machine with Bernoulli hidden units.

    Energy: E(v, h) = -v.b - h.c - v W h (Bernoulli visible) or ||v - b||^2 / 2 - h.c - v W h (Gaussian).
    ``weight`` has shape (n_visible, n_hidden). A persistent Gibbs chain buffer of
    ``n_persistent_chains`` visible states (for PCD) and the momentum velocities are buffers, so a
    checkpoint restores training exactly.
    """

    def __init__(self, n_visible: int, n_hidden: int, visible_type: str = "bernoulli",
                 n_persistent_chains: int = 64, init_std: float = 0.01,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if visible_type not in VISIBLE_TYPES:
            raise choice_error("visible unit type", visible_type, VISIBLE_TYPES)
        self.n_visible, self.n_hidden, self.visible_type = n_visible, n_hidden, visible_type
        # Small random weights, zero biases (Hinton 2010, section 8).
        weight = torch.randn(n_visible, n_hidden, generator=generator) * init_std
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.visible_bias = nn.Parameter(torch.zeros(n_visible), requires_grad=False)
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden), requires_grad=False)
        self.register_buffer("weight_velocity", torch.zeros(n_visible, n_hidden))
        self.register_buffer("visible_bias_velocity", torch.zeros(n_visible))
        self.register_buffer("hidden_bias_velocity", torch.zeros(n_hidden))
        self.register_buffer("persistent_visible", torch.zeros(max(n_persistent_chains, 1), n_visible))
        # A tensor flag (not a Python bool) so it travels in state_dict with the chains.
        self.register_buffer("persistent_ready", torch.zeros((), dtype=torch.bool))
        # The last ``softmax_units`` visible units form one softmax group (0: none). A training-time
        # setting, not state: it changes how the visible layer is sampled, not the energy of one-hot
        # vectors (free energies, hence free-energy classification, are the same).
        self.softmax_units = 0

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible_type={self.visible_type!r}"

    # --- conditionals and sampling -------------------------------------------------------------

    def hidden_probs(self, visible: Tensor) -> Tensor:
        """p(h = 1 | v), shape (batch, n_hidden)."""
        return torch.sigmoid(visible @ self.weight + self.hidden_bias)

    def visible_mean(self, hidden: Tensor) -> Tensor:
        """E[v | h]: p(v = 1 | h) for Bernoulli units, the Gaussian mean b + W h for Gaussian units.

        With ``softmax_units = K`` (Bernoulli only) the last K visible units are one softmax group: their
        means are the probabilities of a one-of-K choice (Hinton, Osindero & Teh 2006's label units).
        """
        activation = hidden @ self.weight.T + self.visible_bias
        if self.visible_type != "bernoulli":
            return activation
        if self.softmax_units:
            group = self.n_visible - self.softmax_units
            return torch.cat([torch.sigmoid(activation[:, :group]), torch.softmax(activation[:, group:], dim=1)],
                             dim=1)
        return torch.sigmoid(activation)

    def sample_h(self, visible: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(p(h | v), a binary sample of h)."""
        probabilities = self.hidden_probs(visible)
        return probabilities, bernoulli_sample(probabilities, generator)

    def sample_v(self, hidden: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(E[v | h], a sample of v): binary for Bernoulli units, mean + N(0, 1) for Gaussian units."""
        mean = self.visible_mean(hidden)
        if self.visible_type != "bernoulli":
            return mean, mean + normal_like(mean, generator)
        if not self.softmax_units:
            return mean, bernoulli_sample(mean, generator)
        group = self.n_visible - self.softmax_units
        # One-of-K by inverse CDF with one uniform draw per row (device-independent like uniform_like).
        cumulative = mean[:, group:].cumsum(dim=1)
        choice = (cumulative < uniform_like(cumulative[:, :1], generator) * cumulative[:, -1:]).sum(dim=1)
        one_hot = nn.functional.one_hot(choice.clamp(max=self.softmax_units - 1), self.softmax_units)
        return mean, torch.cat([bernoulli_sample(mean[:, :group], generator), one_hot.to(mean.dtype)], dim=1)

    def free_energy(self, visible: Tensor) -> Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) per row, shape (batch,); p(v) is proportional to exp(-F(v))."""
        hidden_term = nn.functional.softplus(visible @ self.weight + self.hidden_bias).sum(dim=1)
        if self.visible_type == "bernoulli":
            return -(visible @ self.visible_bias) - hidden_term
        return 0.5 * ((visible - self.visible_bias) ** 2).sum(dim=1) - hidden_term

    @torch.no_grad()
    def reconstruction_error(self, visible: Tensor) -> Tensor:
        """Mean squared error of the mean-field reconstruction E[v | p(h | v)] (a cheap, biased monitor)."""
        return ((self.visible_mean(self.hidden_probs(visible)) - visible) ** 2).mean()

    @torch.no_grad()
    def free_energy_gap(self, train_visible: Tensor, heldout_visible: Tensor) -> Tensor:
        """mean F(held-out) - mean F(train).

        Hinton 2010 (section 6): the partition function cancels in the difference, so a gap that
        keeps growing means the RBM is overfitting the training data.
        """
        return self.free_energy(heldout_visible).mean() - self.free_energy(train_visible).mean()

    @torch.no_grad()
    def gibbs_chain(self, visible: Tensor, n_steps: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Run ``n_steps`` of block Gibbs sampling v -> h -> v from ``visible``.

        Returns (last visible sample, p(h | last visible sample)).
        """
        hidden_probs, hidden = self.sample_h(visible, generator)
        for _ in range(n_steps):
            _, visible = self.sample_v(hidden, generator)
            hidden_probs, hidden = self.sample_h(visible, generator)
        return visible, hidden_probs

    # --- training --------------------------------------------------------------------------------

    @torch.no_grad()
    def contrastive_divergence_step(self, visible: Tensor, k: int = 1, persistent: bool = False,
                                    lr: float = 0.05, momentum: float = 0.5, weight_decay: float = 2e-4,
                                    generator: torch.Generator | None = None,
                                    reduce_statistics: StatisticsReducer | None = None) -> Tensor:
        """One CD-k (``persistent=False``) or PCD-k (``persistent=True``) update on a batch; in place.

        Positive statistics use p(h | data); the negative phase runs k Gibbs steps from the data
        (CD) or from the persistent chains (PCD, Tieleman 2008), whose last samples are kept for the
        next call. Update: velocity <- momentum * velocity + lr * (statistics gap - weight_decay * W),
        parameter += velocity; L2 weight decay applies to the weights only, not the biases.
        ``reduce_statistics`` (e.g. an all-reduce mean under DDP) is applied to the gradient
        estimates before the update. Returns the batch's reconstruction error before the update: the mean squared
        difference between the data and E[v | h], h sampled from p(h | data) (CD's first Gibbs step; PCD: E[v | p(h |
        data)], as its chains start elsewhere).
        """
        if generator is None:
            raise ValueError("contrastive_divergence_step needs an explicit torch.Generator (reproducible)")
        if k < 1:
            raise ValueError(f"CD needs k >= 1 Gibbs steps, got {k}")
        n_rows = visible.shape[0]
        positive_hidden = self.hidden_probs(visible)

        if persistent:
            if not bool(self.persistent_ready):
                # Start the chains at training data (Hinton 2010, section 3.3): they mix from there.
                rows = torch.randint(n_rows, (self.persistent_visible.shape[0],), generator=generator,
                                     device=generator.device).to(visible.device)
                self.persistent_visible.copy_(visible[rows])
                self.persistent_ready.fill_(True)
            negative_visible, negative_hidden = self.gibbs_chain(self.persistent_visible, k, generator)
            self.persistent_visible.copy_(negative_visible)
            reconstruction_error = ((self.visible_mean(positive_hidden) - visible) ** 2).mean()  # no extra draw
        else:
            hidden = bernoulli_sample(positive_hidden, generator)  # = sample_h(visible), without its matmul again
            for step in range(k):
                mean, sample = self.sample_v(hidden, generator)
                if step == 0:
                    # the one-step reconstruction E[v | h ~ p(h | data)] (Hinton 2010, section 5): the monitor
                    reconstruction_error = ((mean - visible) ** 2).mean()
                # Last step: the mean, not a sample, lowers the noise of the statistics (Hinton 2010, 3.2).
                negative_visible = mean if step == k - 1 else sample
                negative_hidden, hidden = self.sample_h(negative_visible, generator)

        n_negative = negative_visible.shape[0]
        weight_gradient = (visible.T @ positive_hidden / n_rows
                           - negative_visible.T @ negative_hidden / n_negative)
        visible_bias_gradient = visible.mean(dim=0) - negative_visible.mean(dim=0)
        hidden_bias_gradient = positive_hidden.mean(dim=0) - negative_hidden.mean(dim=0)
        if reduce_statistics is not None:
            weight_gradient = reduce_statistics(weight_gradient)
            visible_bias_gradient = reduce_statistics(visible_bias_gradient)
            hidden_bias_gradient = reduce_statistics(hidden_bias_gradient)

        self._momentum_update(((self.weight, self.weight_velocity, weight_gradient, weight_decay),
                               (self.visible_bias, self.visible_bias_velocity, visible_bias_gradient, 0.0),
                               (self.hidden_bias, self.hidden_bias_velocity, hidden_bias_gradient, 0.0)),
                              lr, momentum)
        return reconstruction_error

    @staticmethod
    def _momentum_update(updates: tuple[tuple[Tensor, Tensor, Tensor, float], ...], lr: float,
                         momentum: float) -> None:
        """velocity <- momentum * velocity + lr * (gradient - decay * parameter); parameter += velocity."""
        for parameter, velocity, gradient, decay in updates:
            velocity.mul_(momentum).add_(gradient - decay * parameter, alpha=lr)
            parameter.add_(velocity)

    @torch.no_grad()
    def generative_step(self, hidden: Tensor, visible: Tensor, lr: float = 0.05, momentum: float = 0.5,
                        weight_decay: float = 2e-4, reduce_statistics: StatisticsReducer | None = None) -> Tensor:
        """One wake-phase delta-rule update of the top-down (generative) direction only; in place.

        Hinton, Osindero & Teh 2006 (section 5): with recognition states ``hidden`` of the layer above and
        ``visible`` of this layer, dW = lr * (visible - E[v | hidden])^T hidden, db = lr * (visible - E[v | hidden]),
        the gradient of log p(visible | hidden) (Bernoulli: cross-entropy; unit-variance Gaussian: squared
        error). The hidden biases, used only upward, stay. Same momentum/decay rule as the CD step.
        Returns the mean squared error of the top-down prediction before the update.
        """
        error = visible - self.visible_mean(hidden)
        weight_gradient = error.T @ hidden / visible.shape[0]
        visible_bias_gradient = error.mean(dim=0)
        if reduce_statistics is not None:
            weight_gradient = reduce_statistics(weight_gradient)
            visible_bias_gradient = reduce_statistics(visible_bias_gradient)
        self._momentum_update(((self.weight, self.weight_velocity, weight_gradient, weight_decay),
                               (self.visible_bias, self.visible_bias_velocity, visible_bias_gradient, 0.0)),
                              lr, momentum)
        return (error ** 2).mean()
