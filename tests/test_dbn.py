"""DBN + its Lightning module: config validation, the typed phase schedule, learning, reproducibility, resume,
checkpoints, the generative path, dreams.

Data: the real cross-section corpus of :mod:`helpers.corpus` (three molecules, or two CIA pairs as fallback),
served as the training loop's observed batches (every cell observed, noiseless, labels = the molecule).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from helpers.config import compose_config
from helpers.corpus import (  # noqa: F401 (autouse fixture)
    OPACITY_SOURCE,
    Corpus,
    observed,
    observed_loader,
    single_torch_thread,
    spectra_corpus,
)
from helpers.metrics import scores_by_hand
from robert.errors import UserError
from robert.model.callbacks import EpochCheckpoint, FinetuneEarlyStopping
from robert.model.config import validate_model_config
from robert.model.dbn import DeepBeliefNetwork, validate_hidden_widths
from robert.model.dbn_module import DBNModule
from robert.model.module import RecogniserModule, module_for
from robert.model.phases import FINETUNE, GENERATIVE, TOP_RBM, Phase, PhaseKind, dbn_schedule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
DEPTH = ["depth"]  # the corpus rows are one channel: the normalised vector


@functools.cache
def _composed_model(name: str) -> dict[str, Any]:
    return compose_config("train", [f"model={name}"])["model"]


def tiny_config() -> dict[str, Any]:
    """conf/model/dbn_tiny.yaml on the corpus' one channel, fine-tuned from the pre-trained stack: the paper's
    path, which these tests follow through to the generative phase (a fresh copy: tests edit it)."""
    model = copy.deepcopy(_composed_model("dbn_tiny")) | {"inputs": DEPTH}
    model["finetune"]["init"] = "stack"
    return model


class MetricHistory(Callback):
    """The logged metrics after every training epoch, as floats."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append({name: float(value) for name, value in trainer.callback_metrics.items()})


@dataclass
class FitResult:
    module: DBNModule
    trainer: pl.Trainer
    history: MetricHistory
    checkpoint_dir: Path


def module_for_corpus(corpus: Corpus, model: dict[str, Any], seed: int = 0) -> DBNModule:
    return DBNModule(corpus.train_x.shape[1], corpus.train_y.shape[1], model, seed=seed,
                     label_names=list(corpus.label_names))


def fit(corpus: Corpus, root: Path, max_epochs: int | None = None, ckpt_path: Path | None = None,
        seed: int = 0) -> FitResult:
    module = module_for_corpus(corpus, tiny_config(), seed)
    history = MetricHistory()
    # Lightning's ModelCheckpoint skips epochs with no optimiser step (CD and the generative phase make
    # none): the training's EpochCheckpoint writes last.ckpt every epoch; the monitored one shows
    # val/loss exists in every phase.
    latest = EpochCheckpoint(dirpath=root / "checkpoints", save_last=True)
    best = ModelCheckpoint(dirpath=root / "best", monitor="val/loss")
    trainer = pl.Trainer(max_epochs=max_epochs or module.total_epochs, accelerator="cpu", devices=1,
                         precision="32-true", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=root, num_sanity_val_steps=0,
                         callbacks=[latest, best, history, FinetuneEarlyStopping(monitor="val/loss", patience=3)])
    # The corpus rows are already in a fixed shuffled order: no loader randomness to restore on resume.
    trainer.fit(module, observed_loader(corpus.train_x, corpus.train_y, module.config["batch_size"]),
                observed_loader(corpus.heldout_x, corpus.heldout_y, 256), ckpt_path=ckpt_path)
    return FitResult(module, trainer, history, root / "checkpoints")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return spectra_corpus()


@pytest.fixture(scope="module")
def trained(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    return fit(corpus, tmp_path_factory.mktemp("full"))


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden, message", [
    ([], "at least two"), ([50], "at least two"), ([500, 0, 50], r"model\.hidden\[1\]"),
    ([500, -3], r"model\.hidden\[1\]"), ([500, 2.5], r"model\.hidden\[1\]"), ("500-200", "list of layer widths"),
    (None, "list of layer widths"),
])
def test_bad_widths_are_user_errors_naming_the_field(hidden: Any, message: str) -> None:
    with pytest.raises(UserError, match=message):
        validate_hidden_widths(hidden)
    with pytest.raises(UserError, match="model.hidden"):
        validate_model_config({**tiny_config(), "hidden": hidden})


