"""The summary at the end of `make run`: which stages ran (or that none did), the champions, the headline metrics, the
dreams, in a few lines (robert.tracking.summary)."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers.config import compose_config
from robert.tracking.summary import dream_line, stages_run, summary_lines

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
DVC_LOG = """'data.dvc' didn't change, skipping
Stage 'opacities' didn't change, skipping
Running stage 'train':
> python src/train.py
Running stage 'evaluate':
> python src/evaluate.py
"""
UP_TO_DATE = "'data.dvc' didn't change, skipping\nStage 'opacities' didn't change, skipping\n"
DREAMS = {**{m: {"methods": {"generative": {}, "optimisation": {}}} for m in ("H2O", "CO", "CO2")},
          "model": {"kind": "dbn"},
          "summary": {"primary_method": "generative", "not_distinguishable": [],
                      "generative": {"n_diagonal": 1, "off_diagonal": ["CO", "CO2"]},
                      "optimisation": {"n_diagonal": 3, "off_diagonal": []}}}


def test_the_stages_dvc_ran_are_read_from_its_output():
    assert stages_run(DVC_LOG) == ["train", "evaluate"] and stages_run(UP_TO_DATE) == []


def test_dreams_are_counted_per_method_over_the_molecules():
    assert dream_line(DREAMS) == ("dreams on the diagonal: generative 1 of 3, optimisation 3 of 3 "
                                  "[build/dream/report.html]")


def test_a_second_run_says_it_did_nothing_and_names_the_metrics_it_read(tmp_path):
    (tmp_path / "results" / "emission").mkdir(parents=True)
    (tmp_path / "results" / "dream").mkdir()
    (tmp_path / "results" / "dream" / "dreams.json").write_text(json.dumps(DREAMS))
    metrics = {"macro_f1": 0.5, "completeness_snr_ge_10_min": 0.25, "false_alarm_rate_max": 0.0125, "snr": 10}
    (tmp_path / "results" / "emission" / "metrics.json").write_text(json.dumps(metrics))
    tracking = compose_config("train")["tracking"] | {"uri": f"sqlite:///{tmp_path}/mlflow.db",
                                                     "artifact_location": str(tmp_path / "artifacts")}
    lines = summary_lines(tmp_path, tracking, UP_TO_DATE)
    assert lines[0] == "dvc repro: nothing to do, every stage up to date"
    assert lines[1] == ("robert (no @champion): macro-F1 0.500, completeness S/N>=10 min 0.250, false alarms max "
                        "1.250% at SNR 10 [results/emission/metrics.json]")
    assert lines[2].startswith("dreams on the diagonal: generative 1 of 3") and len(lines) <= 15
    shutil.rmtree(tmp_path / "results")
    assert len(summary_lines(tmp_path, tracking, DVC_LOG)) == 2  # stages ran; nothing evaluated yet, no dreams
