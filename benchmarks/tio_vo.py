"""How well TiO and VO tell apart in the 901-bin emission spectrum, before and after their band models changed.

Two measurements, each from two opacity caches (before: TiO/VO from the band models of git ref ``--before-ref``,
built into build/bench/tio_vo/; after: the current cache), in the same run:

1. the RECOGNISER (``tio_vo_auc_noiseless``, ``tio_vo_auc_snr10``): the paper-regime DBN (experiment=paper: single
   gas with its fingerprint, the 901-point spectrum) trained on a TiO + VO fingerprint set of the five paper planets
   from each cache, through the project's own generate/train code (private MLflow store); the number is the
   pairwise validation ROC AUC of P(TiO) between TiO and VO spectra (:func:`robert.inference.calibration.pairwise_auc`),
   noiseless and with white noise at SNR 10;
2. a SIMPLE-CLASSIFIER PROXY (``proxy_*``): for each of the five planets it draws the
same temperature profiles and log-uniform abundances (conf/simulate prior, each gas's own range) for a TiO-only and
a VO-only atmosphere, computes their eclipse spectra with the product's forward model
(:func:`robert.physics.model.forward_model_from_config`) from each opacity cache, normalises them as
the recogniser sees them (:func:`robert.spectra.transforms.noisy_normalised`: min-max per spectrum, noise
sigma = mean depth / SNR), and fits a logistic regression (scikit-learn, standardised features) on
70 % of the draws; the printed numbers are its ROC AUC on the other 30 % (pairs are never split), over
all draws and (``*_strong``) over the pairs in which both gases have a strong fingerprint (feature
S/N >= 10 at the SNR: detectability x SNR x sqrt(n_bins), the fingerprint's significance under white noise).
AUC 0.5 = indistinguishable, 1 = always told apart. The last line is one JSON object.

Usage: python benchmarks/tio_vo.py [--before-ref c9f81de] [--before-cache DIR] [--after-cache build/opacities]
       [--n-per-planet 150] [--recogniser-spectra 2000] [--skip-recogniser] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from record import emit  # benchmarks/record.py, beside this script
from robert.errors import UserError, exit_on_user_error
from robert.physics.model import forward_model_from_config
from robert.physics.priors import sample_parameters
from robert.spectra.transforms import noisy_normalised, stable_seed

ROOT = Path(__file__).resolve().parents[1]
PLANETS = ("gj1214b", "gj436b", "hd189733b", "hd209458b", "wasp12b")
MOLECULES = ["TiO", "VO"]
MIN_PAIRS = 20  # pairs below which a proxy AUC is not reported (null)
STRONG_FEATURE_SNR = 10.0


def spectra(cache_dir: Path, n_per_planet: int, seed: int) -> tuple[np.ndarray, ...]:
    """(depth (2N, W), label 1 = TiO, pair id, detectability) over the five planets, the same draws for
    both gases; detectability = RMS(depth - depth without the gas) / mean depth, as in the datasets."""
    simulate = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/simulate/default.yaml"), resolve=True)
    simulate["compile"] = False
    depths, labels, pairs, detect = [], [], [], []
    for k, planet in enumerate(PLANETS):
        cfg = {"simulate": simulate,
               "planet": OmegaConf.to_container(OmegaConf.load(ROOT / f"conf/planet/{planet}.yaml"), resolve=True)}
        model = forward_model_from_config(cfg, MOLECULES, cache_dir)
        # each gas from its own prior range (the caps of conf/simulate): column 0 TiO, column 1 VO
        params, vmr = sample_parameters(model.settings, model.planet, n_per_planet, MOLECULES,
                                        torch.Generator().manual_seed(stable_seed("tio_vo", seed, planet)))
        only = torch.eye(2, dtype=vmr.dtype, device=vmr.device)
        bare = model(params, torch.zeros_like(vmr)).cpu().double().numpy()
        for label, active in ((1, vmr * only[0]), (0, vmr * only[1])):
            depth = model(params, active).cpu().double().numpy()
            depths.append(depth)
            detect.append(np.sqrt(((depth - bare) ** 2).mean(axis=1)) / depth.mean(axis=1))
            labels.append(np.full(n_per_planet, label))
            pairs.append(k * n_per_planet + np.arange(n_per_planet))
    return tuple(np.concatenate(x) for x in (depths, labels, pairs, detect))


def before_cache(ref: str, after: Path, out: Path) -> Path:
    """A copy of ``after`` with TiO and VO rebuilt from their conf/molecules files at git ``ref``."""
    import shutil
    import subprocess

    import yaml

    from robert.opacity.build import build_molecule
    from robert.opacity.xsec_hdf5 import read_xsec_hdf5

    out.mkdir(parents=True, exist_ok=True)
    for path in after.iterdir():
        if path.is_file() and path.name not in ("TiO.xsec.h5", "VO.xsec.h5"):
            shutil.copy2(path, out / path.name)
    opacity = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/opacity/default.yaml"))
    provenance = yaml.safe_load((out / "provenance.yaml").read_text())
    for name in MOLECULES:
        text = subprocess.run(["git", "show", f"{ref}:conf/molecules/{name}.yaml"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
        spec = yaml.safe_load(text)
        path, _ = build_molecule(spec, opacity, ROOT / "data", out)
        provenance[path.name] = read_xsec_hdf5(path).provenance
    (out / "provenance.yaml").write_text(yaml.safe_dump(provenance))
    return out


def recogniser_auc(cache: Path, which: str, n_per_planet: int, snr: float) -> dict[str, float]:
    """Pairwise TiO/VO validation AUC of the paper-regime DBN trained on this cache's fingerprint spectra."""
    from hydra import compose, initialize_config_dir

    from robert.data.dataset import resolve_planets
    from robert.inference.calibration import pairwise_auc
    from robert.simulate.generate import generate_planets
    from robert.spectra.detection import State
    from robert.training.evaluate import predictor
    from robert.training.train import build_datamodule, train

    out = ROOT / "build" / "bench" / "tio_vo" / which
    common = ["experiment=paper", "dataset.molecules=[TiO,VO]", f"dataset.spectra_per_planet={n_per_planet}",
              f"dataset.shard_size={n_per_planet}", f"dataset.out_dir={out}/datasets"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        generate_cfg = OmegaConf.to_container(compose("generate", ["planet=paper", f"cache_dir={cache}", *common]),
                                              resolve=True)
        train_cfg = OmegaConf.to_container(compose("evaluate", [
            *common, f"tracking.uri=sqlite:///{out}/mlflow.db", f"tracking.artifact_location={out}/artifacts",
            f"train.output={out}/model.json", f"train.checkpoint_dir={out}/checkpoints", "train.register=false",
            "trainer.progress_bar=false"]), resolve=True)
    generate_planets(generate_cfg, "paper", ROOT, log=lambda m: None, progress=False)
    result = train(train_cfg, ROOT)
    import mlflow

    model = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model()
    datamodule = build_datamodule(train_cfg, resolve_planets(train_cfg), ROOT)
    aucs = {}
    for name, level in (("noiseless", None), (f"snr{snr:g}", snr)):
        batch = datamodule.test_set(level, split="val")
        injected = (batch.states != int(State.ABSENT)).numpy()
        aucs[name] = float(pairwise_auc(predictor(model)(batch.observation), injected)[0, 1])
    return aucs


def validation_auc(depth: np.ndarray, label: np.ndarray, pair: np.ndarray, snr: float | None, seed: int) -> float:
    x = noisy_normalised(depth, snr, stable_seed("tio_vo noise", seed, snr)).numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    val_pairs = rng.permutation(np.unique(pair))[: int(0.3 * np.unique(pair).size)]
    val = np.isin(pair, val_pairs)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    clf.fit(x[~val], label[~val])
    return float(roc_auc_score(label[val], clf.predict_proba(x[val])[:, 1]))


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-ref", default="c9f81de", help="git ref of the old TiO/VO band models")
    parser.add_argument("--before-cache", type=Path, help="an existing before cache (default: built from the ref)")
    parser.add_argument("--after-cache", type=Path, default=ROOT / "build" / "opacities")
    parser.add_argument("--recogniser-spectra", type=int, default=2000, help="fingerprint spectra per planet")
    parser.add_argument("--skip-recogniser", action="store_true", help="the simple-classifier proxy only")
    parser.add_argument("--n-per-planet", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snr", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.before_cache is None:
        args.before_cache = before_cache(args.before_ref, args.after_cache,
                                         ROOT / "build" / "bench" / "tio_vo" / "cache")
    for cache in (args.before_cache, args.after_cache):
        if not all((cache / f"{m}.xsec.h5").exists() for m in MOLECULES):
            raise UserError(f"--before-cache/--after-cache {cache}: needs TiO.xsec.h5 and VO.xsec.h5 "
                            f"(build one with: python src/opacities.py opacity.cache_dir=DIR)")
    start = time.perf_counter()
    result: dict[str, object] = {}
    for suffix, cache in (("", args.after_cache), ("_before", args.before_cache)):
        depth, label, pair, detect = spectra(cache, args.n_per_planet, args.seed)
        # pairs in which both gases have a strong fingerprint: feature S/N >= 10 at the SNR
        feature_snr = np.nan_to_num(detect) * args.snr * np.sqrt(depth.shape[1])
        strong_pairs = [p for p in np.unique(pair) if np.all(feature_snr[pair == p] >= STRONG_FEATURE_SNR)]
        strong = np.isin(pair, strong_pairs)
        for name, rows in (("", np.ones_like(strong)), ("_strong", strong)):
            # too few pairs for a 70/30 split to mean anything (at the capped abundances strong pairs are rare)
            enough = len(np.unique(pair[rows])) >= MIN_PAIRS
            for level, key in ((None, "noiseless"), (args.snr, f"snr{args.snr:g}")):
                result[f"proxy_auc_{key}{name}{suffix}"] = round(
                    validation_auc(depth[rows], label[rows], pair[rows], level, args.seed), 4) if enough else None
        result[f"proxy_strong_pairs{suffix}"] = len(strong_pairs)
        if not args.skip_recogniser:
            aucs = recogniser_auc(cache, "after" if not suffix else "before", args.recogniser_spectra, args.snr)
            result |= {f"tio_vo_auc_{name}{suffix}": round(value, 4) for name, value in aucs.items()}
    result.update(proxy_spectra_per_cache=int(2 * args.n_per_planet * len(PLANETS)), proxy_classifier=(
        "logistic regression on min-max normalised 901-bin eclipse spectra, 70/30 split"),
        recogniser="paper-regime DBN (experiment=paper) on TiO+VO fingerprint spectra of the five paper planets",
        recogniser_spectra_per_planet=args.recogniser_spectra, elapsed_s=round(time.perf_counter() - start, 1))
    emit("tio_vo", result)


if __name__ == "__main__":
    main()
