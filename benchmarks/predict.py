"""Inference latency: one spectrum through the loaded pyfunc, batched throughput, the REST round trip.

    python benchmarks/predict.py [--model models:/robert@champion] [--batch 10000] [--threads 2]

Inputs are real simulated test spectra (the fixed test split, restricted to the model's coverage, noise at
SNR 10) written as published tables (bin centres and edges, depth, error; each spectrum's rows shuffled,
spectra one after another), so every call does what a user's call does: schema enforcement, validation,
sorting, bin averaging, scaling, the DBN. (A batch whose spectra are interleaved row by row needs one
global lexsort more: ~2.5 s per 3 million rows on this machine.)

* ``single_ms``: median of repeated ``mlflow.pyfunc.load_model(uri).predict(one table)``;
* ``batch_spectra_per_s``: one table of ``--batch`` spectra (told apart by ``spectrum``) per call;
* ``array_spectra_per_s``: the network alone on (N, n_bins) arrays (the evaluation stage's path);
* ``rest_ms``: median HTTP round trip of one spectrum to ``mlflow models serve`` on 127.0.0.1.

Targets (issue 7): single < 50 ms, batch >= 10,000 spectra/s on 2 cores, REST < 200 ms. The last stdout
line is one JSON object with every number.
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
from robert.data.spectra import add_noise, stable_seed  # noqa: E402
from robert.inference.coverage import Coverage, restrict_spectra  # noqa: E402
from robert.inference.serve import post_dataframe, served  # noqa: E402


def test_tables(coverage: Coverage, n: int, snr: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` test spectra on the coverage as one published-format table, and their noisy depths."""
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
    return table.iloc[order.ravel()].reset_index(drop=True), noisy


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT)
    uri = args.model or cfg["predict"]["model"]
    use_tracking(cfg, ROOT, args.tracking_uri)
    import mlflow

    loaded = mlflow.pyfunc.load_model(load_model(uri)[1].version_uri)
    model = loaded.unwrap_python_model()
    if model.coverage is None:
        sys.exit(f"error: {uri} was logged before observed-spectrum support; pass --model of a newer version")
    coverage = model.coverage
    batch, depths = test_tables(coverage, args.batch, 10.0, 0)
    one = batch[batch["spectrum"] == "s0"].drop(columns="spectrum")

    for _ in range(3):
        loaded.predict(one)  # warm-up: first calls allocate and compile nothing but still pay page faults
    single = timed(lambda: loaded.predict(one), args.repeats)
    batch_times = timed(lambda: loaded.predict(batch), 3)
    x = depths.astype(np.float32)
    array_times = timed(lambda: model.predict_proba(x), 5)
    with tempfile.TemporaryDirectory() as tmp, served(uri, mlflow.get_tracking_uri(), Path(tmp) / "serve.log") as url:
        status, answer = post_dataframe(url, one)
        if status != 200:
            sys.exit(f"error: the server answered {status}: {answer}")
        rest = timed(lambda: post_dataframe(url, one), args.repeats)

    result = {
        "model": uri, "coverage": coverage.name, "n_bins": coverage.n_bins, "threads": args.threads,
        "single_ms": round(1e3 * statistics.median(single), 2),
        "single_p90_ms": round(1e3 * sorted(single)[int(0.9 * len(single))], 2),
        "batch_size": args.batch, "batch_spectra_per_s": round(args.batch / min(batch_times)),
        "array_spectra_per_s": round(args.batch / min(array_times)),
        "rest_ms": round(1e3 * statistics.median(rest), 2),
        "rest_p90_ms": round(1e3 * sorted(rest)[int(0.9 * len(rest))], 2),
        "load_average": os.getloadavg()[0],
    }
    print(f"model {uri} ({coverage.name}, {coverage.n_bins} bins), {args.threads} torch threads, "
          f"load average {result['load_average']:.1f}")
    print(f"one spectrum through the loaded pyfunc: {result['single_ms']} ms median (target < 50 ms)")
    print(f"batches of {args.batch}: {result['batch_spectra_per_s']} spectra/s (target >= 10,000); "
          f"network alone: {result['array_spectra_per_s']} spectra/s")
    print(f"REST round trip, one spectrum: {result['rest_ms']} ms median (target < 200 ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
