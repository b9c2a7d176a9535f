"""Training benchmark: RobERt against its peers, the paper's regime beside the realistic one, and training speed.

    python benchmarks/train.py                       # everything below (~30 min on 2 cores)
    python benchmarks/train.py --only peers,paper    # a subset: realistic, peers, single, mixture, paper, speed, seeds
    python benchmarks/train.py --speed               # speed only: the default schedule vs the first pipeline's
    python benchmarks/train.py --only realistic,peers,speed   # speed reuses the realistic DBN's (profiled) run

Every model trains through the project's own stage code (``train`` then ``evaluate``) on the datasets the
pipeline built (``dvc repro``; the paper and single-gas sets: ``dvc repro evaluate-paper``, ``python
src/generate.py experiment=single planet=<key>``), logged to a private MLflow store under build/bench/train/
(one experiment per regime: ``mlflow ui --backend-store-uri sqlite:///build/bench/train/mlflow.db`` compares the
peers side by side), so the project's registry and its @champion are left alone.

* realistic: the default DBN (mixtures, any coverage, detection labels), scored at the headline test set
  (whole grid, white noise at data.snr): completeness at feature S/N >= 10 and 5-10 (worst molecule outside the
  declared degenerate group), false-alarm rate (worst), macro-F1;
* peers: the MLP and the CNN (model=mlp | cnn) through the same training, and a random forest (scikit-learn,
  as HELA did) on the same encoded inputs, one observation draw per training spectrum, its thresholds set as
  the networks' are (robert.inference.thresholds);
* single: the realistic regime on the paper-scale single-gas set (experiment=single: 85,750 spectra);
* mixture: the realistic regime on the paper-scale mixture set (experiment=mixture: 85,750 spectra of 1-4 gases);
* paper: the paper's regime (experiment=paper): accuracy over all ten molecules and over the eight outside the
  degenerate group;
* speed: the default DBN schedule against ``model=dbn_baseline`` (the first pipeline's: batch 64, 5/5/5/20/5
  epochs), both trained here on the same data, same split and seed rule: wall-clock seconds and the ratio, and
  where the default training's time goes (Lightning's SimpleProfiler: seconds per hook and per phase); and the
  time to the baseline's quality: the default recipe with its fine-tuning cut to ``--short-epochs`` (``short``:
  its seconds, its speed-up over the baseline, and whether none of its test metrics is worse than the baseline's);
* seeds: the default recipe trained again at other training seeds (``SEEDS``; the data, split and test
  observations stay), each one's test scores and the spread (max - min) of every score over them and the default:
  how large a difference between two single runs must be to mean something (record ``train_seeds``).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from record import command_line, emit, record_of, timed_training  # benchmarks/record.py, beside this script
from record import machine as machine_description
from robert.data.dataset import resolve_planets
from robert.inference.package import detection_thresholds
from robert.inference.thresholds import ThresholdSettings
from robert.training.evaluate import evaluate, scores, significance_axes, thresholds_for
from robert.training.train import build_datamodule

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "train"
PARTS = ("realistic", "peers", "single", "mixture", "paper", "speed", "seeds")
# the keys of the train record each part writes: a run of some parts (--only) keeps the others' last measurement
PART_KEYS = {"realistic": ("completeness_snr_ge_10_min", "completeness_snr_5_10_min", "false_alarm_rate_max",
                           "train_seconds", "realistic"),
             "peers": ("peers", "peer_details", "dbn_behind_best_peer"),
             "single": ("single",),
             "mixture": ("mixture_macro_f1", "mixture"),
             "paper": ("paper_test_accuracy", "paper_test_accuracy_8", "paper")}
# reported beside the headline, not part of "not worse": the worst gas's completeness on the profiled significance axis
# (robert.spectra.nuisance), where a band another gas imitates no longer counts as detectable
AXES = ("profiled_completeness_snr_ge_10_min",)
# metrics where lower is better (the others: higher)
LOWER_IS_BETTER = ("false_alarm_rate_max", "hamming_loss")
SHORT_EPOCHS = 6  # fine-tuning epochs of the shortened recipe (at 4 its macro-F1 stayed below the baseline's)
SEEDS = (2017, 2018)  # training seeds besides the default's (conf/train.yaml: seed) for the run-to-run spread
HEADLINE = ("completeness_snr_ge_10_min", "completeness_snr_5_10_min", "false_alarm_rate_max", "macro_f1",
            "accuracy", "accuracy_outside_groups", "exact_match", "hamming_loss")


def config(name: str, *overrides: str) -> dict:
    """The evaluate config (train + evaluate sections) with the benchmark's private store and outputs."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[
            f"tracking.uri=sqlite:///{OUT}/mlflow.db", f"tracking.artifact_location={OUT}/artifacts",
            f"train.output={OUT}/{name}/model.json", f"train.checkpoint_dir={OUT}/checkpoints",
            f"evaluate.out_dir={OUT}/{name}/evaluate", "trainer.progress_bar=false", "evaluate.coverages=[]",
            *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


