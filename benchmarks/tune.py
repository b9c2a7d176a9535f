"""A 30-trial Optuna study on a subset of the paper-scale set, against the default DBN on the same budget.

    python benchmarks/tune.py [extra Hydra overrides of conf/tune.yaml ...]

Subset (documented, not sampled): the first shard (``dataset.shard_size`` = 2,450 spectra) of each of
SUBSET_PLANETS (GJ 1214 b) of the configured composition (the default: mixtures of 1-4 gases) from
``build/datasets/`` (`dvc repro` makes them), linked into a temporary dataset directory and split by the data
config as always (80/10/10: train, validation, the fixed test rows). Every training, trials and default alike,
is observed and labelled as the training config says (default: any coverage, detection labels) on the budget
BUDGET: five CD epochs per stacked RBM, five top-RBM epochs, up to 20 fine-tuning epochs, one torch thread
(far fewer updates than the default schedule, so the scores are far from the model's best). The search space
is conf/tune/space/dbn.yaml; the objective the default validation macro-F1; TPE after 8 random trials; a
MedianPruner from the 4th fine-tuning epoch once four trials completed.

The tuned model is the best trial's logged model (chosen on the validation split); the default is
conf/model/dbn.yaml (500-200-50) trained in this run with the same budget and seed. Both are scored on the
subset's headline test set (the whole grid, white noise at ``data.snr``) with the evaluation stage's scores.
Storage, MLflow store and trial files live in a temporary directory; the best config is written to
build/benchmarks/tune/dbn_tuned.yaml. The last line printed is one JSON object: trials, pruned, seconds,
tuned_test_macro_f1, default_test_macro_f1 and more.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mlflow

from record import compose_config, emit  # benchmarks/record.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from robert.errors import UserError, exit_on_user_error  # noqa: E402
from robert.training.evaluate import predictor, scores, thresholds_of  # noqa: E402
from robert.training.train import build_datamodule, train  # noqa: E402
from robert.tuning.objective import final_value  # noqa: E402
from robert.tuning.run import run_study  # noqa: E402

SUBSET_PLANETS = ["gj1214b"]
SHARD = "shard-00000.h5"
N_TRIALS = 30
BUDGET = ["model.pretrain.epochs_per_layer=5", "model.top.epochs=5", "model.finetune.epochs=20",
          "trainer.torch_threads=1", "trainer.progress_bar=false"]
STUDY = ["tune.sampler.n_startup_trials=8", "tune.pruner.n_startup_trials=4", "tune.pruner.n_warmup_steps=3"]
BEST_CONFIG = ROOT / "build" / "benchmarks" / "tune" / "dbn_tuned.yaml"


def link_subset(source: Path, target: Path, composition: str) -> Path:
    """``target/<composition>/<planet>/shard-00000.h5`` -> the paper-scale shard, for each subset planet."""
    for planet in SUBSET_PLANETS:
        shard = source / composition / planet / SHARD
        if not shard.exists():
            raise UserError(f"no paper-scale shard {shard}: run `dvc repro simulate@{planet}`")
        (target / composition / planet).mkdir(parents=True)
        (target / composition / planet / SHARD).symlink_to(shard)
    return target


def test_scores(model_uri: str, cfg: dict) -> dict[str, float]:
    """The model's macro-F1 and single-gas accuracy on the subset's headline test set (evaluate's scores)."""
    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    datamodule = build_datamodule(cfg, SUBSET_PLANETS, ROOT)
    metrics, _ = scores(predictor(model), datamodule.test_set(), datamodule.split("test").vmr(),
                        datamodule.molecules, [], thresholds_of(model))
    return {"accuracy": metrics.get("accuracy", float("nan")), "macro_f1": metrics["macro_f1"],
            "n": metrics["n_spectra"]}


@exit_on_user_error
def main() -> None:
    warnings.filterwarnings("ignore")
    load_before = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="robert-tune-bench-") as tmp_name:
        tmp = Path(tmp_name)
        composition = compose_config("tune", list(sys.argv[1:]))["composition"]["kind"]
        dataset = link_subset(ROOT / "build" / "datasets", tmp / "datasets", composition)
        common = [f"dataset.out_dir={dataset}", f"data.planets=[{','.join(SUBSET_PLANETS)}]",
                  f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_location={tmp}/artifacts", *BUDGET]
        cfg = compose_config("tune", [*common, *STUDY, "tune.study_name=benchmark", f"tune.n_trials={N_TRIALS}",
                                      f"tune.storage=sqlite:///{tmp}/optuna.db", f"tune.work_dir={tmp}/work",
                                      f"tune.best_config={BEST_CONFIG}", *sys.argv[1:]])
        summary = run_study(cfg, ROOT)
        tuned_seconds = time.perf_counter() - start
        if summary.best_trial is None:
            raise UserError("no trial completed: nothing to compare")
        train_cfg = {k: v for k, v in cfg.items() if k != "tune"}
        study_trials = summary.counts
        tuned = test_scores(summary.best_model_uri, train_cfg)

        default_start = time.perf_counter()
        # the same data and budget overrides as the study (its own tune.* settings do not apply)
        extra = [o for o in sys.argv[1:] if not o.lstrip("+~").startswith("tune")]
        default_cfg = compose_config("train", [*common, "train.register=false", f"train.output={tmp}/default.json",
                                               f"train.checkpoint_dir={tmp}/default-ckpt", *extra])
        default_run = train(default_cfg, ROOT)
        default = test_scores(default_run.model_uri, default_cfg)
        default_seconds = time.perf_counter() - default_start
    emit("tune", {
        "trials": summary.trials_run, "complete": study_trials["COMPLETE"], "pruned": study_trials["PRUNED"],
        "failed": study_trials["FAIL"], "seconds": round(tuned_seconds, 1),
        "default_training_seconds": round(default_seconds, 1),
        "tuned_test_accuracy": round(tuned["accuracy"], 4), "default_test_accuracy": round(default["accuracy"], 4),
        "tuned_test_macro_f1": round(tuned["macro_f1"], 4), "default_test_macro_f1": round(default["macro_f1"], 4),
        "test_spectra": tuned["n"], "best_trial": summary.best_trial,
        "best_validation_" + cfg["tune"]["metric"]: round(summary.best_value, 4),
        "default_validation_" + cfg["tune"]["metric"]: round(final_value(default_run, cfg["tune"]["metric"]), 4),
        "best_params": summary.best_params, "subset": {"planets": SUBSET_PLANETS, "shard": SHARD},
        "budget": BUDGET, "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "overrides": sys.argv[1:]})


if __name__ == "__main__":
    main()
