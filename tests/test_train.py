"""Training through ``robert.training.train``: the data module's splits and observations, learning, the MLflow run
(name, tags, dataset inputs, artifacts, pinned requirements), reproducibility, resume, real shards, clear errors.

Most tests read the small SYNTHETIC shards of :mod:`helpers.synthetic` (each molecule two Gaussian bands, so the
tiny DBN separates them in seconds); one reads a real simulated (tiny preset) dataset.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import mlflow
import numpy as np
import pytest
import torch

from helpers.config import ROOT, compose_config, tiny_generate_config
from helpers.runs import Interrupt, ready_store, run_config, train_run
from helpers.synthetic import MOLECULES, PLANETS, write_synthetic_dataset
from helpers.training import ALL_PHASES, LEARNS, WHITE, metric_histories, use_store
from robert.data.dataset import load_splits
from robert.errors import UserError
from robert.model.module import module_for
from robert.simulate.generate import generate_planet
from robert.spectra.detection import State
from robert.training.train import build_datamodule, log_dataset, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
HISTORY = ["val/loss", "val/macro_f1", "train/loss", "rbm1/train_recon_error", "top_rbm/train_recon_error", "phase"]
REGENERATE = "regenerate it"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def first_run(synthetic, tmp_path_factory):
    """A model that learns (the paper's way: whole grid, white noise, injected labels), registered as version 1."""
    return train_run(tmp_path_factory.mktemp("run"), synthetic, PLANETS, *LEARNS, *WHITE)


@pytest.fixture(scope="module")
def all_phases_run(synthetic, tmp_path_factory):
    """Every DBN phase on a short schedule, observed by the realistic prior (any coverage, detection labels)."""
    return train_run(tmp_path_factory.mktemp("phases"), synthetic, PLANETS, *ALL_PHASES)[1]


# --- data -------------------------------------------------------------------------------------------


def test_test_split_is_fixed_and_disjoint(synthetic):
    data = compose_config("train", ["data=tiny"])["data"]
    splits = load_splits(synthetic, "single", PLANETS, data, REGENERATE)
    assert sum(len(s) for s in splits.values()) == 120 and len(splits["test"]) == 24
    # the test rows of a planet do not depend on the training seed or on the other planets selected
    alone = load_splits(synthetic, "single", ["wasp12b"], dict(data, split_seed=99), REGENERATE)
    np.testing.assert_array_equal(alone["test"].depth, splits["test"].depth[splits["test"].planet == "wasp12b"])
    rows = {k: {r.tobytes() for r in s.depth} for k, s in splits.items()}
    assert not (rows["test"] & rows["train"]) and not (rows["test"] & rows["val"]) and not (rows["val"] & rows["train"])
    # each row keeps its own fingerprints through the split
    test = splits["test"]
    assert np.array_equal(test.fingerprint_norm() > 0, test.injected > 0.5)


def test_evaluation_sets_are_observed_once_from_fixed_seeds(synthetic, tmp_path):
    cfg = run_config(tmp_path, synthetic, PLANETS)
    first, second = (build_datamodule(cfg, PLANETS, ROOT) for _ in range(2))
    test = first.test_set()
    assert torch.equal(test.observation.values, second.test_set().observation.values)
    assert torch.equal(test.observation.values, first.test_set(10).observation.values)  # data.snr of data=tiny
    assert bool(test.observation.mask.all())  # the headline set: the whole grid
    assert not torch.equal(test.observation.values, first.test_set(None).observation.values)
    val_a, val_b = first.observed_set("val"), second.observed_set("val")
    assert torch.equal(val_a.observation.values, val_b.observation.values) and torch.equal(val_a.states, val_b.states)
    assert not bool(val_a.observation.mask.all())  # the training prior: partial coverage too


def test_training_batches_are_observed_anew_every_epoch_and_alike_after_a_resume(synthetic, tmp_path):
    cfg = run_config(tmp_path, synthetic, PLANETS)
    modules = [build_datamodule(cfg, PLANETS, ROOT) for _ in range(2)]
    raw = modules[0].fetcher("train")[list(range(16))]

    def observed_at(module, epoch: int):
        module.setup()
        module.trainer = SimpleNamespace(current_epoch=epoch, global_rank=0)
        return module.on_after_batch_transfer(dict(raw), 0)

    epoch0, epoch1 = observed_at(modules[0], 0), observed_at(modules[0], 1)
    resumed = observed_at(modules[1], 1)  # a new process starting at epoch 1
    assert not torch.equal(epoch0.observation.values, epoch1.observation.values)
    assert torch.equal(epoch1.observation.values, resumed.observation.values)
    # labels under exactly this observation: detected = injected with Delta chi^2 >= labels.min_chi2
    injected = raw["injected"] > 0.5
    assert torch.equal(epoch1.targets > 0, injected & (epoch1.chi2 >= cfg["labels"]["min_chi2"]))
    assert torch.equal(epoch1.states == int(State.ABSENT), ~injected)


# --- training ---------------------------------------------------------------------------------------


def test_fine_tuned_dbn_beats_chance_by_a_wide_margin(first_run):
    cfg, result = first_run
    assert result.val_metrics["accuracy"] >= 0.9  # chance: 1/3
    use_store(result)
    client = mlflow.MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.params["model.hidden"] == "[64, 32, 16]" and run.data.params["planets"] == "gj1214b,wasp12b"
    assert run.data.metrics["val_final/accuracy"] == pytest.approx(result.val_metrics["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "dataset_provenance.json", "validation"} <= artifacts
    assert client.get_model_version("robert", "1").run_id == result.run_id
    assert len(metric_histories(result, ["val/loss"])["val/loss"]) == result.trainer.current_epoch
    recorded = Path(cfg["train"]["output"]).read_text()
    assert '"version": "1"' in recorded and result.registered_version == "1"


def test_the_run_is_named_and_tagged_by_its_facts_and_holds_its_dataset_inputs(first_run):
    cfg, result = first_run
    run = mlflow.MlflowClient(tracking_uri=result.tracking_uri).get_run(result.run_id)
    tags = run.data.tags
    assert {k: tags[k] for k in ("geometry", "regime", "labels", "model", "observation", "planets")} == {
        "geometry": "emission", "regime": "realistic", "labels": "injected", "model": "dbn-64-32-16",
        "observation": "white", "planets": "gj1214b,wasp12b"}
    assert run.info.run_name == "emission/realistic/injected/dbn-64-32-16/white/single/2-planets"
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]  # the UI's Source column
    datamodule = build_datamodule(cfg, PLANETS, ROOT)
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "validation", "testing"}
    for context, split in (("training", "train"), ("validation", "val"), ("testing", "test")):
        dataset = inputs[context]
        assert dataset.digest == inputs["training"].digest and len(dataset.digest) == 16
        assert f'"num_rows": {len(datamodule.split(split))}' in dataset.profile, (context, dataset.profile)
        assert dataset.name.endswith(f"/single/{split}")


def test_a_set_under_a_relative_root_is_logged_with_its_absolute_file_uri(synthetic, tmp_path, monkeypatch):
    # the pipeline's paths are relative to the project root (paths.root: "."), and a file URI must be absolute
    monkeypatch.chdir(ROOT)
    cfg = run_config(tmp_path, synthetic, PLANETS, f"dataset.out_dir={os.path.relpath(synthetic, ROOT)}")
    datamodule = build_datamodule(cfg, PLANETS, Path("."))
    assert not datamodule.directory.is_absolute()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("relative-root")
    with mlflow.start_run() as run:
        log_dataset(datamodule, Path("."))
    inputs = mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert {json.loads(i.dataset.source)["uri"] for i in inputs} == {(synthetic / "single").resolve().as_uri()}


def test_same_seed_gives_identical_metrics(all_phases_run, synthetic, tmp_path):
    result = all_phases_run
    _, again = train_run(tmp_path, synthetic, PLANETS, *ALL_PHASES)
    ours, theirs = (metric_histories(r, HISTORY) for r in (result, again))
    assert ours == theirs and ours["train/loss"] and ours["rbm1/train_recon_error"]
    # cosine decay: the fine-tuning rate starts at model.finetune.lr and falls every epoch
    rates = metric_histories(result, ["finetune/lr"])["finetune/lr"]
    assert len(rates) == 5 and rates[0] == pytest.approx(result.trainer.lightning_module.config["finetune"]["lr"])
    assert all(later < earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert again.val_metrics == result.val_metrics


# epoch 11: in fine-tuning, with the optimiser's and the cosine schedule's state (a kill in pre-training:
# tests/test_dbn.py)
def test_an_interrupted_run_resumes_from_its_checkpoint(all_phases_run, synthetic, tmp_path):
    reference, killed_at = all_phases_run, 11
    assert reference.trainer.lightning_module.phase_at(killed_at).name == "finetune"
    with pytest.raises(RuntimeError, match="killed"):
        train_run(tmp_path, synthetic, PLANETS, *ALL_PHASES, callbacks=[Interrupt(killed_at)])
    assert list((tmp_path / "checkpoints").glob("*/last.ckpt"))
    _, resumed = train_run(tmp_path, synthetic, PLANETS, *ALL_PHASES)
    assert resumed.resumed and resumed.start_epoch == killed_at
    experiment = compose_config("train")["tracking"]["experiment"]
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_id == resumed.run_id  # the same MLflow run continued
    # the same batches and noise as an uninterrupted run: the same numbers
    names = [*HISTORY, "finetune/lr"]
    assert metric_histories(resumed, names) == metric_histories(reference, names)
    assert resumed.val_metrics == reference.val_metrics
    assert not list((tmp_path / "checkpoints").glob("*/last.ckpt"))  # a finished run starts afresh next time


def test_logged_model_pins_its_requirements_to_the_installed_versions(first_run):
    _, result = first_run
    use_store(result)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(result.model_uri)).read_text().split()
    # pinned from train.model_requirements; the robert package travels with the model (code_paths), and
    # no index serves it, so it must not be a requirement
    assert f"torch=={importlib.metadata.version('torch')}" in requirements
    assert f"mlflow=={importlib.metadata.version('mlflow')}" in requirements
    assert not any(line.startswith("robert") for line in requirements)


def test_real_simulated_shards_train(tiny_cache, tmp_path):
    cfg = tiny_generate_config(tiny_cache, tmp_path / "datasets")
    generate_planet(cfg, "gj436b", ROOT, log=lambda m: None, progress=False)
    train_cfg = run_config(tmp_path, tmp_path / "datasets", ["gj436b"])
    datamodule = build_datamodule(train_cfg, ["gj436b"], ROOT)
    datamodule.setup("fit")
    assert datamodule.molecules == MOLECULES and datamodule.n_grid == 901
    assert sum(len(datamodule.split(s)) for s in ("train", "val", "test")) == 24
    module = module_for(datamodule.n_grid, len(datamodule.molecules), train_cfg["model"], seed=0,
                        label_names=datamodule.molecules)
    history = []

    class Observed(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001, ANN201
            history.append(batch)

    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         enable_model_summary=False, limit_val_batches=0, callbacks=[Observed()])
    trainer.fit(module, datamodule=datamodule)  # observed and labelled on the fly, from real spectra
    assert trainer.current_epoch == 1 and history
    batch = history[0]
    assert batch.observation.values.shape == (len(batch), 901) and torch.isfinite(batch.chi2).all()
    injected = batch.states != int(State.ABSENT)
    assert torch.all(batch.chi2[injected] > 0) and torch.all(batch.chi2[~injected] == 0)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.hidden=[500,0,50]"], r"model\.hidden\[1\] must be a positive integer width"),
    (["model.finetune.lr_schedule=linear"], r"model\.finetune\.lr_schedule"),
    (["labels.undetectable=drop"], r"labels\.undetectable 'drop'"),
    (["train.early_stopping.patience=0"], r"^train\.early_stopping\.patience must be a positive integer; got 0$"),
    (["dataset.out_dir=/nonexistent/datasets"],
     r"no dataset at /nonexistent/datasets: run `python src/generate.py dataset=tiny"),
    (["composition=mixture"], r"no mixture spectra for planet gj1214b \(no shards in .*/mixture/gj1214b\): run "
                              r"`python src/generate.py dataset=tiny composition=mixture planet=gj1214b`"),
    (["data.planets=[gj1214b,gj436b]"], r"no single spectra for planet gj436b .*: run "
                                        r"`python src/generate.py dataset=tiny composition=single planet=gj436b`"),
])
def test_bad_config_is_a_user_error_naming_the_fix(overrides, message, synthetic, tmp_path):
    ready_store(tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        train(run_config(tmp_path, synthetic, PLANETS, *overrides), ROOT)
    assert "\n" not in str(caught.value)


def test_inconsistent_spectra_are_user_errors(tmp_path):
    write_synthetic_dataset(tmp_path, ["gj1214b"], n_per_planet=12)
    write_synthetic_dataset(tmp_path, ["gj436b"], n_per_planet=12, n_wavelengths=450)
    data = compose_config("train", ["data=tiny"])["data"]
    with pytest.raises(UserError, match=r"gj436b's spectra \(450 wavelengths"):
        load_splits(tmp_path, "single", ["gj1214b", "gj436b"], data, REGENERATE)
    with pytest.raises(UserError, match="too few to split"):
        load_splits(tmp_path, "single", ["gj1214b"], dict(data, val_fraction=0.49, test_fraction=0.49), REGENERATE)
    (tmp_path / "single" / "empty").mkdir()
    with pytest.raises(UserError, match=r"planet empty .* run `regenerate it`"):
        load_splits(tmp_path, "single", ["empty"], data, REGENERATE)
