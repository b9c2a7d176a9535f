"""The evaluation stage: a registered model on the fixed test set; the ``champion`` alias decision.

Writes under ``evaluate.out_dir``:
  metrics.json                      test_accuracy (single gas; exact match for mixtures), macro-F1,
                                    exact match, per-molecule precision/recall/F1 (``dvc metrics show``)
  per_molecule.csv                  the per-molecule table
  accuracy_vs_snr.csv               accuracy and macro-F1 at each ``evaluate.snr_grid`` SNR (DVC plot), beside
                                    the identification ceiling at that SNR (an approximate upper bound for
                                    any classifier on this test set: :func:`identification_ceiling`)
  accuracy_vs_mixing_ratio.csv      share of present gases identified, by log10 mixing-ratio bin
  accuracy_vs_detectability.csv     the same by log10 detectability bin (where the limit is physical)
  accuracy_vs_<parameter>.csv       the same by log10 bin of each sampled parameter named in
                                    ``evaluate.accuracy_by_parameter`` that the test set has (e.g. the
                                    cloud-top pressure of transmission sets); non-finite values (+inf: no
                                    cloud deck) are left out of the bins and scored apart in metrics.json
  confusion_matrix.{png,json}       at the default SNR
  reliability.{csv,png}             reliability diagram (predicted probability vs observed frequency, every
                                    spectrum x molecule pair) at the default SNR: ``ece``, ``ece_top_label``
  leave_one_planet_out.csv          with evaluate.leave_one_planet_out=true
All of it also goes to the evaluated model's MLflow run (under ``evaluation/``), with test metrics.

"Identified" per (spectrum, present gas): single gas - the argmax is that gas (so the binned
value is the accuracy); mixtures - P(gas) > 0.5 (the gas's recall).

Champion: the current ``@champion`` version is evaluated on the same test set with the same noise;
the alias moves to the new version only if its score (single: accuracy; mixture: macro-F1) is
strictly higher, or if there is no champion, or the champion predicts different molecules (not
comparable). The reason is recorded as the tag ``champion_decision`` on the run and the version.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from scipy.special import ndtr

from robert.data.datamodule import SpectraDataModule, resolve_planets
from robert.errors import UserError
from robert.inference.calibration import write_reliability
from robert.tracking.registry import load_robert_model
from robert.tracking.setup import configure_tracking
from robert.training.metrics import classification_metrics, confusion_matrix, write_confusion
from robert.training.train import build_datamodule, train

if TYPE_CHECKING:  # imported lazily at run time: see robert.training.train._log_results
    from robert.tracking.pyfunc import RobertModel

Predictor = Callable[[np.ndarray], np.ndarray]


def load_registered(name: str, version: str) -> RobertModel:
    """The registered model's python object, through the registry loader every stage shares."""
    return load_robert_model(f"models:/{name}/{version}")[0]


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


def score(metrics: Mapping, composition: str) -> float:
    """The number the champion is chosen by."""
    return float(metrics["macro_f1"] if composition == "mixture" else metrics["accuracy"])


