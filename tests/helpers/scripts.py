"""Running the entry scripts (``src/*.py``) as a user does, and reading their one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.config import ROOT


def clean_env() -> dict[str, str]:
    """This environment without MLFLOW_* variables (``mlflow.set_tracking_uri`` exports them; a fresh process
    must not inherit a store another test pointed at)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def run_script(script: str, *overrides: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python src/<script> <overrides>`` from the project root."""
    return subprocess.run([sys.executable, str(ROOT / "src" / script), *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=clean_env())


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The non-blank lines a run wrote to stderr."""
    return [line for line in proc.stderr.splitlines() if line.strip()]
