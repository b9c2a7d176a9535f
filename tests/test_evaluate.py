"""Evaluation: metrics.json and the plot tables, the champion alias rules, degenerate groups scored as one answer.

Two models of the synthetic shards observed the paper's way (whole grid, white noise, injected labels): one
fine-tuned for a single epoch (near chance) and one that separates the molecules (``LEARNS``), so the alias
decision has a clearly worse and a clearly better model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
import torch

from helpers.config import ROOT, compose_config
from helpers.runs import ready_store, run_config, run_overrides, train_run
from helpers.scripts import run_script
from helpers.synthetic import MOLECULES, PLANETS, write_synthetic_dataset
from helpers.training import LEARNS, WHITE
from robert.errors import UserError
from robert.training import evaluate as evaluation
from robert.training.evaluate import decide_champion, evaluate, scores
from robert.training.metrics import detection_report
from robert.training.train import build_datamodule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
PAPER_STYLE = (*LEARNS, *WHITE)
WORSE = (*PAPER_STYLE, "model.finetune.epochs=1")
SHORT = ("evaluate.snr_grid=[5,10,null]", "evaluate.coverages=[full,wfc3,irac]")
GROUP = "evaluate.degenerate_groups=[[CO,CO2]]"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Versions 1 (worse) and 2 (better), evaluated as 1, 2, 1, 2: the summaries of each evaluation."""
    tmp = tmp_path_factory.mktemp("evaluate")
    dataset = write_synthetic_dataset(tmp / "datasets")
    worse_cfg, worse = train_run(tmp, dataset, PLANETS, *WORSE)
    better_cfg, better = train_run(tmp, dataset, PLANETS, *PAPER_STYLE)
    assert (worse.registered_version, better.registered_version) == ("1", "2")
    summaries = []
    for version in ("1", "2", "1"):
        summaries.append(evaluate(run_config(tmp, dataset, PLANETS, *PAPER_STYLE, *SHORT,
                                             f"evaluate.model_version={version}"), ROOT))
    # the version train.output names (2), with a degenerate group; its outputs are the ones left on disk
    last_cfg = run_config(tmp, dataset, PLANETS, *PAPER_STYLE, *SHORT, GROUP)
    summaries.append(evaluate(last_cfg, ROOT))
    client = mlflow.MlflowClient(tracking_uri=better.tracking_uri, registry_uri=better.tracking_uri)
    return SimpleNamespace(tmp=tmp, dataset=dataset, summaries=summaries, client=client, worse=worse, better=better,
                           cfg=last_cfg)


def test_the_champion_alias_moves_only_on_strict_improvement(evaluated):
    first, second, third, fourth = evaluated.summaries
    client = evaluated.client
    assert first["champion"]["moved"] and "no champion yet" in first["champion"]["reason"]
    assert second["version"] == "2" and second["accuracy"] >= 0.9 > first["accuracy"]
    assert second["macro_f1"] > first["macro_f1"]  # evaluate.score: macro_f1
    assert second["champion"]["moved"] and "beats champion version 1" in second["champion"]["reason"]
    assert second["champion"]["previous_score"] == pytest.approx(first["macro_f1"])  # the same test set and noise
    assert not third["champion"]["moved"] and "does not beat champion version 2" in third["champion"]["reason"]
    assert third["macro_f1"] == pytest.approx(first["macro_f1"])  # evaluating again gives the same numbers
    assert not fourth["champion"]["moved"] and "already holds champion" in fourth["champion"]["reason"]
    assert str(client.get_model_version_by_alias("robert", "champion").version) == "2"
    # the decision is recorded on the evaluated run and version
    assert client.get_run(evaluated.worse.run_id).data.tags["champion_decision"] == third["champion"]["reason"]
    assert client.get_model_version("robert", "1").tags["champion_decision"] == third["champion"]["reason"]


