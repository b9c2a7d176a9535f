"""Tuning: the study in its storage and continued by a second run, pruning of a useless learning rate, one
nested MLflow run per trial, the best config reproducing its validation score, failed and orphaned trials
recorded without stopping the study, two workers sharing one study on a real PostgreSQL server, and
one-line errors for bad input.

Trials train the tiny DBN (its three input channels: depth, error, mask) on small SYNTHETIC shards
(tests/helpers/synthetic.py: two Gaussian bands per molecule), observed as the headline test set is (the whole
grid, white noise at SNR 10) with detection labels, and are scored by the default objective, the validation
macro-F1; fine-tuning only, ~10 s a trial. Gaussian visible units: they standardise every input, so the
channels that are constant under these observations (mask, nearly the error) become 0. Measured on this data,
5 fine-tuning epochs at lr 1e-2: Gaussian units reach macro-F1 0.99 after one epoch; Bernoulli units (the raw
[0, 1] inputs) stay at 0.0 for 20 epochs, as they do with the mask channel alone beside the depth, but reach
1.0 by the 5th on the depth channel alone; under the any-coverage prior Gaussian units reach only 0.17 by the
4th epoch, too close to a useless rate's 0.10 for a pruning test.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import optuna
import pytest
import yaml
from lightning.pytorch.callbacks import Callback
from optuna.trial import TrialState

import robert.tuning.objective as objective_module
from helpers.config import ROOT, compose_config
from helpers.synthetic import PLANETS, write_synthetic_dataset
from robert.errors import UserError
from robert.training.train import train
from robert.tuning.run import StudySummary, run_study
from robert.tuning.study import open_storage

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning", "ignore::optuna.exceptions.ExperimentalWarning")
STUDY = "robert-dbn-tiny"  # conf/tune/tiny.yaml
WARMUP_STEPS = 3            # conf/tune/tiny.yaml: pruning from the 4th fine-tuning epoch
EPOCHS = 5


@dataclass(frozen=True)
class Workspace:
    dataset: Path      # synthetic shards
    store: Path        # one MLflow store for the module (creating a store costs seconds of migrations)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Workspace:
    # 150 spectra a planet on 128 points: enough optimiser steps per epoch to leave chance within 4 epochs
    dataset = write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), PLANETS, n_per_planet=150,
                                      n_wavelengths=128)
    return Workspace(dataset, tmp_path_factory.mktemp("mlflow") / "mlflow.db")


def tune_overrides(tmp: Path, workspace: Workspace, *extra: str, storage: str | None = None,
                   epochs: int = EPOCHS) -> list[str]:
    """The tiny study on the synthetic shards; storage, trial files and best config under ``tmp``."""
    return ["tune=tiny", "model=dbn_tiny", "data=tiny", "composition=single", f"dataset.out_dir={workspace.dataset}",
            f"data.planets=[{','.join(PLANETS)}]", "observation=white", "model.visible=gaussian",
            "model.pretrain.lr=0.01",  # Gaussian visible units take a ~10x smaller CD rate (Hinton 2010, 13.2)
            "inference.constraint.min_log10_vmr=-6",
            "model.batch_size=4", "model.pretrain.epochs_per_layer=0", "model.top.epochs=0",
            "model.generative.epochs=0", f"model.finetune.epochs={epochs}",
            "train.early_stopping.patience=100", "trainer.torch_threads=1", "trainer.progress_bar=false",
            f"tune.storage={storage or f'sqlite:///{tmp}/optuna.db'}", f"tracking.uri=sqlite:///{workspace.store}",
            f"tracking.artifact_location={workspace.store.parent}/artifacts", f"tune.work_dir={tmp}/work",
            f"tune.best_config={tmp}/conf/model/dbn_tuned_test.yaml", *extra]


def study_in(tmp: Path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp}/optuna.db")


def mlflow_client(workspace: Workspace) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{workspace.store}")


def trial_runs(client: mlflow.MlflowClient, parent_run_id: str) -> dict[int, mlflow.entities.Run]:
    experiment = client.get_experiment_by_name("robert-tune")
    runs = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return {int(run.data.tags["optuna.trial"]): run for run in runs}


@pytest.fixture(scope="module")
def studied(synthetic, tmp_path_factory) -> tuple[Path, StudySummary, StudySummary]:
    """Two trials of the tiny space, then the same command with a useless learning rate adds two more."""
    tmp = tmp_path_factory.mktemp("study")
    first = run_study(compose_config("tune", tune_overrides(tmp, synthetic)), ROOT)
    second = run_study(compose_config("tune", tune_overrides(tmp, synthetic, "tune/space=bad_lr")), ROOT)
    return tmp, first, second


def test_the_study_is_created_in_the_configured_storage_and_continued_by_a_second_run(studied):
    tmp, first, second = studied
    assert first.created and not second.created
    assert first.trials_run == 2 and second.trials_run == 2
    study = study_in(tmp)  # read back from the sqlite file named by tune.storage
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert [t.state for t in study.trials[:2]] == [TrialState.COMPLETE] * 2
    assert second.parent_run_id == first.parent_run_id  # the continued study logs under the same parent
    assert second.counts["COMPLETE"] == 2 and second.best_trial in (0, 1)


def test_trials_with_a_useless_learning_rate_are_pruned(studied):
    tmp, _, second = studied
    good, bad = study_in(tmp).trials[:2], study_in(tmp).trials[2:]
    assert all(t.params["finetune_lr"] <= 1e-6 for t in bad)
    assert [t.state for t in bad] == [TrialState.PRUNED] * 2 and second.counts["PRUNED"] == 2
    for trial in bad:  # reported every fine-tuning epoch from step 0, stopped once past the pruner's warm-up
        assert sorted(trial.intermediate_values) == list(range(WARMUP_STEPS + 1))
        at_warmup = [g.intermediate_values[WARMUP_STEPS] for g in good]
        assert max(trial.intermediate_values.values()) < min(at_warmup)
    assert all(sorted(t.intermediate_values) == list(range(EPOCHS)) for t in good)  # ran every epoch


def test_each_trial_is_a_nested_mlflow_run_with_its_state(studied, synthetic):
    tmp, first, _ = studied
    client = mlflow_client(synthetic)
    runs = trial_runs(client, first.parent_run_id)
    study = study_in(tmp)
    assert sorted(runs) == [0, 1, 2, 3]
    for trial in study.trials:
        run = runs[trial.number]
        assert run.data.tags["optuna.state"] == trial.state.name
        assert run.data.tags["pruned"] == str(trial.state == TrialState.PRUNED).lower()
        assert run.info.status == ("KILLED" if trial.state == TrialState.PRUNED else "FINISHED")
        assert float(run.data.params["trial.finetune_lr"]) == trial.params["finetune_lr"]
        assert run.data.params["model.finetune.lr"] == str(trial.params["finetune_lr"])  # the trained config
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
    assert runs[0].data.metrics["objective"] == study.trials[0].value
    parent = client.get_run(first.parent_run_id)
    assert parent.data.metrics["trials_pruned"] == 2 and parent.data.metrics["trials_complete"] == 2
    artifacts = {a.path for a in client.list_artifacts(first.parent_run_id, "plots")}
    assert artifacts == {"plots/optimization_history.png", "plots/param_importances.png"}
    assert "trials.csv" in {a.path for a in client.list_artifacts(first.parent_run_id)}


def test_the_best_config_trains_to_the_same_validation_score(studied, synthetic, tmp_path):
    tmp, _, second = studied
    path = tmp / "conf" / "model" / "dbn_tuned_test.yaml"
    assert second.best_config == path
    text = path.read_text()
    best = study_in(tmp).best_trial
    assert f"# study: {STUDY} in sqlite:///{tmp}/optuna.db" in text and f"# trial: {best.number} of 4" in text
    assert "Reproduce: python src/train.py model=dbn_tuned_test" in text
    model = yaml.safe_load(text)
    assert model["finetune"]["lr"] == best.params["finetune_lr"] and model["hidden"][0] == best.params["hidden_1"]
    # what `python src/train.py model=dbn_tuned_test` composes, with the study's data and seed
    overrides = [o for o in tune_overrides(tmp_path, synthetic) if o.startswith((
        "data", "composition", "observation", "inference.", "train.", "trainer.", "tracking."))]
    cfg = compose_config("train", [f"hydra.searchpath=[file://{tmp}/conf]", "model=dbn_tuned_test", *overrides,
                                   "train.register=false",
                                   "+train.pip_requirements=[torch]",
                                   f"train.checkpoint_dir={tmp_path}/ckpt", f"train.output={tmp_path}/model.json"])
    assert cfg["model"] == model
    retrained = train(cfg, ROOT).trainer.callback_metrics
    assert float(retrained["val/macro_f1"]) == best.value
    # the objective may tie at 1.0; the validation loss is continuous: the same to the last bit
    client = mlflow_client(synthetic)
    history = client.get_metric_history(best.user_attrs["mlflow_run_id"], "val/loss")
    assert float(retrained["val/loss"]) == max(history, key=lambda m: m.step).value


def test_a_continued_study_keeps_its_categorical_choices(studied, synthetic):
    tmp, _, _ = studied
    changed = "tune.space.finetune_weight_decay.choices=[0.0,0.01]"
    with pytest.raises(UserError, match=r"tune\.space\.finetune_weight_decay does not fit study 'robert-dbn-tiny'"
                                        r".*new tune\.study_name"):
        run_study(compose_config("tune", tune_overrides(tmp, synthetic, changed)), ROOT)


def test_a_continued_study_keeps_its_direction(studied, synthetic):
    tmp, _, _ = studied
    with pytest.raises(UserError, match=r"^study 'robert-dbn-tiny' in the storage optimises maximize, but "
                                        r"tune\.metric=loss needs one value to minimize: use a new tune\.study_name$"):
        run_study(compose_config("tune", tune_overrides(tmp, synthetic, "tune.metric=loss")), ROOT)


def test_a_loss_study_minimises_the_validation_loss(synthetic, tmp_path):
    summary = run_study(compose_config("tune", tune_overrides(tmp_path, synthetic, "tune.metric=loss",
                                                              "tune.n_trials=1", epochs=2)), ROOT)
    study = study_in(tmp_path)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and summary.best_trial == 0
    trial = study.trials[0]
    history = mlflow_client(synthetic).get_metric_history(trial.user_attrs["mlflow_run_id"], "val/loss")
    assert trial.value == max(history, key=lambda m: m.step).value == trial.intermediate_values[1]
    assert f"# validation loss: {trial.value:.6f}" in summary.best_config.read_text()


class Crash(Callback):
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated crash: out of memory")


def test_failed_and_orphaned_trials_are_recorded_and_the_study_goes_on(synthetic, tmp_path, monkeypatch):
    # every phase (1 epoch per RBM): the pruning steps must count the 2 fine-tuning epochs only
    overrides = [o for o in tune_overrides(tmp_path, synthetic, epochs=2) if not o.startswith(("model.pretrain",
                                                                                                 "model.top"))]
    cfg = compose_config("tune", [*overrides, "tune.heartbeat_interval_s=1", "tune.grace_period_s=1",
                                  "model.pretrain.epochs_per_layer=1", "model.top.epochs=1"])
    # a worker killed during trial 0: RUNNING, its heartbeat stops
    storage, _ = open_storage(cfg["tune"], ROOT)
    orphan = optuna.create_study(storage=storage, study_name=STUDY, direction="maximize").ask()
    storage.record_heartbeat(orphan._trial_id)
    # past the grace period: SQLite's now() has whole seconds and Optuna needs now - heartbeat > 1 s,
    # which only a wait of 2 s or more guarantees (1.5 s failed when both fell in one second's edges)
    time.sleep(2.5)

    calls = []

    def crash_first(cfg, root, planet_choice=None, callbacks=()):
        calls.append(cfg["train"]["output"])
        return train(cfg, root, planet_choice, [*callbacks, Crash()] if len(calls) == 1 else callbacks)

    monkeypatch.setattr(objective_module, "train", crash_first)
    summary = run_study(cfg, ROOT)
    trials = study_in(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert summary.trials_run == 2 and summary.best_trial == 2
    assert trials[1].user_attrs["fail_reason"] == "RuntimeError: simulated crash: out of memory"
    run = mlflow_client(synthetic).get_run(trials[1].user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["fail_reason"] == trials[1].user_attrs["fail_reason"]
    assert sorted(trials[2].intermediate_values) == [0, 1]  # 2 x rbm + top_rbm epochs are not reported
    assert not list((tmp_path / "work").glob("*/trial-00001/checkpoints/*/last.ckpt"))  # cleaned up


# --- two workers, one PostgreSQL study ---------------------------------------------------------------


def _postgres_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (or ROBERT_TEST_POSTGRES_URL); skip locally, fail in CI."""
    external = os.environ.get("ROBERT_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    unavailable = pytest.fail if os.environ.get("CI") else pytest.skip
    binaries = _postgres_binaries()
    if binaries is None:
        unavailable("PostgreSQL server binaries not found (Debian: apt-get install postgresql; .ci/run does it)")
    # the server refuses to run as root: run it as the postgres user, in a directory that user owns
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no postgres user to run the PostgreSQL server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    # /tmp: a TMPDIR under root's home would be out of the postgres user's reach
    directory = Path(tempfile.mkdtemp(prefix="robert-postgres-", dir="/tmp" if prefix else None))
    if prefix:
        os.chown(directory, user.pw_uid, user.pw_gid)
    data, port = directory / "data", _free_port()

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *command], cwd=directory, capture_output=True, text=True, timeout=120)

    init = run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "robert", "--no-sync")
    start = init.returncode == 0 and run(
        str(binaries / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-w", "-t", "60",
        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -F", "start")
    if not start or start.returncode != 0:
        log = (directory / "server.log").read_text() if (directory / "server.log").exists() else ""
        reason = (init.stderr if init.returncode else start.stderr + log).strip().splitlines()[-3:]
        shutil.rmtree(directory, ignore_errors=True)
        unavailable(f"could not start a PostgreSQL server with {binaries}: {' | '.join(reason)}")
    try:
        yield f"postgresql://robert@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


def test_two_workers_share_one_study_on_postgresql(postgres_url, synthetic, tmp_path):
    name = f"robert-workers-{uuid.uuid4().hex[:8]}"  # a fresh study even on a reused server
    per_worker = 2
    # mlflow.set_tracking_uri in this process exports MLFLOW_* variables: the workers must not inherit them
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    workers = [subprocess.Popen(
        # 2 epochs: the shared study is under test here, not the model
        [sys.executable, str(ROOT / "src" / "tune.py"),
         *tune_overrides(tmp_path, synthetic, storage=postgres_url, epochs=2),
         f"tune.study_name={name}", f"tune.n_trials={per_worker}", f"tune.worker={index}",
         f"hydra.run.dir={tmp_path}/hydra-{index}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in range(2)]
    outputs = [worker.communicate(timeout=400) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
        assert f"{per_worker} trials run now" in stdout  # each worker ran its own n_trials
    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert len(trials) == 2 * per_worker and all(t.state.is_finished() for t in trials)
    assert sorted(t.number for t in trials) == list(range(2 * per_worker))  # no number twice
    client = mlflow_client(synthetic)
    experiment = client.get_experiment_by_name("robert-tune")
    parents = client.search_runs([experiment.experiment_id], f"tags.`optuna.study` = '{name}' and tags.stage = 'tune'")
    assert len(parents) == 1  # both workers log under the study's one parent run
    assert sorted(trial_runs(client, parents[0].info.run_id)) == list(range(2 * per_worker))


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    (["tune.space.finetune_lr.low=0.1"],
     r"^tune\.space\.finetune_lr is inverted \(0\.1 > 0\.015\); expected \[low, high\] with low <= high$"),
    (["tune.space.finetune_lr.high=6.0e-3"], r"^tune\.space\.finetune_lr: empty range, low = high = 0\.006"),
    (["tune.space.finetune_weight_decay.choices=[]"],
     r"^tune\.space\.finetune_weight_decay\.choices must be a non-empty list"),
    (["tune.space.finetune_lr.path=model.finetune.lrr"],
     r"^tune\.space\.finetune_lr\.path: unknown setting model\.finetune\.lrr \(model\.finetune has: epochs, init, lr,"),
    (["tune.space.hidden_1.path='model.hidden[3]'"],
     r"^tune\.space\.hidden_1\.path: model\.hidden\[3\] does not exist \(model\.hidden is a list of 3\)$"),
    (["+tune.space.finetune_lr.lo=1"], r"^tune\.space\.finetune_lr: unknown field 'lo'"),
    (["tune.space.finetune_lr.type=int"], r"^tune\.space\.finetune_lr: model\.finetune\.lr is a real number"),
    (["tune.sampler.name=TPE"], r"^unknown tune\.sampler\.name 'TPE'; expected one of: .*TPESampler"),
    (["+tune.pruner.n_warmup_step=3"], r"^tune\.pruner: MedianPruner\(.*\) failed: .*n_warmup_step"),
    (["tune.metric=test_accuracy"],
     r"^unknown tune\.metric 'test_accuracy'; expected one of: accuracy, loss, macro_f1$"),
    (["tune.worker=-1"], r"^tune\.worker must be an integer >= 0; got -1$"),
    (["tune.n_trials=0"], r"^tune\.n_trials must be a positive integer; got 0$"),
    (["tune.space.finetune_lr.log=yes"], r"^tune\.space\.finetune_lr\.log must be true or false; got 'yes'$"),
    (["tune.storage=postgresql://robert@127.0.0.1:9/optuna"],
     r"^cannot reach the study storage postgresql://robert@127\.0\.0\.1:9/optuna: .*refused"),
])
def test_bad_input_is_a_user_error_naming_the_field_or_url(overrides, message, synthetic, tmp_path):
    with pytest.raises(UserError, match=message):
        run_study(compose_config("tune", tune_overrides(tmp_path, synthetic, *overrides)), ROOT)


def test_the_command_reports_an_unreachable_storage_in_one_line(synthetic, tmp_path):
    url = "postgresql://robert:secret@127.0.0.1:9/optuna"
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "tune.py"), *tune_overrides(tmp_path, synthetic),
                           f"tune.storage={url}", f"hydra.run.dir={tmp_path}/hydra"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the study storage postgresql://robert:***@127.0.0.1:9/optuna: "), proc.stderr
