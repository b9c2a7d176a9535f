"""Beyond one process, tested for real on this machine: DDP training that logs to an MLflow tracking server.

Lightning DDP on CPU (``trainer.strategy=ddp``, 2 processes, gloo) trains the tiny preset through the entry
script with ``tracking=server``, against a real ``mlflow server`` (SQLite backend + artifact root in a temp dir,
bound to 127.0.0.1): one MLflow run (not one per process) and one registered version, found on the server, with
the artifacts in the server's artifact root. One test for both: each costs a slow start (the server, the two
processes) on two shared cores.
"""

from __future__ import annotations

import contextlib
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

from helpers.config import ROOT, compose_config
from helpers.runs import ready_store, run_config, run_overrides
from helpers.scripts import clean_env
from helpers.synthetic import MOLECULES, PLANETS, write_synthetic_dataset
from robert.training.train import build_datamodule

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
# two pre-training epochs (the CD error must fall across them), a short rest of the schedule
SHORT = ("model.pretrain.epochs_per_layer=2", "model.top.epochs=1", "model.finetune.epochs=3",
         "model.generative.epochs=1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(tmp: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ready_store(tmp)  # already migrated: the server starts without MLflow's schema migrations
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
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
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.mark.slow
def test_ddp_training_on_cpu_with_two_processes_logs_one_run_to_a_tracking_server(synthetic, tmp_path):
    with mlflow_server(tmp_path) as url:
        overrides = [o for o in run_overrides(tmp_path, synthetic, PLANETS, *SHORT, "trainer.strategy=ddp",
                                              "trainer.devices=2", "trainer.accelerator=cpu", "tracking=server",
                                              f"tracking.uri={url}", "tracking.artifact_location=null",
                                              f"hydra.run.dir={tmp_path}/hydra")
                     if not o.startswith("evaluate.")]  # train.yaml has no evaluate section
        proc = subprocess.run([sys.executable, str(ROOT / "src" / "train.py"), *overrides], cwd=ROOT,
                              capture_output=True, text=True, timeout=600, env=clean_env())
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert "world_size: 2" in proc.stderr + proc.stdout or "MEMBER: 2/2" in proc.stderr + proc.stdout, \
            proc.stderr[-4000:]
        client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
        experiment = client.get_experiment_by_name(compose_config("train")["tracking"]["experiment"])
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 1, [r.info.run_id for r in runs]  # one run, not one per process
        run = runs[0]
        assert run.info.status == "FINISHED" and run.data.params["planets"] == ",".join(PLANETS)
        assert {i.tags[0].value for i in run.inputs.dataset_inputs} == {"training", "validation", "testing"}
        versions = client.search_model_versions("name='robert'")
        assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == run.info.run_id
        # CD pre-training ran in both processes on all-reduced statistics: the reconstruction error falls
        history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "rbm1/train_recon_error"),
                                           key=lambda m: m.step)]
        assert len(history) == 2 and history[1] < history[0]
        # every phase ran, in order, once (the epochs are not doubled by the two processes)
        phases = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "phase"), key=lambda m: m.step)]
        assert phases == [0.0] * 4 + [1.0] + [2.0] * 3 + [3.0]  # two stacked RBMs, top RBM, fine-tuning, generative
        # the artifacts went through the server into its artifact root, not into a local mlruns/
        assert any((tmp_path / "server-artifacts").rglob("weights.pt"))
        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        model = mlflow.pyfunc.load_model("models:/robert/1").unwrap_python_model()
        assert model.molecules == MOLECULES and model.network.hidden == [64, 32, 16]
        cfg = run_config(tmp_path, synthetic, PLANETS, *SHORT)
        val = build_datamodule(cfg, PLANETS, ROOT).observed_set("val")
        probabilities = model.predict_proba(model.network.encode(val.observation).numpy())
        assert probabilities.shape == (len(val), len(MOLECULES)) and np.isfinite(probabilities).all()
