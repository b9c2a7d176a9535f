"""Design benchmark: the measurements behind the recogniser's defaults, each an ablation of one choice.

    python benchmarks/design.py [--only inputs,continuum,standardise,init,undetectable,precision,width,epochs,
                                       observation,batch,prior,profile,steps,data,caps] [--model dbn] [overrides...]

Each variant trains the default model (``conf/model/dbn.yaml`` unless ``--model``) on the realistic set with one
setting changed, through the project's own train and evaluate code, into a private MLflow store under
build/bench/design/, and is scored on the headline test set (whole grid, white noise at data.snr):

* inputs: the channels the network reads ([depth, detrended] | with a mask channel too; the paper's [depth] alone
  is the paper regime's, in benchmarks/train.py);
* continuum: what the second channel measures a cell's deviation from, in sigma: the spectrum's own quadratic
  continuum in log wavelength (``detrended``, the default) or its mean (``white``);
* standardise: per-input standardisation of what the classifier reads, on or off;
* init: where the DBN's fine-tuning starts (Glorot weights | the pre-trained stack, as the paper's DBN);
* undetectable: an injected gas below the detection threshold as a negative target or left out of the loss
  (the latter is judged by the false-alarm rate on absent gases and completeness on detectable ones);
* precision: fine-tuning in bfloat16 autocast (CD steps stay float32), for speed where the CPU has bf16 units;
* width: the first hidden layer, the paper's 500 units or 1,000 (is the any-coverage model short of capacity?);
* epochs: fine-tuning epochs, the default 120 or half of them (what the longer training buys);
* observation: what the training spectra look like: the any-coverage prior (``observation=any``) or the headline
  test's own convention alone (``observation=white``: the whole grid, white noise at data.snr): the price of one
  model for every coverage, so this choice also scores every model on the coverage presets (``evaluate.coverages``);
* batch: 256 rows per step instead of 128, the fine-tuning rate scaled by sqrt(2) or 2 (does a step do more?);
* prior: the whole-grid share of the coverage prior doubled to 0.3 (the headline test's case drawn more often);
* profile: detection labels from the Delta chi^2 profiled over a continuum and the other gases' templates
  (``labels.profile=gases``, robert.spectra.nuisance) instead of the plain one: every variant is scored on both
  significance axes (``plain_*``, ``profiled_*``), whichever its labels use;
* steps: half the batch (64 rows) at the same rate, twice the optimiser steps per epoch (is the DBN short of
  updates rather than of epochs?);
* data: twice the training atmospheres (8,000 per planet, generated first with ``python src/generate.py planet=all
  dataset.spectra_per_planet=8000 dataset.out_dir=build/datasets-8k``; its test split is drawn from those 8,000,
  so it is scored on other test spectra of the same prior): is it short of data rather than of epochs?
* caps: the training prior without the element caps (TiO, VO and SiO drawn up to 1e-2 like the other gases,
  ``simulate.mixing_ratio.log10_max=null``; generated first with ``python src/generate.py planet=all
  simulate.mixing_ratio.log10_max=null dataset.out_dir=build/datasets-uncapped``): what the physical abundances
  cost or buy; scored on its own prior's test spectra, as ``data``.
Last line: one JSON object, variant -> macro-F1, worst completeness at feature S/N >= 10, worst false-alarm rate,
training seconds (with ``width``, ``epochs``, ``observation``, ``batch`` or ``prior`` also over the presets:
``coverage_completeness_min``, ``coverage_false_alarm_rate_max``, ``coverage_macro_f1_mean``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from record import emit, timed_training  # benchmarks/record.py, beside this script
from robert.training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench" / "design"
# each choice's alternatives to the defaults (inputs [depth, detrended], standardised, Glorot start, negative)
VARIANTS = {
    "inputs": {"depth+detrended+mask": ["model.inputs=[depth,detrended,mask]"]},
    "continuum": {"white": ["model.inputs=[depth,white]"]},
    "standardise": {"raw": ["model.standardise_inputs=false"]},
    "init": {"stack": ["model.finetune.init=stack"]},
    "undetectable": {"ignore": ["labels.undetectable=ignore"]},
    "precision": {"bf16-mixed": ["trainer.precision=bf16-mixed"]},
    "width": {"1000-200-50": ["model.hidden=[1000,200,50]"]},
    "epochs": {"60": ["model.finetune.epochs=60"]},
    "observation": {"white": ["observation=white"]},
    "batch": {"256, lr 1.4e-3": ["model.batch_size=256", "model.finetune.lr=1.4e-3"],
              "256, lr 2e-3": ["model.batch_size=256", "model.finetune.lr=2e-3"]},
    "prior": {"whole grid 0.3": ["observation.coverage.weights.full=0.3"]},
    "profile": {"gases": ["labels.profile=gases"]},
    "steps": {"batch 64": ["model.batch_size=64"]},
    "data": {"8,000 per planet": ["dataset.spectra_per_planet=8000", "dataset.out_dir=build/datasets-8k"]},
    "caps": {"none": ["simulate.mixing_ratio.log10_max=null", "dataset.out_dir=build/datasets-uncapped"]},
}
# choices judged on the coverage presets too (evaluate.coverages from conf/evaluate.yaml, not skipped)
WITH_COVERAGES = {"width", "epochs", "observation", "batch", "prior"}
KEYS = ("macro_f1", "completeness_snr_ge_10_min", "completeness_snr_5_10_min", "false_alarm_rate_max", "accuracy",
        "plain_completeness_snr_ge_10_min", "plain_completeness_snr_5_10_min",
        "profiled_completeness_snr_ge_10_min", "profiled_completeness_snr_5_10_min")


def run(label: str, overrides: list[str], coverages: bool = False) -> dict:
    name = re.sub(r"[^A-Za-z0-9.]+", "-", label)  # a path and a Hydra value: no commas or spaces
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="evaluate", overrides=[
            f"tracking.uri=sqlite:///{OUT}/mlflow.db", f"tracking.artifact_location={OUT}/artifacts",
            "tracking.experiment=robert-design", f"train.output={OUT}/{name}/model.json",
            f"train.checkpoint_dir={OUT}/checkpoints", f"evaluate.out_dir={OUT}/{name}/evaluate",
            "trainer.progress_bar=false", *([] if coverages else ["evaluate.coverages=[]"]), *overrides]),
            resolve=True)
    result, seconds = timed_training(cfg, ROOT)
    cfg["evaluate"]["model_version"] = result.registered_version
    summary = evaluate(cfg, ROOT)
    out = {k: round(float(summary[k]), 4) for k in KEYS if k in summary} | {"train_seconds": round(seconds, 1)}
    presets = list(summary.get("coverage", {}).values())
    if presets:  # over the presets: the worst gas each preset constrains, and the mean macro-F1
        out |= {"coverage_completeness_min": round(min(float(r["completeness_snr_ge_10_min"]) for r in presets), 4),
                "coverage_false_alarm_rate_max": round(max(float(r["false_alarm_rate_max"]) for r in presets), 4),
                "coverage_macro_f1_mean": round(sum(float(r["macro_f1"]) for r in presets) / len(presets), 4)}
    print(f"{label}: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated of: {', '.join(VARIANTS)}")
    parser.add_argument("--model", default="dbn", help="the model config (conf/model/) every variant starts from")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every variant")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    choices = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in choices if c not in VARIANTS]
    if unknown:
        parser.error(f"unknown choice {unknown[0]!r}; expected some of: {', '.join(VARIANTS)}")
    coverages = bool(WITH_COVERAGES & set(choices))
    report: dict = {"model": args.model,
                    "default": run("default", [f"model={args.model}", *args.overrides], coverages)}
    for choice in choices:
        if choice == "init" and args.model != "dbn":
            continue
        report[choice] = {variant: run(f"{choice}-{variant}", [f"model={args.model}", *extra, *args.overrides],
                                       coverages)
                          for variant, extra in VARIANTS[choice].items()}
    emit("design" if set(report) - {"model", "default"} == set(VARIANTS) else "design_" + "_".join(
        k for k in report if k not in ("model", "default")), report)


if __name__ == "__main__":
    main()
