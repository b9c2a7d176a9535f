"""What a trained model carries for inference on observed spectra, logged with it by the training run.

* ``coverage.json``: the model's input bins (:class:`robert.spectra.coverage.Coverage`) and the
  matching settings (``inference.observed``);
* ``calibration.json``: per-molecule thresholds and the validation ROC AUC vs SNR
  (:class:`robert.inference.calibration.Calibration`);
* the signature: an observed-spectrum table in (``wavelength_um, depth, depth_err`` + optional columns), one
  row per (spectrum, molecule) out, and the ``drop_outside`` parameter; the input example: a simulated
  validation spectrum in that published format, noisy at the training SNR.

All JSON: loading a model reads no pickle beyond MLflow's own PythonModel file (see the README's warning).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from robert.inference.calibration import calibrate
from robert.inference.observed import BIN_COLUMNS, REQUIRED_COLUMNS, TEXT_COLUMNS
from robert.inference.predictor import OUTPUT_COLUMNS
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.coverage import Coverage
from robert.spectra.transforms import add_noise, stable_seed

if TYPE_CHECKING:
    from robert.data.datamodule import SpectraDataModule

COVERAGE_FILE, CALIBRATION_FILE = "coverage.json", "calibration.json"


@dataclass
class InferencePackage:
    artifacts: dict[str, str]      # pyfunc artifact name -> local path
    input_example: pd.DataFrame
    signature: ModelSignature
    metrics: dict[str, float]      # validation numbers worth a metric in the run


def observed_signature() -> ModelSignature:
    inputs = Schema([*(ColSpec("double", c) for c in REQUIRED_COLUMNS),
                     *(ColSpec("double", c, required=False) for c in BIN_COLUMNS),
                     *(ColSpec("string", c, required=False) for c in TEXT_COLUMNS)])
    outputs = Schema([ColSpec(kind, name) for name, kind in OUTPUT_COLUMNS.items()])
    return ModelSignature(inputs, outputs, ParamSchema([ParamSpec("drop_outside", "boolean", False)]))


def model_coverage(datamodule: SpectraDataModule, registered_model: str) -> Coverage:
    """The datamodule's coverage; the whole grid when it was built without one."""
    if datamodule.coverage is not None:
        return datamodule.coverage
    grid = datamodule.split("train").wavelength_um
    return Coverage.from_config({"name": "full", "registered_model": registered_model, "segments": [
        {"low_um": float(grid[0]), "high_um": float(grid[-1]), "spacing": "native"}]}, grid)


def observed_example(datamodule: SpectraDataModule, coverage: Coverage, snr: float | None, seed: int) -> pd.DataFrame:
    """One validation spectrum as a published table: bin centres and edges, depth with noise, its error."""
    depth = torch.as_tensor(datamodule.split("val").depth[:1], dtype=torch.float64)
    noisy = add_noise(depth, snr, torch.Generator().manual_seed(stable_seed("example", seed)))[0].numpy()
    error = np.full(coverage.n_bins, float(depth.mean()) / (snr or 1e3))  # noiseless training: SNR 1000
    return pd.DataFrame({"wavelength_um": coverage.centres_um, "depth": noisy, "depth_err": error,
                         "bin_low_um": coverage.bin_low_um, "bin_high_um": coverage.bin_high_um})


def package_for_inference(network: DeepBeliefNetwork, datamodule: SpectraDataModule, cfg: Mapping,
                          directory: Path) -> InferencePackage:
    """Calibrate on the validation split and write the inference artifacts under ``directory``."""
    settings = cfg["inference"]
    coverage = model_coverage(datamodule, cfg["tracking"]["registered_model"])

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network.predict_proba(torch.as_tensor(x)).numpy()

    calibration = calibrate(predict, lambda snr: datamodule.noisy_set("val", snr), datamodule.molecules,
                            datamodule.snr, settings["calibration"])
    directory.mkdir(parents=True, exist_ok=True)
    coverage_path, calibration_path = directory / COVERAGE_FILE, directory / CALIBRATION_FILE
    coverage_path.write_text(json.dumps(coverage.to_dict() | {"matching": dict(settings["observed"])}, indent=2))
    calibration_path.write_text(json.dumps(calibration.to_dict(), indent=2))
    metrics = {f"val_final/f1_at_threshold_{m}": float(f) for m, f in zip(calibration.molecules,
                                                                            calibration.validation_f1, strict=True)}
    if datamodule.snr in calibration.snr_grid:
        worst = calibration.separability()[0][calibration.snr_grid.index(float(datamodule.snr))]
        metrics |= {f"val_final/min_pair_auc_{m}": float(a) for m, a in zip(calibration.molecules, worst, strict=True)
                    if np.isfinite(a)}
    return InferencePackage({"coverage": str(coverage_path), "calibration": str(calibration_path)},
                            observed_example(datamodule, coverage, datamodule.snr, int(cfg["seed"])),
                            observed_signature(), metrics)
