"""Inference latency: one spectrum through the loaded pyfunc, batched throughput, the REST round trip.

    python benchmarks/predict.py [--model models:/robert@champion] [--batch 10000] [--threads 2] [--current-code]

Inputs are real simulated test spectra (the fixed test split, restricted to the model's coverage, noise at
SNR 10) written as published tables (bin centres and edges, depth, error; spectra one after another, each in
wavelength order as papers publish them, and again with each spectrum's rows shuffled), so every call does
what a user's call does: schema enforcement, validation, sorting where needed, bin averaging, scaling, the
DBN. (A batch whose spectra are interleaved row by row needs one global lexsort more:
~2.5 s per 3 million rows on this machine.)

* ``single_ms``: median of repeated ``mlflow.pyfunc.load_model(uri).predict(one table)``;
* ``batch_spectra_per_s``: one table of ``--batch`` spectra (told apart by ``spectrum``, each spectrum's rows in
  wavelength order, as published) per call;
* ``batch_shuffled_spectra_per_s``: the same table with each spectrum's rows shuffled (every spectrum sorted);
* ``array_spectra_per_s``: the network alone on (N, n_bins) arrays (the evaluation stage's path);
* ``rest_ms``: median HTTP round trip of one spectrum to ``mlflow models serve`` on 127.0.0.1.

Targets (issue 7): single < 50 ms, batch >= 10,000 spectra/s on 2 cores, REST < 200 ms. The last stdout
line is one JSON object with every number.

Which code runs: in this process, the checkout's ``robert`` (already imported here; MLflow puts the copy logged
with the version on ``sys.path`` but keeps imported modules); in the REST server, a fresh process, the copy
logged with the version (``code_paths``). ``--current-code`` makes both this checkout's: it logs the
version's artifacts (weights, coverage, calibration, signature, example) again with the current package into a
temporary store (deleted afterwards) and measures that; nothing is retrained, the project's store is only read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from robert.cli import load_config, load_model, use_tracking  # noqa: E402
from robert.data.datamodule import load_splits, resolve_planets  # noqa: E402
from robert.inference.serve import post_dataframe, served  # noqa: E402
from robert.spectra.coverage import Coverage, restrict_spectra  # noqa: E402
from robert.spectra.transforms import add_noise, stable_seed  # noqa: E402


def test_tables(coverage: Coverage, n: int, snr: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``n`` test spectra on the coverage as one published-format table (each spectrum's rows shuffled, and in
    wavelength order), and their noisy depths."""
    cfg = load_config(ROOT, "train")
    planets = resolve_planets(cfg, "all")
    test = load_splits(ROOT / cfg["data"]["dataset_dir"], cfg["composition"]["kind"], planets, cfg["data"])["test"]
    test = restrict_spectra(test, coverage)  # the model's own bins (identity for the full grid)
    rows = np.resize(np.arange(len(test)), n)
    clean = torch.as_tensor(test.depth[rows], dtype=torch.float64)
    noisy = add_noise(clean, snr, torch.Generator().manual_seed(stable_seed("bench", seed))).numpy()
    error = np.repeat(clean.mean(1, keepdim=True).numpy() / snr, coverage.n_bins, axis=1)
    table = pd.DataFrame({"spectrum": np.repeat([f"s{i}" for i in range(n)], coverage.n_bins),
                          "wavelength_um": np.tile(coverage.centres_um, n),
                          "bin_low_um": np.tile(coverage.bin_low_um, n),
                          "bin_high_um": np.tile(coverage.bin_high_um, n),
                          "depth": noisy.ravel(), "depth_err": error.ravel()})
    # each spectrum's rows in a random order, spectra one after the other (a batch of published tables)
    order = np.random.default_rng(seed).permuted(np.arange(len(table)).reshape(n, coverage.n_bins), axis=1)
    return table.iloc[order.ravel()].reset_index(drop=True), table, noisy


