"""Coverage benchmark: one recogniser for any coverage against a dedicated model per coverage, same test spectra.

    python benchmarks/any_coverage.py [--model models:/robert@champion] [--skip-dedicated] [overrides...]

For every coverage preset of ``evaluate.coverages`` and for random unions of presets, at SNR ``evaluate.coverage_snr``
with the training prior's error shapes (per-bin sigma varying across the band), on the fixed test split:

* ``new``: the any-coverage model (by default the project's champion, ``models:/robert@champion``);
* ``old``: a DBN trained for that coverage alone (the per-instrument models this project used to register), trained
  here with the same schedule, data and seed rule;
* ``full_grid``: a DBN trained on the whole grid only; its completeness per gas at feature S/N >= 10 on the whole
  grid is the bar each coverage must reach for the gases it constrains (>= 20 test gases at S/N >= 10 in it).

Scores: completeness at feature S/N >= 10 (Delta chi^2 over the covered bins) per constrained gas, false-alarm rate,
and how often the network alone calls a gas the coverage cannot constrain (the verdict never does: "not constrained"
comes first, robert.inference.constraints). Models train into a private MLflow store under build/bench/coverage/.
Last line: one JSON object with ``completeness_snr_ge_10_min`` and ``false_alarm_rate_max`` over all presets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from record import emit, timed_training  # benchmarks/record.py, beside this script
from robert.data.dataset import resolve_planets
from robert.spectra.observation import ObservationPrior, PatternBank, PatternPrior, build_pattern_bank
from robert.tracking.registry import load_robert_model
from robert.tracking.setup import configure_tracking
from robert.training.evaluate import (
    constrained_completeness,
    predictor,
    scores,
    thresholds_for,
    thresholds_of,
    worst,
)
from robert.training.metrics import calls_at
from robert.training.train import build_datamodule

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "coverage"


def config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def private(name: str) -> list[str]:
    return [f"tracking.uri=sqlite:///{OUT}/mlflow.db", f"tracking.artifact_location={OUT}/artifacts",
            f"train.output={OUT}/{name}/model.json", f"train.checkpoint_dir={OUT}/checkpoints",
            "trainer.progress_bar=false", "train.register=false"]


def trained(name: str, coverage: dict, *overrides: str):
    """A DBN trained here on one coverage prior (``coverage``: observation.coverage), as its pyfunc object."""
    import mlflow

    weights = ",".join(f"{k}: {v}" for k, v in coverage["weights"].items())
    presets = ",".join(coverage.get("presets", []))
    # delete, then add: an override of a mapping with a mapping merges the two (the default weights would stay)
    cfg = config(*private(name), "~observation.coverage.weights", f"+observation.coverage.weights={{{weights}}}",
                 f"observation.coverage.presets=[{presets}]", *overrides)
    result, seconds = timed_training(cfg, ROOT)
    print(f"trained {name} in {seconds:.0f} s", flush=True)
    return mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()


def coverage_scores(model, datamodule, name: str, view: tuple[ObservationPrior, PatternBank], groups) -> dict:
    prior, bank = view
    batch = datamodule.observed_set("test", prior, f"bench/{name}", bank)
    thresholds = thresholds_for(batch, thresholds_of(model))  # by each spectrum's coverage
    result, probs = scores(predictor(model), batch, datamodule.split("test").vmr(), datamodule.molecules, groups,
                           thresholds)
    chi2 = batch.chi2.numpy()
    constrained = constrained_completeness(result, batch)
    hidden = (chi2 < float(datamodule.labels.min_chi2)) & (batch.states.numpy() > 0)  # injected, not visible here
    return {"completeness": constrained, "false_alarm_rate": result["false_alarm_rate"],
            "false_alarm_rate_max": result["false_alarm_rate_max"],
            "network_calls_hidden_gas": float(calls_at(probs, thresholds)[hidden].mean()) if hidden.any() else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/robert@champion", help="the any-coverage model (registry URI)")
    parser.add_argument("--skip-dedicated", action="store_true", help="no per-coverage / full-grid trainings")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (data, planets, ...)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    cfg = config(*args.overrides)
    configure_tracking(cfg["tracking"], ROOT)
    new_model, ref = load_robert_model(args.model)
    datamodule = build_datamodule(cfg, resolve_planets(cfg), ROOT)
    datamodule.setup()
    groups = [g for g in cfg["evaluate"].get("degenerate_groups") or []]
    grouped = [m for g in groups for m in g]  # scored as one answer: left out of the worst gas
    prior = datamodule.prior
    snr = float(cfg["evaluate"]["coverage_snr"])
    views = {name: datamodule.preset_view(name, (snr, snr), "evaluate.coverages")
             for name in cfg["evaluate"]["coverages"]}
    union_prior = PatternPrior({"union": 1.0}, 256, prior.coverage.min_cells, prior.coverage.bin_cells, 0,
                               prior.coverage.presets)
    views["random unions"] = (ObservationPrior((snr, snr), prior.noise, PatternPrior.full_only()),
                              build_pattern_bank(union_prior, datamodule.presets, datamodule.wavelength_um, seed=2016))

    table: dict[str, dict] = {name: {"new": coverage_scores(new_model, datamodule, name, view, groups)}
                              for name, view in views.items()}
    full_bar: dict[str, float] = {}
    if not args.skip_dedicated:
        full_model = trained("full-grid", {"weights": {"full": 1.0}}, *args.overrides)
        full = coverage_scores(full_model, datamodule, "full", views["full"], groups)
        full_bar = full["completeness"]
        table["full"]["old"] = full  # the whole grid's dedicated model
        for name in cfg["evaluate"]["coverages"]:
            if name == "full":
                continue
            dedicated = trained(f"only-{name}", {"weights": {"preset": 1.0}, "presets": [name]}, *args.overrides)
            table[name]["old"] = coverage_scores(dedicated, datamodule, name, views[name], groups)
    rows, failures = [], []
    for name, entry in table.items():
        new = entry["new"]
        worst_new = worst(new["completeness"], grouped)
        row = {"coverage": name, "constrained": sorted(new["completeness"]),
               "completeness_snr_ge_10_min": round(worst_new, 4),
               "false_alarm_rate_max": round(new["false_alarm_rate_max"], 4),
               "network_calls_hidden_gas": round(new["network_calls_hidden_gas"], 4)}
        if "old" in entry:
            row["old_completeness_snr_ge_10_min"] = round(worst(entry["old"]["completeness"], grouped), 4)
            row["old_false_alarm_rate_max"] = round(entry["old"]["false_alarm_rate_max"], 4)
        for gas, value in new["completeness"].items():
            bar = max(0.95, full_bar.get(gas, 0.0))
            if value < bar:
                failures.append(f"{name}/{gas}: {value:.3f} < {bar:.3f}")
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"model": f"{ref.name}/{ref.version}", "snr": snr,
              "completeness_snr_ge_10_min": min(r["completeness_snr_ge_10_min"] for r in rows
                                                if np.isfinite(r["completeness_snr_ge_10_min"])),
              "false_alarm_rate_max": max(r["false_alarm_rate_max"] for r in rows),
              "full_grid_bar": {k: round(v, 4) for k, v in full_bar.items()},
              "below_bar": failures, "coverages": rows}
    emit("any_coverage", report)


if __name__ == "__main__":
    main()
