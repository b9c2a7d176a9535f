"""Dreams: the generative and input-optimisation dreams, their comparison with the data, the report, errors.

The models dream of the SYNTHETIC shards of test_train.py (each molecule carves two Gaussian bands
into a sloped continuum), on a 256-point grid. Model 1 is a tiny DBN whose generative stack is
pre-trained long enough to carry the labels (measured: with the tiny preset's 3 CD epochs per layer
and 3 top-RBM epochs on a few dozen spectra, the second RBM saturates and every label dreams the same
spectrum; 20 epochs per layer and 50 top-RBM epochs on 360 spectra make each dream match its own
class best, at signature r 0.83-0.99 over four training seeds without the generative fine-tuning
phase, 0.99-1.00 with the preset's 5 generative epochs, whose top RBM then classifies every training
spectrum right by free energy; with the preset's short pre-training plus the generative phase H2O still
dreams CO2). It is trained by the Lightning module
with a plain Trainer (4 s; the full ``train()`` adds a checkpoint and MLflow logging per epoch, ~40 s
for these 95 epochs) and logged like ``train()`` logs. Model 2 comes from ``train()`` itself, with no
pre-training at all.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import numpy as np
import pytest
import torch
import yaml
from test_train import MOLECULES, PLANETS, train_config, write_synthetic_dataset

import robert
from helpers.config import ROOT, compose_config
from robert.data.datamodule import SpectraDataModule
from robert.dream.comparison import class_distinguishability, dream_confusion, pearson_r, rms
from robert.dream.generative import generative_dream
from robert.dream.stage import DreamSettings, dream_report
from robert.errors import UserError
from robert.model.lightning_module import DBNModule
from robert.tracking.setup import configure_tracking
from robert.training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
N_WAVELENGTHS = 256
GENERATIVE = ("model.batch_size=16", "model.pretrain.epochs_per_layer=20", "model.top.epochs=50",
              "model.finetune.epochs=5")
NO_PRETRAINING = ("model.pretrain.epochs_per_layer=0", "model.top.epochs=0", "model.finetune.epochs=1",
                  "+train.pip_requirements=[torch]")
# small dream settings: 3 molecules, a few seconds
QUICK = ("dream.generative.n_chains=200", "dream.generative.n_gibbs_steps=100", "dream.optimisation.steps=60",
         "dream.diagnostics_rows=200")


def register_pretrained_dbn(cfg: dict, dataset_dir: Path) -> None:
    """Pre-train and fine-tune the tiny DBN; log config, provenance and the pyfunc model as ``train()`` does."""
    from robert.tracking.pyfunc import RobertModel, network_spec, save_network

    datamodule = SpectraDataModule(cfg["data"], "single", PLANETS, ROOT, batch_size=cfg["model"]["batch_size"],
                                   seed=cfg["seed"])
    datamodule.setup("fit")
    pl.seed_everything(cfg["seed"], verbose=False)
    module = DBNModule(datamodule.n_visible, len(MOLECULES), cfg["model"], seed=cfg["seed"], label_names=MOLECULES)
    trainer = pl.Trainer(max_epochs=module.total_epochs, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    experiment_id = configure_tracking(cfg["tracking"], ROOT)
    spec = network_spec(datamodule.n_visible, MOLECULES, module.config, cfg["seed"])
    assert spec["generative_trained"]
    with mlflow.start_run(experiment_id=experiment_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_text(yaml.safe_dump(cfg), "config.yaml")
        mlflow.log_dict({"planets": PLANETS, "composition": "single", "dataset_dir": str(dataset_dir),
                         "molecules": MOLECULES}, "dataset_provenance.json")
        mlflow.pyfunc.log_model(name="model", python_model=RobertModel(),
                                artifacts=save_network(module.dbn.eval(), spec, Path(tmp)),
                                code_paths=[str(Path(robert.__file__).parent)], registered_model_name="robert",
                                pip_requirements=["torch"])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A private MLflow store: robert v1 (pre-trained generative stack), v2 (no pre-training, from train())."""
    tmp = tmp_path_factory.mktemp("dream")
    dataset = write_synthetic_dataset(tmp / "datasets", PLANETS, n_per_planet=300, n_wavelengths=N_WAVELENGTHS)
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        register_pretrained_dbn(train_config(tmp, dataset, PLANETS, *GENERATIVE), dataset)
        assert train(train_config(tmp, dataset, PLANETS, *NO_PRETRAINING), ROOT).registered_version == "2"
    return tmp


