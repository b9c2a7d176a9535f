"""Threshold benchmark: one trained model, its detection thresholds set by each rule, scored on the same test sets.

    python benchmarks/thresholds.py [--model models:/robert@champion] [overrides...]

No training: the model's network is kept and only the thresholds change (robert.inference.thresholds), each rule
calibrated on the validation split as training does. The rules:

* ``prior``: each molecule's threshold at ``inference.false_alarm_rate`` over the training prior alone;
* ``shared``: that, raised until each calibrated coverage (the whole grid and each preset of the prior) reaches at
  most 0.75 % on two draws of its own, one set for every coverage (the rule of models logged before coverage
  thresholds);
* ``by coverage``: each calibrated coverage's own thresholds at ``inference.preset_false_alarm_rate`` (this
  config's, the default) and at 0.5 %, a spectrum called at those of the coverage its cells match.

Scores, at SNR 10 as the evaluation stage: the headline set (whole grid, white noise) and each preset of
``evaluate.coverages`` at ``evaluate.coverage_snr`` with the prior's error shapes (the evaluation's draws). Last line:
one JSON object, per rule: headline macro-F1, worst completeness at S/N >= 10, worst false-alarm rate; over the
presets: the worst false-alarm rate and the mean macro-F1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from record import emit  # benchmarks/record.py, beside this script
from robert.data.dataset import resolve_planets
from robert.inference.package import detection_thresholds
from robert.inference.thresholds import DetectionThresholds, ThresholdSettings
from robert.tracking.registry import load_robert_model
from robert.tracking.setup import configure_tracking
from robert.training.evaluate import coverage_evaluation, predictor, scores
from robert.training.train import build_datamodule

ROOT = Path(__file__).resolve().parents[1]
# rule -> (inference settings over the config's, keep the shared thresholds only)
RULES = {"prior": ({"preset_false_alarm_rate": None}, True),
         "shared": ({"preset_false_alarm_rate": 0.0075, "preset_calibration_draws": 2}, True),
         "by coverage, 0.5 %": ({"preset_false_alarm_rate": 0.005}, False),
         "by coverage (default)": ({}, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/robert@champion", help="the model (registry URI)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (data, planets, tracking, ...)")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="evaluate", overrides=args.overrides), resolve=True)
    configure_tracking(cfg["tracking"], ROOT)
    model, ref = load_robert_model(args.model)
    datamodule = build_datamodule(cfg, resolve_planets(cfg), ROOT)
    datamodule.setup()
    predict = predictor(model, str(cfg.get("device", "cpu")))
    groups = [list(g) for g in cfg["evaluate"].get("degenerate_groups") or []]
    vmr = datamodule.split("test").vmr()
    report: dict = {"model": f"{ref.name}/{ref.version}", "snr": datamodule.snr,
                    "preset_false_alarm_rate": cfg["inference"]["preset_false_alarm_rate"], "rules": {}}
    for rule, (settings, shared_only) in RULES.items():
        calibrated = detection_thresholds(predict, datamodule,
                                          ThresholdSettings.from_config(cfg["inference"] | settings),
                                          int(cfg["seed"]))
        thresholds = DetectionThresholds(calibrated.shared) if shared_only else calibrated
        headline, _ = scores(predict, datamodule.test_set(), vmr, datamodule.molecules, groups, thresholds)
        presets = coverage_evaluation(predict, datamodule, cfg, groups, thresholds)
        scored = {key: headline[key] for key in ("macro_f1", "completeness_snr_ge_10_min", "false_alarm_rate_max")}
        scored |= {"presets_false_alarm_rate_max": max(r["false_alarm_rate_max"] for r in presets),
                   "presets_macro_f1_mean": float(np.mean([r["macro_f1"] for r in presets]))}
        report["rules"][rule] = {k: round(float(v), 4) for k, v in scored.items()}
        print(f"{rule}: {report['rules'][rule]}", flush=True)
    emit("thresholds", report)


if __name__ == "__main__":
    main()
