"""Dreams: the generative and input-optimisation dreams, their comparison with the data, the report, errors.

The models dream of SYNTHETIC shards (tests/helpers/synthetic.py: each molecule carves two Gaussian bands
into a sloped continuum) on a 256-point grid, all trained by ``train()`` and registered as the pipeline does:

* robert v1: the tiny DBN on the three input channels (depth, error, mask), fine-tuned from its pre-trained
  stack (the paper's path), single-gas spectra observed as the headline test set is (the whole grid, white
  noise at SNR 10), detection labels, with a generative stack pre-trained long enough to carry the labels.
  Measured: with Bernoulli visible units the constant error and
  mask channels of these observations saturate the first RBM (the second RBM's reconstruction error drops
  to 0, the top RBM stays at chance, every label dreams the same spectrum); Gaussian visible units, which
  standardise every input (constant ones to 0), learn it: top-RBM accuracy 1.0 after the generative phase and
  both methods' dreams on the diagonal, generative signature r 0.73-0.94.
* robert v2: the same DBN with no pre-training (no generative stack).
* robert-mlp v1: the MLP peer on a MIXTURE set observed with any coverage and detection labels (the realistic
  default); it can only be dreamt by optimisation.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from helpers.config import ROOT, compose_config
from helpers.synthetic import MOLECULES, PLANETS, write_synthetic_dataset
from helpers.training import train_overrides
from robert.dream.comparison import class_distinguishability, dream_confusion, pearson_r, rms
from robert.dream.generative import generative_dream
from robert.dream.observation import context_observation
from robert.dream.optimisation import OptimisationSettings, optimisation_dream
from robert.dream.real_spectra import HOLDS_GAS, ONLY_GAS, class_rows
from robert.dream.stage import DreamSettings, dream_report
from robert.errors import UserError
from robert.spectra.observation import Observation, network_inputs
from robert.spectra.transforms import normalise, value_range
from robert.training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
N_WAVELENGTHS = 256
CHANNELS = ["depth", "error", "mask"]
INPUTS = f"model.inputs=[{','.join(CHANNELS)}]"
GENERATIVE = (INPUTS, "model.finetune.init=stack", "observation=white", "model.visible=gaussian",
              "model.pretrain.lr=0.01", "model.top.lr=0.1",
              "model.pretrain.epochs_per_layer=20", "model.top.epochs=50", "model.finetune.epochs=5")
NO_PRETRAINING = (INPUTS, "observation=white", "model.pretrain.epochs_per_layer=0", "model.top.epochs=0",
                  "model.generative.epochs=0", "model.finetune.epochs=1")
MLP = ("model=mlp", "model.hidden=[64,32]", "model.finetune.epochs=10", "model.finetune.lr=3e-3")
# small dream settings: 3 molecules, a few seconds; the smoothness of a network without a deviation channel (the
# default's 10000 is set for one that reads the spectrum in sigma: conf/dream.yaml)
QUICK = ("dream.generative.n_chains=200", "dream.generative.n_gibbs_steps=100", "dream.optimisation.steps=60",
         "dream.optimisation.smoothness=1000", "dream.diagnostics_rows=200")


def overrides(tmp: Path, dataset: Path, composition: str, *extra: str) -> list[str]:
    """helpers.training's tiny-model overrides with another composition; observation=white has no coverage
    section, so the coverage override is dropped for it."""
    white = "observation=white" in extra
    return [f"composition={composition}" if o == "composition=single" else o
            for o in train_overrides(tmp, dataset, PLANETS, *extra)
            if not (white and o.startswith("observation.coverage."))]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A private MLflow store: robert v1 (generative stack), v2 (no pre-training), robert-mlp v1 (mixtures)."""
    tmp = tmp_path_factory.mktemp("dream")
    dataset = write_synthetic_dataset(tmp / "datasets", PLANETS, n_per_planet=300, n_wavelengths=N_WAVELENGTHS)
    write_synthetic_dataset(dataset, PLANETS, n_per_planet=300, n_wavelengths=N_WAVELENGTHS, composition="mixture")
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        for composition, extra, version in (("single", GENERATIVE, "1"), ("single", NO_PRETRAINING, "2"),
                                            ("mixture", MLP, "1")):
            result = train(compose_config("evaluate", overrides(tmp, dataset, composition, *extra)), ROOT)
            assert result.registered_version == version
    return tmp