def dream_config(store: Path, out_dir: Path, *overrides: str) -> dict:
    return compose_config("dream", [f"tracking.uri=sqlite:///{store}/mlflow.db",
                                    f"tracking.artifact_location={store}/artifacts", f"dream.out_dir={out_dir}",
                                    "dream.model_uri=models:/robert/1", *QUICK, *overrides])


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("report")
    return dream_report(dream_config(store, out_dir), ROOT), out_dir


# --- the comparison ---------------------------------------------------------------------------------


def test_signature_confusion_finds_each_class_where_the_shared_continuum_hides_it():
    wavelength = np.geomspace(1, 20, 300)
    continuum = np.linspace(0, 1, 300) ** 1.5
    bands = np.stack([np.exp(-0.5 * ((np.log(wavelength) - np.log(c)) / 0.05) ** 2) for c in (2.0, 4.3, 10.0)])
    class_means = continuum - 0.05 * bands
    dreams = 0.9 * continuum + 0.05 - 0.04 * bands[[0, 1, 2]] + 0.002 * np.sin(np.arange(300))
    result = dream_confusion(dreams, class_means, ["A", "B", "C"])
    assert result.raw.min() > 0.98            # on raw spectra every dream matches every class
    assert result.diagonal == [True, True, True]
    assert [result.best_match(i) for i in range(3)] == ["A", "B", "C"]
    assert pearson_r(dreams[0], 2 * dreams[0] + 1) == pytest.approx(1.0)
    assert rms(class_means[0], class_means[0] + 0.1) == pytest.approx(0.1)
    twins = class_distinguishability(np.vstack([class_means, class_means[2] + 1e-4 * bands[0]]),
                                     ["A", "B", "C", "D"], 0.9)
    assert twins.distinguishable == [True, True, False, False] and twins.most_similar[2:] == ["D", "C"]


# --- the stage on a trained model -------------------------------------------------------------------


def test_each_generative_dream_matches_its_own_class_best(report, store):
    payload, out_dir = report
    for molecule in MOLECULES:
        entry = payload[molecule]
        assert entry["best_matching_class"] == molecule, entry
        # the retrained associative memory knows the labels (chance: 1/3; measured 1.0)
        assert entry["associative_memory_accuracy"] > 2 / len(MOLECULES), entry
        assert entry["signature_r"] > 0.6 and -1 <= entry["pearson_r"] <= 1 and entry["rms"] > 0
        assert set(entry["per_planet"]) == set(PLANETS) and entry["n_spectra"] > 0
    confusion = json.loads((out_dir / "dream_confusion.json").read_text())["generative"]["signature"]
    assert all(np.argmax(row) == i for i, row in enumerate(confusion))
    assert payload["summary"]["generative"]["diagonal_for_distinguishable"]
    # the optimisation dream climbs the molecule's logit from the flat start, inside the box
    for molecule in MOLECULES:
        optimised = payload[molecule]["methods"]["optimisation"]
        assert optimised["final_logit"] > optimised["start_logit"]
    spectra = np.genfromtxt(out_dir / "dream_spectra.csv", delimiter=",", names=True)
    assert len(spectra) == N_WAVELENGTHS
    assert 0 <= spectra["H2O_optimisation"].min() <= spectra["H2O_optimisation"].max() <= 1


