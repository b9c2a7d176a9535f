"""The configuration as a user meets it: experiment configs that compose for every stage and agree on the dataset,
run names that tell trainings apart, and bad choices at the command line as one line with exit status 2."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers.config import ROOT, compose_config
from helpers.scripts import run_script, stderr_lines
from helpers.synthetic import PLANETS, write_synthetic_dataset
from robert.config_checks import check_group_choices
from robert.data.dataset import dataset_dir, load_planet, resolve_planets
from robert.errors import UserError
from robert.model.config import validate_model_config
from robert.physics.config import SimulateSettings
from robert.simulate.generate import Acceptance
from robert.simulate.shards import acceptance_attr
from robert.spectra.detection import LabelSettings
from robert.spectra.observation import ObservationPrior
from robert.training.evaluate import SCORES
from robert.training.train import run_facts, run_name

EXPERIMENTS = (None, "paper", "transmission", "single", "mixture")
MODELS = ("dbn", "mlp", "cnn", "dbn_tiny")
OBSERVATIONS = ("any", "white", "any_transmission")
INSTRUMENTS = {p.stem for p in (ROOT / "conf" / "instrument").glob("*.yaml")}


def experiment_overrides(experiment: str | None, *extra: str) -> list[str]:
    return ([f"experiment={experiment}"] if experiment else []) + list(extra)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_configs_compose_for_every_stage_and_agree_on_their_dataset(experiment):
    train = compose_config("train", experiment_overrides(experiment))
    evaluate = compose_config("evaluate", experiment_overrides(experiment))
    generate = compose_config("generate", experiment_overrides(experiment))
    for stage, cfg in (("train", train), ("evaluate", evaluate), ("generate", generate)):
        validate_model_config(cfg["model"])
        LabelSettings.from_config(cfg["labels"])
        ObservationPrior.from_config(cfg["observation"])
        SimulateSettings.from_config(cfg["simulate"])
        Acceptance.from_config(cfg["dataset"].get("acceptance"))
        assert cfg["regime"] == train["regime"], stage
    # the set generate writes is the set train and evaluate read: same place, composition and fingerprint rule
    for cfg in (evaluate, generate):
        assert dataset_dir(cfg, ROOT) == dataset_dir(train, ROOT)
        assert cfg["composition"] == train["composition"] and acceptance_attr(cfg["dataset"]) == acceptance_attr(
            train["dataset"])
    # training reads a selection of planets (the realistic nine, or the paper's five types); generate makes one
    selection = "paper" if experiment in ("paper", "single", "mixture") else "all"
    assert resolve_planets(train) == OmegaConf.load(ROOT / "conf" / "planet" / f"{selection}.yaml")["keys"]
    assert "keys" not in generate["planet"]
    # the evaluation asks for what this regime's test set has
    assert evaluate["evaluate"]["score"] in SCORES
    assert evaluate["evaluate"]["score"] != "accuracy" or train["composition"]["kind"] == "single"
    assert set(evaluate["evaluate"]["coverages"]) <= INSTRUMENTS
    assert set(train["observation"].get("coverage", {}).get("presets", [])) <= INSTRUMENTS
    # each regime logs and registers apart, and names the command that makes its own set
    if experiment:
        default = compose_config("evaluate")
        for key in ("experiment", "registered_model"):
            assert evaluate["tracking"][key] != default["tracking"][key], key
        assert evaluate["train"]["output"] != default["train"]["output"]
        assert evaluate["evaluate"]["out_dir"] != default["evaluate"]["out_dir"]
        assert train["data"]["regenerate"] != default["data"]["regenerate"]


def test_the_paper_regime_is_the_papers_protocol():
    cfg = compose_config("train", ["experiment=paper"])
    assert (cfg["composition"]["kind"], cfg["labels"]["kind"], cfg["observation"]["name"]) == (
        "single", "injected", "white")
    assert cfg["model"]["hidden"] == [500, 200, 50] and cfg["model"]["inputs"] == ["depth"]
    assert cfg["dataset"]["acceptance"] == {"min_feature_snr": 30.0, "snr": 20.0}
    assert cfg["observation"]["snr"] == cfg["data"]["snr"] == cfg["dataset"]["acceptance"]["snr"]
    transmission = compose_config("train", ["experiment=transmission"])
    assert transmission["simulate"]["geometry"] == "transmission"
    assert dataset_dir(transmission, ROOT).name.endswith("-transmission")


def test_run_names_are_distinct_across_geometry_model_coverage_and_regime():
    """Issue 18's acceptance: every (geometry, model, coverage, regime) training has its own run name."""
    experiments = {e: compose_config("train", experiment_overrides(e)) for e in EXPERIMENTS}
    models = {m: compose_config("train", [f"model={m}"])["model"] for m in MODELS}
    observations = {o: compose_config("train", [f"observation={o}"])["observation"] for o in OBSERVATIONS}
    names: dict[str, tuple] = {}
    for (experiment, base), (choice, model), observation in itertools.product(
            experiments.items(), models.items(), observations.values()):
        cfg = base | {"model": model | {"inputs": base["model"]["inputs"]}, "observation": observation}
        planets = resolve_planets(cfg)
        facts = run_facts(cfg, planets)
        key = (facts["geometry"], facts["model"], facts["observation"], facts["regime"], facts["composition"])
        name = run_name(facts, planets)
        assert names.setdefault(name, key) == key, (name, key, names[name])
        assert all(part in name for part in key), (experiment, choice)
    # every combination apart, but the two any-coverage priors (they differ in their SNR range only)
    assert len(names) == len(EXPERIMENTS) * len(MODELS) * (len(OBSERVATIONS) - 1)


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model=xyz"], "error: unknown model 'xyz'; expected one of: cnn, dbn, dbn_baseline, dbn_tiny, mlp"),
    (["experiment=papr"], "error: unknown experiment 'papr'; expected one of: mixture, paper, single, transmission"),
    (["labels.min_chi2=0"], "error: labels.min_chi2 must be a number > 0; got 0"),
])
def test_a_bad_choice_at_the_command_line_is_one_line_with_status_2(overrides, expected, tmp_path):
    proc = run_script("train.py", *overrides, f"hydra.run.dir={tmp_path}/hydra",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert stderr_lines(proc) == [expected], proc.stderr[-3000:]


@pytest.mark.slow
def test_an_experiment_over_a_set_made_without_its_rule_is_one_line_naming_the_field(tmp_path):
    synthetic = write_synthetic_dataset(tmp_path / "datasets")  # made without a fingerprint rule
    proc = run_script("train.py", "experiment=paper", f"dataset.out_dir={synthetic}",
                      f"data.planets=[{','.join(PLANETS)}]", f"hydra.run.dir={tmp_path}/hydra",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"train.checkpoint_dir={tmp_path}/ckpt")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rule = json.dumps({"min_feature_snr": 30.0, "snr": 20.0}, sort_keys=True)
    assert stderr_lines(proc) == [
        f"error: {synthetic}/single/{PLANETS[0]}/shard-00000.h5 was generated with dataset.acceptance=null, but this "
        f"experiment needs dataset.acceptance={rule}: generate its own set with "
        "`dvc repro simulate-paper`"], proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run was created


def test_a_set_made_with_a_rule_is_refused_where_the_experiment_has_another(tmp_path):
    synthetic = write_synthetic_dataset(tmp_path, PLANETS[:1], n_per_planet=12)
    paper = compose_config("train", ["experiment=paper"])["dataset"]
    with pytest.raises(UserError, match=r"generated with dataset\.acceptance=null, but this experiment needs "
                                        r"dataset\.acceptance=\{\"min_feature_snr\": 30\.0, \"snr\": 20\.0\}"):
        load_planet(synthetic, "single", PLANETS[0], "regenerate", {"acceptance": acceptance_attr(paper)})
    load_planet(synthetic, "single", PLANETS[0], "regenerate", {"acceptance": acceptance_attr({"acceptance": None})})


def test_group_choices_are_checked_against_conf_and_everything_else_is_left_to_hydra():
    conf = ROOT / "conf"
    check_group_choices(conf, ["model=mlp", "+model=cnn", "experiment=null", "model.hidden=[1,2]", "-m",
                               "model=mlp,cnn", "hydra.run.dir=/tmp/x", "planet=all", "nosuchgroup=abc",
                               "model=choice(mlp,cnn)"])  # none of these is an unknown choice
    with pytest.raises(UserError, match=r"^unknown model 'rnn'; expected one of: cnn, dbn, "):
        check_group_choices(conf, ["-m", "model=mlp,rnn"])
    with pytest.raises(UserError, match=r"^unknown planet 'kepler999b'; expected one of: all, gj1214b"):
        check_group_choices(Path(conf), ["planet=kepler999b"])
