"""The evaluation stage: a registered model on the fixed test set; the ``champion`` alias decision.

The headline test set is the whole grid with white noise at ``data.snr`` (:meth:`SpectraDataModule.test_set`).
Writes under ``evaluate.out_dir`` (all of it also to the evaluated model's MLflow run, under ``evaluation/``):

  metrics.json                        the scores of :mod:`robert.training.metrics` (``dvc metrics show``):
                                      accuracy (single-gas rows, argmax), macro-F1, exact match, Hamming loss,
                                      per-molecule completeness at feature S/N >= 10 and 5-10, false-alarm
                                      rates, the worst of each over the molecules outside a declared
                                      degenerate group (and the group scored as one answer), ECE, coverage
  per_molecule.csv                    precision/recall/F1/completeness/false alarms per molecule
  completeness_vs_feature_snr.csv     completeness by feature S/N bin, per molecule (DVC plot)
  completeness_vs_log10_vmr.csv       the same by log10 mixing ratio
  accuracy_vs_snr.csv                 the headline scores at each ``evaluate.snr_grid`` SNR (DVC plot)
  coverage.csv                        per coverage preset (``evaluate.coverages``) at realistic per-bin errors:
                                      completeness at S/N >= 10 of every gas the coverage constrains, false alarms
  confusion_matrix.{png,json}, reliability.{csv,png}   at the headline SNR
  leave_one_planet_out.csv            with evaluate.leave_one_planet_out=true

Champion: the current ``@champion`` version is evaluated on the same test set with the same noise; the alias
moves to the new version only if its score (``evaluate.score``: accuracy in the paper regime, macro-F1 of the
detection targets otherwise) is strictly higher, or if there is no champion, or the champion cannot be compared
(other molecules, grid or inputs). The reason is recorded as the tag ``champion_decision``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from robert.data.batches import ObservedBatch
from robert.data.datamodule import SpectraDataModule
from robert.data.dataset import resolve_planets
from robert.errors import UserError
from robert.inference.calibration import write_reliability
from robert.inference.thresholds import DetectionThresholds, model_thresholds
from robert.model.metrics import THRESHOLD
from robert.spectra.detection import State
from robert.spectra.observation import Observation
from robert.tracking.registry import load_robert_model
from robert.tracking.setup import configure_tracking
from robert.training.metrics import (
    classification_metrics,
    confusion_matrix,
    detection_report,
    write_confusion,
)
from robert.training.train import build_datamodule, registered_name, train

if TYPE_CHECKING:  # imported lazily at run time: see robert.training.train._log_results
    from robert.tracking.pyfunc import RobertModel

Predictor = Callable[[Observation], np.ndarray]
SCORES = ("accuracy", "macro_f1")
MIN_PAIRS = 20  # a coverage "constrains" a gas when at least this many test gases reach feature S/N >= 10 in it


def load_registered(name: str, version: str) -> RobertModel:
    """The registered model's python object, through the registry loader every stage shares."""
    return load_robert_model(f"models:/{name}/{version}")[0]


def predictor(model: RobertModel, device: str = "cpu", chunk: int = 8192) -> Predictor:
    """Probabilities of a model's network for an observed set (encoded as the network was trained), on ``device``."""
    network = model.network.to(device)

    def predict(observation: Observation) -> np.ndarray:
        parts = [network.observed_proba(observation.slice(i, i + chunk).to(device))
                 for i in range(0, len(observation), chunk)]
        return torch.cat(parts).cpu().numpy()
    return predict


def thresholds_of(model: RobertModel) -> DetectionThresholds:
    """The detection thresholds a model carries, for any coverage (:mod:`robert.inference.thresholds`)."""
    return model_thresholds(model.settings or {"threshold": THRESHOLD}, model.molecules)


def thresholds_for(batch: ObservedBatch, thresholds: DetectionThresholds | np.ndarray | None) -> np.ndarray | None:
    """The thresholds each spectrum of ``batch`` is called at: by its coverage for a model's
    :class:`DetectionThresholds` ((B, M)); an array or None (0.5) as given."""
    if isinstance(thresholds, DetectionThresholds):
        return thresholds.for_observed(batch.observation.mask.cpu().numpy())
    return thresholds


