"""REST: ``mlflow models serve`` on a registered model answers an observed spectrum as the Python API does.

A small model of the WFC3 coverage (registered ``robert-wfc3`` in a private store; a few fine-tuning
epochs: this test checks serving, not accuracy) is served on 127.0.0.1 with ``--env-manager local``;
one real HTTP request with a published-format table (rows shuffled) must give, per molecule, exactly
the probabilities, flags and verdicts of the in-process pyfunc, and so must a request of four spectra whose
rows are interleaved (the batch path); a bad row gives HTTP 400 with the one-line message. The server's
process group is always terminated.
"""

from __future__ import annotations

import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from test_predict import observed_frame
from test_train import PLANETS, train_config, use_store, write_synthetic_dataset

from helpers.config import ROOT
from robert.inference.serve import post_dataframe, served
from robert.training.train import build_datamodule, train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
QUICK = ("model.pretrain.epochs_per_layer=0", "model.top.epochs=0", "model.finetune.epochs=3")


def test_rest_answer_matches_the_python_model(tmp_path):
    dataset = write_synthetic_dataset(tmp_path / "datasets", PLANETS, n_per_planet=30)
    cfg = train_config(tmp_path, dataset, PLANETS, *QUICK, "instrument=wfc3")
    result = train(cfg, ROOT)
    use_store(result)
    datamodule = build_datamodule(cfg, PLANETS, ROOT)
    frame = observed_frame(datamodule.split("test").depth[0], datamodule.coverage, 20, 0)
    expected = mlflow.pyfunc.load_model("models:/robert-wfc3/1").predict(frame)
    # several spectra in one request, their rows interleaved: the batch path behind HTTP
    batch = pd.concat([observed_frame(datamodule.split("test").depth[i], datamodule.coverage, 20, i)
                       .assign(spectrum=f"s{i}") for i in range(4)]).sample(frac=1, random_state=0)
    expected_batch = mlflow.pyfunc.load_model("models:/robert-wfc3/1").predict(batch)

    with served("models:/robert-wfc3/1", result.tracking_uri, tmp_path / "serve.log") as url:
        started = time.perf_counter()
        status, answer = post_dataframe(url, frame)
        elapsed = time.perf_counter() - started
        bad_status, bad = post_dataframe(url, frame.assign(depth_err=-1.0))
        batch_status, batch_answer = post_dataframe(url, batch)
    assert status == 200, answer
    rows = pd.DataFrame(answer["predictions"])
    assert rows["molecule"].tolist() == ["H2O", "CO", "CO2"] and set(rows["spectrum"]) == {"spectrum"}
    np.testing.assert_allclose(rows["probability"], expected["probability"], rtol=1e-6)
    for column in ("detected", "constrained", "verdict", "confused_with", "n_points"):
        assert rows[column].tolist() == expected[column].tolist(), column
    assert set(rows["verdict"]) <= {"detected", "not detected", "not constrained"}
    assert elapsed < 30  # a loose bound on a loaded test machine; BENCHMARKS.md has the measured round trip
    assert bad_status == 400
    assert batch_status == 200, batch_answer
    rows = pd.DataFrame(batch_answer["predictions"])
    assert rows["spectrum"].tolist() == expected_batch["spectrum"].tolist() and rows["spectrum"].nunique() == 4
    np.testing.assert_allclose(rows["probability"], expected_batch["probability"], rtol=1e-6)
    assert rows["verdict"].tolist() == expected_batch["verdict"].tolist()
    assert "input row 0, column depth_err: expected a 1-sigma error > 0, got -1" in bad["message"]