def test_the_dream_run_is_tagged_with_the_model_version_it_dreamt_from(report, store):
    payload, _ = report
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    run_id = client.get_model_version("robert", "1").tags["dream_run_id"]
    run = client.get_run(run_id)
    assert run.data.tags["dreamed_from"] == "robert/1" and run.data.tags["stage"] == "dream"
    assert run.data.metrics["generative/CO2/pearson_r"] == pytest.approx(payload["CO2"]["pearson_r"], abs=1e-4)
    assert run.data.params["dream.generative.n_chains"] == "200"
    logged = {a.path for a in client.list_artifacts(run_id, "dream")}
    assert {"dream/dreams.json", "dream/report.html", "dream/dreams.png", "dream/molecules"} <= logged


def test_same_seed_gives_the_same_bytes_and_another_seed_another_dream(report, store, tmp_path):
    _, out_dir = report
    dream_report(dream_config(store, tmp_path), ROOT)
    for name in ("dreams.json", "dream_spectra.csv", "dreams.png", "report.html"):
        assert (tmp_path / name).read_bytes() == (out_dir / name).read_bytes(), name
    model = mlflow.pyfunc.load_model("models:/robert/1").unwrap_python_model()
    assert bool(model.network.generative_finetuned)  # the dream runs the generatively fine-tuned path
    first, again, other = (generative_dream(model.network, MOLECULES, 1, 50, 20, seed) for seed in (3, 3, 4))
    assert np.array_equal(first.spectrum, again.spectrum)
    assert not np.array_equal(first.spectrum, other.spectrum)


def test_the_report_holds_every_molecule_with_its_embedded_figures(report):
    _, out_dir = report
    page = (out_dir / "report.html").read_text()
    assert not re.search(r"""src=["'](?!data:)""", page)  # nothing to fetch: opens without a server
    images = dict(re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page))
    assert {"dreams of every molecule", "dream confusion matrices"} <= set(images)
    for molecule in MOLECULES:
        assert f"<section id='dream-{molecule}'><h2>{molecule}</h2>" in page
        assert base64.b64decode(images[f"dream of {molecule}"])[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.count(f"<td>{molecule}</td>") == 2  # a row in each method's summary table


# --- errors -----------------------------------------------------------------------------------------


def test_a_model_without_a_trained_generative_stack_is_refused_for_the_generative_dream(store, tmp_path):
    with pytest.raises(UserError, match=r"models:/robert/2 \(robert version 2\) has no trained generative stack"):
        dream_report(dream_config(store, tmp_path, "dream.model_uri=models:/robert/2"), ROOT)
    assert not (tmp_path / "dreams.json").exists()
    payload = dream_report(dream_config(store, tmp_path, "dream.model_uri=models:/robert/2",
                                        "dream.methods=[optimisation]"), ROOT)
    assert payload["summary"]["primary_method"] == "optimisation" and "generative" not in payload["H2O"]["methods"]


@pytest.mark.parametrize(("overrides", "message"), [
    (["dream.methods=[generative,sleepwalk]"], "unknown dream method 'sleepwalk'"),
    (["dream.generative.n_chains=0"], "dream.generative.n_chains must be an integer >= 1"),
    (["dream.optimisation.start=1.5"], r"dream.optimisation.start must lie in \[0, 1\]"),
    (["dream.generative.start=middle"], r"dream.generative.start"),
])
def test_bad_dream_settings_name_the_field(overrides, message):
    with pytest.raises(UserError, match=message):
        DreamSettings.from_config(compose_config("dream", overrides)["dream"])


def test_an_unknown_model_uri_is_one_line_listing_what_exists(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "dream.py"), "dream.model_uri=models:/robert@dreamy",
                           f"tracking.uri=sqlite:///{store}/mlflow.db", f"dream.out_dir={tmp_path}",
                           f"hydra.run.dir={tmp_path}/hydra"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines == ["error: model URI 'models:/robert@dreamy' names no version of 'robert' "
                     "(versions: 1, 2; aliases: none)"], proc.stderr