def model_version_to_evaluate(cfg: Mapping, root: Path) -> str:
    version = cfg["evaluate"].get("model_version")
    if version is not None:
        return str(version)
    output = root / cfg["train"]["output"]
    if not output.exists():
        raise UserError(f"no trained model recorded at {output}: run `dvc repro train` "
                        "(or pass evaluate.model_version=<n>)")
    recorded = json.loads(output.read_text())
    if not recorded.get("version"):
        raise UserError(f"{output} names no registered version (train.register=false): "
                        "pass evaluate.model_version=<n>")
    return str(recorded["version"])


def worst(values: Mapping[str, float], exclude: Sequence[str] = (), largest: bool = False) -> float:
    """The minimum (``largest``: maximum) over molecules outside ``exclude``, NaNs skipped."""
    finite = [v for k, v in values.items() if k not in exclude and np.isfinite(v)]
    return float((max if largest else min)(finite)) if finite else float("nan")


def scores(predict: Predictor, batch: ObservedBatch, spectra_vmr: np.ndarray, molecules: list[str],
           groups: Sequence[Sequence[str]], thresholds: DetectionThresholds | np.ndarray | None = None
           ) -> tuple[dict[str, Any], np.ndarray]:
    """Every score of one observed set, and the probabilities; a gas is called at its threshold (a model's, by each
    spectrum's coverage: :func:`thresholds_of`; or (M,) / (B, M); default 0.5)."""
    probs = predict(batch.observation)
    thresholds = thresholds_for(batch, thresholds)
    injected = (batch.states != int(State.ABSENT)).numpy()
    out = classification_metrics(probs, batch.targets.numpy(), molecules, batch.weights.numpy(), injected,
                                 thresholds)
    report = detection_report(probs, injected, batch.chi2.numpy(), log10_vmr_of(spectra_vmr, batch), molecules,
                              groups, thresholds=thresholds)
    grouped = [m for g in groups for m in g]
    out |= report | {
        "completeness_snr_ge_10_min": worst(report["completeness_snr_ge_10"], grouped),
        "completeness_snr_5_10_min": worst(report["completeness_snr_5_10"], grouped),
        "false_alarm_rate_max": worst(report["false_alarm_rate"], grouped, largest=True)}
    single = injected.sum(1) == 1
    outside = single & ~injected[:, [molecules.index(m) for m in grouped]].any(1) if grouped else single
    if outside.any() and grouped:
        out["accuracy_outside_groups"] = float((probs[outside].argmax(1) == injected[outside].argmax(1)).mean())
    return out, probs


def log10_vmr_of(vmr: np.ndarray, batch: ObservedBatch) -> np.ndarray:
    """(B, M) log10 mixing ratio of each gas of each row of ``batch`` (``vmr``: its split's, (N, M))."""
    return np.log10(np.clip(vmr[batch.rows.numpy()].astype(np.float64), 1e-300, None))


def report_on(labelled: ObservedBatch, probs: np.ndarray, batch: ObservedBatch, vmr: np.ndarray,
              molecules: list[str], groups: Sequence[Sequence[str]], thresholds: np.ndarray) -> dict[str, Any]:
    """The detection report of the calls on ``batch`` with the feature S/N of ``labelled`` (the same observation
    under other labels: :meth:`SpectraDataModule.observed_set`)."""
    injected = (batch.states != int(State.ABSENT)).numpy()
    return detection_report(probs, injected, labelled.chi2.numpy(), log10_vmr_of(vmr, batch), molecules, groups,
                            thresholds=thresholds)


def significance_axes(probs: np.ndarray, datamodule: SpectraDataModule, batch: ObservedBatch, vmr: np.ndarray,
                      groups: Sequence[Sequence[str]], thresholds: np.ndarray) -> dict[str, dict[str, Any]]:
    """Completeness of the same calls on both significance axes: ``plain`` (the gas's fingerprint against the same
    atmosphere without it) and ``profiled`` (what is left after a continuum and the other gases' templates are
    fitted: :mod:`robert.spectra.nuisance`), whichever the labels use. ``batch``: the headline test set."""
    grouped = [m for g in groups for m in g]
    injected = (batch.states != int(State.ABSENT)).numpy()
    axes = {}
    for axis, profile in (("plain", "none"), ("profiled", "gases")):
        # the headline set itself where the labels already use this axis (the data module caches by labels)
        labelled = datamodule.test_set(labels=replace(datamodule.labels, profile=profile))
        report = report_on(labelled, probs, batch, vmr, datamodule.molecules, groups, thresholds)
        axes[axis] = {"detected": int((labelled.chi2.numpy() >= datamodule.labels.min_chi2)[injected].sum()),
                      "completeness_snr_ge_10_min": worst(report["completeness_snr_ge_10"], grouped),
                      "completeness_snr_5_10_min": worst(report["completeness_snr_5_10"], grouped),
                      "completeness_snr_ge_10": report["completeness_snr_ge_10"],
                      "completeness_snr_5_10": report["completeness_snr_5_10"]}
    return axes