def dream_config(store: Path, out_dir: Path, *extra: str) -> dict:
    return compose_config("dream", [f"tracking.uri=sqlite:///{store}/mlflow.db",
                                    f"tracking.artifact_location={store}/artifacts", f"dream.out_dir={out_dir}",
                                    f"dream.metrics={out_dir}/metrics/dreams.json",
                                    "dream.model_uri=models:/robert/1", *QUICK, *extra])


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("report")
    return dream_report(dream_config(store, out_dir), ROOT), out_dir


def registered_network(name: str = "robert", version: str = "1"):  # noqa: ANN201 (a RobertModel)
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model()


# --- the comparison and the class rows ----------------------------------------------------------------


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
    # identical dreams have no signature: they match no class (not the first one by accident)
    same = dream_confusion(np.tile(dreams[0], (3, 1)), class_means, ["A", "B", "C"])
    assert [same.best_match(i) for i in range(3)] == [None] * 3 and same.diagonal == [False] * 3


def test_a_class_is_the_rows_where_the_molecule_is_alone_else_every_row_holding_it():
    injected = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32)
    rows, selection = class_rows(injected)
    assert selection == [ONLY_GAS, ONLY_GAS, HOLDS_GAS]    # the third is never alone
    assert rows[:, 0].tolist() == [True, False, False, False, False]
    assert rows[:, 1].tolist() == [False, False, True, False, False]
    assert rows[:, 2].tolist() == [False, False, False, True, True]


# --- the stage on trained models -------------------------------------------------------------------


def test_each_dream_of_a_three_channel_dbn_matches_its_own_class_best(report):
    payload, out_dir = report
    assert payload["model"]["kind"] == "dbn" and payload["model"]["inputs"] == CHANNELS
    for molecule in MOLECULES:
        entry = payload[molecule]
        assert entry["best_matching_class"] == molecule, entry
        assert entry["class_rows"] == ONLY_GAS
        # the retrained associative memory knows the labels (chance: 1/3; measured 1.0)
        assert entry["associative_memory_accuracy"] > 2 / len(MOLECULES), entry
        assert entry["signature_r"] > 0.6 and -1 <= entry["pearson_r"] <= 1 and entry["rms"] > 0
        assert set(entry["per_planet"]) == set(PLANETS) and entry["n_spectra"] > 0
        generative = entry["methods"]["generative"]
        # trained on full-coverage observations only, the network dreams the mask channel all ones
        assert generative["mean_dreamt_mask"] > 0.99 and 0 < generative["mean_dreamt_error"] < 1
        # the optimisation dream climbs the molecule's logit from the flat start, inside the box
        optimised = entry["methods"]["optimisation"]
        assert optimised["final_logit"] > optimised["start_logit"]
        assert optimised["best_matching_class"] == molecule
        assert optimised["classifier_probability"] == pytest.approx(1 / (1 + np.exp(-optimised["final_logit"])),
                                                                    abs=1e-3)
    confusion = json.loads((out_dir / "dream_confusion.json").read_text())["generative"]["signature"]
    assert all(np.argmax(row) == i for i, row in enumerate(confusion))
    assert payload["summary"]["generative"]["diagonal_for_distinguishable"]
    spectra = np.genfromtxt(out_dir / "dream_spectra.csv", delimiter=",", names=True)
    assert len(spectra) == N_WAVELENGTHS  # one row per grid cell: the depth channel, not the 3 x 256 inputs
    assert 0 <= spectra["H2O_optimisation"].min() <= spectra["H2O_optimisation"].max() <= 1