# SimpleProfiler actions -> the profile's names (what a training step spends its time on)
PROFILE_ACTIONS = {"observe_and_label": "[LightningDataModule]SpectraDataModule.on_after_batch_transfer",
                   "fetch_rows": "[_TrainingEpochLoop].train_dataloader_next",
                   "training_step": "[Strategy]SingleDeviceStrategy.training_step",
                   "optimizer_step": "optimizer_step",
                   "validation_step": "[Strategy]SingleDeviceStrategy.validation_step",
                   "save_checkpoint": "save_checkpoint"}


def profile_of(result, total_seconds: float) -> dict:
    """Where a training's seconds went: per profiled action (totals and per-step milliseconds) and per phase."""
    durations = result.trainer.profiler.recorded_durations
    module = result.trainer.lightning_module
    phases: dict[str, float] = {}
    for epoch, seconds in enumerate(durations.get("run_training_epoch", [])):
        name = module.phase_at(epoch).name
        phases[name] = round(phases.get(name, 0.0) + seconds, 1)
    actions = {name: {"seconds": round(sum(durations[key]), 1),
                      "ms_per_call": round(1e3 * sum(durations[key]) / len(durations[key]), 2)}
               for name, key in PROFILE_ACTIONS.items() if durations.get(key)}
    in_fit = sum(durations.get("run_training_epoch", []))
    return {"actions": actions, "epochs_by_phase": phases,
            "outside_epochs_seconds": round(total_seconds - in_fit, 1)}  # data, scaling, logging, registry


def train_and_evaluate(name: str, *overrides: str, profile: bool = False) -> dict:
    cfg = config(name, *overrides, *(["trainer.profiler=simple"] if profile else []))
    result, seconds = timed_training(cfg, ROOT)
    cfg["evaluate"]["model_version"] = result.registered_version
    summary = evaluate(cfg, ROOT)
    out = {k: round(float(summary[k]), 4) for k in (*HEADLINE, *AXES) if k in summary}
    print(f"{name}: {out} in {seconds:.0f} s", flush=True)
    return out | {"train_seconds": round(seconds, 1)} | ({"profile": profile_of(result, seconds)} if profile else {})


def not_worse(scores_a: dict, scores_b: dict) -> bool:
    """Whether ``scores_a`` is at least as good as ``scores_b`` on every headline metric both have."""
    shared = [k for k in HEADLINE if k in scores_a and k in scores_b]
    return all(scores_a[k] <= scores_b[k] if k in LOWER_IS_BETTER else scores_a[k] >= scores_b[k] for k in shared)


