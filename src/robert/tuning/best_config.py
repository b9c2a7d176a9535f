"""The best trial's model config as a ``conf/model/`` file (``tune.best_config``, e.g. ``conf/model/dbn_tuned.yaml``:
``python src/train.py model=dbn_tuned`` reproduces the trial).

The file is the trial's complete ``model`` section (no defaults list, so it does not change when
``dbn.yaml`` does), written atomically, with a header naming the study, the trial, its validation
score and the data it was trained on: the same seed and data settings give the same validation score.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from robert.atomic import atomic_output

MODEL_CONFIG_ATTR = "model_config"
TRAINING_ATTR = "training"


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists (``hidden: [500, 200, 50]``), like the hand-written model configs."""


_Dumper.add_representer(list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                                                              flow_style=True))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial that recorded its model config (None before the first one completes); of equal
    values, the earliest."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if MODEL_CONFIG_ATTR in t.user_attrs]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0
    return max(complete, key=lambda t: (sign * t.value, -t.number), default=None)


def header(trial: FrozenTrial, study: optuna.Study, storage: str, metric: str, counts: Mapping[str, int],
           name: str) -> str:
    training = trial.user_attrs.get(TRAINING_ATTR, {})
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    lines = [
        "The best trial of an Optuna study, written by `python src/tune.py` (robert.tuning.best_config).",
        f"study: {study.study_name} in {storage}",
        f"trial: {trial.number} of {sum(counts.values())} ({counts.get('COMPLETE', 0)} complete, "
        f"{counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} failed); MLflow run "
        f"{trial.user_attrs.get('mlflow_run_id', '?')}",
        f"validation {metric}: {trial.value:.6f}",
        f"trained on: planets {','.join(training.get('planets', []))}, {training.get('composition')} spectra in "
        f"{training.get('dataset_dir')}, observation {training.get('observation')} (SNR {training.get('snr')}), "
        f"labels {training.get('labels')}, seed {training.get('seed')}",
        f"sampled: {params}",
        f"Reproduce: python src/train.py model={name} (with the same seed and data settings)",
    ]
    return "".join(f"# {line}\n" for line in lines)


def write_best_config(path: Path, study: optuna.Study, storage: str, metric: str,
                      counts: Mapping[str, int]) -> FrozenTrial | None:
    """Write the best trial's model config to ``path`` (atomically); returns that trial, or None if none."""
    trial = best_trial(study)
    if trial is None:
        return None
    body = yaml.dump(trial.user_attrs[MODEL_CONFIG_ATTR], Dumper=_Dumper, sort_keys=False)
    with atomic_output(path) as tmp:
        tmp.write_text(header(trial, study, storage, metric, counts, Path(path).stem) + body)
    return trial
