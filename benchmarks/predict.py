"""Inference latency and throughput through the loaded pyfunc on published tables, and the REST round trip.

    python benchmarks/predict.py [--model URI] [--geometry emission|transmission] [--batch 10000] [--threads 2]
                                 [--tracking-uri URI] [--current-code] [--override KEY=VALUE ...]

Inputs are the model's own test spectra (the fixed test split of the training set of its geometry:
``conf/train.yaml``, plus ``experiment=transmission`` for a transmission model, plus ``--override``s), noisy at
SNR 10, written as published tables on the full 1-20 um grid (bin centres and edges, depth, error; spectra one
after another, each in wavelength order as papers publish them, and again with each spectrum's rows shuffled).
So every call does what a user's call does: schema enforcement, validation, sorting where needed, placing the
rows on the grid, the "not constrained" test against the stored reference atmospheres, the DBN.

* ``single_ms``: median of ``mlflow.pyfunc.load_model(uri).predict(one table)`` (901 rows);
* ``example_ms``: the same for the shipped example of the model's geometry (examples/: partial coverage, rows
  beyond the grid dropped);
* ``batch_spectra_per_s``: one table of ``--batch`` spectra (told apart by ``spectrum``, rows in wavelength order);
* ``batch_shuffled_spectra_per_s``: the same table with each spectrum's rows shuffled (every spectrum sorted);
* ``batch_unwrapped_spectra_per_s``: the in-order table through the unwrapped Python model (``predict_observed``:
  what is left without MLflow's input-schema enforcement);
* ``network_spectra_per_s``: the network alone on the encoded inputs of that batch (what the table path adds);
* ``rest_ms``: median HTTP round trip of one spectrum to ``mlflow models serve`` on 127.0.0.1.

Targets: single < 50 ms, batch >= 10,000 spectra/s on 2 cores, REST < 200 ms. The last stdout line
is one JSON object with every number.

Which code runs: in this process, the checkout's ``robert`` (already imported here; MLflow puts the copy logged
with the version on ``sys.path`` but keeps imported modules); in the REST server, a fresh process, the copy logged
with the version (``code_paths``). ``--current-code`` makes both this checkout's: it logs the version's artifacts
(weights, inference settings, references, signature, example) again with the current package into a temporary
store (deleted afterwards) and measures that; nothing is retrained, the project's store is only read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from record import emit  # benchmarks/record.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from robert.cli import load_config, load_model, use_tracking  # noqa: E402
from robert.inference.grid_mapping import cached_mapping, observe_rows_on_grid  # noqa: E402
from robert.inference.serve import post_dataframe, served  # noqa: E402
from robert.spectra.resample import grid_cells_um  # noqa: E402
from robert.spectra.transforms import add_noise, stable_seed  # noqa: E402

EXAMPLES = {"emission": ROOT / "examples" / "hd189733b_emission.csv",
            "transmission": ROOT / "examples" / "hd209458b_transmission.csv"}
EXPERIMENT = {"emission": [], "transmission": ["experiment=transmission"]}  # the training set of each geometry


def test_depths(geometry: str, overrides: Sequence[str]) -> np.ndarray:
    """(N, 901) clean test spectra of the training set of ``geometry``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from robert.data.dataset import resolve_planets
    from robert.training.train import build_datamodule

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", [*EXPERIMENT[geometry], *overrides]), resolve=True)
    return build_datamodule(cfg, resolve_planets(cfg), ROOT).split("test").depth


