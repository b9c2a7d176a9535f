"""The generative dream: clamp a label in the top associative RBM, Gibbs-sample, pass down to the spectrum.

The sampling itself is :meth:`DeepBeliefNetwork.dream`; this module averages its chains, keeps the depth
channel as the dreamt spectrum (the visible layer holds every input channel: the other channels are dreamt
too, and their means are reported), checks that the model has a generative stack worth running, and
measures how well the top RBM, as the generative model's own classifier, knows the labels (the associative
memory the dream runs on).

Labels: a model trained with detection labels learnt label units that say "this gas is detected" (a mixture
switches several on, or none); the dream still clamps exactly one label unit on and the others off, i.e.
asks for a spectrum in which that gas alone is detected.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from robert.dream.result import Dream
from robert.errors import UserError
from robert.model.base import Recogniser
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.transforms import stable_seed


def require_generative_stack(network: Recogniser, trained: bool, model_label: str) -> DeepBeliefNetwork:
    """The network as a DBN with a trained generative stack; else a one-line refusal saying what to do."""
    if not isinstance(network, DeepBeliefNetwork):
        raise UserError(f"{model_label} is not a deep belief network (model kind {network.kind}): the generative "
                        "dream needs a top RBM to clamp a label in; use dream.methods=[optimisation]")
    if not trained:
        raise UserError(f"{model_label} has no trained generative stack (it was trained with no RBM "
                        "pre-training epochs or no top-RBM epochs), so the generative dream would show its "
                        "random initial weights: use dream.methods=[optimisation], or retrain with "
                        "model.pretrain.epochs_per_layer > 0 and model.top.epochs > 0")
    return network


def generative_dream(network: DeepBeliefNetwork, molecules: list[str], label_index: int, n_chains: int,
                     n_gibbs_steps: int, seed: int, start: str = "random") -> Dream:
    """The mean over ``n_chains`` Gibbs chains of the visible layer with label ``label_index`` clamped.

    Each molecule's chains draw from their own generator seeded by (seed, molecule), so a molecule's
    dream does not depend on which other molecules are dreamt, or in which order. ``details`` holds the
    mean over the grid of every other dreamt channel (``mean_dreamt_error``, ``mean_dreamt_mask``).
    """
    generator = torch.Generator().manual_seed(stable_seed("generative-dream", seed, molecules[label_index]))
    visible, activations = network.dream(label_index, n_chains, n_gibbs_steps, generator, start)
    depth = network.depth_channel(visible)
    mean_input = visible.mean(dim=0).double()
    channels = mean_input.reshape(len(network.channels), network.n_grid)
    details = {f"mean_dreamt_{name}": float(channels[c].mean())
               for c, name in enumerate(network.channels) if name != "depth"}
    return Dream("generative", molecules[label_index], depth.mean(dim=0).double().numpy(),
                 depth.std(dim=0).double().numpy() if n_chains > 1 else np.zeros(network.n_grid),
                 [layer.mean(dim=0).double().numpy() for layer in activations], mean_input.numpy(), details)


@torch.no_grad()
def associative_memory_accuracy(network: DeepBeliefNetwork, inputs: Tensor, truth: np.ndarray,
                                batch_size: int = 4096) -> np.ndarray:
    """Per label: the share of its spectra (network ``inputs``, true label index ``truth``) for which the top
    RBM prefers that label.

    The top RBM classifies by free energy (:meth:`DeepBeliefNetwork.label_free_energies`; the same
    measure the training logs as ``<phase>/val_top_rbm_accuracy``): the label whose one-hot vector,
    joined to the spectrum's penultimate states, has the lowest F(v) is the most probable under the RBM
    (Hinton, Osindero & Teh 2006). A dream can only be as label-specific as this memory: near chance
    here means the top RBM has not learnt which features go with which label, whatever the classifier's
    accuracy (the reason for the generative fine-tuning phase, :mod:`robert.model.dbn`).
    """
    predicted = [network.label_free_energies(inputs[start:start + batch_size]).argmin(dim=1).numpy()
                 for start in range(0, len(inputs), batch_size)]
    hits = np.concatenate(predicted) == truth if predicted else np.zeros(0, dtype=bool)
    return np.array([hits[truth == j].mean() if (truth == j).any() else np.nan for j in range(network.n_labels)])
