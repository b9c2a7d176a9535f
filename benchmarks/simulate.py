"""Forward-model benchmark: speed, convergence, and agreement with TauREx 3 on the same opacities.

    python benchmarks/simulate.py [--geometry emission|transmission] [--cases 20] [--speed-spectra 2048]
                                  [--paper-spectra 17150] [simulate overrides...]

1. speed: spectra/s of our EmissionModel (or TransmissionModel, ``--geometry transmission``, which
   reads conf/simulate/transmission.yaml) at the default settings (one gas, H2O, + CIA + Rayleigh,
   no cloud deck; HD 209458 b) on this machine's cores, best of 3;
2. TauREx 3 (with numba, one process per core, the same cores) on >= 20 random cases: the paper's five
   planets, ten molecules, Guillot profiles, through our cache (cross-sections in TauREx's HDF5
   layout, CIA in HITRAN format), binned exactly as ours; the same cases timed for its speed
   (transmission: cloud-free, plus ``--cloudy-cases`` with decks from the cloud prior, reported apart
   as ``cloudy_*``: TauREx makes whole layers opaque, we block exactly below the deck's radius);
3. convergence: the median relative change of the binned spectrum on those cases when the internal
   resolution, the layer count and the angle count are doubled;
4. the paper-scale set (85,750 spectra): the real generator (with each injected gas's fingerprint,
   which costs one extra spectrum per gas) timed on one planet and extrapolated.
Last line: one JSON object (spectra_per_s, taurex_spectra_per_s, ratio, median_rel_diff, max_rel_diff,
min_pearson, paper_set_seconds, peak_rss_mb, ...). Needs the default cache (`dvc repro opacities`)
and the optional extra `validate` for TauREx.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # TauREx: one numba thread per process, one process per core

import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from record import emit  # benchmarks/record.py, beside this script
from robert.physics.config import SimulateSettings  # noqa: E402
from robert.physics.model import ForwardModel, forward_model_from_config  # noqa: E402
from robert.physics.priors import sample_parameters  # noqa: E402
from robert.validation.taurex_compare import (  # noqa: E402
    case_for_taurex,
    compare,
    configure_taurex_cache,
    our_depths,
    random_cases,
    taurex_depth,
)

ROOT = Path(__file__).resolve().parents[1]
PLANETS = ("gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b")
PAPER_SET = 85_750
MODELS: dict[str, ForwardModel] = {}  # planet -> model at the benchmarked settings


def config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("generate", overrides=list(overrides)), resolve=True)


def build_models(overrides: list[str], molecules: list[str], cache: Path) -> dict[str, ForwardModel]:
    models = {}
    for planet in PLANETS:
        models[planet] = forward_model_from_config(config(f"planet={planet}", *overrides), molecules, cache)
    return models


def _init_taurex_worker(cache: str) -> None:
    torch.set_num_threads(1)
    configure_taurex_cache(Path(cache))


def taurex_depths(cases: list[dict], cache: Path, processes: int) -> tuple[np.ndarray, float, float]:
    """TauREx binned depths for every case, and its spectra/s with ``processes`` worker processes: counting
    only its forward model (``model()``, the fair peer of our call) and counting everything (set-up too)."""
    jobs = [case_for_taurex(MODELS, c) for c in cases]
    # spawn, not fork: a forked child of a process that already ran torch's thread pool can hang
    with mp.get_context("spawn").Pool(processes, initializer=_init_taurex_worker, initargs=(str(cache),)) as pool:
        pool.map(taurex_depth, jobs[:processes], chunksize=1)  # warm-up: numba JIT, opacity loading
        start = time.perf_counter()
        results = pool.map(taurex_depth, jobs, chunksize=1)
        elapsed = time.perf_counter() - start
    model_seconds = sum(seconds for _, seconds in results) / processes  # the processes ran side by side
    return np.array([depth for depth, _ in results]), len(cases) / model_seconds, len(cases) / elapsed


def speed(overrides: list[str], cache: Path, n: int) -> float:
    """Spectra/s of one planet's model with one gas (H2O) + CIA + Rayleigh (no cloud deck), best of 3."""
    model = build_models(overrides, ["H2O"], cache)["hd209458b"]
    params, vmr = sample_parameters(model.settings, model.planet, n, model.molecules, torch.Generator().manual_seed(0))
    model(params[:model.settings.chunk_size], vmr[:model.settings.chunk_size])  # warm-up and compilation
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        model(params, vmr)
        best = max(best, n / (time.perf_counter() - start))
    return best


