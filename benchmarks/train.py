"""Training benchmark: the default training + evaluation, a mixture model, and inference throughput.

    python benchmarks/train.py [--skip-mixture] [train overrides...]

1. the default model (conf/train.yaml: 500-200-50 DBN, planet=all, single gas, SNR 10) trained and
   evaluated on the fixed test set by the real stage code (`train` then `evaluate`), timed;
2. the same model settings on `composition=mixture` (1-4 gases per spectrum; needs
   `python src/generate.py planet=<p> composition=mixture` for each planet), scored by macro-F1 on
   its own fixed test set;
3. inference: the registered model loaded back as pyfunc, spectra/s on batches of 10,000 and the
   time of one spectrum.
Everything is logged to a private MLflow store under build/bench/train/ (the project's registry and
its @champion are left alone). Last line: one JSON object (test_accuracy, mixture_macro_f1,
train_seconds, evaluate_seconds, inference_spectra_per_s, single_spectrum_ms, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from robert.tracking.registry import load_robert_model
from robert.training.evaluate import evaluate
from robert.training.train import train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "train"


def config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[
            f"tracking.uri=sqlite:///{OUT}/mlflow.db", f"tracking.artifact_location={OUT}/artifacts",
            f"train.output={OUT}/model.json", f"train.checkpoint_dir={OUT}/checkpoints",
            f"evaluate.out_dir={OUT}/evaluate", "trainer.progress_bar=false", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def train_and_evaluate(cfg: dict) -> tuple[dict, float, float, str]:
    start = time.perf_counter()
    result = train(cfg, ROOT)
    train_seconds = time.perf_counter() - start
    cfg["evaluate"]["model_version"] = result.registered_version
    start = time.perf_counter()
    summary = evaluate(cfg, ROOT)
    return summary, train_seconds, time.perf_counter() - start, result.registered_version


def inference_speed(version: str) -> tuple[float, float]:
    """(spectra/s on batches of 10,000, ms for one spectrum) through the registered pyfunc model."""
    model, _ = load_robert_model(f"models:/robert/{version}")
    rng = np.random.default_rng(0)
    batch = rng.random((10_000, model.network.n_visible)).astype(np.float32)
    model.predict_proba(batch)  # warm-up
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        model.predict_proba(batch)
        runs.append(time.perf_counter() - start)
    single = []
    for row in batch[:50]:
        start = time.perf_counter()
        model.predict_proba(row[None])
        single.append(time.perf_counter() - start)
    return len(batch) / min(runs), 1e3 * float(np.median(single))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-mixture", action="store_true")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
          flush=True)

    summary, train_seconds, evaluate_seconds, version = train_and_evaluate(config(*args.overrides))
    print(f"single gas: test accuracy {summary['test_accuracy']:.4f}, macro-F1 {summary['macro_f1']:.4f}; "
          f"train {train_seconds:.0f} s, evaluate {evaluate_seconds:.0f} s", flush=True)
    report = {"test_accuracy": round(summary["test_accuracy"], 4), "macro_f1": round(summary["macro_f1"], 4),
              "train_seconds": round(train_seconds, 1), "evaluate_seconds": round(evaluate_seconds, 1),
              "total_seconds": round(train_seconds + evaluate_seconds, 1), "n_test": summary["n_test"],
              "f1": {k: round(v, 4) for k, v in summary["f1"].items()}}

    speed, single_ms = inference_speed(version)
    report |= {"inference_spectra_per_s": round(speed), "single_spectrum_ms": round(single_ms, 2)}
    print(f"inference: {speed:,.0f} spectra/s (batches of 10,000), one spectrum {single_ms:.2f} ms", flush=True)

    if not args.skip_mixture:
        mixture, mixture_seconds, _, _ = train_and_evaluate(config("composition=mixture", *args.overrides))
        report |= {"mixture_macro_f1": round(mixture["macro_f1"], 4),
                   "mixture_exact_match": round(mixture["exact_match"], 4),
                   "mixture_train_seconds": round(mixture_seconds, 1), "mixture_n_test": mixture["n_test"]}
        print(f"mixture: macro-F1 {mixture['macro_f1']:.4f}, exact match {mixture['exact_match']:.4f}", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