def random_forest(*overrides: str, n_estimators: int = 100) -> dict:
    """HELA's learner (Marquez-Neila et al. 2018) on the realistic regime's encoded inputs, one draw per spectrum."""
    from sklearn.ensemble import RandomForestClassifier

    cfg = config("forest", *overrides)
    datamodule = build_datamodule(cfg, resolve_planets(cfg), ROOT)
    channels = cfg["model"]["inputs"]
    from robert.spectra.observation import network_inputs

    train_set = datamodule.observed_set("train", key="forest")
    x = network_inputs(train_set.observation, channels).numpy()
    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt", min_samples_leaf=2, n_jobs=-1,
                                    random_state=int(cfg["seed"])).fit(x, train_set.targets.numpy().astype(int))
    seconds = time.perf_counter() - start

    def predict(observation) -> np.ndarray:
        votes = forest.predict_proba(network_inputs(observation, channels).numpy())
        return np.stack([v[:, 1] if v.shape[1] == 2 else np.zeros(len(v)) for v in votes], 1)

    # called at thresholds set as the networks' are (the false-alarm rate on validation spectra)
    thresholds = detection_thresholds(predict, datamodule, ThresholdSettings.from_config(cfg["inference"]),
                                      int(cfg["seed"]))
    test = datamodule.test_set()
    vmr, groups = datamodule.split("test").vmr(), cfg["evaluate"]["degenerate_groups"]
    result, probs = scores(predict, test, vmr, datamodule.molecules, groups, thresholds)
    axes = significance_axes(probs, datamodule, test, vmr, groups, thresholds_for(test, thresholds))
    result["profiled_completeness_snr_ge_10_min"] = axes["profiled"]["completeness_snr_ge_10_min"]
    out = {k: round(float(result[k]), 4) for k in (*HEADLINE, *AXES) if k in result}
    print(f"forest: {out} in {seconds:.0f} s", flush=True)
    return out | {"train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of: {', '.join(PARTS)}")
    parser.add_argument("--speed", action="store_true", help="the speed comparison only")
    parser.add_argument("--short-epochs", type=int, default=SHORT_EPOCHS,
                        help="fine-tuning epochs of the speed part's shortened default recipe")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every training")
    args = parser.parse_args()
    parts = ["speed"] if args.speed else [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; expected some of: {', '.join(PARTS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    # the record names the machine (record.emit); the results hold only what was measured
    print(f"machine: {machine_description()}, {torch.get_num_threads()} threads", flush=True)
    report: dict = {}
    overrides = args.overrides

    profile = None
    if "realistic" in parts or "peers" in parts:
        # profiled when the speed part reuses it (the profiler's cost, a clock read per hook, counts against it)
        dbn = train_and_evaluate("realistic-dbn", *overrides, profile="speed" in parts)
        profile = dbn.pop("profile", None)
        report |= {k: dbn[k] for k in ("completeness_snr_ge_10_min", "completeness_snr_5_10_min",
                                       "false_alarm_rate_max") if k in dbn}
        report |= {"train_seconds": dbn["train_seconds"], "realistic": dbn}
    if "peers" in parts:
        peers = {"dbn": report["realistic"]}
        for kind in ("mlp", "cnn"):
            peers[kind] = train_and_evaluate(f"realistic-{kind}", f"model={kind}", *overrides)
        peers["forest"] = random_forest(*overrides)
        report["peers"] = {kind: peer["macro_f1"] for kind, peer in peers.items()}
        report["peer_details"] = peers
        best = max(v for k, v in report["peers"].items() if k != "dbn")
        report["dbn_behind_best_peer"] = round(best - report["peers"]["dbn"], 4)
    if "single" in parts:
        report["single"] = train_and_evaluate("single", "experiment=single", *overrides)
    if "mixture" in parts:
        mixture = train_and_evaluate("mixture", "experiment=mixture", *overrides)
        report |= {"mixture_macro_f1": mixture["macro_f1"], "mixture": mixture}
    if "paper" in parts:
        paper = train_and_evaluate("paper", "experiment=paper", "evaluate.degenerate_groups=[[TiO,VO]]", *overrides)
        report |= {"paper_test_accuracy": paper.get("accuracy"),
                   "paper_test_accuracy_8": paper.get("accuracy_outside_groups"), "paper": paper}
    if "speed" in parts:
        # profiled (the profiler's cost, a clock read per hook, counts against the default, not the baseline)
        fast = dict(report.get("realistic") or train_and_evaluate("realistic-dbn", *overrides, profile=True))
        profile = fast.pop("profile", profile)
        slow = train_and_evaluate("baseline-dbn", "model=dbn_baseline", *overrides)
        # time to the baseline's quality: the default recipe with its fine-tuning cut short (same cosine decay,
        # over fewer epochs), everything else as the default's (pre-training, generative epochs, calibration)
        short = train_and_evaluate("short-dbn", f"model.finetune.epochs={args.short_epochs}", *overrides)
        emit("train_speed", {"train_seconds": fast["train_seconds"],
                             "baseline_train_seconds": slow["train_seconds"],
                             "speedup": round(slow["train_seconds"] / fast["train_seconds"], 2),
                             "short": {"finetune_epochs": args.short_epochs, "train_seconds": short["train_seconds"],
                                       "speedup": round(slow["train_seconds"] / short["train_seconds"], 2),
                                       "metrics_not_worse": not_worse(short, slow)},
                             "profile": profile, "test_metrics": {"default": fast, "baseline": slow, "short": short}})
    if "seeds" in parts:
        runs = {"default": dict(report.get("realistic") or train_and_evaluate("realistic-dbn", *overrides))}
        runs["default"].pop("profile", None)
        for seed in SEEDS:
            runs[f"seed={seed}"] = train_and_evaluate(f"seed-{seed}", f"seed={seed}", *overrides)
        shared = [k for k in (*HEADLINE, *AXES) if all(k in run for run in runs.values())]
        emit("train_seeds", {"runs": runs, "spread": {k: round(max(run[k] for run in runs.values())
                                                               - min(run[k] for run in runs.values()), 4)
                                                      for k in shared}})
    # the peers part trains the default DBN as the realistic part does: its values are measured now either way
    train_parts = [p for p in parts if p in PART_KEYS] + (["realistic"] if "peers" in parts else [])
    if train_parts:
        emit("train", merged_with_last(report, train_parts))


def merged_with_last(report: dict, parts: list[str]) -> dict:
    """``report`` plus the last recorded train benchmark's values of the parts not run now, so one JSON holds every
    regime; ``measured`` says which command and date gave each part (a part run now: today, this command)."""
    last_entry = record_of("train") or {}
    last = last_entry.get("result", {})
    when = {"date": datetime.date.today().isoformat(), "command": command_line()}
    measured = {part: when for part in PART_KEYS if part in parts}
    for part, keys in PART_KEYS.items():
        if part in parts or not any(key in last for key in keys):
            continue
        report |= {key: last[key] for key in keys if key in last and key not in report}
        measured[part] = (last.get("measured") or {}).get(part) or {"date": last_entry.get("date"),
                                                                   "command": last_entry.get("command")}
    return report | {"measured": measured}


if __name__ == "__main__":
    main()