@pytest.mark.parametrize("section, key, value, field", [
    ("pretrain", "lr", -0.1, "model.pretrain.lr"), ("pretrain", "cd_k", 0, "model.pretrain.cd_k"),
    ("pretrain", "momentum", 1.0, "model.pretrain.momentum"),
    ("pretrain", "epochs_per_layer", [1, 2, 3], "model.pretrain.epochs_per_layer"),
    ("pretrain", "persistent", "yes", "model.pretrain.persistent"), ("top", "epochs", -1, "model.top.epochs"),
    ("finetune", "optimizer", "adam", "model.finetune.optimizer"), ("finetune", "lr", 0, "model.finetune.lr"),
    ("generative", "epochs", -1, "model.generative.epochs"), ("generative", "lr", 0, "model.generative.lr"),
    ("generative", "cd_k", 0, "model.generative.cd_k"), ("generative", "momentum", 1.0, "model.generative.momentum"),
])
def test_bad_settings_are_user_errors_naming_the_field(section: str, key: str, value: Any, field: str) -> None:
    model = tiny_config()
    model[section][key] = value
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        validate_model_config(model)


def test_default_schedule_is_a_typed_phase_sequence_in_order() -> None:
    model = validate_model_config(_composed_model("dbn"))
    assert model["hidden"] == [500, 200, 50]
    assert model["top"]["cd_k"] == model["pretrain"]["cd_k"]
    schedule = dbn_schedule(model["pretrain"]["epochs_per_layer"], model["top"]["epochs"],
                            model["finetune"]["epochs"], model["generative"]["epochs"])
    n_pre, n_top = model["pretrain"]["epochs_per_layer"], model["top"]["epochs"]
    # each stacked RBM in turn, then the top RBM, fine-tuning, generative fine-tuning: never back
    assert schedule == ([Phase(PhaseKind.PRETRAIN, 0)] * n_pre[0] + [Phase(PhaseKind.PRETRAIN, 1)] * n_pre[1]
                        + [TOP_RBM] * n_top + [FINETUNE] * model["finetune"]["epochs"]
                        + [GENERATIVE] * model["generative"]["epochs"])
    assert [p.index for p in schedule] == sorted(p.index for p in schedule)
    assert [p.name for p in schedule[:n_pre[0] + 1]] == ["rbm1"] * n_pre[0] + ["rbm2"]
    assert [p.trains_rbm for p in (schedule[0], TOP_RBM, FINETUNE, GENERATIVE)] == [True, True, False, True]
    # configs written before the generative phase existed (checkpoints, tuned configs) run without it
    legacy = validate_model_config({k: v for k, v in _composed_model("dbn").items() if k != "generative"})
    assert legacy["generative"]["epochs"] == 0
    # the module builds exactly that schedule, and a peer's is fine-tuning only
    module = DBNModule(40, 3, _composed_model("dbn"), seed=0)
    assert module.schedule == schedule and module.total_epochs == len(schedule)
    assert module.n_pretrain_epochs == sum(n_pre) + n_top
    peer = module_for(40, 3, _composed_model("mlp"), seed=0)
    assert type(peer) is RecogniserModule and peer.schedule == [FINETUNE] * _composed_model("mlp")["finetune"]["epochs"]


# --- learning and reproducibility -------------------------------------------------------------------


def test_phases_run_in_order_and_each_cd_phase_lowers_its_reconstruction_error(trained: FitResult) -> None:
    module, epochs = trained.module, trained.history.epochs
    # the phase logged by every epoch is the schedule's, in order
    assert [e["phase"] for e in epochs] == [float(module.schedule[i].index) for i in range(len(epochs))]
    for name in ("rbm1", "rbm2", "top_rbm"):
        phase_epochs = [epochs[i] for i, phase in enumerate(module.schedule) if phase.name == name]
        train_errors = [e[f"{name}/train_recon_error"] for e in phase_epochs]
        val_errors = [e[f"{name}/val_recon_error"] for e in phase_epochs]
        assert len(phase_epochs) > 1, name
        assert train_errors[-1] < train_errors[0] and val_errors[-1] < val_errors[0], (name, train_errors, val_errors)


