"""Beyond one process, tested for real on this machine: an MLflow tracking server, and DDP training.

* A real ``mlflow server`` (SQLite backend + artifact root in a temp dir, bound to 127.0.0.1) takes
  the tiny training with ``tracking=server``; the run and the registered model are found there.
* Lightning DDP on CPU (``trainer.strategy=ddp``, 2 processes, gloo) trains the tiny preset through
  the entry script and registers the same kind of model (one MLflow run, one version).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from test_train import MOLECULES, PLANETS, train_config, train_overrides, write_synthetic_dataset

from helpers.config import ROOT
from robert.training.train import train

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
LEARNS = ("model.pretrain.epochs_per_layer=2", "model.top.epochs=1", "model.finetune.lr=0.003",
          "model.finetune.epochs=10")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This environment without MLFLOW_* variables (set_tracking_uri exports them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@contextlib.contextmanager
def mlflow_server(tmp: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp}/server.db",
                             "--artifacts-destination", str(tmp / "server-artifacts"), "--workers", "1"],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    try:
        deadline = time.monotonic() + 300  # slow on a loaded 2-core machine
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), PLANETS)


def test_training_against_a_real_tracking_server(synthetic, tmp_path):
    with mlflow_server(tmp_path) as url:
        cfg = train_config(tmp_path, synthetic, PLANETS, *LEARNS, "tracking=server", f"tracking.uri={url}",
                           "tracking.artifact_location=null")  # the server decides where artifacts go
        result = train(cfg, ROOT)
        assert result.tracking_uri == url
        client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
        run = client.get_run(result.run_id)
        assert run.info.status == "FINISHED" and run.data.params["planets"] == ",".join(PLANETS)
        assert "val/loss" in run.data.metrics
        version = client.get_model_version("robert", result.registered_version)
        assert version.run_id == result.run_id
        # the artifacts went through the server into its artifact root, not into a local mlruns/
        assert any((tmp_path / "server-artifacts").rglob("weights.pt"))
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        model = mlflow.pyfunc.load_model(f"models:/robert/{result.registered_version}").unwrap_python_model()
        assert model.molecules == MOLECULES
        assert model.predict_proba(np.random.default_rng(0).random((4, 901))).shape == (4, len(MOLECULES))


def test_ddp_training_on_cpu_with_two_processes(synthetic, tmp_path):
    overrides = [o for o in train_overrides(tmp_path, synthetic, PLANETS, *LEARNS, "trainer.strategy=ddp",
                                            "trainer.devices=2", "trainer.accelerator=cpu",
                                            f"hydra.run.dir={tmp_path}/hydra")
                 if not o.startswith("evaluate.")]  # train.yaml has no evaluate section
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), *overrides], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=clean_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "world_size: 2" in proc.stderr + proc.stdout or "MEMBER: 2/2" in proc.stderr + proc.stdout, \
        proc.stderr[-4000:]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("robert").experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]  # one run, not one per process
    versions = client.search_model_versions("name='robert'")
    assert [v.version for v in versions] == [1] or [str(v.version) for v in versions] == ["1"]
    # CD pre-training ran in both processes on all-reduced statistics: the reconstruction error falls
    history = [m.value for m in sorted(client.get_metric_history(runs[0].info.run_id, "rbm1/train_recon_error"),
                                       key=lambda m: m.step)]
    assert len(history) == 2 and history[1] < history[0]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model("models:/robert/1").unwrap_python_model()
    assert model.molecules == MOLECULES and model.network.hidden == [64, 32, 16]
