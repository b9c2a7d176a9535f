"""The ``model`` group: every recogniser trains on the tiny preset through the one Lightning module, is registered,
loads back in a fresh process with the same probabilities, and logs validation metrics a hand computation repeats.

Synthetic shards (:mod:`helpers.synthetic`), the realistic observation prior (any coverage, per-bin errors,
detection labels), a few epochs each: these check the mechanics, not what a model learns.
"""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.config import ROOT, compose_config
from helpers.metrics import scores_by_hand
from helpers.runs import train_run
from helpers.scripts import clean_env
from helpers.synthetic import MOLECULES, PLANETS, write_synthetic_dataset
from helpers.training import metric_histories
from robert.model.base import Recogniser
from robert.model.config import build_from_config, validate_model_config
from robert.model.dbn_module import DBNModule
from robert.model.module import RecogniserModule
from robert.training.train import build_datamodule, registered_name

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
SHORT_DBN = ("model.pretrain.epochs_per_layer=1", "model.top.epochs=1", "model.finetune.epochs=2",
             "model.generative.epochs=1")
# the models the brief names, with a few epochs each
TRAINED = {"dbn": SHORT_DBN, "dbn_tiny": SHORT_DBN, "mlp": ("model.finetune.epochs=2",),
           "cnn": ("model.finetune.epochs=2",)}
OBSERVED_EXAMPLE = ROOT / "examples" / "hd189733b_emission.csv"  # a published spectrum (WFC3 + Spitzer)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Each model of TRAINED trained into one store: {choice: (cfg, TrainResult)}."""
    tmp = tmp_path_factory.mktemp("models")
    dataset = write_synthetic_dataset(tmp / "datasets")
    return {choice: train_run(tmp, dataset, PLANETS, f"model={choice}", *extra) for choice, extra in TRAINED.items()}


def test_every_model_config_is_valid_and_builds_its_network():
    for path in sorted((ROOT / "conf" / "model").glob("*.yaml")):
        model = validate_model_config(compose_config("train", [f"model={path.stem}"])["model"])
        network = build_from_config(model, 901, 3, seed=0)
        assert isinstance(network, Recogniser) and network.kind == model["kind"], path.stem
        x = torch.rand(2, network.n_inputs)
        assert network(x).shape == (2, 3), path.stem
    assert set(TRAINED) <= {p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")}


def test_every_model_trains_registers_and_runs_through_the_recogniser_module(runs):
    names = {}
    for choice, (cfg, result) in runs.items():
        module = result.trainer.lightning_module
        assert isinstance(module, RecogniserModule) and module.network.kind == cfg["model"]["kind"], choice
        assert isinstance(module, DBNModule) == (cfg["model"]["kind"] == "dbn"), choice
        assert result.trainer.current_epoch == module.total_epochs, choice  # the whole (short) schedule ran
        assert result.registered_version is not None, choice
        version = mlflow.MlflowClient(tracking_uri=result.tracking_uri).get_model_version(
            registered_name(cfg), result.registered_version)
        assert version.run_id == result.run_id, choice
        names[choice] = mlflow.MlflowClient(tracking_uri=result.tracking_uri).get_run(result.run_id).info.run_name
    # peers register under their own names: @champion of robert stays a DBN
    assert {registered_name(cfg) for cfg, _ in runs.values()} == {"robert", "robert-mlp", "robert-cnn"}
    # one run name per model (run_facts: geometry/regime/labels/model/observation/composition/planets)
    assert len(set(names.values())) == len(names), names
    assert names["cnn"] == "emission/realistic/detection/cnn-16-32-64/any-coverage/single/2-planets"


def test_validation_metrics_are_what_a_hand_computation_gives(runs):
    """The last epoch's logged val/* (torchmetrics in the module) against numpy over the same validation set."""
    for choice, (cfg, result) in runs.items():
        network = result.trainer.lightning_module.network.cpu().eval()
        val = build_datamodule(cfg, PLANETS, ROOT).observed_set("val")  # observed once, from a fixed seed
        assert torch.all(val.weights == 1)  # labels.undetectable: negative
        with torch.no_grad():
            logits = network(network.encode(val.observation)).numpy()
        logged = metric_histories(result, [f"val/{name}" for name in ("loss", "macro_f1", "exact_match",
                                                                         "hamming_loss")])
        for name, value in scores_by_hand(logits, val.targets.numpy()).items():
            assert logged[f"val/{name}"][-1] == pytest.approx(value, rel=1e-5, abs=1e-7), (choice, name)
        assert result.val_metrics["macro_f1"] == pytest.approx(logged["val/macro_f1"][-1], rel=1e-6), choice


@pytest.mark.slow
def test_registered_models_load_in_a_fresh_process_with_the_same_probabilities(runs, tmp_path):
    frame = pd.read_csv(OBSERVED_EXAMPLE, comment="#")
    models, expected_proba, expected_table = {}, {}, {}
    for choice, (cfg, result) in runs.items():
        uri = f"models:/{registered_name(cfg)}/{result.registered_version}"
        mlflow.set_tracking_uri(result.tracking_uri)
        mlflow.set_registry_uri(result.tracking_uri)
        loaded = mlflow.pyfunc.load_model(uri)
        model = loaded.unwrap_python_model()
        assert model.molecules == MOLECULES, choice
        # the registered weights are the trained ones
        val = build_datamodule(cfg, PLANETS, ROOT).observed_set("val")
        inputs = model.network.encode(val.observation).numpy()
        trained = result.trainer.lightning_module.network.cpu().eval()
        np.testing.assert_array_equal(model.predict_proba(inputs), trained.predict_proba(torch.as_tensor(inputs)))
        np.save(tmp_path / f"{choice}.npy", inputs)
        models[choice] = (result.tracking_uri, uri)
        expected_proba[choice] = model.predict_proba(inputs)
        expected_table[choice] = loaded.predict(frame)["probability"].to_numpy()  # the pyfunc's own input
    script = """
import json, sys, mlflow, numpy as np, pandas as pd
models, folder, example = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
for choice, (tracking, uri) in models.items():
    mlflow.set_tracking_uri(tracking); mlflow.set_registry_uri(tracking)
    loaded = mlflow.pyfunc.load_model(uri)
    proba = loaded.unwrap_python_model().predict_proba(np.load(f"{folder}/{choice}.npy"))
    table = loaded.predict(pd.read_csv(example, comment="#"))
    out[choice] = {"proba": proba.tolist(), "table": table["probability"].tolist()}
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(models), str(tmp_path), str(OBSERVED_EXAMPLE)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    for choice in runs:
        # the same weights; float32 sums may take another kernel path in a fresh process (measured 1.5e-6)
        np.testing.assert_allclose(fresh[choice]["proba"], expected_proba[choice], rtol=1e-5, err_msg=choice)
        np.testing.assert_allclose(fresh[choice]["table"], expected_table[choice], rtol=1e-5, err_msg=choice)
        assert len(fresh[choice]["table"]) == len(MOLECULES)  # one spectrum: one row per molecule
