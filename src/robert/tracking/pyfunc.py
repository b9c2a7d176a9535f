"""The registered model: a :class:`mlflow.pyfunc.PythonModel` wrapping the fine-tuned DBN classifier.

Why pyfunc and not ``mlflow.pytorch``: MLflow 3.17 logs torch models in the torch.export format,
which loads back as a traced graph, not the DBN (DESIGN.md section 8). The weights are a plain
``state_dict`` (``torch.save``; loaded with ``weights_only=True``) plus a JSON spec of the network;
the class lives in this package, which is logged with the model (``code_paths``), so
``mlflow.pyfunc.load_model("models:/robert/<version>")`` works in a fresh process.

Input: a 2-D array or DataFrame, one spectrum of ``n_visible`` eclipse depths per row, RAW
(Fp/Fs) OR already min-max normalised: the model min-max normalises every row itself, and that
is idempotent. Output: a DataFrame with one column per molecule, P(molecule present).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch

from robert.data.spectra import normalise
from robert.errors import UserError
from robert.model.dbn import DeepBeliefNetwork


def network_spec(n_visible: int, molecules: list[str], model: dict[str, Any], seed: int) -> dict[str, Any]:
    """What :func:`build_network` needs to rebuild the network before loading its weights."""
    return {"n_visible": n_visible, "molecules": molecules, "hidden": list(model["hidden"]),
            "visible": model["visible"], "n_persistent_chains": model["pretrain"]["n_persistent_chains"],
            "seed": seed}


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
        self.network = build_network(spec)
        self.network.load_state_dict(torch.load(context.artifacts["weights"], weights_only=True))
        self.network.eval()

    def predict_proba(self, spectra: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, n_molecules) probabilities for an (N, n_visible) array."""
        x = torch.as_tensor(np.asarray(spectra, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.network.n_visible:
            raise UserError(f"expected spectra of shape (N, {self.network.n_visible}); got {tuple(x.shape)}")
        return self.network.predict_proba(normalise(x)).numpy()

    # No type hints on purpose: MLflow would convert the input by them (list[...] of rows); the
    # model is logged with an explicit tensor signature instead.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        return pd.DataFrame(self.predict_proba(np.asarray(model_input)), columns=self.molecules)