def relog_with_current_code(uri: str, store: Path) -> str:
    """Log ``uri``'s artifacts, signature and input example with this checkout's ``robert`` package into a new
    SQLite store under ``store`` (now the tracking store); returns the model URI there."""
    import mlflow
    from mlflow.models import Model

    import robert
    from robert.tracking.pyfunc import RobertModel
    from robert.tracking.registry import resolve_model_uri
    from robert.tracking.setup import configure_tracking

    ref = resolve_model_uri(uri)
    source = Path(mlflow.artifacts.download_artifacts(ref.version_uri, dst_path=str(store / "source")))
    logged = Model.load(str(source / "MLmodel"))
    artifacts = {name: str(source / entry["path"])
                 for name, entry in logged.flavors["python_function"]["artifacts"].items()}
    configure_tracking({"kind": "local", "uri": f"sqlite:///{store / 'mlflow.db'}", "experiment": "benchmark",
                        "artifact_location": str(store / "artifacts")}, ROOT)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=RobertModel(), artifacts=artifacts,
            code_paths=[str(Path(robert.__file__).parent)], signature=logged.signature,
            input_example=logged.load_input_example(str(source)), registered_model_name=ref.name,
            pip_requirements=str(source / "requirements.txt"))
    return f"models:/{ref.name}/{info.registered_model_version}"


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="registered model URI (default: predict.model of conf/predict.yaml)")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--batch", type=int, default=10000, help="spectra per batched call")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--current-code", action="store_true",
                        help="measure this checkout's inference code with the model's weights (see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT)
    uri = args.model or cfg["predict"]["model"]
    use_tracking(cfg, ROOT, args.tracking_uri)
    with tempfile.TemporaryDirectory() as store:
        measured = relog_with_current_code(uri, Path(store)) if args.current_code else uri
        result = measure(measured, args)
    result["model"] = uri + (" (current code)" if args.current_code else "")
    print(f"model {result['model']} ({result['coverage']}, {result['n_bins']} bins), {args.threads} torch threads, "
          f"load average {result['load_average']:.1f}")
    print(f"one spectrum through the loaded pyfunc: {result['single_ms']} ms median (target < 50 ms)")
    print(f"batches of {args.batch}: {result['batch_spectra_per_s']} spectra/s, rows in wavelength order as published "
          f"(target >= 10,000); {result['batch_shuffled_spectra_per_s']} spectra/s, rows shuffled in each spectrum; "
          f"network alone: {result['array_spectra_per_s']} spectra/s")
    print(f"REST round trip, one spectrum: {result['rest_ms']} ms median (target < 200 ms)")
    print(json.dumps(result))


def measure(uri: str, args: argparse.Namespace) -> dict:
    """Every number of the benchmark for registered model ``uri`` in the current tracking store."""
    import mlflow

    loaded = mlflow.pyfunc.load_model(load_model(uri)[1].version_uri)
    model = loaded.unwrap_python_model()
    if model.coverage is None:
        sys.exit(f"error: {uri} was logged before observed-spectrum support; pass --model of a newer version")
    coverage = model.coverage
    batch, in_order, depths = test_tables(coverage, args.batch, 10.0, 0)
    one = batch[batch["spectrum"] == "s0"].drop(columns="spectrum")

    for _ in range(3):
        loaded.predict(one)  # warm-up: first calls allocate and compile nothing but still pay page faults
    single = timed(lambda: loaded.predict(one), args.repeats)
    batch_times = timed(lambda: loaded.predict(batch), 3)
    sorted_times = timed(lambda: loaded.predict(in_order), 3)
    x = depths.astype(np.float32)
    array_times = timed(lambda: model.predict_proba(x), 5)
    with tempfile.TemporaryDirectory() as tmp, served(uri, mlflow.get_tracking_uri(), Path(tmp) / "serve.log") as url:
        status, answer = post_dataframe(url, one)
        if status != 200:
            sys.exit(f"error: the server answered {status}: {answer}")
        rest = timed(lambda: post_dataframe(url, one), args.repeats)

    return {
        "model": uri, "coverage": coverage.name, "n_bins": coverage.n_bins, "threads": args.threads,
        "single_ms": round(1e3 * statistics.median(single), 2),
        "single_p90_ms": round(1e3 * sorted(single)[int(0.9 * len(single))], 2),
        "batch_size": args.batch, "batch_spectra_per_s": round(args.batch / min(sorted_times)),
        "batch_shuffled_spectra_per_s": round(args.batch / min(batch_times)),
        "array_spectra_per_s": round(args.batch / min(array_times)),
        "rest_ms": round(1e3 * statistics.median(rest), 2),
        "rest_p90_ms": round(1e3 * sorted(rest)[int(0.9 * len(rest))], 2),
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    main()