def test_the_optimisation_dream_changes_the_spectrum_only(store):
    model = registered_network()
    network = model.network
    depth = np.stack([np.linspace(1.0, 2.0, N_WAVELENGTHS), np.linspace(2.0, 1.0, N_WAVELENGTHS)]) * 1e-3
    context = context_observation(depth, np.geomspace(1, 20, N_WAVELENGTHS), 10.0, seed=3)
    assert bool(context.mask.all())  # the whole grid observed
    # white noise: one sigma = mean / 10 everywhere (1.5e-3 / 10, as a cell-equivalent error)
    assert torch.allclose(context.sigma, context.sigma[:, :1]) and torch.allclose(context.sigma[:, 0],
                                                                                 torch.full((2,), 1.5e-4))
    settings = OptimisationSettings(start=0.5, steps=40, lr=0.01, smoothness=1000.0)
    dream = optimisation_dream(network, model.molecules, 1, settings, context.slice(1, 2))
    depth_part, error, mask = torch.as_tensor(dream.network_input).reshape(3, N_WAVELENGTHS)
    assert torch.all(mask == 1) and torch.allclose(error, error[:1])  # the observation is held: full, white
    assert np.allclose(normalise(depth_part[None])[0].numpy(), dream.spectrum, atol=1e-6)  # the dreamt spectrum
    assert dream.spectrum.min() == 0 and dream.spectrum.max() == pytest.approx(1)  # min-max normalised for display
    assert dream.details["final_logit"] > dream.details["start_logit"]
    assert len(dream.activations) == len(network.hidden)  # the DBN classifier's layers L1 ... Ln


def test_every_channel_of_the_optimisation_dream_is_computed_from_its_spectrum(store):
    """The MLP reads the depth and its deviation from its own continuum, in sigma: the dream's second channel is
    that of the dreamt spectrum itself (in the context's error bars), not of the spectrum it started from."""
    model = registered_network("robert-mlp")
    assert model.network.channels == ["depth", "detrended"]
    depth = np.linspace(2.0, 1.0, N_WAVELENGTHS)[None] * 1e-3
    context = context_observation(depth, np.geomspace(1, 20, N_WAVELENGTHS), 10.0, seed=3)
    settings = OptimisationSettings(start=0.5, steps=40, lr=0.01, smoothness=10.0)
    dream = optimisation_dream(model.network, model.molecules, 0, settings, context)
    assert dream.details["final_logit"] > dream.details["start_logit"]
    # the depth channel x stands for the depths low + x * span (span: the context's range); x = min + range *
    # spectrum, and the deviation in sigma is unchanged by an offset and by scaling values and errors together
    _, span = value_range(context.values, context.mask)
    spectrum = torch.as_tensor(dream.spectrum[None], dtype=torch.float32)
    sigma = context.sigma / (span * dream.details["range_before_normalising"])
    again = network_inputs(Observation(spectrum, sigma, context.mask), model.network.channels)[0].double().numpy()
    assert np.allclose(dream.network_input[N_WAVELENGTHS:], again[N_WAVELENGTHS:], atol=1e-4)
    held = network_inputs(context, model.network.channels)[0].double().numpy()  # the starting spectrum's channel
    assert not np.allclose(dream.network_input[N_WAVELENGTHS:], held[N_WAVELENGTHS:], atol=1e-2)


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
    # one molecule at a time here, one per core in the fixture: the same bytes either way
    dream_report(dream_config(store, tmp_path, "dream.workers=1"), ROOT)
    for name in ("dreams.json", "dream_spectra.csv", "dreams.png", "report.html"):
        assert (tmp_path / name).read_bytes() == (out_dir / name).read_bytes(), name
    network = registered_network().network
    assert bool(network.generative_finetuned)  # the dream runs the generatively fine-tuned path
    first, again, other = (generative_dream(network, MOLECULES, 1, 50, 20, seed) for seed in (3, 3, 4))
    assert np.array_equal(first.spectrum, again.spectrum)
    assert not np.array_equal(first.spectrum, other.spectrum)
    # the visible layer holds every channel; the dream is its depth channel
    assert first.spectrum.shape == (N_WAVELENGTHS,) and first.network_input.shape == (3 * N_WAVELENGTHS,)
    assert np.allclose(first.network_input[:N_WAVELENGTHS], first.spectrum)


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
    assert "<td>dbn, inputs: depth, error, mask</td>" in page


