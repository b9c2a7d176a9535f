"""A study from a composed ``conf/tune.yaml``: check, create or continue, optimise, record, write the best config.

Everything that can be wrong with the configuration (search space, metric, sampler, pruner, storage
URL) is checked before the first trial, as a one-line :class:`robert.errors.UserError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robert.config_checks import check_positive_int
from robert.errors import UserError
from robert.model.config import validate_model_config
from robert.spectra.detection import LabelSettings
from robert.tracking.requirements import pinned_requirements
from robert.tuning.best_config import write_best_config
from robert.tuning.mlflow_runs import configure_tracking_shared, log_study, parent_run, state_counts
from robert.tuning.objective import Objective, TrialFailed, metric_direction
from robert.tuning.space import SearchSpace
from robert.tuning.study import create_or_load, make_pruner, make_sampler, open_storage


@dataclass
class StudySummary:
    study_name: str
    storage: str                    # password masked
    parent_run_id: str
    created: bool                   # False: an existing study was continued
    trials_run: int                 # trials this worker started (others may have added more meanwhile)
    counts: dict[str, int]          # the whole study, by state (COMPLETE, PRUNED, FAIL, RUNNING, ...)
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config: Path | None = None
    best_model_uri: str | None = None  # the best trial's logged model (MLflow)
    seconds: float = 0.0


def _positive_int_or_none(tune: Mapping, key: str) -> int | None:
    value = tune.get(key)
    return None if value is None else check_positive_int(value, f"tune.{key}")


def run_study(cfg: Mapping, root: Path, planet_choice: str | None = None) -> StudySummary:
    """Run ``tune.n_trials`` more trials (or until ``tune.timeout_s``) of the configured study."""
    start = time.monotonic()
    root = Path(root)
    tune = cfg["tune"]
    train_cfg = {k: v for k, v in cfg.items() if k != "tune"}
    n_trials, timeout = _positive_int_or_none(tune, "n_trials"), _positive_int_or_none(tune, "timeout_s")
    if n_trials is None and timeout is None:
        raise UserError("tune.n_trials and tune.timeout_s are both null: the study would never stop")
    space = SearchSpace(tune.get("space"), train_cfg)
    validate_model_config(train_cfg["model"])
    LabelSettings.from_config(train_cfg["labels"])
    # bad sections fail before the storage is touched
    direction = metric_direction(tune)
    make_pruner(tune), make_sampler(tune, 0)
    pinned_requirements(train_cfg["train"].get("model_requirements") or [], "train.model_requirements")
    storage, shown = open_storage(tune, root)
    study, created = create_or_load(tune, storage, direction)
    space.check_against(study)

    experiment_id = configure_tracking_shared(train_cfg["tracking"], root)
    parent = parent_run(study, created, experiment_id, tune, shown)
    objective = Objective(train_cfg, root, planet_choice, space, tune, parent)
    status = "FAILED"
    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,))
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        counts = state_counts(study)
        best_path = root / tune["best_config"]
        best = write_best_config(best_path, study, shown, objective.metric, counts)
        log_study(parent, study, best_path if best else None, status)
    return StudySummary(
        study.study_name, shown, parent, created, objective.trials_started, counts,
        best.number if best else None, best.value if best else None, dict(best.params) if best else {},
        best_path if best else None, best.user_attrs.get("model_uri") if best else None, time.monotonic() - start)
