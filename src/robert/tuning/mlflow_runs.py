"""MLflow records of a study: one parent run per study, each trial's training run nested under it.

The trial's run is the one :func:`robert.training.train.train` creates (config, curves, model);
:class:`NestedTrialRun` tags it as a child of the parent (``mlflow.parentRunId``) as soon as fit
starts, with the trial's sampled values as ``trial.<name>`` params. When the trial ends its state
(COMPLETE / PRUNED / FAIL), ``pruned`` and a ``fail_reason`` become tags; the parent gets the study's
counts, best value, optimisation history and parameter-importance plots and the trials table.
MLflow's own Optuna callback is deprecated (DESIGN.md section 8), so this is logged directly.

The parent run's id is kept in the study (a user attribute per tracking store), so every worker
and every re-run of the study logs under the same parent.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from mlflow.entities import Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from robert.tracking.setup import SQLITE_PREFIX, configure_tracking, resolve_tracking_uri  # noqa: E402
from robert.training.train import flatten  # noqa: E402
from robert.tuning.study import wait_for_user_attr  # noqa: E402

PARENT_ATTR = "mlflow_parent_run_id"
PARENT_WAIT_S = 30.0      # how long a worker that did not create the study waits for the creator's parent run
MAX_TAG_CHARS = 5000      # MLflow's limit on a tag value is larger; a reason longer than this is cut


def configure_tracking_shared(tracking: Mapping, root: Path, attempts: int = 5) -> str:
    """:func:`configure_tracking` for workers starting at once: they race to create the store and the experiment.

    A local SQLite store is created under a file lock (two processes migrating one fresh database
    corrupt its schema version); with a tracking server the loser of the experiment race tries again.
    """
    uri = resolve_tracking_uri(tracking, root)
    with contextlib.ExitStack() as stack:
        if uri.startswith(SQLITE_PREFIX):
            handle = stack.enter_context(open(f"{uri[len(SQLITE_PREFIX):]}.lock", "a"))  # noqa: SIM115
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        for attempt in range(1, attempts):
            try:
                return configure_tracking(tracking, root)
            except MlflowException:
                time.sleep(0.5 * attempt)  # the other worker created it: the next attempt finds it
        return configure_tracking(tracking, root)


def parent_run(study: optuna.Study, created: bool, experiment_id: str, tune: Mapping, storage: str) -> str:
    """The study's parent run in the current tracking store: found through the study, or created now."""
    client = MlflowClient()
    key = f"{PARENT_ATTR} {client.tracking_uri}"  # one parent per tracking store the workers log to
    run_id = study.user_attrs.get(key)
    if run_id is None and not created and not study.get_trials(deepcopy=False):
        # the worker that created the study a moment ago is creating the parent (before its first trial)
        run_id = wait_for_user_attr(study, key, PARENT_WAIT_S)
    if run_id is not None:
        with contextlib.suppress(MlflowException):
            client.get_run(run_id)
            client.update_run(run_id, status="RUNNING")
            return run_id
    run = client.create_run(experiment_id, run_name=f"study-{study.study_name}",
                            tags={"stage": "tune", "optuna.study": study.study_name, "optuna.storage": storage})
    settings = {k: v for k, v in flatten(dict(tune)).items() if k != "storage"}
    client.log_batch(run.info.run_id, params=[Param(f"tune.{k}", str(v)[:6000]) for k, v in settings.items()])
    study.set_user_attr(key, run.info.run_id)
    return run.info.run_id


class NestedTrialRun(Callback):
    """Nests the training's MLflow run under the study's parent run and logs the trial's values."""

    def __init__(self, parent_run_id: str, trial: optuna.Trial, values: Mapping[str, Any]) -> None:
        self.parent_run_id, self.trial, self.values = parent_run_id, trial, dict(values)
        self.run_id: str | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.run_id = trainer.logger.run_id
        self.trial.set_user_attr("mlflow_run_id", self.run_id)
        number = self.trial.number
        MlflowClient().log_batch(
            self.run_id, params=[Param(f"trial.{k}", str(v)) for k, v in self.values.items()],
            tags=[RunTag("mlflow.parentRunId", self.parent_run_id), RunTag("mlflow.runName", f"trial-{number}"),
                  RunTag("optuna.study", self.trial.study.study_name), RunTag("optuna.trial", str(number))])

    def finish(self, state: TrialState, value: float | None = None, reason: str | None = None) -> None:
        """Record how the trial ended; a pruned or failed run is also closed (KILLED / FAILED)."""
        if self.run_id is None:  # failed before training started: Optuna's record is all there is
            return
        client = MlflowClient()
        tags = [RunTag("optuna.state", state.name), RunTag("pruned", str(state == TrialState.PRUNED).lower())]
        if reason:
            tags.append(RunTag("fail_reason", reason[:MAX_TAG_CHARS]))
        client.log_batch(self.run_id, tags=tags)
        if value is not None:
            client.log_metric(self.run_id, "objective", value)
        if state == TrialState.PRUNED:
            client.set_terminated(self.run_id, "KILLED")
        elif state == TrialState.FAIL:
            client.set_terminated(self.run_id, "FAILED")


def _save_plot(axes: Any, path: Path) -> Path:
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def study_plots(study: optuna.Study, directory: Path) -> list[Path]:
    """optimization_history.png, and param_importances.png once two trials completed."""
    from optuna.visualization import matplotlib as optuna_plots

    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        paths.append(_save_plot(optuna_plots.plot_optimization_history(study), directory / "optimization_history.png"))
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
            paths.append(_save_plot(optuna_plots.plot_param_importances(study), directory / "param_importances.png"))
    return paths


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    return {state.name: counts.get(state.name, 0) for state in TrialState}


def log_study(parent_run_id: str, study: optuna.Study, best_config: Path | None, status: str) -> None:
    """Counts, best value, plots, the trials table and the best config on the parent run; then close it."""
    client = MlflowClient()
    counts = state_counts(study)
    client.set_tag(parent_run_id, "optuna.trials", str(sum(counts.values())))
    for name, count in counts.items():
        client.log_metric(parent_run_id, f"trials_{name.lower()}", count)
    if counts["COMPLETE"]:
        best = study.best_trial
        client.log_metric(parent_run_id, "best_value", float(best.value))
        client.log_batch(parent_run_id, tags=[RunTag("best_trial", str(best.number))]
                         + [RunTag(f"best.{k}", str(v)) for k, v in best.params.items()])
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for path in study_plots(study, directory):
            client.log_artifact(parent_run_id, str(path), "plots")
        table = directory / "trials.csv"
        study.trials_dataframe().to_csv(table, index=False)
        client.log_artifact(parent_run_id, str(table))
    if best_config is not None:
        client.log_artifact(parent_run_id, str(best_config))
    client.set_terminated(parent_run_id, status)
