"""A local REST scoring server for a registered model: ``mlflow models serve`` on 127.0.0.1, always stopped.

Used by the REST test and the latency benchmark. The server runs in its own process group (MLflow execs
uvicorn, which starts workers), so stopping it ends every process it started, and only those.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from robert.errors import UserError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def served(model_uri: str, tracking_uri: str, log: Path, start_timeout_s: float = 180) -> Iterator[str]:
    """Serve ``model_uri`` (``models:/...``) on a free localhost port; yields the base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        # mlflow execs `uvicorn` by name: this interpreter's bin must be on PATH even without an activated venv
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--host",
                                 "127.0.0.1", "--port", str(port), "--env-manager", "local", "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent, start_new_session=True)
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + start_timeout_s
            while True:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text()[-1500:].replace("\n", " | ")
                    raise UserError(f"mlflow models serve -m {model_uri} did not start (log {log}): ...{tail}")
                time.sleep(0.25)
            yield url
        finally:
            _stop(proc)


def post_dataframe(url: str, frame: pd.DataFrame, params: dict[str, Any] | None = None) -> tuple[int, dict]:
    """POST a table to ``<url>/invocations`` (``dataframe_split``); returns (HTTP status, decoded JSON).

    Numbers go as Python writes floats (shortest repr, exact round trip), not as ``DataFrame.to_json`` does (10
    significant digits): a bin edge that lies on a grid cell centre must not move to the other side of it.
    """
    split = frame.to_dict(orient="split", index=False)
    data = [[None if isinstance(v, float) and math.isnan(v) else v for v in row] for row in split["data"]]
    payload: dict[str, Any] = {"dataframe_split": {"columns": split["columns"], "data": data}}
    if params:
        payload["params"] = params
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
