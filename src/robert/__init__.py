"""RobERt - Robotic Exoplanet Recognition (after Waldmann 2016, ApJ 820, 107)."""

import os

# MLflow 3 sends usage telemetry from a background thread; with no route out it fails and unsets
# an environment variable that concurrent REST calls to a tracking server read (a KeyError
# '_MLFLOW_TELEMETRY_SESSION_ID' mid-request). Off, as a project with no outside network wants.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
