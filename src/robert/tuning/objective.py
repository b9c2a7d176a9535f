"""One trial: the training config with the trial's values, trained by :func:`robert.training.train.train`.

The objective is the trained model's score on the VALIDATION split (``tune.metric``: ``macro_f1`` or
``accuracy``, from ``TrainResult.val_metrics``); the test split is never read. Pruning: optuna-integration's
Lightning callback watches ``val/<metric>`` after every fine-tuning epoch (:class:`FinetunePruning`).

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

from robert.data.datamodule import resolve_planets
from robert.errors import UserError
from robert.model.lightning_module import DBNModule
from robert.training.train import train
from robert.tuning.mlflow_runs import NestedTrialRun
from robert.tuning.space import SearchSpace

METRICS = ("macro_f1", "accuracy")


class TrialFailed(Exception):
    """A trial that crashed; recorded, and the study goes on (``study.optimize(catch=(TrialFailed,))``)."""


class FinetunePruning(PyTorchLightningPruningCallback):
    """Optuna's Lightning pruning callback, reporting fine-tuning epochs only, as steps 0, 1, 2, ...

    Why: before fine-tuning the validation metrics are those of the untrained classifier (chance for
    every trial), and counting steps from the first fine-tuning epoch keeps ``n_warmup_steps`` of the
    pruner independent of the pre-training schedule. The parent reads only ``current_epoch`` of the
    module it is given, so it gets a view with the fine-tuning epoch.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(pl_module, DBNModule):
            if pl_module.current_phase != "finetune":
                return
            pl_module = SimpleNamespace(current_epoch=pl_module.current_epoch - pl_module.n_pretrain_epochs)
        super().on_validation_end(trainer, pl_module)


def objective_metric(tune: Mapping) -> str:
    metric = tune.get("metric")
    if metric not in METRICS:
        raise UserError(f"unknown tune.metric {metric!r}; expected one of: {', '.join(METRICS)} "
                        "(validation scores; the test split is never used for tuning)")
    return metric


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
                                         "composition": cfg["composition"]["kind"], "snr": cfg["data"]["snr"],
                                         "dataset_dir": cfg["data"]["dataset_dir"]})
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
        value = result.val_metrics.get(self.metric)
        if value is None:
            raise UserError(f"tune.metric {self.metric!r} is not defined for this data (accuracy needs single-gas "
                            "spectra): use tune.metric=macro_f1")
        trial.set_user_attr("model_uri", result.model_uri)
        run.finish(TrialState.COMPLETE, value=float(value))
        return float(value)
