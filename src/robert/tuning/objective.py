"""One trial: the training config with the trial's values, trained by :func:`robert.training.train.train`.

The objective is the trained model's score on the VALIDATION split, ``tune.metric`` (:data:`METRICS`): the
``val/<metric>`` the training logged at its last validation (:mod:`robert.model.module`: ``macro_f1`` of the
training's labels, the default; ``accuracy`` over the rows with one injected gas, defined only where such rows
exist; ``loss``, the weighted binary cross-entropy, minimised). The test split is never read. Pruning:
optuna-integration's Lightning callback watches the same ``val/<metric>`` after every fine-tuning epoch
(:class:`FinetunePruning`), so the value a trial ends with is the last one the pruner saw.

How a trial ends: COMPLETE (the value), PRUNED (``optuna.TrialPruned`` from the callback), FAIL (any
other error: the reason goes to the trial's ``fail_reason`` user attribute and the MLflow run, and
:class:`TrialFailed` lets the study go on). A :class:`robert.errors.UserError` (a configuration
mistake, the same for every trial) stops the study with its one-line message.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import optuna
from optuna.trial import TrialState
from optuna_integration import PyTorchLightningPruningCallback

from robert.config_checks import check_choice
from robert.data.dataset import dataset_dir, resolve_planets
from robert.errors import UserError
from robert.model.phases import PhaseKind
from robert.spectra.detection import LabelSettings
from robert.training.train import TrainResult, train
from robert.tuning.mlflow_runs import NestedTrialRun
from robert.tuning.space import SearchSpace

# tune.metric -> the study's direction (the validation metrics of robert.model.module)
METRICS = {"macro_f1": "maximize", "accuracy": "maximize", "loss": "minimize"}


class TrialFailed(Exception):
    """A trial that crashed; recorded, and the study goes on (``study.optimize(catch=(TrialFailed,))``)."""


def finetune_epochs_before(pl_module: pl.LightningModule, epoch: int) -> int:
    """How many fine-tuning epochs a recogniser module's schedule runs before ``epoch``."""
    return sum(pl_module.phase_at(e).kind is PhaseKind.FINETUNE for e in range(epoch))


class FinetunePruning(PyTorchLightningPruningCallback):
    """Optuna's Lightning pruning callback, reporting fine-tuning epochs only, as steps 0, 1, 2, ...

    Why: before fine-tuning (a DBN's pre-training phases) the validation metrics are those of the untrained
    classifier (chance for every trial), and after it (the generative phase) the classifier no longer moves;
    counting steps from the first fine-tuning epoch keeps ``n_warmup_steps`` of the pruner independent of the
    pre-training schedule. The parent reads only ``current_epoch`` of the module it is given, so it gets a view
    with the fine-tuning epoch. Peers (MLP, CNN) fine-tune from epoch 0: their steps are their epochs.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.current_phase.kind is not PhaseKind.FINETUNE:
            return
        view = SimpleNamespace(current_epoch=finetune_epochs_before(pl_module, pl_module.current_epoch))
        super().on_validation_end(trainer, view)


def objective_metric(tune: Mapping) -> str:
    return str(check_choice(tune.get("metric"), "tune.metric", METRICS))


def metric_direction(tune: Mapping) -> str:
    """``maximize`` or ``minimize``: how the study optimises ``tune.metric``."""
    return METRICS[objective_metric(tune)]


def final_value(result: TrainResult, metric: str) -> float:
    """The ``val/<metric>`` of the training's last validation (the pruner's last report)."""
    value = result.trainer.callback_metrics.get(f"val/{metric}")
    if value is None:
        raise UserError(f"tune.metric {metric!r} is not defined for this data (accuracy needs spectra with one "
                        "injected gas): use tune.metric=macro_f1")
    return float(value)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass
class Objective:
    """``study.optimize(Objective(...))``: trains one model per trial under ``tune.work_dir/<study>/``."""

    train_cfg: Mapping              # the composed training config (no ``tune`` section)
    root: Path
    planet_choice: str | None
    space: SearchSpace
    tune: Mapping
    parent_run_id: str

    def __post_init__(self) -> None:
        self.metric = objective_metric(self.tune)
        self.trials_started = 0

    def trial_config(self, trial: optuna.Trial, values: Mapping) -> dict:
        trial_dir = self.root / self.tune["work_dir"] / trial.study.study_name / f"trial-{trial.number:05d}"
        cfg = self.space.apply(self.train_cfg, values)
        # Per-trial checkpoints (a re-sampled config never resumes another trial's) and output; nothing registered.
        # The logged model's pip requirements: train.model_requirements, pinned by train() as for any training.
        cfg["train"] = {**cfg["train"], "register": False, "checkpoint_dir": str(trial_dir / "checkpoints"),
                        "output": str(trial_dir / "model.json")}
        return cfg

    def __call__(self, trial: optuna.Trial) -> float:
        self.trials_started += 1
        values = self.space.suggest(trial)
        cfg = self.trial_config(trial, values)
        trial.set_user_attr("model_config", cfg["model"])
        trial.set_user_attr("training", {"seed": cfg["seed"], "planets": resolve_planets(cfg, self.planet_choice),
                                         "composition": cfg["composition"]["kind"],
                                         "dataset_dir": str(dataset_dir(cfg, self.root)),
                                         "observation": str(cfg["observation"].get("name", "custom")),
                                         "snr": cfg["observation"].get("snr"),
                                         "labels": LabelSettings.from_config(cfg["labels"]).describe()})
        run = NestedTrialRun(self.parent_run_id, trial, values)
        checkpoints = Path(cfg["train"]["checkpoint_dir"])
        try:
            result = train(cfg, self.root, self.planet_choice,
                           callbacks=[FinetunePruning(trial, monitor=f"val/{self.metric}"), run])
        except optuna.TrialPruned as exc:
            run.finish(TrialState.PRUNED, reason=str(exc))
            shutil.rmtree(checkpoints, ignore_errors=True)
            raise
        except UserError as exc:
            run.finish(TrialState.FAIL, reason=str(exc))
            raise
        except Exception as exc:
            reason = first_line(exc)
            trial.set_user_attr("fail_reason", reason)
            run.finish(TrialState.FAIL, reason=reason)
            shutil.rmtree(checkpoints, ignore_errors=True)
            raise TrialFailed(f"trial {trial.number}: {reason}") from exc
        try:
            value = final_value(result, self.metric)
        except UserError as exc:
            run.finish(TrialState.FAIL, reason=str(exc))
            raise
        trial.set_user_attr("model_uri", result.model_uri)
        run.finish(TrialState.COMPLETE, value=value)
        return value
