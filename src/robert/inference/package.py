"""What a trained model carries for inference on observed spectra, logged with it by the training run.

* ``inference.json``: the model grid (bin centres, micron), the geometry, each molecule's detection thresholds,
  shared and per calibrated coverage with that coverage's model-grid cells (:mod:`robert.inference.thresholds`),
  the row-matching settings (``inference.observed``) and whether the levels between instruments are free
  (``level_instruments``: the training prior had ``observation.offsets``);
* ``references.npz``: the reference atmospheres of the "not constrained" test (:mod:`robert.inference.constraints`),
  plain float16 arrays;
* the signature: an observed-spectrum table in (``wavelength_um, depth, depth_err`` + optional bin edges,
  ``instrument``, ``spectrum``, ``geometry``), one row per (spectrum, molecule) out; the input example: a
  simulated validation spectrum in that published format, noisy at the headline SNR.

Nothing here is pickled: loading a model reads JSON and ``np.load(allow_pickle=False)`` arrays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from robert.data.batches import observe_unlabelled
from robert.inference.constraints import ConstraintSettings, build_references, reference_floors
from robert.inference.observed import BIN_COLUMNS, REQUIRED_COLUMNS, TEXT_COLUMNS
from robert.inference.predictor import OUTPUT_COLUMNS
from robert.inference.thresholds import DetectionThresholds, ThresholdSettings, false_alarm_thresholds
from robert.model.base import Recogniser
from robert.physics.config import SimulateSettings
from robert.spectra.detection import LabelSettings
from robert.spectra.observation import Observation, Observer
from robert.spectra.resample import grid_cells_um
from robert.spectra.transforms import add_noise, stable_seed

if TYPE_CHECKING:
    from robert.data.datamodule import SpectraDataModule

SETTINGS_FILE, REFERENCES_FILE = "inference.json", "references.npz"
WHOLE_GRID = "full"  # conf/instrument/full.yaml: the whole model grid, a coverage the thresholds are calibrated on


@dataclass
class InferencePackage:
    artifacts: dict[str, str]      # pyfunc artifact name -> local path
    input_example: pd.DataFrame
    signature: ModelSignature


def observed_signature() -> ModelSignature:
    inputs = Schema([*(ColSpec("double", c) for c in REQUIRED_COLUMNS),
                     *(ColSpec("double", c, required=False) for c in BIN_COLUMNS),
                     *(ColSpec("string", c, required=False) for c in TEXT_COLUMNS)])
    outputs = Schema([ColSpec(kind, name) for name, kind in OUTPUT_COLUMNS.items()])
    return ModelSignature(inputs, outputs)


def observed_example(depth: np.ndarray, grid_um: np.ndarray, snr: float | None, seed: int) -> pd.DataFrame:
    """One clean spectrum as a published table on the grid: bin centres and edges, noisy depth, its error."""
    clean = torch.as_tensor(depth[None], dtype=torch.float64)
    noisy = add_noise(clean, snr, torch.Generator().manual_seed(stable_seed("example", seed)))[0].numpy()
    low, high = grid_cells_um(grid_um)
    error = np.full(len(grid_um), float(depth.mean()) / (snr or 1e3))  # noiseless: SNR 1000
    return pd.DataFrame({"wavelength_um": grid_um, "depth": noisy, "depth_err": error, "bin_low_um": low,
                         "bin_high_um": high})


def detection_thresholds(predict: Callable[[Observation], np.ndarray], datamodule: SpectraDataModule,
                         settings: ThresholdSettings, seed: int) -> DetectionThresholds:
    """Each molecule's thresholds on P (``predict``: observed spectra -> (B, M) probabilities):
    ``settings.threshold`` for all, or set by the false-alarm rate on the validation split observed
    ``calibration_draws`` times under the training prior (fresh draws from ``seed``); with
    ``preset_false_alarm_rate``, each calibrated coverage (the whole grid and each instrument preset of the prior)
    gets its own at that rate on ``preset_calibration_draws`` draws, and the shared thresholds are raised to hold on
    every one of them too (:mod:`robert.inference.thresholds`)."""
    n_molecules = len(datamodule.molecules)
    if settings.false_alarm_rate is None:
        return DetectionThresholds(np.full(n_molecules, settings.threshold))

    fetcher = datamodule.fetcher("val")
    absent = (fetcher.injected <= 0.5).numpy()  # not injected: absent under any observation (State.ABSENT)

    def at_rate(observer: Observer, key: str, draws: int, rate: float) -> np.ndarray:
        probs = [predict(observe_unlabelled(fetcher, observer, stable_seed(key, seed, draw))) for draw in range(draws)]
        return false_alarm_thresholds(np.concatenate(probs), np.tile(absent, (draws, 1)), rate, settings.threshold)

    shared = at_rate(datamodule.observer, "calibration", settings.calibration_draws, settings.false_alarm_rate)
    if settings.preset_false_alarm_rate is None:
        return DetectionThresholds(shared)
    names = list(dict.fromkeys([WHOLE_GRID, *datamodule.prior.coverage.presets]))
    cells, own = np.zeros((len(names), datamodule.n_grid), dtype=bool), np.zeros((len(names), n_molecules))
    for i, name in enumerate(names):
        prior, bank = datamodule.preset_view(name, field="inference (the coverages thresholds are calibrated on)")
        cells[i] = (bank.segments[0] >= 0).numpy()
        observer = datamodule.observer_for(prior, bank, stable_seed("calibration patterns", seed, name))
        own[i] = at_rate(observer, f"calibration/{name}", settings.preset_calibration_draws,
                         settings.preset_false_alarm_rate)
    return DetectionThresholds(np.maximum(shared, own.max(0)), tuple(names), cells, own, settings.coverage_match)


def package_for_inference(network: Recogniser, datamodule: SpectraDataModule, cfg: Mapping,
                          directory: Path) -> InferencePackage:
    """The inference artifacts under ``directory``, from the validation split."""
    settings = cfg["inference"]
    decision = ThresholdSettings.from_config(settings)
    thresholds = detection_thresholds(lambda observation: network.observed_proba(observation).numpy(), datamodule,
                                      decision, int(cfg["seed"]))
    val = datamodule.split("val")
    constraint = ConstraintSettings.from_config(settings["constraint"])
    labels = LabelSettings.from_config(cfg["labels"])
    log10_vmr = np.log10(np.clip(val.vmr().astype(np.float64), 1e-300, None))
    prior = SimulateSettings.from_config(cfg["simulate"])  # each gas's VMR range (a metal's budget caps some)
    floors = reference_floors(constraint, prior.log10_vmr_range, [prior.vmr_range_of(m) for m in datamodule.molecules])
    references = build_references(val.depth, val.delta, val.pair_index, val.pair_molecule, log10_vmr, floors,
                                  constraint, labels.min_chi2, stable_seed("references", cfg["seed"]))
    directory.mkdir(parents=True, exist_ok=True)
    settings_path, references_path = directory / SETTINGS_FILE, directory / REFERENCES_FILE
    geometry = cfg.get("simulate", {}).get("geometry", "emission")
    settings_path.write_text(json.dumps({
        "grid_um": datamodule.wavelength_um.tolist(), "geometry": geometry,
        **thresholds.to_settings(datamodule.molecules),
        "false_alarm_rate": decision.false_alarm_rate, "preset_false_alarm_rate": decision.preset_false_alarm_rate,
        # trained with free offsets between instruments: inference reads each instrument against its own level
        "level_instruments": cfg["observation"].get("offsets") is not None,
        "observed": dict(settings["observed"]), "molecules": datamodule.molecules,
        "constraint": {"min_log10_vmr": constraint.min_log10_vmr, "min_fraction": constraint.min_fraction,
                       "min_chi2": labels.min_chi2,
                       # where a gas's prior range differs from the common one (written since element caps)
                       "min_log10_vmr_by_molecule": {m: round(float(f), 2) for m, f in zip(
                           datamodule.molecules, floors, strict=True) if abs(f - constraint.min_log10_vmr) > 1e-9}}},
        indent=2))
    references.save(references_path)
    example = observed_example(val.depth[0], datamodule.wavelength_um, datamodule.snr, int(cfg["seed"]))
    return InferencePackage({"inference": str(settings_path), "references": str(references_path)}, example,
                            observed_signature())


__all__ = ["InferencePackage", "detection_thresholds", "observed_example", "observed_signature",
           "package_for_inference"]