def convergence(overrides: list[str], molecules: list[str], cache: Path, cases: list[dict],
                base: np.ndarray) -> dict[str, float]:
    settings = SimulateSettings.from_config(config(*overrides)["simulate"])
    doubled = {"resolution": [f"simulate.spectral_stride={settings.spectral_stride // 2}"]
               if settings.spectral_stride % 2 == 0 else None,
               "layers": [f"simulate.n_layers={2 * settings.n_layers}"],
               # transmission has no angles (chords instead): reported as null
               "angles": [f"simulate.n_angles={2 * settings.n_angles}"] if settings.geometry == "emission" else None}
    out = {}
    for name, extra in doubled.items():
        if extra is None:  # the cache has no finer grid to compare with, or the geometry has no such setting
            out[f"converged_{name}_median_change"] = out[f"converged_{name}_p95_change"] = None
            continue
        merged = {o.split("=")[0]: o for o in [*overrides, *extra]}  # a doubled value replaces the base one
        models = build_models(list(merged.values()), molecules, cache)
        for case in cases:  # layer count changes the profile grid: recompute T on the new layers
            model = models[case["planet"]]
            case_t = case["temperature_K"]
            old = np.concatenate([MODELS[case["planet"]].layer_bar.double().cpu().numpy(),
                                  MODELS[case["planet"]].levels_bar[-1:].double().cpu().numpy()])
            new = model.profile_bar.double().cpu().numpy()
            case[f"t_{name}"] = torch.as_tensor(np.interp(np.log(new), np.log(old), case_t.numpy()))
        other = np.array([models[c["planet"]].depth_from_profiles(
            c[f"t_{name}"].to(models[c["planet"]].settings.dtype)[None], c["x"])[0].double().numpy() for c in cases])
        change = np.abs(other - base) / base
        out[f"converged_{name}_median_change"] = float(np.median(change))
        out[f"converged_{name}_p95_change"] = float(np.quantile(change, 0.95))
    return out


