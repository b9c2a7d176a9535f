"""The registered model: a :class:`mlflow.pyfunc.PythonModel` wrapping a trained recogniser.

Why pyfunc and not ``mlflow.pytorch``: MLflow 3.17 logs torch models in the torch.export format, which loads
back as a traced graph, not the network (DESIGN.md section 8). The weights are a plain ``state_dict``
(``torch.save``; loaded with ``weights_only=True``) plus a JSON spec of the network
(:mod:`robert.model.serialization`); the classes live in this package, which is logged with the model
(``code_paths``), so ``mlflow.pyfunc.load_model("models:/robert@champion")`` works in a fresh process.

Input (the logged signature; CLI, Python and REST): observed spectra as published, a DataFrame with
``wavelength_um, depth, depth_err`` (+ optional ``bin_low_um, bin_high_um, instrument, spectrum, geometry``),
rows in any order and any coverage within 1-20 um, several spectra told apart by ``spectrum``. Output: one row
per (spectrum, molecule) with the probability and the verdict detected / not detected / not constrained
(:mod:`robert.inference.predictor`). Rows outside the grid are dropped and listed (``frame.attrs``). Bad input
raises a one-line error (an ``MlflowException``, HTTP 400 when served).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from robert.errors import UserError
from robert.inference.constraints import ConstraintReferences
from robert.inference.observed import ObservedSpectra, validate_frame
from robert.inference.predictor import predict_observed
from robert.inference.thresholds import model_thresholds
from robert.model.serialization import load_network


class RobertModel(mlflow.pyfunc.PythonModel):
    """Detected / not detected / not constrained per molecule for observed spectra of any coverage."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.network, spec = load_network(Path(context.artifacts["weights"]), Path(context.artifacts["network"]))
        self.molecules: list[str] = spec["molecules"]
        # Specs written before the key existed come from pre-trained models: trained.
        self.generative_trained: bool = bool(spec.get("generative_trained", True))
        self.labels: dict[str, Any] = spec.get("labels", {"kind": "injected"})
        self.settings: dict[str, Any] | None = None
        self.references: ConstraintReferences | None = None
        if "inference" in context.artifacts:  # absent from versions logged before any-coverage support
            self.settings = json.loads(Path(context.artifacts["inference"]).read_text())
            self.references = ConstraintReferences.load(Path(context.artifacts["references"]))

    @property
    def geometry(self) -> str:
        return (self.settings or {}).get("geometry", "emission")

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        """(N, n_molecules) probabilities for an (N, n_inputs) array of already encoded network inputs."""
        import torch

        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.network.n_inputs:
            raise UserError(f"expected encoded inputs of shape (N, {self.network.n_inputs}); got {tuple(x.shape)}")
        return self.network.predict_proba(x).numpy()

    # A DataFrame hint is one MLflow neither converts nor validates by (the model is logged with a signature, and
    # predict checks the table itself); without a hint MLflow advises adding one in every process that loads it
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ANN001
        try:
            if not isinstance(model_input, pd.DataFrame):
                raise UserError("expected a table of observed spectra (columns wavelength_um, depth, depth_err)")
            return self.predict_observed(model_input)
        except UserError as exc:  # MLflow reports its own exceptions as one message (HTTP 400 served)
            raise MlflowException.invalid_parameter_value(str(exc)) from None

    def predict_observed(self, spectra: pd.DataFrame | ObservedSpectra, model_label: str = "") -> pd.DataFrame:
        """Observed spectra (a published-format table, or already validated) -> one row per (spectrum, molecule)."""
        label = model_label or "this model"
        if self.settings is None or self.references is None:
            raise UserError(f"{label} was logged before any-coverage support (no inference.json): retrain it with "
                            "`python src/train.py` to predict observed spectra")
        if isinstance(spectra, pd.DataFrame):
            spectra = validate_frame(spectra, "input", min_points=int(self.settings["observed"]["min_points"]),
                                     default_name="spectrum")
        wrong = [(name, g) for name, g in zip(spectra.names, spectra.geometries or [], strict=False)
                 if g and g != self.geometry]
        if wrong:
            raise UserError(f"spectrum {wrong[0][0]!r} says geometry {wrong[0][1]}, but {label} reads "
                            f"{self.geometry} spectra: use the {wrong[0][1]} model")
        return predict_observed(self.network, self.molecules, np.asarray(self.settings["grid_um"]), self.references,
                                {"thresholds": model_thresholds(self.settings, self.molecules),
                                 "min_bin_fraction": self.settings["observed"]["min_bin_fraction"],
                                 "level_instruments": self.settings.get("level_instruments", False)},
                                spectra, self.geometry, label)