def published_tables(depths: np.ndarray, grid_um: np.ndarray, n: int, snr: float,
                     seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` spectra (test spectra repeated as needed, each with its own noise) as one published table on the grid
    cells, rows in wavelength order, and the same table with each spectrum's rows shuffled."""
    rows = np.resize(np.arange(len(depths)), n)
    clean = torch.as_tensor(depths[rows], dtype=torch.float64)
    noisy = add_noise(clean, snr, torch.Generator().manual_seed(stable_seed("bench", seed))).numpy()
    n_cells = len(grid_um)
    error = np.repeat(clean.mean(1, keepdim=True).numpy() / snr, n_cells, axis=1)
    low, high = grid_cells_um(grid_um)
    in_order = pd.DataFrame({"spectrum": np.repeat([f"s{i}" for i in range(n)], n_cells),
                             "wavelength_um": np.tile(grid_um, n), "bin_low_um": np.tile(low, n),
                             "bin_high_um": np.tile(high, n), "depth": noisy.ravel(), "depth_err": error.ravel()})
    order = np.random.default_rng(seed).permuted(np.arange(len(in_order)).reshape(n, n_cells), axis=1)
    return in_order, in_order.iloc[order.ravel()].reset_index(drop=True)


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


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def median_ms(times: list[float]) -> float:
    return round(1e3 * statistics.median(times), 2)


def p90_ms(times: list[float]) -> float:
    return round(1e3 * sorted(times)[int(0.9 * len(times))], 2)


def measure(uri: str, args: argparse.Namespace) -> dict:
    """Every number of the benchmark for registered model ``uri`` in the current tracking store."""
    import mlflow

    loaded = mlflow.pyfunc.load_model(load_model(uri)[1].version_uri)
    model = loaded.unwrap_python_model()
    if model.settings is None:
        sys.exit(f"error: {uri} was logged before any-coverage support (no inference.json); pass --model of a newer "
                 "version")
    geometry = model.geometry
    grid = np.asarray(model.settings["grid_um"])
    in_order, shuffled = published_tables(test_depths(geometry, args.override), grid, args.batch, 10.0, 0)
    one = in_order[in_order["spectrum"] == "s0"].drop(columns="spectrum")
    example = pd.read_csv(EXAMPLES[geometry], comment="#")

    for _ in range(3):
        loaded.predict(one)  # warm-up: first calls allocate and compile nothing but still pay page faults
    single = timed(lambda: loaded.predict(one), args.repeats)
    example_times = timed(lambda: loaded.predict(example), args.repeats)
    batch_times = timed(lambda: loaded.predict(in_order), 3)
    shuffled_times = timed(lambda: loaded.predict(shuffled), 3)
    unwrapped_times = timed(lambda: model.predict_observed(in_order), 3)
    low, high = grid_cells_um(grid)
    mapping = cached_mapping(low, high, grid, float(model.settings["observed"]["min_bin_fraction"]))
    shape = (args.batch, len(grid))
    observation, _ = observe_rows_on_grid(mapping, in_order["depth"].to_numpy().reshape(shape),
                                          in_order["depth_err"].to_numpy().reshape(shape))
    with torch.no_grad():
        encoded = model.network.encode(observation).numpy()
    network_times = timed(lambda: model.predict_proba(encoded), 5)
    with tempfile.TemporaryDirectory() as tmp, served(uri, mlflow.get_tracking_uri(), Path(tmp) / "serve.log") as url:
        status, answer = post_dataframe(url, one)
        if status != 200:
            sys.exit(f"error: the server answered {status}: {answer}")
        rest = timed(lambda: post_dataframe(url, one), args.repeats)

    return {
        "model": uri, "geometry": geometry, "n_grid": len(grid), "threads": args.threads,
        "single_ms": median_ms(single), "single_p90_ms": p90_ms(single),
        "example": EXAMPLES[geometry].name, "example_ms": median_ms(example_times),
        "batch_size": args.batch, "batch_spectra_per_s": round(args.batch / min(batch_times)),
        "batch_shuffled_spectra_per_s": round(args.batch / min(shuffled_times)),
        "batch_unwrapped_spectra_per_s": round(args.batch / min(unwrapped_times)),
        "network_spectra_per_s": round(args.batch / min(network_times)),
        "rest_ms": median_ms(rest), "rest_p90_ms": p90_ms(rest),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="registered model URI (default: predict.models.<geometry> of "
                                        "conf/predict.yaml)")
    parser.add_argument("--geometry", choices=("emission", "transmission"), default="emission",
                        help="which configured model, when --model is not given")
    parser.add_argument("--tracking-uri")
    parser.add_argument("--batch", type=int, default=10000, help="spectra per batched call")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a conf/train.yaml override locating the test spectra (repeatable)")
    parser.add_argument("--current-code", action="store_true",
                        help="measure this checkout's inference code with the model's weights (see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT)
    uri = args.model or cfg["predict"]["models"][args.geometry]
    use_tracking(cfg, ROOT, args.tracking_uri)
    with tempfile.TemporaryDirectory() as store:
        measured = relog_with_current_code(uri, Path(store)) if args.current_code else uri
        result = measure(measured, args)
    result["model"] = uri + (" (current code)" if args.current_code else "")
    print(f"model {result['model']} ({result['geometry']}, {result['n_grid']}-cell grid), {args.threads} torch "
          f"threads, load average {result['load_average']:.1f}")
    print(f"one spectrum (901 rows) through the loaded pyfunc: {result['single_ms']} ms median (target < 50 ms); "
          f"{result['example']}: {result['example_ms']} ms")
    print(f"batches of {args.batch}: {result['batch_spectra_per_s']} spectra/s, rows in wavelength order as published "
          f"(target >= 10,000); {result['batch_shuffled_spectra_per_s']} spectra/s, rows shuffled in each spectrum; "
          f"{result['batch_unwrapped_spectra_per_s']} spectra/s without MLflow's input enforcement; network alone: "
          f"{result['network_spectra_per_s']} spectra/s")
    print(f"REST round trip, one spectrum: {result['rest_ms']} ms median (target < 200 ms)")
    emit("predict", result)


if __name__ == "__main__":
    main()