def test_finetuned_dbn_beats_chance_on_heldout_spectra(trained: FitResult, corpus: Corpus) -> None:
    if corpus.source != OPACITY_SOURCE:
        pytest.skip(f"needs the opacity corpus ({corpus.source} in use: src/opacities.py failed); measured: "
                    "on the two CIA pairs the tiny DBN stays at chance (their difference is a few % of the range)")
    # The val/loss of pre-training epochs does not move (the classifier is not trained yet): plain
    # EarlyStopping(patience=3) would stop in epoch 4.
    assert trained.trainer.current_epoch > trained.module.n_pretrain_epochs + 3
    chance = 1.0 / len(corpus.label_names)
    network = trained.module.dbn
    probabilities = network.predict_proba(network.encode(observed(corpus.heldout_x, corpus.heldout_y).observation))
    accuracy = float((probabilities.argmax(dim=1) == corpus.heldout_y.argmax(dim=1)).float().mean())
    # Measured: 100 % for this seed; 2/3 (one pair of molecules confused) is the plateau some seeds reach.
    assert accuracy >= min(0.9, 1.9 * chance), (accuracy, corpus.source)
    assert trained.history.epochs[-1]["val/accuracy"] == pytest.approx(accuracy)
    # Macro-F1 thresholds each sigmoid at 0.5; a short fine-tuning leaves some outputs under-confident.
    assert trained.history.epochs[-1]["val/macro_f1"] > 0.5


def test_validation_metrics_match_a_hand_computation(trained: FitResult, corpus: Corpus) -> None:
    """The torchmetrics the module logs against numpy: mean BCE, macro-F1 at 0.5, exact match, Hamming loss."""
    network, last = trained.module.dbn, trained.history.epochs[-1]
    with torch.no_grad():
        logits = network(network.encode(observed(corpus.heldout_x, corpus.heldout_y).observation)).numpy()
    for name, value in scores_by_hand(logits, corpus.heldout_y.numpy()).items():
        assert last[f"val/{name}"] == pytest.approx(value, rel=1e-5), name


def test_metrics_are_logged_per_phase(trained: FitResult) -> None:
    first, last = trained.history.epochs[0], trained.history.epochs[-1]
    assert {"rbm1/train_recon_error", "rbm1/val_recon_error", "rbm1/free_energy_gap", "val/loss"} <= set(first)
    assert {"rbm2/train_recon_error", "top_rbm/train_recon_error", "train/loss", "val/accuracy"} <= set(last)
    assert last["val/loss"] < first["val/loss"]


