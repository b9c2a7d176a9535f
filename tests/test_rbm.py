"""RBM: CD-1 and PCD learn real spectra-like data; free energy, determinism, exact small cases.

The corpus (shared with test_dbn.py through :func:`spectra_corpus`) is real, deterministic and
labelled: log10 cross-sections of H2O, CO and CO2 from the tiny opacity cache (built once per
session by ``src/opacities.py opacity=tiny``), one vector per (molecule, T, P) slice, resampled to a
log-wavelength grid over 1-20 um and min-max normalised like a spectrum; label = molecule. If the
opacity builder fails, the Borysow CIA tables (H2-H2 vs H2-He at many temperatures) stand in.
"""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from robert.model.rbm import RBM

ROOT = Path(__file__).resolve().parents[1]
N_POINTS = 256  # resampled length of each vector: big enough to keep the bands, small enough to be fast
DYNAMIC_RANGE_DEX = 10.0  # cross-sections below max * 1e-10 are floored (zeros exist between bands)
WAVELENGTH_UM = np.geomspace(1.0, 20.0, N_POINTS)
OPACITY_SOURCE = "opacity cache (opacity=tiny)"


@dataclass(frozen=True)
class Corpus:
    """Vectors in [0, 1] with one-hot labels, split into train and held-out rows."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor
    label_names: tuple[str, ...]
    source: str


def spectrum_like(wavenumber_cm: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log10 sigma on the 1-20 um log grid, floored and min-max scaled to [0, 1]."""
    on_grid = np.interp(1e4 / WAVELENGTH_UM, wavenumber_cm, sigma)
    floor = on_grid.max() * 10.0 ** (-DYNAMIC_RANGE_DEX)
    logged = np.log10(np.maximum(on_grid, floor))
    return (logged - logged.min()) / (logged.max() - logged.min())


def _opacity_vectors() -> tuple[list[np.ndarray], list[str], list[str], str]:
    """Vectors from the tiny opacity cache, interpolated between the (T, log P) grid points.

    Interpolating (bilinear in T and log P, on log sigma) turns 9 slices per molecule into 81,
    as the simulator itself interpolates the table. Every third point (by grid index) is held out.
    """
    from robert.opacity.xsec_hdf5 import read_xsec_hdf5

    with tempfile.TemporaryDirectory() as cache_dir:
        result = subprocess.run([sys.executable, "src/opacities.py", "opacity=tiny", f"opacity.cache_dir={cache_dir}"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        tables = [read_xsec_hdf5(path) for path in sorted(Path(cache_dir).glob("*.xsec.h5"))]
    vectors, labels, splits = [], [], []
    for table in tables:
        log_sigma = np.log10(np.maximum(table.xsec_cm2, 1e-300))
        log_p = np.log10(table.pressure_bar)
        for (i, temperature), (j, pressure) in itertools.product(
                enumerate(np.linspace(table.temperature_K[0], table.temperature_K[-1], 9)),
                enumerate(np.linspace(log_p[0], log_p[-1], 9))):
            it = int(np.clip(np.searchsorted(table.temperature_K, temperature) - 1, 0, len(table.temperature_K) - 2))
            ip = int(np.clip(np.searchsorted(log_p, pressure) - 1, 0, len(log_p) - 2))
            wt = (temperature - table.temperature_K[it]) / (table.temperature_K[it + 1] - table.temperature_K[it])
            wp = (pressure - log_p[ip]) / (log_p[ip + 1] - log_p[ip])
            corners = log_sigma[ip:ip + 2, it:it + 2]
            mixed = ((1 - wp) * ((1 - wt) * corners[0, 0] + wt * corners[0, 1])
                     + wp * ((1 - wt) * corners[1, 0] + wt * corners[1, 1]))
            vectors.append(spectrum_like(table.wavenumber_cm, 10.0 ** mixed))
            labels.append(table.molecule)
            splits.append("heldout" if (i + j) % 3 == 0 else "train")
    return vectors, labels, splits, OPACITY_SOURCE


def _cia_vectors() -> tuple[list[np.ndarray], list[str], list[str], str]:
    """Fallback: H2-H2 vs H2-He CIA at 120 temperatures each; every third temperature held out."""
    from robert.opacity.cia import read_borysow

    vectors, labels, splits = [], [], []
    for name in ("CIA_Borysow_H2H2_0060-7000K_0.6-500um.dat", "CIA_Borysow_H2He_0050-7000K_0.5-031um.dat"):
        table = read_borysow(ROOT / "data" / name)
        for index, temperature in enumerate(np.geomspace(100.0, 6000.0, 120)):
            vectors.append(spectrum_like(table.wavenumber_cm, table.at(table.wavenumber_cm, temperature)))
            labels.append(table.pair)
            splits.append("heldout" if index % 3 == 0 else "train")
    return vectors, labels, splits, "CIA tables (fallback)"


@functools.cache
def spectra_corpus() -> Corpus:
    """The test corpus, built once per session."""
    try:
        vectors, labels, splits, source = _opacity_vectors()
    except (RuntimeError, subprocess.TimeoutExpired, OSError):
        vectors, labels, splits, source = _cia_vectors()
    names = tuple(dict.fromkeys(labels))
    x = torch.tensor(np.stack(vectors), dtype=torch.float32)
    y = torch.nn.functional.one_hot(torch.tensor([names.index(label) for label in labels]), len(names)).float()
    # A fixed shuffle mixes the classes within minibatches (the builders emit them class by class).
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    train = torch.tensor([splits[i] == "train" for i in order])
    return Corpus(x[train], y[train], x[~train], y[~train], names, source)


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread: these matrices are tiny, and two threads on a busy 2-core machine spin-wait
    (measured: an RBM fit 0.08 s with one thread, 1.3 s with two while other tests ran)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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
