"""Training runs for the tests: an already migrated MLflow store, paper-style observation, an interruption.

A new SQLite MLflow store runs MLflow's ~60 schema migrations (measured: 9-12 s of a 18 s tiny training on two
busy cores); :func:`ready_store` copies one migrated empty store instead, made once per test session.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import mlflow
from lightning.pytorch.callbacks import Callback

from helpers.config import ROOT, compose_config
from helpers.training import train_overrides
from robert.training.train import TrainResult, train


@functools.cache
def _migrated_store() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="robert-test-store-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # creates and migrates it
    return path


def ready_store(tmp: Path) -> None:
    """An empty, migrated store at ``tmp/mlflow.db`` (where :func:`helpers.training.train_overrides` points),
    unless one is there already."""
    target = Path(tmp) / "mlflow.db"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_store(), target)


def run_overrides(tmp: Path, dataset_dir: Path, planets: Sequence[str], *extra: str) -> list[str]:
    """:func:`helpers.training.train_overrides`, where ``extra`` may choose another observation than the
    any-coverage prior: then without that prior's bank size (``observation=white`` has no coverage section)."""
    other_observation = any(o.startswith("observation=") and o != "observation=any" for o in extra)
    return [o for o in train_overrides(tmp, dataset_dir, planets, *extra)
            if not (other_observation and o.startswith("observation.coverage."))]


def run_config(tmp: Path, dataset_dir: Path, planets: Sequence[str], *extra: str) -> dict:
    """The evaluate config (train's + the evaluate section) of :func:`run_overrides`."""
    return compose_config("evaluate", run_overrides(tmp, dataset_dir, planets, *extra))


def train_run(tmp: Path, dataset_dir: Path, planets: Sequence[str], *extra: str,
              callbacks: Sequence[Callback] = ()) -> tuple[dict, TrainResult]:
    """Train :func:`run_config` into the store under ``tmp``; returns the config and the result."""
    ready_store(tmp)
    cfg = run_config(tmp, dataset_dir, planets, *extra)
    return cfg, train(cfg, ROOT, callbacks=callbacks)


class Interrupt(Callback):
    """Kills the fit at the start of ``epoch`` (after the previous epoch's checkpoint was written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")