def test_same_seed_gives_identical_weights_and_metrics(trained: FitResult, corpus: Corpus,
                                                       tmp_path: Path) -> None:
    again = fit(corpus, tmp_path)
    assert again.history.epochs == trained.history.epochs
    for (name, a), (_, b) in zip(trained.module.state_dict().items(), again.module.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_interrupted_fit_resumes_from_checkpoint_to_the_same_final_state(trained: FitResult, corpus: Corpus,
                                                                         tmp_path: Path) -> None:
    interrupted = fit(corpus, tmp_path, max_epochs=4)  # stops inside the second RBM's pre-training
    assert interrupted.module.phase_at(interrupted.trainer.current_epoch) == Phase(PhaseKind.PRETRAIN, 1)
    resumed = fit(corpus, tmp_path, ckpt_path=interrupted.checkpoint_dir / "last.ckpt")
    assert resumed.history.epochs[0]["phase"] == 0.0  # the first resumed epoch is still pre-training
    assert resumed.trainer.current_epoch == trained.trainer.current_epoch
    # Every resumed epoch logs what the uninterrupted run logged (the resumed process never saw rbm1's keys).
    for resumed_epoch, full_epoch in zip(resumed.history.epochs, trained.history.epochs[4:], strict=True):
        assert resumed_epoch == {name: full_epoch[name] for name in resumed_epoch}
    for (name, a), (_, b) in zip(trained.module.state_dict().items(), resumed.module.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("precision, persistent, optimizer",
                         [("bf16-mixed", True, "sgd"), ("32-true", False, "adamw")])
def test_other_precisions_pcd_and_sgd_train(corpus: Corpus, tmp_path: Path, precision: str, persistent: bool,
                                            optimizer: str) -> None:
    model = tiny_config()
    model["pretrain"].update(epochs_per_layer=1, persistent=persistent)
    model["top"]["epochs"] = 1
    model["finetune"].update(epochs=2, optimizer=optimizer)
    model["generative"]["epochs"] = 1
    module = module_for_corpus(corpus, model, seed=3)
    trainer = pl.Trainer(max_epochs=module.total_epochs, accelerator="cpu", devices=1, precision=precision,
                         logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, observed_loader(corpus.train_x, corpus.train_y, 32),
                observed_loader(corpus.heldout_x, corpus.heldout_y, 256))
    assert trainer.current_epoch == module.total_epochs
    assert all(torch.isfinite(value) for value in trainer.callback_metrics.values())
    predictions = module.predict_step(observed(corpus.heldout_x, corpus.heldout_y), 0)
    assert predictions.shape == corpus.heldout_y.shape and float(predictions.min()) >= 0.0


def test_checkpoint_loads_with_weights_only(trained: FitResult, tmp_path: Path) -> None:
    checkpoint = torch.load(trained.checkpoint_dir / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["model"]["hidden"] == [64, 32, 16]
    restored = DBNModule.load_from_checkpoint(trained.checkpoint_dir / "last.ckpt", weights_only=True)
    assert restored.schedule == trained.module.schedule
    for (name, a), (_, b) in zip(trained.module.state_dict().items(), restored.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    torch.save(trained.module.dbn.state_dict(), tmp_path / "dbn.pt")
    dbn = DeepBeliefNetwork(trained.module.dbn.n_grid, DEPTH, trained.module.dbn.n_labels, [64, 32, 16],
                            n_persistent_chains=32)
    dbn.load_state_dict(torch.load(tmp_path / "dbn.pt", weights_only=True))
    assert bool(dbn.classifier_initialised)


# --- the generative path ----------------------------------------------------------------------------


def test_generative_phase_lowers_its_error_and_teaches_the_top_rbm_the_labels(trained: FitResult,
                                                                              corpus: Corpus) -> None:
    module, dbn = trained.module, trained.module.dbn
    generative = [epoch for epoch in trained.history.epochs if epoch["phase"] == GENERATIVE.index]
    assert len(generative) == module.n_generative_epochs > 1 and bool(dbn.generative_finetuned)
    # the wake phase fits the top-down weights to the classifier's recognition states
    assert generative[-1]["generative/val_recon_error"] < 0.8 * generative[0]["generative/val_recon_error"]
    assert generative[-1]["generative/train_recon_error"] < generative[0]["generative/train_recon_error"]
    # the top RBM now models the classifier's penultimate states, and the recognition weights stayed
    torch.testing.assert_close(dbn.penultimate(corpus.heldout_x), dbn.recognition_states(corpus.heldout_x)[-1])
    assert generative[-1]["val/loss"] == generative[0]["val/loss"]
    if corpus.source != OPACITY_SOURCE:
        pytest.skip(f"the top-RBM accuracy needs the opacity corpus ({corpus.source} in use): on the CIA pairs "
                    "the classifier itself stays at chance")
    chance = 1.0 / len(corpus.label_names)
    before = trained.history.epochs[module.n_pretrain_epochs - 1]["top_rbm/val_top_rbm_accuracy"]
    after = generative[-1]["generative/val_top_rbm_accuracy"]
    # Measured (seed 0): 1/3 (chance: the pre-trained memory prefers one label) -> 2/3.
    assert after >= 1.5 * chance and after > before, (before, after)


def test_an_early_stop_of_finetuning_goes_on_to_the_generative_phase(corpus: Corpus, tmp_path: Path) -> None:
    model = tiny_config()
    model["pretrain"]["epochs_per_layer"], model["top"]["epochs"] = 1, 1
    model["finetune"]["epochs"], model["generative"]["epochs"] = 10, 2
    module = module_for_corpus(corpus, model, seed=1)
    history = MetricHistory()
    # No change of val/loss is 10 better than the first epoch's: fine-tuning stops after its 2nd epoch.
    stopping = FinetuneEarlyStopping(monitor="val/loss", min_delta=10.0, patience=1)
    trainer = pl.Trainer(max_epochs=module.total_epochs, accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=tmp_path, num_sanity_val_steps=0, callbacks=[history, stopping])
    trainer.fit(module, observed_loader(corpus.train_x, corpus.train_y, 32),
                observed_loader(corpus.heldout_x, corpus.heldout_y, 256))
    assert [epoch["phase"] for epoch in history.epochs] == [0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert int(module.finetune_stopped_at) == 5 and bool(module.dbn.generative_finetuned)
    assert module.phase_at(5) == module.phase_at(6) == GENERATIVE


def test_dream_is_a_deterministic_visible_vector_in_unit_range(trained: FitResult) -> None:
    dbn = trained.module.dbn
    visible, activations = dbn.dream(1, n_chains=8, n_gibbs_steps=20, generator=torch.Generator().manual_seed(5))
    assert visible.shape == (8, dbn.n_visible)
    assert float(visible.min()) >= 0.0 and float(visible.max()) <= 1.0
    assert [tuple(a.shape) for a in activations] == [(8, 64), (8, 32), (8, 16)]
    again, again_activations = dbn.dream(1, 8, 20, torch.Generator().manual_seed(5))
    assert torch.equal(visible, again)
    assert all(torch.equal(a, b) for a, b in zip(activations, again_activations, strict=True))
    other, _ = dbn.dream(1, 8, 20, torch.Generator().manual_seed(6))
    assert not torch.equal(visible, other)
    with pytest.raises(ValueError, match="label_index"):
        dbn.dream(dbn.n_labels, 1, 1, torch.Generator())
    # chains started in the label's basin: deterministic too, and a different draw from the random start
    labelled, _ = dbn.dream(1, 8, 20, torch.Generator().manual_seed(5), start="label")
    assert torch.equal(labelled, dbn.dream(1, 8, 20, torch.Generator().manual_seed(5), start="label")[0])
    assert not torch.equal(labelled, visible)
    with pytest.raises(ValueError, match="dream start"):
        dbn.dream(1, 1, 1, torch.Generator(), start="middle")


def test_gaussian_visible_dream_is_clamped_to_the_data_range() -> None:
    dbn = DeepBeliefNetwork(40, DEPTH, 2, [16, 8], visible_type="gaussian", seed=1)
    with torch.no_grad():
        dbn.rbms[0].visible_bias.fill_(3.0)  # a mean far above 1 before clamping
    visible, _ = dbn.dream(0, 4, 3, torch.Generator().manual_seed(0))
    assert visible.shape == (4, 40) and float(visible.max()) <= 1.0


def test_classifier_starts_from_the_pretrained_stack() -> None:
    dbn = DeepBeliefNetwork(20, DEPTH, 3, [8, 6, 4], seed=2)
    dbn.initialise_classifier_from_stack()
    assert torch.equal(dbn.classifier[0].weight, dbn.rbms[0].weight.T)
    assert torch.equal(dbn.classifier[2].weight, dbn.top_rbm.weight[:6].T)
    assert torch.equal(dbn.classifier[3].weight, dbn.top_rbm.weight[6:])
    assert torch.equal(dbn.classifier[3].bias, dbn.top_rbm.visible_bias[6:])


def test_gaussian_visible_units_standardise_each_bin_and_dreams_return_to_unit_range() -> None:
    generator = torch.Generator().manual_seed(3)
    spectra = 0.2 + 0.6 * torch.rand(64, 40, generator=generator) * torch.linspace(0.1, 1.0, 40)
    gaussian = DeepBeliefNetwork(40, DEPTH, 3, [16, 8], visible_type="gaussian", seed=0)
    gaussian.fit_input_scaling(spectra)
    scaled = gaussian.up_pass(spectra, 0)  # what the first RBM is trained on
    torch.testing.assert_close(scaled.mean(0), torch.zeros(40), atol=1e-5, rtol=0)
    torch.testing.assert_close(scaled.std(0), torch.ones(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(gaussian.unscale_input(scaled), spectra, atol=1e-5, rtol=0)
    # the scaling travels in state_dict: a fresh network loading it gives the same probabilities
    fresh = DeepBeliefNetwork(40, DEPTH, 3, [16, 8], visible_type="gaussian", seed=0)
    fresh.load_state_dict(gaussian.state_dict())
    torch.testing.assert_close(fresh.predict_proba(spectra), gaussian.predict_proba(spectra))
    visible, _ = gaussian.dream(0, n_chains=4, n_gibbs_steps=3, generator=torch.Generator().manual_seed(0))
    assert visible.min() >= 0 and visible.max() <= 1
    # Bernoulli units read the [0, 1] spectrum as it is
    bernoulli = DeepBeliefNetwork(40, DEPTH, 3, [16, 8], visible_type="bernoulli", seed=0)
    bernoulli.fit_input_scaling(spectra)
    assert torch.equal(bernoulli.up_pass(spectra, 0), spectra)