def score_of(metrics: Mapping, cfg: Mapping) -> float:
    """The number the champion is chosen by (``evaluate.score``)."""
    name = cfg["evaluate"]["score"]
    if name not in metrics:
        raise UserError(f"evaluate.score is {name!r}, which this test set does not have (accuracy needs single-gas "
                        f"spectra); expected one of: {', '.join(k for k in SCORES if k in metrics)}")
    return float(metrics[name])


def constrained_completeness(result: Mapping[str, Any], batch: ObservedBatch) -> dict[str, float]:
    """Completeness at feature S/N >= 10 (from ``scores``) of each gas the batch's coverage constrains: at least
    MIN_PAIRS of its test gases reach Delta chi^2 >= 100 there."""
    strong = (batch.chi2.numpy() >= 100.0).sum(0)
    return {m: v for j, (m, v) in enumerate(result["completeness_snr_ge_10"].items()) if strong[j] >= MIN_PAIRS}


def coverage_evaluation(predict: Predictor, datamodule: SpectraDataModule, cfg: Mapping,
                        groups: Sequence[Sequence[str]], thresholds: DetectionThresholds) -> list[dict[str, Any]]:
    """Per coverage preset, at ``evaluate.coverage_snr`` with the training prior's error shapes: completeness at
    feature S/N >= 10 of each gas it constrains (>= MIN_PAIRS such test gases), false alarms, and whose thresholds
    its spectra were called at; the same completeness on the profiled axis (``profiled_*``: the gases a coverage
    constrains once the other gases and a continuum are fitted, :mod:`robert.spectra.nuisance`)."""
    snr = float(cfg["evaluate"]["coverage_snr"])
    rows = []
    vmr = datamodule.split("test").vmr()
    grouped = [m for g in groups for m in g]
    for name in cfg["evaluate"]["coverages"]:
        prior, bank = datamodule.preset_view(name, (snr, snr), "evaluate.coverages")
        key = f"coverage/{name}@{snr}"
        batch = datamodule.observed_set("test", prior, key, bank)
        result, probs = scores(predict, batch, vmr, datamodule.molecules, groups, thresholds)
        constrained = constrained_completeness(result, batch)
        profiled = datamodule.observed_set("test", prior, key, bank, replace(datamodule.labels, profile="gases"))
        profiled_constrained = constrained_completeness(
            report_on(profiled, probs, batch, vmr, datamodule.molecules, groups, thresholds_for(batch, thresholds)),
            profiled)
        rows.append({"coverage": name, "n_spectra": len(batch),
                     "threshold_coverage": thresholds.basis(batch.observation.mask[:1].cpu().numpy())[0],
                     "constrained": ",".join(constrained),
                     "completeness_snr_ge_10_min": worst(constrained, grouped),
                     "false_alarm_rate_max": result["false_alarm_rate_max"], "macro_f1": result["macro_f1"],
                     "profiled_constrained": ",".join(profiled_constrained),
                     "profiled_completeness_snr_ge_10_min": worst(profiled_constrained, grouped),
                     **{f"completeness_{m}": v for m, v in constrained.items()}})
    return rows


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row)) if rows else ["empty"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def snr_label(snr: float | None) -> str:
    return "noiseless" if snr is None else f"{snr:g}"


def decide_champion(cfg: Mapping, client: MlflowClient, name: str, version: str, new_score: float,
                    datamodule: SpectraDataModule, groups: Sequence[Sequence[str]]) -> tuple[bool, str, float | None]:
    """(move the alias?, why, the champion's score or None)."""
    alias = cfg["evaluate"]["alias"]
    try:
        current = client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return True, f"no {alias} yet: version {version} becomes {alias} with score {new_score:.4f}", None
    if str(current) == version:
        return False, f"version {version} already holds {alias}", new_score
    champion = load_registered(name, str(current))
    network = champion.network
    if (champion.molecules != datamodule.molecules or network.n_grid != datamodule.n_grid
            or champion.settings is None):
        return True, (f"{alias} version {current} cannot be compared with this test set (other molecules, grid, "
                      f"or logged before any-coverage support): version {version} takes {alias}"), None
    old = score_of(scores(predictor(champion), datamodule.test_set(), datamodule.split("test").vmr(),
                          datamodule.molecules, groups, thresholds_of(champion))[0], cfg)
    if new_score > old:
        return True, f"version {version} ({new_score:.4f}) beats {alias} version {current} ({old:.4f})", old
    return False, f"version {version} ({new_score:.4f}) does not beat {alias} version {current} ({old:.4f})", old


def leave_one_planet_out(cfg: Mapping, root: Path, planets: Sequence[str],
                         groups: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Train on all planets but one (not registered), test on the held-out planet's test split."""
    table = []
    for held_out in planets:
        others = [p for p in planets if p != held_out]
        sub_cfg = {**cfg, "data": {**cfg["data"], "planets": others},
                   "train": {**cfg["train"], "register": False,
                             "output": str(Path(cfg["evaluate"]["out_dir"]) / "lopo" / f"{held_out}.json")}}
        result = train(sub_cfg, root)
        model = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
        target = build_datamodule(cfg, [held_out], root)
        metrics, _ = scores(predictor(model), target.test_set(), target.split("test").vmr(), target.molecules, groups,
                            thresholds_of(model))
        table.append({"held_out": held_out, "accuracy": metrics.get("accuracy", float("nan")),
                      "macro_f1": metrics["macro_f1"], "n": metrics["n_spectra"], "run_id": result.run_id})
    return table


def evaluate(cfg: Mapping, root: Path, planet_choice: str | None = None) -> dict[str, Any]:
    """Evaluate the configured model version; write the outputs; move the alias if it improved."""
    root = Path(root)
    configure_tracking(cfg["tracking"], root)
    client = MlflowClient()
    name = registered_name(cfg)
    version = model_version_to_evaluate(cfg, root)
    model = load_registered(name, version)
    planets = resolve_planets(cfg, planet_choice)
    datamodule = build_datamodule(cfg, planets, root)
    if model.molecules != datamodule.molecules:
        raise UserError(f"model {name} version {version} predicts {model.molecules} but the test set holds "
                        f"{datamodule.molecules}: evaluate with the data it was trained on")
    groups = [list(g) for g in cfg["evaluate"].get("degenerate_groups") or []
              if all(m in datamodule.molecules for m in g)]
    out_dir = root / cfg["evaluate"]["out_dir"]
    out_dir.mkdir(parents=True, exist_ok=True)
    predict, thresholds = predictor(model, str(cfg.get("device", "cpu"))), thresholds_of(model)
    vmr = datamodule.split("test").vmr()
    molecules = datamodule.molecules
    title = f"test, SNR {snr_label(datamodule.snr)}, {name} v{version}"

    batch = datamodule.test_set()
    called_at = thresholds_for(batch, thresholds)  # the whole grid's: every test spectrum observes every cell
    metrics, probs = scores(predict, batch, vmr, molecules, groups, called_at)
    injected = (batch.states != int(State.ABSENT)).numpy()
    axes = significance_axes(probs, datamodule, batch, vmr, groups, called_at)
    files = write_confusion(confusion_matrix(probs, injected if cfg["labels"]["kind"] == "injected"
                                             else batch.targets.numpy(), called_at), molecules, out_dir, title)
    reliability_files, calibration_errors = write_reliability(probs, batch.targets.numpy(), molecules,
                                                              int(cfg["inference"]["reliability_bins"]), out_dir,
                                                              title)
    files += reliability_files
    files.append(write_csv(out_dir / "per_molecule.csv", [
        {"molecule": m, "threshold": float(threshold), **v,
         "completeness_snr_ge_10": metrics["completeness_snr_ge_10"][m],
         "completeness_snr_5_10": metrics["completeness_snr_5_10"][m],
         "false_alarm_rate": metrics["false_alarm_rate"][m]}
        for (m, v), threshold in zip(metrics["per_molecule"].items(), called_at[0], strict=True)]))
    files.append(write_csv(out_dir / "completeness_vs_feature_snr.csv", [
        {"feature_snr": round(math.sqrt(max(r["low"], 0.5) * min(r["high"], 100.0)), 3), **r}
        for r in metrics["completeness_vs_feature_snr"]]))
    files.append(write_csv(out_dir / "completeness_vs_log10_vmr.csv", [
        {"log10_vmr": (r["low"] + r["high"]) / 2, **r} for r in metrics["completeness_vs_log10_vmr"]]))
    snr_rows = []
    for snr in cfg["evaluate"]["snr_grid"]:
        at, _ = scores(predict, datamodule.test_set(snr), vmr, molecules, groups, thresholds)
        snr_rows.append({"snr": snr_label(snr), "accuracy": at.get("accuracy", float("nan")),
                         "macro_f1": at["macro_f1"], "exact_match": at["exact_match"],
                         "completeness_snr_ge_10_min": at["completeness_snr_ge_10_min"],
                         "false_alarm_rate_max": at["false_alarm_rate_max"]})
    files.append(write_csv(out_dir / "accuracy_vs_snr.csv", snr_rows))
    coverage_rows = (coverage_evaluation(predict, datamodule, cfg, groups, thresholds)
                     if cfg["evaluate"].get("coverages") else [])
    if coverage_rows:
        files.append(write_csv(out_dir / "coverage.csv", coverage_rows))
    if cfg["evaluate"].get("leave_one_planet_out"):
        lopo = leave_one_planet_out(cfg, root, planets, groups)
        files.append(write_csv(out_dir / "leave_one_planet_out.csv", lopo))
        metrics["leave_one_planet_out_accuracy"] = float(np.mean([row["accuracy"] for row in lopo]))

    new_score = score_of(metrics, cfg)
    move, reason, champion_score = decide_champion(cfg, client, name, version, new_score, datamodule, groups)
    alias = cfg["evaluate"]["alias"]
    if move:
        client.set_registered_model_alias(name, alias, version)
    summary = {
        "model": name, "version": version, "regime": cfg.get("regime", "realistic"), "planets": planets,
        "composition": datamodule.composition, "labels": cfg["labels"]["kind"], "snr": datamodule.snr,
        "n_test": metrics["n_spectra"], "score": cfg["evaluate"]["score"],
        **{k: v for k, v in metrics.items() if k not in ("per_molecule", "completeness_vs_feature_snr",
                                                         "completeness_vs_log10_vmr",
                                                         "grouped_completeness_vs_feature_snr")},
        **calibration_errors,
        "significance_axes": axes,
        **{f"{axis}_{key}": values[key] for axis, values in axes.items()
           for key in ("completeness_snr_ge_10_min", "completeness_snr_5_10_min")},
        "f1": {m: v["f1"] for m, v in metrics["per_molecule"].items()},
        "thresholds": dict(zip(molecules, called_at[0].tolist(), strict=True)),
        "threshold_coverage": thresholds.basis(batch.observation.mask[:1].cpu().numpy())[0],
        "false_alarm_rate_target": (model.settings or {}).get("false_alarm_rate"),
        "coverage": {row["coverage"]: {k: v for k, v in row.items() if k != "coverage"} for row in coverage_rows},
        "champion": {"moved": move, "reason": reason, "previous_score": champion_score},
    }
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(summary, indent=2))
    files.append(metrics_path)

    run_id = client.get_model_version(name, version).run_id
    flat = {f"test/{k}": v for k, v in summary.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    flat |= {f"test/completeness_snr_ge_10_{m}": v for m, v in summary["completeness_snr_ge_10"].items()}
    flat |= {f"test/false_alarm_rate_{m}": v for m, v in summary["false_alarm_rate"].items()}
    flat |= {f"test/macro_f1_snr_{row['snr']}": row["macro_f1"] for row in snr_rows}
    if champion_score is not None:
        flat["test/champion_score"] = champion_score
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if v is not None and math.isfinite(v)})
        mlflow.set_tags({"champion_decision": reason, f"{alias}_moved": str(move)})
        for path in files:
            mlflow.log_artifact(str(path), "evaluation")
    client.set_model_version_tag(name, version, "champion_decision", reason)
    return summary
