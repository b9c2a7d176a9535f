"""Deep belief network: a stack of RBMs, a top associative RBM with label units, a fine-tuned classifier.

Why hand-written: no maintained library implements DBNs (greedy CD pre-training, an associative
top RBM, generation by clamping a label) for torch; see :mod:`robert.model.rbm`.

Layout for ``hidden = [h1, ..., hn]`` over ``n_visible`` inputs (``n_grid`` cells x the input channels, see
:mod:`robert.model.base`) and ``n_labels`` molecules
(Hinton, Osindero & Teh 2006, "A fast learning algorithm for deep belief nets"):

* ``rbms``: the directed stack n_visible -> h1 -> ... -> h(n-1), pre-trained greedily;
* ``top_rbm``: the undirected associative memory over (h(n-1) + one Bernoulli label unit per
  molecule) <-> hn. Labels are independent Bernoulli units, not a softmax, so a mixture can switch
  several on;
* ``classifier``: the discriminative net n_visible -> h1 -> ... -> hn -> n_labels (sigmoid hidden
  units, one logit per molecule), initialised from the stack and then fine-tuned by
  backpropagation. It is a separate copy: fine-tuning leaves the generative weights untouched.

Generative fine-tuning (our variant of the "up-down" algorithm, Hinton, Osindero & Teh 2006,
section 5; :meth:`DeepBeliefNetwork.begin_generative_finetuning`, :meth:`DeepBeliefNetwork.wake_phase_step`).
After greedy learning the recognition and generative weights are untied:

* recognition weights = the discriminatively fine-tuned ``classifier`` (its hidden layers give the
  recognition states h1 ... h(n-1) of a spectrum);
* generative weights = the stacked RBMs' weights used *downward* (``RBM.visible_mean``: layer l+1 ->
  layer l, with the RBM's visible biases). Why not separate parameters: the tied pre-trained weights
  are exactly where the up-down algorithm starts its generative weights, they already travel in
  ``state_dict`` and old checkpoints keep loading. After the phase the RBMs' *upward* direction is
  no longer a recognition model: everything that needs the penultimate states of a spectrum calls
  :meth:`DeepBeliefNetwork.penultimate`, which reads the classifier once ``generative_finetuned``;
* the wake phase trains each generative layer by the delta rule, i.e. gradient ascent on
  log p(recognition state of layer l | recognition state of layer l+1) (Bernoulli: cross-entropy;
  Gaussian visible units: squared error), with mean-field recognition states (the dream passes
  down mean-field probabilities too);
* the top associative RBM is retrained by CD on (the classifier's penultimate activations, labels),
  so the memory the dream clamps a label in describes the features that carry the labels (the
  pre-trained stack's penultimate layer had lost most of them: README, "Dream report"); during that
  retraining the label units are sampled as one softmax group for one-hot batches, as in HOT 2006
  (``RBM.softmax_units``, set by the Lightning module around those CD steps only).
There is no sleep phase: the recognition weights stay the fine-tuned classifier. A network that never
ran the phase (``generative_finetuned`` false, also every checkpoint written before it existed)
behaves as before: its top RBM models the pre-trained stack's up-pass.

Visible units: Bernoulli units read the inputs in [0, 1] as probabilities. Gaussian units assume
zero-mean, unit-variance data (Hinton 2010, section 13.2), so with ``visible_type="gaussian"`` the stack
reads every input standardised with the training set's mean and standard deviation
(:meth:`~robert.model.base.Recogniser.fit_input_scaling`; buffers, so they travel in ``state_dict``); dreams
are mapped back to [0, 1] space. The classifier always reads standardised inputs (as every recogniser does,
:mod:`robert.model.base`); a Bernoulli stack's first-layer weights are folded into that parametrisation when
they initialise it (the same function, better conditioned for gradient steps).

Everything is plain tensors in ``state_dict`` (loads with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from robert.errors import UserError
from robert.model.base import Recogniser, glorot_
from robert.model.rbm import RBM, StatisticsReducer, bernoulli_sample

DREAM_STARTS = ("random", "label")  # where the label-clamped Gibbs chains of a dream begin (see dream)


def validate_hidden_widths(hidden: object, field: str = "model.hidden") -> list[int]:
    """The hidden widths as a list of positive ints, or a UserError naming ``field``.

    At least two widths: the stack below the top RBM needs one layer (the "penultimate" layer the
    label units join) and the top RBM needs its own hidden layer.
    """
    if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
        raise UserError(f"{field} must be a list of layer widths, e.g. [500, 200, 50]; got {hidden!r}")
    if len(hidden) < 2:
        raise UserError(f"{field} needs at least two widths (stacked layer(s) + the top RBM's layer); "
                        f"got {list(hidden)}")
    for position, width in enumerate(hidden):
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise UserError(f"{field}[{position}] must be a positive integer width; got {width!r}")
    return list(hidden)


def _default_generative_flag(module: nn.Module, state_dict: dict[str, Tensor], prefix: str,
                             *args: object) -> None:
    """Checkpoints written before generative fine-tuning existed lack its flag: they never ran it."""
    state_dict.setdefault(prefix + "generative_finetuned", torch.zeros((), dtype=torch.bool))


class DeepBeliefNetwork(Recogniser):
    """Generative RBM stack + top associative RBM, and the discriminative classifier they initialise."""

    kind = "dbn"

    def __init__(self, n_grid: int, channels: Sequence[str], n_labels: int, hidden: Sequence[int] = (500, 200, 50),
                 visible_type: str = "bernoulli", n_persistent_chains: int = 64, seed: int = 0) -> None:
        super().__init__(n_grid, channels, n_labels)
        widths = validate_hidden_widths(hidden)
        n_visible = self.n_inputs
        self.n_visible, self.hidden = n_visible, widths
        self.n_persistent_chains, self.seed = int(n_persistent_chains), int(seed)
        generator = torch.Generator().manual_seed(seed)  # initial weights are reproducible from the seed

        stack_sizes = [n_visible, *widths[:-1]]
        self.rbms = nn.ModuleList(
            RBM(n_in, n_out, visible_type if depth == 0 else "bernoulli", n_persistent_chains,
                generator=generator)
            for depth, (n_in, n_out) in enumerate(pairwise(stack_sizes))
        )
        self.n_penultimate = stack_sizes[-1]
        self.top_rbm = RBM(self.n_penultimate + n_labels, widths[-1], "bernoulli", n_persistent_chains,
                           generator=generator)

        classifier_sizes = [n_visible, *widths, n_labels]
        self.classifier = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in pairwise(classifier_sizes))
        for layer in self.classifier:
            glorot_(layer, generator)
        self.register_buffer("classifier_initialised", torch.zeros((), dtype=torch.bool))
        # True once generative fine-tuning began: the top RBM then models the classifier's penultimate
        # states and the stack's weights are generative only (see the module docstring).
        self.register_buffer("generative_finetuned", torch.zeros((), dtype=torch.bool))
        self.register_load_state_dict_pre_hook(_default_generative_flag)

    def output_layer(self) -> nn.Linear:
        return self.classifier[-1]

    def classifier_parameters(self) -> Iterator[nn.Parameter]:
        return self.classifier.parameters()

    def spec(self) -> dict[str, object]:
        return super().spec() | {"hidden": self.hidden, "visible": self.rbms[0].visible_type,
                                 "n_persistent_chains": self.n_persistent_chains, "seed": self.seed}

    @property
    def standardises_input(self) -> bool:
        return self.rbms[0].visible_type == "gaussian"

    def scale_input(self, visible: Tensor) -> Tensor:
        """What the first RBM sees: the [0, 1] inputs, standardised for Gaussian visible units."""
        return (visible - self.input_mean) / self.input_std if self.standardises_input else visible

    def unscale_input(self, scaled: Tensor) -> Tensor:
        """The inverse of :meth:`scale_input`: back to the [0, 1] spectrum space."""
        return scaled * self.input_std + self.input_mean if self.standardises_input else scaled

    # --- discriminative path ----------------------------------------------------------------------

    def forward(self, visible: Tensor) -> Tensor:
        """Logits (batch, n_labels) of the classifier; sigmoid gives P(molecule present)."""
        activation = self.standardise(visible)
        for layer in self.classifier[:-1]:
            activation = torch.sigmoid(layer(activation))
        return self.classifier[-1](activation)

    @torch.no_grad()
    def initialise_classifier_from_stack(self) -> None:
        """Copy the pre-trained recognition weights into the classifier (before fine-tuning).

        Stack layers -> hidden layers; the top RBM's penultimate-to-top weights -> the last hidden
        layer; its label-to-top weights and label biases -> the output layer, because in the top
        RBM p(label_j = 1 | top) = sigmoid(b_j + W_j . top), exactly a sigmoid output unit.
        """
        for layer, rbm in zip(self.classifier, self.rbms, strict=False):
            layer.weight.copy_(rbm.weight.T)
            layer.bias.copy_(rbm.hidden_bias)
        if not self.standardises_input:
            # the stack read raw inputs x = std * z + mean, the classifier reads z: W.x + c = (W std).z + (c + W.mean)
            first, rbm = self.classifier[0], self.rbms[0]
            first.weight.copy_((rbm.weight * self.input_std[:, None]).T)
            first.bias.copy_(rbm.hidden_bias + self.input_mean @ rbm.weight)
        top_layer, output_layer = self.classifier[len(self.rbms)], self.classifier[-1]
        top_layer.weight.copy_(self.top_rbm.weight[: self.n_penultimate].T)
        top_layer.bias.copy_(self.top_rbm.hidden_bias)
        output_layer.weight.copy_(self.top_rbm.weight[self.n_penultimate:])
        output_layer.bias.copy_(self.top_rbm.visible_bias[self.n_penultimate:])
        self.classifier_initialised.fill_(True)

    # --- generative path --------------------------------------------------------------------------

    @torch.no_grad()
    def up_pass(self, visible: Tensor, n_layers: int | None = None) -> Tensor:
        """Mean-field recognition through the first ``n_layers`` stacked RBMs (all by default).

        ``n_layers=0`` gives the first RBM's data: the (possibly standardised) visible vector.
        """
        activation = self.scale_input(visible)
        for rbm in self.rbms[: len(self.rbms) if n_layers is None else n_layers]:
            activation = rbm.hidden_probs(activation)
        return activation

    @torch.no_grad()
    def recognition_states(self, visible: Tensor) -> list[Tensor]:
        """Mean-field recognition states of the generative layers through the fine-tuned classifier.

        [layer 0 = the first RBM's visible vector (standardised for Gaussian units), h1, ..., h(n-1) = the
        penultimate layer]: one entry per stacked RBM plus one, what the wake phase predicts top-down.
        """
        states, activation = [self.scale_input(visible)], self.standardise(visible)
        for layer in self.classifier[: len(self.rbms)]:
            activation = torch.sigmoid(layer(activation))
            states.append(activation)
        return states

    @torch.no_grad()
    def penultimate(self, visible: Tensor) -> Tensor:
        """The penultimate states the top RBM models: the classifier's after generative fine-tuning,
        the pre-trained stack's up-pass before it."""
        if bool(self.generative_finetuned):
            return self.recognition_states(visible)[-1]
        return self.up_pass(visible)

    def top_rbm_input(self, visible: Tensor, labels: Tensor) -> Tensor:
        """The top RBM's visible vector: (penultimate activations, label units)."""
        return torch.cat([self.penultimate(visible), labels.to(visible.dtype)], dim=1)

    @torch.no_grad()
    def label_free_energies(self, visible: Tensor) -> Tensor:
        """(batch, n_labels): the top RBM's free energy of each spectrum with each one-hot label.

        The lowest is the label the associative memory finds most probable (Hinton, Osindero & Teh 2006):
        the generative model's own classification, and the best a label-clamped dream can know.
        """
        penultimate = self.penultimate(visible)
        one_hot = torch.eye(self.n_labels, device=penultimate.device, dtype=penultimate.dtype)
        return torch.stack([self.top_rbm.free_energy(torch.cat(
            [penultimate, one_hot[j].expand(len(penultimate), -1)], dim=1)) for j in range(self.n_labels)], dim=1)

    # --- generative fine-tuning (up-down algorithm, wake phase; see the module docstring) --------

    @torch.no_grad()
    def begin_generative_finetuning(self) -> None:
        """Switch the top RBM to the classifier's penultimate states; restart momentum and PCD chains.

        Momentum velocities and persistent chains belong to the pre-training's objective and data: the
        new phase starts them afresh (so it depends on no leftover state).
        """
        for rbm in [*self.rbms, self.top_rbm]:
            for buffer in (rbm.weight_velocity, rbm.visible_bias_velocity, rbm.hidden_bias_velocity):
                buffer.zero_()
            rbm.persistent_ready.fill_(False)
        self.generative_finetuned.fill_(True)

    @torch.no_grad()
    def generation_errors(self, visible: Tensor) -> tuple[Tensor, int]:
        """(summed squared error, number of values) of each generative layer's top-down prediction of
        the recognition states below it, over all stacked layers (the wake phase's monitor)."""
        states = self.recognition_states(visible)
        total = sum(((rbm.visible_mean(states[depth + 1]) - states[depth]) ** 2).sum()
                    for depth, rbm in enumerate(self.rbms))
        return total, sum(state.numel() for state in states[:-1])

    @torch.no_grad()
    def wake_phase_step(self, visible: Tensor, lr: float, momentum: float, weight_decay: float,
                        reduce_statistics: StatisticsReducer | None = None) -> Tensor:
        """One delta-rule update of every generative layer on a batch; returns the mean squared error
        over all layers' values before the update (comparable with :meth:`generation_errors`)."""
        states = self.recognition_states(visible)
        squared = [rbm.generative_step(states[depth + 1], states[depth], lr, momentum, weight_decay,
                                       reduce_statistics) * states[depth].numel()
                   for depth, rbm in enumerate(self.rbms)]
        return torch.stack(squared).sum() / sum(state.numel() for state in states[:-1])

    @torch.no_grad()
    def dream(self, label_index: int, n_chains: int, n_gibbs_steps: int,
              generator: torch.Generator, start: str = "random") -> tuple[Tensor, list[Tensor]]:
        """The network's idea of one molecule's spectrum (Waldmann 2016, Fig. 5).

        Clamp label ``label_index`` on (the others off) in the top RBM, start the chains (``start``:
        ``"random"`` = the penultimate units at random binary states; ``"label"`` = the top units at a
        sample of what the clamped label alone drives, p(h | penultimate off, label), so the chains begin
        in the label's own basin: the associative memory mixes slowly between basins, measured on the
        paper-scale champion), run ``n_gibbs_steps`` of Gibbs sampling between the top RBM's
        hidden and penultimate units (labels re-clamped each step), then pass the penultimate
        probabilities down through the generative weights with mean-field activations. After
        generative fine-tuning those are the retrained top RBM and the wake-phase-trained weights.

        Returns (visible mean (n_chains, n_visible), activations [layer 1, ..., top layer], each
        (n_chains, width)). Gaussian visible means are clamped to the data range [0, 1]. Averaging
        over chains gives the smooth dream; a fixed generator gives the same dream every time.
        """
        if not 0 <= label_index < self.n_labels:
            raise ValueError(f"label_index {label_index} out of range for {self.n_labels} labels")
        reference = self.top_rbm.weight
        labels = torch.zeros(n_chains, self.n_labels, device=reference.device, dtype=reference.dtype)
        labels[:, label_index] = 1.0
        if start not in DREAM_STARTS:
            raise ValueError(f"dream start must be one of {DREAM_STARTS}, got {start!r}")
        if start == "random":
            penultimate = bernoulli_sample(torch.full((n_chains, self.n_penultimate), 0.5, device=reference.device,
                                                      dtype=reference.dtype), generator)
        else:
            penultimate = torch.zeros(n_chains, self.n_penultimate, device=reference.device, dtype=reference.dtype)
        top_probs, top_states = self.top_rbm.sample_h(torch.cat([penultimate, labels], dim=1), generator)
        for _ in range(n_gibbs_steps):
            _, top_visible = self.top_rbm.sample_v(top_states, generator)
            penultimate = top_visible[:, : self.n_penultimate]
            top_probs, top_states = self.top_rbm.sample_h(torch.cat([penultimate, labels], dim=1), generator)
        # The last down step from the top uses probabilities, not samples: a smoother pass down.
        penultimate_probs = self.top_rbm.visible_mean(top_probs)[:, : self.n_penultimate]

        activations_top_down = [top_probs, penultimate_probs]
        activation = penultimate_probs
        for rbm in reversed(self.rbms):
            activation = rbm.visible_mean(activation)
            activations_top_down.append(activation)
        visible = self.unscale_input(activations_top_down.pop()).clamp(0.0, 1.0)
        return visible, activations_top_down[::-1]

