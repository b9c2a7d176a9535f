"""Evaluation: metrics.json, the accuracy-vs-SNR plot table, binned accuracies, the champion alias.

Uses the synthetic shards and the two training recipes of test_train.py: ``ALL_PHASES`` (every
phase on a short schedule; at chance on this data) and ``LEARNS`` (fine-tuning that separates the
molecules), so the alias decision has a clearly worse and a clearly better model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import pytest
from test_train import ALL_PHASES, LEARNS, PLANETS, train_config, use_store, write_synthetic_dataset

from helpers.config import ROOT, compose_config
from robert.errors import UserError
from robert.training.evaluate import evaluate, identification_ceiling
from robert.training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_the_champion_alias_moves_only_on_improvement(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "datasets", PLANETS)
    worse = train(train_config(tmp_path, dataset, PLANETS, *ALL_PHASES), ROOT)
    better_cfg = train_config(tmp_path, dataset, PLANETS, *LEARNS)
    client = mlflow.MlflowClient(tracking_uri=worse.tracking_uri, registry_uri=worse.tracking_uri)

    first = evaluate(train_config(tmp_path, dataset, PLANETS, "evaluate.model_version=1"), ROOT)
    assert first["champion"]["moved"] and "no champion yet" in first["champion"]["reason"]
    assert str(client.get_model_version_by_alias("robert", "champion").version) == "1"

    better = train(better_cfg, ROOT)
    assert better.registered_version == "2"
    second = evaluate(better_cfg, ROOT)  # the version train.output names: 2
    assert second["version"] == "2" and second["test_accuracy"] >= 0.9 > first["test_accuracy"]
    assert second["champion"]["moved"] and "beats champion version 1" in second["champion"]["reason"]
    assert second["champion"]["previous_score"] == pytest.approx(first["test_accuracy"])  # same test set
    assert str(client.get_model_version_by_alias("robert", "champion").version) == "2"

    again = evaluate(train_config(tmp_path, dataset, PLANETS, "evaluate.model_version=1"), ROOT)
    assert not again["champion"]["moved"] and "does not beat champion version 2" in again["champion"]["reason"]
    assert str(client.get_model_version_by_alias("robert", "champion").version) == "2"
    assert client.get_run(worse.run_id).data.tags["champion_decision"] == again["champion"]["reason"]
    assert client.get_model_version("robert", "1").tags["champion_decision"] == again["champion"]["reason"]

    # the outputs of the better model's evaluation were overwritten by the last one; check their form
    out = Path(better_cfg["evaluate"]["out_dir"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["f1"]) == {"H2O", "CO", "CO2"} and 0 <= metrics["test_accuracy"] <= 1
    snr = read_csv(out / "accuracy_vs_snr.csv")
    assert [row["snr"] for row in snr] == ["1", "3", "5", "10", "30", "100", "noiseless"]
    ceilings = [float(row["identification_ceiling"]) for row in snr]
    assert ceilings == sorted(ceilings) and ceilings[-1] == 1.0  # more signal never lowers the bound
    assert read_csv(out / "accuracy_vs_mixing_ratio.csv") and read_csv(out / "accuracy_vs_detectability.csv")
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert sum(map(sum, json.loads((out / "confusion_matrix.json").read_text())["matrix"])) == metrics["n_test"]
    use_store(better)
    logged = {a.path for a in client.list_artifacts(better.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/accuracy_vs_snr.csv", "evaluation/confusion_matrix.png"} <= logged
    assert client.get_run(better.run_id).data.metrics["test/accuracy"] == second["test_accuracy"]


def test_mixtures_report_macro_f1_and_exact_match(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "datasets", PLANETS, composition="mixture")
    cfg = train_config(tmp_path, dataset, PLANETS, "composition=mixture", *LEARNS)
    train(cfg, ROOT)
    summary = evaluate(cfg, ROOT)
    assert summary["mixture_macro_f1"] == summary["macro_f1"] > 0.6  # chance-level F1 of an all-"absent" model: 0
    assert 0 <= summary["exact_match"] <= 1 and summary["test_accuracy"] == summary["exact_match"]


def test_evaluating_before_training_names_the_fix(tmp_path):
    cfg = compose_config("evaluate", [f"train.output={tmp_path}/none.json", f"tracking.uri=sqlite:///{tmp_path}/db"])
    with pytest.raises(UserError, match=r"no trained model recorded at .*: run `dvc repro train`"):
        evaluate(cfg, ROOT)


def test_the_identification_ceiling_is_a_coin_flip_without_signal_and_certainty_with_much():
    n_bins = 901
    # no feature at all: two indistinguishable hypotheses, the best test is right half the time
    assert identification_ceiling([0.0, 0.0], snr=10, n_bins=n_bins) == 0.5
    # a feature of S/N d = 2 (detectability x SNR x sqrt(n_bins)): 1 - Phi(-1) = 0.8413
    assert identification_ceiling([2 / (10 * 901 ** 0.5)], snr=10, n_bins=n_bins) == pytest.approx(0.8413, abs=1e-4)
    assert identification_ceiling([0.1], snr=10, n_bins=n_bins) == pytest.approx(1.0)  # S/N 30: 1 - Phi(-15)
    assert identification_ceiling([1e-4], snr=100, n_bins=n_bins) > identification_ceiling([1e-4], snr=10,
                                                                                            n_bins=n_bins)
    assert identification_ceiling([0.0], snr=None, n_bins=n_bins) == 1.0  # noiseless: no bound
