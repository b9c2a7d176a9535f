"""The default MLflow store is SQLite under mlruns/ with artifacts under mlruns/; a server is a switch."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from helpers.config import compose_config
from helpers.runs import ready_store
from robert.errors import UserError
from robert.tracking.setup import configure_tracking, resolve_tracking_uri


def test_local_store_and_artifacts_live_under_mlruns(tmp_path):
    ready_store(tmp_path / "mlruns")  # an empty store, already migrated (what MLflow makes at the first call)
    tracking = compose_config("fetch_data", ["+tracking=local"])["tracking"]
    configure_tracking(tracking, tmp_path)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
        mlflow.log_text("hello", "note.txt")
    artifact_dir = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    assert (artifact_dir / "note.txt").read_text() == "hello"
    assert tmp_path / "mlruns" in artifact_dir.parents
    # the UI opens it in its model-training views (runs, datasets, models), not the GenAI ones
    assert mlflow.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_server_is_a_config_switch(tmp_path):
    tracking = compose_config("fetch_data", ["+tracking=server", "tracking.uri=http://127.0.0.1:5999"])["tracking"]
    assert resolve_tracking_uri(tracking, tmp_path) == "http://127.0.0.1:5999"
    with pytest.raises(UserError, match="tracking.uri must be an http"):
        resolve_tracking_uri(dict(tracking, uri="127.0.0.1:5999"), tmp_path)
