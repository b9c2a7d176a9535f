"""Point MLflow at the configured store: the local SQLite file or a tracking server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import mlflow

from robert.errors import UserError, choice_error

SQLITE_PREFIX = "sqlite:///"
# MLflow's experiment kind: these experiments hold model training (runs, datasets, models), not GenAI traces
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def resolve_tracking_uri(tracking: Mapping, root: Path) -> str:
    """The tracking URI with a relative SQLite path made absolute against the project root."""
    kind, uri = tracking.get("kind"), str(tracking.get("uri") or "")
    if kind not in ("local", "server"):
        raise choice_error("tracking.kind", kind, ("local", "server"))
    if kind == "server":
        if not uri.startswith(("http://", "https://")):
            raise UserError(f"tracking.uri must be an http(s):// URL for tracking=server, got {uri!r}")
        return uri
    if not uri.startswith(SQLITE_PREFIX):
        raise UserError(f"tracking.uri must be a sqlite:/// URI for tracking=local, got {uri!r}")
    db = Path(uri[len(SQLITE_PREFIX):])
    db = db if db.is_absolute() else (root / db).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"{SQLITE_PREFIX}{db}"


def configure_tracking(tracking: Mapping, root: Path) -> str:
    """Set the tracking and registry URIs and the experiment; returns the experiment id."""
    uri = resolve_tracking_uri(tracking, root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = tracking["experiment"]
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        mlflow.set_experiment(name)
        return experiment.experiment_id
    location = tracking.get("artifact_location")
    if location:
        path = Path(location)
        location = (path if path.is_absolute() else (root / path).resolve()).as_uri()
    experiment_id = mlflow.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
    mlflow.set_experiment(name)
    return experiment_id
