"""The registered model: a :class:`mlflow.pyfunc.PythonModel` wrapping the fine-tuned DBN classifier.

Why pyfunc and not ``mlflow.pytorch``: MLflow 3.17 logs torch models in the torch.export format,
which loads back as a traced graph, not the DBN (DESIGN.md section 8). The weights are a plain
``state_dict`` (``torch.save``; loaded with ``weights_only=True``) plus a JSON spec of the network;
the class lives in this package, which is logged with the model (``code_paths``), so
``mlflow.pyfunc.load_model("models:/robert/<version>")`` works in a fresh process.

Input (the logged signature; CLI, Python and REST): an observed spectrum as published, a DataFrame
with ``wavelength_um, depth, depth_err`` (+ optional ``bin_low_um, bin_high_um, instrument, spectrum``),
rows in any order, several spectra told apart by ``spectrum``; parameter ``drop_outside``. Output: one
row per (spectrum, molecule) with the probability, ``detected`` (at the threshold calibrated on the
validation set), ``constrained`` and a verdict (:mod:`robert.inference.predictor`). Bad input raises a
one-line error (an ``MlflowException``, HTTP 400 when served).

Also, bypassing the signature (``unwrap_python_model()``, as the evaluation stage does): a 2-D array,
one spectrum of ``n_visible`` eclipse depths on the model's own bins per row, RAW (Fp/Fs) OR already
min-max normalised (normalising is idempotent) -> a DataFrame with one column per molecule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException

from robert.errors import UserError
from robert.inference.calibration import Calibration
from robert.inference.observed import ObservedSpectra, validate_frame
from robert.inference.predictor import predict_observed
from robert.model.dbn import DeepBeliefNetwork
from robert.spectra.coverage import Coverage
from robert.spectra.transforms import normalise


def network_spec(n_visible: int, molecules: list[str], model: dict[str, Any], seed: int) -> dict[str, Any]:
    """What :func:`build_network` needs to rebuild the network before loading its weights.

    ``generative_trained``: every stacked RBM and the top RBM had pre-training epochs, so the generative
    path (dreams) holds learnt weights, not its random initialisation.
    """
    epochs = model["pretrain"]["epochs_per_layer"]
    stack_epochs = list(epochs) if isinstance(epochs, list | tuple) else [epochs]
    return {"n_visible": n_visible, "molecules": molecules, "hidden": list(model["hidden"]),
            "visible": model["visible"], "n_persistent_chains": model["pretrain"]["n_persistent_chains"],
            "seed": seed, "generative_trained": min(stack_epochs) > 0 and model["top"]["epochs"] > 0}


def build_network(spec: dict[str, Any]) -> DeepBeliefNetwork:
    return DeepBeliefNetwork(spec["n_visible"], len(spec["molecules"]), spec["hidden"], spec["visible"],
                             spec["n_persistent_chains"], spec["seed"])


def save_network(network: DeepBeliefNetwork, spec: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write weights + spec under ``directory``; returns the pyfunc ``artifacts`` mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    weights, spec_path = directory / "weights.pt", directory / "network.json"
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, weights)
    spec_path.write_text(json.dumps(spec, indent=2))
    return {"weights": str(weights), "network": str(spec_path)}


class RobertModel(mlflow.pyfunc.PythonModel):
    """P(molecule present) for each row of eclipse depths (raw or normalised)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        spec = json.loads(Path(context.artifacts["network"]).read_text())
        self.molecules: list[str] = spec["molecules"]
        # Specs written before the key existed come from pre-trained models (robert v1): trained.
        self.generative_trained: bool = bool(spec.get("generative_trained", True))
        self.network = build_network(spec)
        state = torch.load(context.artifacts["weights"], weights_only=True)
        # Versions logged before input standardisation existed lack its buffers: identity scaling.
        state = {"input_mean": self.network.input_mean, "input_std": self.network.input_std} | state
        self.network.load_state_dict(state)
        self.network.eval()
        # Observed-spectrum support (robert.inference.package); absent from versions logged before it.
        self.coverage: Coverage | None = None
        self.calibration: Calibration | None = None
        self.matching: dict[str, Any] = {}
        if "coverage" in context.artifacts and "calibration" in context.artifacts:
            coverage = json.loads(Path(context.artifacts["coverage"]).read_text())
            self.coverage, self.matching = Coverage.from_dict(coverage), coverage["matching"]
            self.calibration = Calibration.from_dict(json.loads(Path(context.artifacts["calibration"]).read_text()))

    def predict_proba(self, spectra: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, n_molecules) probabilities for an (N, n_visible) array."""
        x = torch.as_tensor(np.asarray(spectra, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.network.n_visible:
            raise UserError(f"expected spectra of shape (N, {self.network.n_visible}); got {tuple(x.shape)}")
        return self.network.predict_proba(normalise(x)).numpy()

    # No type hints on purpose: MLflow would convert the input by them (list[...] of rows); the
    # model is logged with an explicit tensor signature instead.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        if isinstance(model_input, pd.DataFrame) and "wavelength_um" in model_input.columns:
            try:
                return self.predict_observed(model_input, bool((params or {}).get("drop_outside", False)))
            except UserError as exc:  # MLflow reports its own exceptions as one message (HTTP 400 served)
                raise MlflowException.invalid_parameter_value(str(exc)) from None
        return pd.DataFrame(self.predict_proba(np.asarray(model_input)), columns=self.molecules)

    def predict_observed(self, spectra: pd.DataFrame | ObservedSpectra, drop_outside: bool = False,
                         model_label: str = "") -> pd.DataFrame:
        """Observed spectra (a published-format table, or already validated) -> one row per (spectrum, molecule)."""
        label = model_label or (self.coverage.registered_model if self.coverage else "this model")
        if self.coverage is None or self.calibration is None:
            raise UserError(f"{label} was logged without coverage.json/calibration.json (before observed-spectrum "
                            "support): retrain it with `python src/train.py` to predict observed spectra")
        if isinstance(spectra, pd.DataFrame):
            spectra = validate_frame(spectra, "input", min_points=int(self.matching["min_points"]),
                                     default_name="spectrum")
        return predict_observed(self.network, self.molecules, self.coverage, self.calibration, self.matching,
                                spectra, label, drop_outside)