def paper_set_seconds(overrides: list[str], cache: Path, n: int) -> tuple[float, float, float]:
    """Run the real generator (src/generate.py, a child process) on n single-gas spectra of one planet.

    Returns (seconds extrapolated to 85,750 spectra, spectra/s, the child's peak RSS in MB).
    """
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / "src" / "generate.py"), "planet=hd209458b", f"cache_dir={cache}",
               f"dataset.out_dir={out}/datasets", f"dataset.spectra_per_planet={n}",  # shards as configured
               *overrides]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return PAPER_SET * elapsed / n, n / elapsed, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geometry", choices=("emission", "transmission"), default="emission")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--cloudy-cases", type=int, default=10, help="transmission: extra cases with a cloud deck")
    # 2048: a call of 512 spectra measured 1,400/s and one of 2,048 2,200/s on the same 2 cores (transmission,
    # 2026-12-02): the first chunks of a call run slower, and a generator's call is a whole shard (2,450)
    parser.add_argument("--speed-spectra", type=int, default=2048)
    # one planet's share of the paper set: the extrapolation (x5) is then the real per-planet stage, start-up,
    # compilation and detectabilities included (with 980 spectra the start-up was most of the time)
    parser.add_argument("--paper-spectra", type=int, default=17150)
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "opacities")
    parser.add_argument("--speed-only", action="store_true",
                        help="only our spectra/s and the generator's paper-set time (no TauREx: e.g. on a GPU "
                             "machine with device=cuda, where TauREx is not installed)")
    parser.add_argument("overrides", nargs="*", help="simulate config overrides, e.g. n_angles=4")
    args = parser.parse_args()
    # the geometry's preset (conf/simulate/<geometry>.yaml), then the user's overrides
    preset = ["simulate=transmission"] if args.geometry == "transmission" else []
    overrides = [*preset, *(f"simulate.{o}" for o in args.overrides)]
    cores = len(os.sched_getaffinity(0))
    load_at_start = os.getloadavg()[0]  # the machine is shared: record how busy it was
    torch.set_num_threads(cores)
    molecules = list(config()["dataset"]["molecules"])

    ours_per_s = speed(overrides, args.cache, args.speed_spectra)
    print(f"ours ({args.geometry}): {ours_per_s:.0f} spectra/s on {cores} cores (one gas + CIA + Rayleigh)",
          flush=True)

    # first, while the generator is the only child process (so its peak RSS is the children's maximum)
    paper_seconds, generate_per_s, generate_peak_mb = paper_set_seconds(overrides, args.cache, args.paper_spectra)
    print(f"generator (src/generate.py, with detectability, set-up included): {generate_per_s:.0f} spectra/s "
          f"-> paper set {paper_seconds:.0f} s, peak RSS {generate_peak_mb:.0f} MB")
    if args.speed_only:
        emit("simulate_speed", {"spectra_per_s": round(ours_per_s, 1), "paper_set_seconds": round(paper_seconds, 1),
                          "generate_spectra_per_s": round(generate_per_s, 1), "peak_rss_mb": round(generate_peak_mb, 1),
                          "cores": cores, "overrides": args.overrides, "geometry": args.geometry,
                          "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"})
        return

    MODELS.update(build_models(overrides, molecules, args.cache))
    cases = random_cases(MODELS, PLANETS, args.cases)
    ours = our_depths(MODELS, cases)
    theirs, taurex_per_s, taurex_wall_per_s = taurex_depths(cases, args.cache, cores)
    result = compare(ours, theirs, [{k: c[k] for k in ("planet", "molecule", "vmr")} for c in cases])
    for row in result.per_case:
        print(f"  {row['planet']:>9} {row['molecule']:>5} vmr {row['vmr']:.1e}: median |rel diff| "
              f"{row['median_rel_diff']:.2e}, max {row['max_rel_diff']:.2e}, pearson {row['pearson']:.5f}")
    print(f"TauREx 3: {taurex_per_s:.1f} spectra/s with {cores} processes (forward model only; "
          f"{taurex_wall_per_s:.1f}/s including its set-up per spectrum)", flush=True)
    cloudy = {}
    if args.geometry == "transmission" and args.cloudy_cases > 0:
        with_decks = [c for c in random_cases(MODELS, PLANETS, 4 * args.cloudy_cases, seed=11, clouds=True)
                      if np.isfinite(c["cloud_top_bar"])][:args.cloudy_cases]
        deck_result = compare(our_depths(MODELS, with_decks), taurex_depths(with_decks, args.cache, cores)[0],
                              [{k: c[k] for k in ("planet", "molecule", "vmr", "cloud_top_bar")} for c in with_decks])
        for row in deck_result.per_case:
            print(f"  {row['planet']:>9} {row['molecule']:>5} vmr {row['vmr']:.1e} deck {row['cloud_top_bar']:.1e} bar:"
                  f" median |rel diff| {row['median_rel_diff']:.2e}, pearson {row['pearson']:.5f}")
        cloudy = {"cloudy_cases": len(with_decks), "cloudy_median_rel_diff": deck_result.median_rel_diff,
                  "cloudy_max_rel_diff": deck_result.max_rel_diff, "cloudy_min_pearson": deck_result.min_pearson}

    conv = convergence(overrides, molecules, args.cache, cases, ours)
    print("convergence (median relative change when doubled):", conv, flush=True)

    emit("simulate", {
        "spectra_per_s": round(ours_per_s, 1), "taurex_spectra_per_s": round(taurex_per_s, 2),
        "taurex_spectra_per_s_with_setup": round(taurex_wall_per_s, 2),
        "ratio": round(ours_per_s / taurex_per_s, 1), "median_rel_diff": result.median_rel_diff,
        "max_rel_diff": result.max_rel_diff,
        "worst_case_median_rel_diff": max(c["median_rel_diff"] for c in result.per_case),
        "min_pearson": result.min_pearson,
        "paper_set_seconds": round(paper_seconds, 1), "generate_spectra_per_s": round(generate_per_s, 1),
        "peak_rss_mb": round(generate_peak_mb, 1),
        "benchmark_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cases": len(cases), "cores": cores, **conv, "overrides": args.overrides,
        "geometry": args.geometry, **cloudy,
        "load_average_1min": [round(load_at_start, 2), round(os.getloadavg()[0], 2)]})


if __name__ == "__main__":
    main()
