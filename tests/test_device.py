"""One device choice drives the whole pipeline: the simulator, the trainer and the evaluation (wiring, on CPU)."""

from __future__ import annotations

import pytest

from helpers.config import compose_config


@pytest.mark.parametrize("config", ["train", "generate", "evaluate"])
def test_the_device_override_reaches_simulator_and_trainer(config):
    cfg = compose_config(config, ["device=cuda"])
    assert cfg["device"] == "cuda"
    assert cfg["simulate"]["device"] == "cuda" and cfg["trainer"]["accelerator"] == "cuda"


def test_make_run_device_sets_every_stage_through_the_environment(monkeypatch):
    monkeypatch.setenv("ROBERT_DEVICE", "cuda")  # what `make run DEVICE=cuda` exports
    cfg = compose_config("evaluate", [])
    assert cfg["simulate"]["device"] == "cuda" and cfg["trainer"]["accelerator"] == "cuda"
    monkeypatch.delenv("ROBERT_DEVICE")
    assert compose_config("evaluate", [])["device"] == "cpu"


def test_the_evaluation_predicts_on_the_configured_device():
    import numpy as np
    import torch

    from robert.model.mlp import MLPNetwork
    from robert.spectra.observation import Observation
    from robert.training.evaluate import predictor

    network = MLPNetwork(5, ["depth"], 2, [4], seed=0)
    observation = Observation(torch.rand(3, 5), torch.full((3, 5), 0.1), torch.ones(3, 5, dtype=torch.bool))
    model = type("Model", (), {"network": network})()
    probs = predictor(model, "cpu", chunk=2)(observation)
    assert probs.shape == (3, 2) and np.all((probs > 0) & (probs < 1))
    assert next(network.parameters()).device.type == "cpu"