def test_a_tie_keeps_the_champion_and_an_incomparable_champion_gives_way(evaluated, monkeypatch):
    cfg, client = evaluated.cfg, evaluated.client
    mlflow.set_tracking_uri(evaluated.better.tracking_uri)
    mlflow.set_registry_uri(evaluated.better.tracking_uri)
    datamodule = build_datamodule(cfg, PLANETS, ROOT)
    champion_score = evaluated.summaries[1]["macro_f1"]
    # a newcomer exactly as good as the champion (here: its score) is not strictly better
    move, reason, previous = decide_champion(cfg, client, "robert", "7", champion_score, datamodule, [])
    assert not move and previous == pytest.approx(champion_score) and "does not beat" in reason
    # a champion of other molecules (or grid, or without any-coverage settings) cannot be compared
    stub = SimpleNamespace(molecules=["H2O", "CH4"], network=SimpleNamespace(n_grid=901), settings={})
    monkeypatch.setattr(evaluation, "load_registered", lambda name, version: stub)
    move, reason, previous = decide_champion(cfg, client, "robert", "7", 0.0, datamodule, [])
    assert move and previous is None and "cannot be compared" in reason


def test_metrics_json_holds_the_field_scores_and_the_coverage_table(evaluated):
    out = Path(evaluated.cfg["evaluate"]["out_dir"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(evaluated.summaries[3]))
    for key in ("accuracy", "macro_f1", "exact_match", "hamming_loss", "completeness_snr_ge_10_min",
                "completeness_snr_5_10_min", "false_alarm_rate_max", "n_test", "ece"):
        assert isinstance(metrics[key], float | int), key
    for key in ("completeness_snr_ge_10", "completeness_snr_5_10", "false_alarm_rate", "f1"):
        assert set(metrics[key]) == set(MOLECULES), key
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n_test"] == 24
    # the summaries are the worst molecule outside the degenerate group (CO, CO2 are scored together)
    outside = [m for m in MOLECULES if m not in ("CO", "CO2")]
    assert metrics["completeness_snr_ge_10_min"] == pytest.approx(
        min(metrics["completeness_snr_ge_10"][m] for m in outside))
    assert metrics["false_alarm_rate_max"] == pytest.approx(max(metrics["false_alarm_rate"][m] for m in outside))
    assert set(metrics["grouped_completeness_snr_ge_10"]) == {"H2O", "CO/CO2"}
    assert set(metrics["coverage"]) == {"full", "wfc3", "irac"}
    for name, row in metrics["coverage"].items():
        assert row["n_spectra"] == 24 and 0 <= row["macro_f1"] <= 1
        # trained on the whole grid (a prior without presets): only the whole grid has thresholds of its own
        assert row["threshold_coverage"] == ("full" if name == "full" else "any")
        # profiling only lowers Delta chi^2: a coverage constrains no gas on the profiled axis that it does not on
        # the plain one
        assert set(filter(None, row["profiled_constrained"].split(","))) <= set(row["constrained"].split(","))
    assert metrics["threshold_coverage"] == "full"  # the headline set observes the whole grid
    assert metrics["champion"]["moved"] is False
    # both significance axes: the plain one is the labels' own here; profiling only ever removes detections
    axes = metrics["significance_axes"]
    assert json.dumps(axes["plain"]["completeness_snr_ge_10"]) == json.dumps(metrics["completeness_snr_ge_10"])
    assert 0 < axes["profiled"]["detected"] <= axes["plain"]["detected"]
    assert metrics["profiled_completeness_snr_ge_10_min"] == axes["profiled"]["completeness_snr_ge_10_min"]
    # the plot tables
    snr = read_csv(out / "accuracy_vs_snr.csv")
    assert [row["snr"] for row in snr] == ["5", "10", "noiseless"]
    assert float(snr[1]["macro_f1"]) == pytest.approx(metrics["macro_f1"])  # the headline set is SNR 10
    assert [row["coverage"] for row in read_csv(out / "coverage.csv")] == ["full", "wfc3", "irac"]
    assert {row["molecule"] for row in read_csv(out / "per_molecule.csv")} == set(MOLECULES)
    assert read_csv(out / "completeness_vs_feature_snr.csv") and read_csv(out / "completeness_vs_log10_vmr.csv")
    confusion = json.loads((out / "confusion_matrix.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == metrics["n_test"]  # single-gas rows: one argmax each
    # everything also went to the evaluated model's run
    client, run_id = evaluated.client, evaluated.better.run_id
    logged = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/accuracy_vs_snr.csv", "evaluation/coverage.csv"} <= logged
    run_metrics = client.get_run(run_id).data.metrics
    assert run_metrics["test/macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert run_metrics["test/completeness_snr_ge_10_H2O"] == pytest.approx(metrics["completeness_snr_ge_10"]["H2O"])


def test_a_degenerate_group_is_scored_as_one_answer():
    molecules = ["H2O", "TiO", "VO"]
    injected = np.array([[0, 1, 0],    # TiO, called VO: the group found, TiO itself missed
                         [0, 0, 1],    # VO, called VO
                         [1, 0, 0],    # H2O only, TiO called: a false alarm of TiO and of the group
                         [1, 0, 0]], dtype=bool)
    probs = np.array([[0.1, 0.2, 0.9], [0.1, 0.1, 0.8], [0.9, 0.7, 0.1], [0.8, 0.1, 0.2]])
    chi2 = np.where(injected, 400.0, 0.0)  # feature S/N 20
    log10_vmr = np.full(injected.shape, -4.0)
    plain = detection_report(probs, injected, chi2, log10_vmr, molecules)
    grouped = detection_report(probs, injected, chi2, log10_vmr, molecules, [["TiO", "VO"]])
    assert plain["completeness_snr_ge_10"] == {"H2O": 1.0, "TiO": 0.0, "VO": 1.0}
    assert grouped["grouped_completeness_snr_ge_10"] == {"H2O": 1.0, "TiO/VO": 1.0}
    assert plain["false_alarm_rate"] == pytest.approx({"H2O": 0.0, "TiO": 1 / 3, "VO": 1 / 3})
    # the group is absent from rows 2 and 3, and called (TiO) in row 2
    assert grouped["grouped_false_alarm_rate"] == {"H2O": 0.0, "TiO/VO": 0.5}
    # through scores(): the worst molecule outside the group, and the single-gas accuracy outside it
    batch = SimpleNamespace(states=torch.as_tensor(injected.astype(np.int8)), targets=torch.as_tensor(injected * 1.0),
                            weights=torch.ones(injected.shape), chi2=torch.as_tensor(chi2), rows=torch.arange(4),
                            observation=None)
    out, _ = scores(lambda observation: probs, batch, np.full(injected.shape, 1e-4), molecules, [["TiO", "VO"]])
    assert out["completeness_snr_ge_10_min"] == 1.0 and out["false_alarm_rate_max"] == 0.0  # H2O alone
    assert out["accuracy"] == 0.75 and out["accuracy_outside_groups"] == 1.0


@pytest.mark.slow
def test_the_evaluate_script_prints_its_summary(evaluated):
    overrides = [*run_overrides(evaluated.tmp, evaluated.dataset, PLANETS, *PAPER_STYLE, *SHORT),
                 f"hydra.run.dir={evaluated.tmp}/hydra", f"evaluate.out_dir={evaluated.tmp}/evaluate-script"]
    proc = run_script("evaluate.py", *overrides, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert printed["version"] == "2" and printed["accuracy"] == pytest.approx(evaluated.summaries[3]["accuracy"])
    assert "already holds champion" in printed["champion"]["reason"]


def test_evaluating_before_training_names_the_fix(tmp_path):
    ready_store(tmp_path)
    cfg = compose_config("evaluate", [f"train.output={tmp_path}/none.json",
                                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    with pytest.raises(UserError, match=r"no trained model recorded at .*: run `dvc repro train`"):
        evaluate(cfg, ROOT)
