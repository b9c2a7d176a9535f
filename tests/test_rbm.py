"""RBM: CD-1 and PCD learn real spectra-like data; free energy, determinism, exact small cases.

The corpus (:mod:`helpers.corpus`, shared with test_dbn.py) is real, deterministic and labelled: log10
cross-sections of H2O, CO and CO2 from the tiny opacity cache, one vector per (molecule, T, P) slice.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from helpers.corpus import N_POINTS, Corpus, single_torch_thread, spectra_corpus  # noqa: F401 (autouse fixture)
from robert.model.rbm import RBM


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return spectra_corpus()


def train_rbm(data: torch.Tensor, n_hidden: int = 64, epochs: int = 20, seed: int = 0, batch_size: int = 32,
              **cd_settings) -> tuple[RBM, list[float]]:
    """Train an RBM by minibatch CD; returns it and the full-data reconstruction error after each epoch."""
    generator = torch.Generator().manual_seed(seed)
    settings = {"k": 1, "persistent": False, "lr": 0.05, "momentum": 0.5, "weight_decay": 2e-4, **cd_settings}
    visible_type = settings.pop("visible_type", "bernoulli")
    rbm = RBM(data.shape[1], n_hidden, visible_type, n_persistent_chains=batch_size, generator=generator)
    errors = [float(rbm.reconstruction_error(data))]
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), batch_size):
            rbm.contrastive_divergence_step(data[order[start:start + batch_size]], generator=generator, **settings)
        errors.append(float(rbm.reconstruction_error(data)))
    return rbm, errors


def test_corpus_is_real_labelled_and_normalised(corpus: Corpus) -> None:
    assert len(corpus.label_names) >= 2, corpus.source
    assert corpus.train_x.shape[1] == N_POINTS and len(corpus.heldout_x) > 0
    assert float(corpus.train_x.min()) == 0.0 and float(corpus.train_x.max()) == 1.0
    assert torch.equal(corpus.train_y.sum(dim=1), torch.ones(len(corpus.train_y)))
    # Different molecules give different vectors: class means are far apart on a [0, 1] scale.
    means = [corpus.train_x[corpus.train_y[:, c] == 1].mean(dim=0) for c in range(len(corpus.label_names))]
    assert min(float((a - b).abs().mean()) for a, b in itertools.combinations(means, 2)) > 0.03


@pytest.mark.parametrize("persistent", [False, True], ids=["CD-1", "PCD-1"])
def test_reconstruction_error_falls_during_training(corpus: Corpus, persistent: bool) -> None:
    _, errors = train_rbm(corpus.train_x, persistent=persistent)
    assert errors[-1] < 0.5 * errors[0], errors
    assert errors[-1] < errors[len(errors) // 3], errors  # still improving after the first third


def test_gaussian_visible_units_learn_standardised_data(corpus: Corpus) -> None:
    mean, std = corpus.train_x.mean(dim=0), corpus.train_x.std(dim=0).clamp(min=1e-3)
    standardised = (corpus.train_x - mean) / std
    _, errors = train_rbm(standardised, visible_type="gaussian", lr=0.005)
    assert errors[-1] < 0.6 * errors[0], errors


def test_training_data_has_lower_free_energy_than_shuffled_features(corpus: Corpus) -> None:
    rbm, _ = train_rbm(corpus.train_x)
    generator = torch.Generator().manual_seed(1)
    # Shuffling each row's features keeps its value histogram but destroys the spectral structure.
    shuffled = torch.stack([row[torch.randperm(len(row), generator=generator)] for row in corpus.train_x])
    assert float(rbm.free_energy(corpus.train_x).mean()) < float(rbm.free_energy(shuffled).mean()) - 10.0
    # Held-out spectra of the same molecules sit close to the training data, shuffled ones far away.
    assert float(rbm.free_energy_gap(corpus.train_x, corpus.heldout_x)) < float(
        rbm.free_energy_gap(corpus.train_x, shuffled)) / 4


def test_same_seed_gives_identical_weights_and_errors(corpus: Corpus) -> None:
    (rbm_a, errors_a), (rbm_b, errors_b) = (train_rbm(corpus.train_x, epochs=3, persistent=True) for _ in range(2))
    assert errors_a == errors_b
    for (name, a), (_, b) in zip(rbm_a.state_dict().items(), rbm_b.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    rbm_c, _ = train_rbm(corpus.train_x, epochs=3, persistent=True, seed=1)
    assert not torch.equal(rbm_a.weight, rbm_c.weight)


def test_free_energy_equals_brute_force_sum_over_hidden_states() -> None:
    generator = torch.Generator().manual_seed(3)
    rbm = RBM(3, 2, init_std=1.0, generator=generator)
    rbm.visible_bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    rbm.hidden_bias.copy_(torch.tensor([-0.5, 0.4]))
    visible = torch.tensor([[1.0, 0.0, 1.0], [0.2, 0.7, 0.0]])
    hidden_states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)))
    energy = -(visible @ rbm.visible_bias)[:, None] - (hidden_states @ rbm.hidden_bias)[None, :] \
        - visible @ rbm.weight @ hidden_states.T
    torch.testing.assert_close(rbm.free_energy(visible), -torch.logsumexp(-energy, dim=1))


def test_state_dict_holds_chains_and_velocities_and_loads_weights_only(corpus: Corpus, tmp_path: Path) -> None:
    rbm, _ = train_rbm(corpus.train_x, epochs=1, persistent=True)
    assert bool(rbm.persistent_ready) and float(rbm.weight_velocity.abs().sum()) > 0
    torch.save(rbm.state_dict(), tmp_path / "rbm.pt")
    restored = RBM(rbm.n_visible, rbm.n_hidden, n_persistent_chains=32)
    restored.load_state_dict(torch.load(tmp_path / "rbm.pt", weights_only=True))
    assert torch.equal(restored.persistent_visible, rbm.persistent_visible)


def test_cd_step_requires_a_generator_and_k_at_least_one(corpus: Corpus) -> None:
    rbm = RBM(N_POINTS, 8)
    with pytest.raises(ValueError, match="Generator"):
        rbm.contrastive_divergence_step(corpus.train_x[:4])
    with pytest.raises(ValueError, match="k >= 1"):
        rbm.contrastive_divergence_step(corpus.train_x[:4], k=0, generator=torch.Generator())


def test_wake_phase_delta_rule_is_the_log_likelihood_gradient_and_learns_the_top_down_map(corpus: Corpus) -> None:
    # Recognition states from an independently trained RBM stand in for the classifier's hidden layer.
    recogniser, _ = train_rbm(corpus.train_x, n_hidden=32, epochs=3, seed=1)
    hidden, visible = recogniser.hidden_probs(corpus.train_x), corpus.train_x
    rbm = RBM(visible.shape[1], 32, generator=torch.Generator().manual_seed(0))
    # One step without momentum/decay moves W and b by lr times minus the gradient of the mean
    # (over rows) Bernoulli cross-entropy of the data given the layer above: the delta rule.
    weight = rbm.weight.detach().clone().requires_grad_(True)
    bias = rbm.visible_bias.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.binary_cross_entropy(torch.sigmoid(hidden @ weight.T + bias), visible,
                                                    reduction="sum") / len(visible)
    loss.backward()
    hidden_bias = rbm.hidden_bias.clone()
    first_error = rbm.generative_step(hidden, visible, lr=0.1, momentum=0.0, weight_decay=0.0)
    torch.testing.assert_close(rbm.weight, weight.detach() - 0.1 * weight.grad)
    torch.testing.assert_close(rbm.visible_bias, bias.detach() - 0.1 * bias.grad)
    assert torch.equal(rbm.hidden_bias, hidden_bias)  # used upward only: the wake phase leaves it
    for _ in range(300):
        error = rbm.generative_step(hidden, visible, lr=0.5, momentum=0.5, weight_decay=0.0)
    assert float(error) < 0.3 * float(first_error), (float(first_error), float(error))


def test_a_softmax_group_samples_one_of_k_with_the_softmax_probabilities() -> None:
    generator = torch.Generator().manual_seed(4)
    rbm = RBM(7, 5, init_std=1.0, generator=generator)
    rbm.visible_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.5, 0.0, -1.5]))
    hidden = torch.zeros(20000, 5)
    one_hot = torch.eye(3)[torch.tensor([0, 2])]
    visible = torch.cat([torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]]), one_hot], dim=1)
    free_energy = rbm.free_energy(visible)
    rbm.softmax_units = 3
    mean, sample = rbm.sample_v(hidden, generator)
    group = torch.softmax(torch.tensor([1.5, 0.0, -1.5]), dim=0)
    torch.testing.assert_close(mean[0, 4:], group)
    torch.testing.assert_close(mean[0, :4], torch.full((4,), 0.5))
    assert torch.equal(sample[:, 4:].sum(dim=1), torch.ones(20000))        # exactly one label on per row
    torch.testing.assert_close(sample[:, 4:].mean(dim=0), group, atol=0.015, rtol=0)  # with the softmax odds
    assert set(sample[:, :4].unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(rbm.free_energy(visible), free_energy)  # one-hot vectors: the same energy