def identified(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, molecule) of every present gas and whether the model identified it (see module doc)."""
    rows, mols = np.nonzero(labels > 0.5)
    single = labels.sum(1) == 1
    hit = np.where(single[rows], probs.argmax(1)[rows] == mols, probs[rows, mols] > 0.5)
    return np.stack([rows, mols], 1), hit


def binned_accuracy(values: np.ndarray, hit: np.ndarray, n_bins: int, name: str) -> list[dict[str, Any]]:
    """Share identified per log10(value) bin (equal widths between the finite extremes)."""
    logs = np.log10(np.clip(values.astype(float), 1e-300, None))
    finite = np.isfinite(logs) & (values > 0)
    if not finite.any():
        return []
    edges = np.linspace(logs[finite].min(), logs[finite].max() + 1e-9, n_bins + 1)
    index = np.clip(np.digitize(logs, edges) - 1, 0, n_bins - 1)
    table = []
    for b in range(n_bins):
        members = finite & (index == b)
        if members.any():
            low, high = float(edges[b]), float(edges[b + 1])
            table.append({f"log10_{name}": round((low + high) / 2, 4), f"log10_{name}_low": round(low, 4),
                          f"log10_{name}_high": round(high, 4),
                          "accuracy": float(hit[members].mean()), "n": int(members.sum())})
    return table


def feature_snr(detectability: np.ndarray, snr: float, n_bins: int) -> np.ndarray:
    """S/N of each present gas's feature over the whole spectrum (0 where absent).

    Its per-bin RMS signal is detectability x mean depth and the per-bin noise is mean depth / SNR, so
    S/N = detectability x SNR x sqrt(n_bins).
    """
    return np.nan_to_num(np.asarray(detectability, dtype=float)) * float(snr) * math.sqrt(n_bins)


def detectable_metrics(detectability: np.ndarray, hit: np.ndarray, snr: float | None, n_bins: int,
                       threshold: float) -> dict[str, float]:
    """Accuracy on the present gases whose feature S/N (:func:`feature_snr`) reaches ``threshold``, and
    their share. Below a few sigma no classifier can tell the gas is there: that part of the test set is
    the physical limit (:func:`identification_ceiling`).
    """
    if snr is None:
        return {}
    visible = feature_snr(detectability, snr, n_bins) >= threshold
    return {"detectable_feature_snr": threshold, "detectable_fraction": float(visible.mean()),
            "test_accuracy_detectable": float(hit[visible].mean()) if visible.any() else float("nan"),
            "identification_ceiling": identification_ceiling(detectability, snr, n_bins)}


def identification_ceiling(detectability: np.ndarray, snr: float | None, n_bins: int) -> float:
    """An upper bound on the share of present gases any classifier can identify at this SNR (APPROXIMATE).

    Why it bounds every classifier: the prior holds, beside "gas m at its mixing ratio", the same
    atmosphere with another gas at the prior's floor (1e-8), which is indistinguishable from the
    atmosphere without gas m. The two spectra differ by gas m's feature, whose S/N over the spectrum is
    d = :func:`feature_snr`; with white Gaussian noise even the best test between those two hypotheses
    alone errs with probability Phi(-d / 2) (equal priors). So the identification rate is at most
    1 - mean Phi(-d / 2). Approximate: it ignores the min-max scaling and the prior density of the
    second hypothesis, and it is loose (ten classes, not two, and near-degenerate pairs such as TiO/VO
    are not counted), so the true ceiling lies below it. ``snr`` None (noiseless): 1.
    """
    if snr is None:
        return 1.0
    return float(1.0 - ndtr(-feature_snr(detectability, snr, n_bins) / 2.0).mean())


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def snr_label(snr: float | None) -> str:
    return "noiseless" if snr is None else f"{snr:g}"


def test_metrics(predict: Predictor, datamodule: SpectraDataModule, snr: float | None = ...) -> dict[str, Any]:
    x, y, _ = datamodule.test_set(snr)
    return classification_metrics(predict(x.numpy()), y.numpy(), datamodule.molecules)


def decide_champion(cfg: Mapping, client: MlflowClient, version: str, new_score: float,
                    datamodule: SpectraDataModule) -> tuple[bool, str, float | None]:
    """(move the alias?, why, the champion's score or None)."""
    name, alias, composition = cfg["tracking"]["registered_model"], cfg["evaluate"]["alias"], cfg["composition"]["kind"]
    try:
        current = client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return True, f"no {alias} yet: version {version} becomes {alias} with score {new_score:.4f}", None
    if str(current) == version:
        return False, f"version {version} already holds {alias}", new_score
    champion = load_registered(name, str(current))
    if champion.molecules != datamodule.molecules or champion.network.n_visible != datamodule.n_visible:
        return True, (f"{alias} version {current} predicts {champion.molecules} from {champion.network.n_visible} "
                      f"points, not comparable with this test set: version {version} takes {alias}"), None
    if champion.coverage is None or champion.calibration is None:
        # logged before observed-spectrum support: it cannot answer the inference interface at all
        return True, (f"{alias} version {current} has no coverage/calibration (cannot take observed spectra): "
                      f"version {version} takes {alias}"), None
    old = score(test_metrics(champion.predict_proba, datamodule), composition)
    if new_score > old:
        return True, f"version {version} ({new_score:.4f}) beats {alias} version {current} ({old:.4f})", old
    return False, f"version {version} ({new_score:.4f}) does not beat {alias} version {current} ({old:.4f})", old


def leave_one_planet_out(cfg: Mapping, root: Path, planets: Sequence[str]) -> list[dict[str, Any]]:
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
        metrics = test_metrics(model.predict_proba, target)
        table.append({"held_out": held_out, "accuracy": metrics.get("accuracy", float("nan")),
                      "macro_f1": metrics["macro_f1"], "n": metrics["n_spectra"], "run_id": result.run_id})
    return table


def evaluate(cfg: Mapping, root: Path, planet_choice: str | None = None) -> dict[str, Any]:
    """Evaluate the configured model version; write the outputs; move the alias if it improved."""
    root = Path(root)
    configure_tracking(cfg["tracking"], root)
    client = MlflowClient()
    name, composition = cfg["tracking"]["registered_model"], cfg["composition"]["kind"]
    version = model_version_to_evaluate(cfg, root)
    model = load_registered(name, version)
    planets = resolve_planets(cfg, planet_choice)
    datamodule = build_datamodule(cfg, planets, root)
    if model.molecules != datamodule.molecules:
        raise UserError(f"model {name} version {version} predicts {model.molecules} but the test set holds "
                        f"{datamodule.molecules}: evaluate with the data it was trained on")
    out_dir = root / cfg["evaluate"]["out_dir"]
    out_dir.mkdir(parents=True, exist_ok=True)

    x, y, spectra = datamodule.test_set()
    probs = model.predict_proba(x.numpy())
    labels = y.numpy()
    metrics = classification_metrics(probs, labels, datamodule.molecules)
    files = write_confusion(confusion_matrix(probs, labels), datamodule.molecules, out_dir,
                            f"test, SNR {snr_label(datamodule.snr)}, {name} v{version}")
    reliability_files, calibration_errors = write_reliability(probs, labels, datamodule.molecules,
                                               int(cfg["inference"]["calibration"]["reliability_bins"]), out_dir,
                                               f"test, SNR {snr_label(datamodule.snr)}, {name} v{version}")
    files += reliability_files
    files.append(write_csv(out_dir / "per_molecule.csv",
                           [{"molecule": m, **v} for m, v in metrics["per_molecule"].items()]))
    pairs, hit = identified(probs, labels)
    present_detectability = spectra.detectability[pairs[:, 0], pairs[:, 1]]
    snr_rows = []
    for snr in cfg["evaluate"]["snr_grid"]:
        at = test_metrics(model.predict_proba, datamodule, snr)
        snr_rows.append({"snr": snr_label(snr), "accuracy": at.get("accuracy", at["exact_match"]),
                         "macro_f1": at["macro_f1"], "exact_match": at["exact_match"],
                         "identification_ceiling": identification_ceiling(present_detectability, snr, x.shape[1])})
    files.append(write_csv(out_dir / "accuracy_vs_snr.csv", snr_rows))
    n_bins = int(cfg["evaluate"]["n_bins"])
    vmr = np.stack([spectra.params[f"vmr_{m}"] for m in datamodule.molecules], 1)
    files.append(write_csv(out_dir / "accuracy_vs_mixing_ratio.csv",
                           binned_accuracy(vmr[pairs[:, 0], pairs[:, 1]], hit, n_bins, "mixing_ratio")))
    files.append(write_csv(out_dir / "accuracy_vs_detectability.csv",
                           binned_accuracy(present_detectability, hit, n_bins, "detectability")))
    detectable = detectable_metrics(present_detectability, hit, datamodule.snr,
                                    x.shape[1], float(cfg["evaluate"]["detectable_feature_snr"]))
    where_not_finite = {}
    for parameter in cfg["evaluate"].get("accuracy_by_parameter") or ():
        if parameter not in spectra.params:
            continue  # a parameter this set does not sample (clouds in an emission set)
        values = spectra.params[parameter][pairs[:, 0]]
        files.append(write_csv(out_dir / f"accuracy_vs_{parameter}.csv",
                               binned_accuracy(values, hit, n_bins, parameter)))
        if not np.isfinite(values).all():
            where_not_finite[parameter] = float(hit[~np.isfinite(values)].mean())
    if cfg["evaluate"].get("leave_one_planet_out"):
        lopo = leave_one_planet_out(cfg, root, planets)
        files.append(write_csv(out_dir / "leave_one_planet_out.csv", lopo))
        metrics["leave_one_planet_out_accuracy"] = float(np.mean([row["accuracy"] for row in lopo]))

    new_score = score(metrics, composition)
    move, reason, champion_score = decide_champion(cfg, client, version, new_score, datamodule)
    alias = cfg["evaluate"]["alias"]
    if move:
        client.set_registered_model_alias(name, alias, version)
    summary = {
        "model": name, "version": version, "planets": planets, "composition": composition,
        "snr": datamodule.snr, "test_accuracy": metrics.get("accuracy", metrics["exact_match"]),
        "macro_f1": metrics["macro_f1"], "exact_match": metrics["exact_match"], "n_test": metrics["n_spectra"],
        **calibration_errors, **detectable,
        **({"accuracy_where_parameter_not_finite": where_not_finite} if where_not_finite else {}),
        "f1": {m: v["f1"] for m, v in metrics["per_molecule"].items()},
        "per_molecule": metrics["per_molecule"],
        **({"mixture_macro_f1": metrics["macro_f1"]} if composition == "mixture" else {}),
        **({"leave_one_planet_out_accuracy": metrics["leave_one_planet_out_accuracy"]}
           if "leave_one_planet_out_accuracy" in metrics else {}),
        "champion": {"moved": move, "reason": reason, "previous_score": champion_score},
    }
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(summary, indent=2))
    files.append(metrics_path)

    run_id = client.get_model_version(name, version).run_id
    flat = {"test/accuracy": summary["test_accuracy"], "test/macro_f1": summary["macro_f1"],
            "test/exact_match": summary["exact_match"], **{f"test/{k}": v for k, v in calibration_errors.items()},
            **{f"test/f1_{m}": v for m, v in summary["f1"].items()},
            **{f"test/accuracy_snr_{row['snr']}": row["accuracy"] for row in snr_rows}}
    if "test_accuracy_detectable" in summary:
        flat |= {"test/accuracy_detectable": summary["test_accuracy_detectable"],
                 "test/detectable_fraction": summary["detectable_fraction"],
                 "test/identification_ceiling": summary["identification_ceiling"]}
    if champion_score is not None:
        flat["test/champion_score"] = champion_score
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: v for k, v in flat.items() if v is not None and math.isfinite(v)})
        mlflow.set_tags({"champion_decision": reason, f"{alias}_moved": str(move)})
        for path in files:
            mlflow.log_artifact(str(path), "evaluation")
    client.set_model_version_tag(name, version, "champion_decision", reason)
    return summary