def test_a_peer_network_trained_on_mixtures_dreams_by_optimisation_only(store, tmp_path):
    uri = "models:/robert-mlp/1"
    with pytest.raises(UserError, match=r"models:/robert-mlp/1 \(robert-mlp version 1\) is not a deep belief "
                                        r"network \(model kind mlp\).*dream.methods=\[optimisation\]"):
        dream_report(dream_config(store, tmp_path, f"dream.model_uri={uri}"), ROOT)
    assert not (tmp_path / "dreams.json").exists()
    payload = dream_report(dream_config(store, tmp_path, f"dream.model_uri={uri}", "dream.methods=[optimisation]"),
                           ROOT)
    assert payload["model"]["kind"] == "mlp" and payload["summary"]["primary_method"] == "optimisation"
    for molecule in MOLECULES:
        entry = payload[molecule]
        assert entry["class_rows"] == ONLY_GAS and "associative_memory_accuracy" not in entry
        optimised = entry["methods"]["optimisation"]
        # ascent raises the molecule's logit until the classifier calls its own dream that molecule
        assert optimised["final_logit"] > optimised["start_logit"] and optimised["classified_as"] == molecule
    # measured: 3 of 3 on the diagonal (signature r 0.59-0.81); chance is 1
    assert payload["summary"]["optimisation"]["n_diagonal"] >= 2


# --- errors -----------------------------------------------------------------------------------------


def test_a_model_without_a_trained_generative_stack_is_refused_for_the_generative_dream(store, tmp_path):
    with pytest.raises(UserError, match=r"models:/robert/2 \(robert version 2\) has no trained generative stack"):
        dream_report(dream_config(store, tmp_path, "dream.model_uri=models:/robert/2"), ROOT)
    assert not (tmp_path / "dreams.json").exists()


@pytest.mark.parametrize(("overrides", "message"), [
    (["dream.methods=[generative,sleepwalk]"],
     r"^unknown dream.methods\[1\] 'sleepwalk'; expected one of: generative, optimisation$"),
    (["dream.generative.n_chains=0"], r"^dream.generative.n_chains must be a positive integer; got 0$"),
    (["dream.generative.n_gibbs_steps=-1"], r"^dream.generative.n_gibbs_steps must be an integer >= 0; got -1$"),
    (["dream.optimisation.start=1.5"], r"^dream.optimisation.start must be a number >= 0 and <= 1; got 1.5$"),
    (["dream.generative.start=middle"], r"^unknown dream.generative.start 'middle'; expected one of: label, random$"),
    (["dream.context_snr=0"], r"^dream.context_snr must be a positive number; got 0$"),
    (["dream.workers=0"], r"^dream.workers must be a positive integer; got 0$"),
    (["dream.max_similarity_r=-1"], r"^dream.max_similarity_r must be a number > -1 and <= 1; got -1$"),
    (["~dream.optimisation.lr"], r"^dream.optimisation.lr is missing$"),
])
def test_bad_dream_settings_name_the_field(overrides, message):
    with pytest.raises(UserError, match=message):
        DreamSettings.from_config(compose_config("dream", overrides)["dream"])


def test_an_unknown_model_uri_is_one_line_listing_what_exists(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "dream.py"), "dream.model_uri=models:/robert@dreamy",
                           f"tracking.uri=sqlite:///{store}/mlflow.db", f"dream.out_dir={tmp_path}",
                           f"dream.metrics={tmp_path}/metrics/dreams.json",
                           f"hydra.run.dir={tmp_path}/hydra"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines == ["error: model URI 'models:/robert@dreamy' names no version of 'robert' "
                     "(versions: 1, 2; aliases: none)"], proc.stderr
