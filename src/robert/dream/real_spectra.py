"""The class's real spectra: the normalised training spectra the model learnt from, per molecule.

Which spectra: the training split of the dataset the model's own MLflow run recorded
(``dataset_provenance.json``: planets, composition, dataset directory; ``config.yaml``: the split
fractions and seeds), read with the same :func:`robert.data.dataset.load_splits` as training, so the rows
are exactly the ones the model was trained on. They are taken noiseless, on the whole grid, and min-max
normalised to [0, 1]: the expectation of what the network's depth channel saw, without the training noise
(which only widens each spectrum's range and so flattens its normalised shape).

Which rows make a molecule's class: in a single-gas set, the rows that hold it. In a mixture set the rows
where it is the ONLY injected gas (a row holding it with others would show their bands as well); a molecule
that is never alone falls back to every row that holds it (``ClassSpectra.selection`` says which).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
import yaml
from mlflow.exceptions import MlflowException

from robert.data.dataset import Spectra, load_splits
from robert.errors import UserError
from robert.simulate.shards import acceptance_attr
from robert.spectra.transforms import normalise
from robert.tracking.registry import ModelRef

CONFIG_ARTIFACT = "config.yaml"
PROVENANCE_ARTIFACT = "dataset_provenance.json"
ONLY_GAS, HOLDS_GAS = "only gas", "holds it"  # ClassSpectra.selection: how a class's rows were chosen


def class_rows(injected: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N, M) rows of each molecule's class, and per molecule how they were chosen (see the module docstring)."""
    present = np.asarray(injected) > 0.5
    alone = present & (present.sum(axis=1, keepdims=True) == 1)
    use_alone = alone.any(axis=0)
    rows = np.where(use_alone[None, :], alone, present)
    return rows, [ONLY_GAS if flag else HOLDS_GAS for flag in use_alone]


@dataclass(frozen=True)
class ClassSpectra:
    """Mean and spread of each molecule's normalised training spectra, overall and per planet."""

    molecules: list[str]
    planets: list[str]
    wavelength_um: np.ndarray    # (W,)
    mean: np.ndarray             # (M, W) normalised, over the class's rows
    std: np.ndarray              # (M, W)
    count: np.ndarray            # (M,)
    selection: list[str]         # (M,) ONLY_GAS or HOLDS_GAS: which rows make the class
    depth_mean: np.ndarray       # (M, W) the class's mean clean depth, in the simulator's units (not normalised)
    planet_mean: np.ndarray      # (P, M, W); NaN where a planet has no spectrum of the molecule
    planet_count: np.ndarray     # (P, M)
    overall_mean: np.ndarray     # (W,) every training spectrum: the "knows no molecule" baseline

    @classmethod
    def from_spectra(cls, spectra: Spectra) -> ClassSpectra:
        x = normalise(torch.as_tensor(spectra.depth, dtype=torch.float32)).numpy().astype(np.float64)
        rows, selection = class_rows(spectra.injected)
        missing = [m for m, n in zip(spectra.molecules, rows.sum(axis=0), strict=True) if n == 0]
        if missing:
            raise UserError(f"the training spectra hold no spectrum of {', '.join(missing)}: "
                            "no real spectrum to compare their dreams with")
        planets = list(dict.fromkeys(spectra.planet.tolist()))
        n_molecules, n_bins = rows.shape[1], x.shape[1]
        depth = np.asarray(spectra.depth, dtype=np.float64)
        mean = np.stack([x[rows[:, j]].mean(axis=0) for j in range(n_molecules)])
        std = np.stack([x[rows[:, j]].std(axis=0) for j in range(n_molecules)])
        depth_mean = np.stack([depth[rows[:, j]].mean(axis=0) for j in range(n_molecules)])
        planet_mean = np.full((len(planets), n_molecules, n_bins), np.nan)
        planet_count = np.zeros((len(planets), n_molecules), dtype=int)
        for p, planet in enumerate(planets):
            for j in range(n_molecules):
                members = rows[:, j] & (spectra.planet == planet)
                planet_count[p, j] = int(members.sum())
                if members.any():
                    planet_mean[p, j] = x[members].mean(axis=0)
        return cls(list(spectra.molecules), planets, np.asarray(spectra.wavelength_um, float), mean, std,
                   rows.sum(axis=0), selection, depth_mean, planet_mean, planet_count, x.mean(axis=0))


def _run_artifact(ref: ModelRef, name: str) -> str:
    try:
        return mlflow.artifacts.load_text(f"runs:/{ref.run_id}/{name}")
    except MlflowException:
        raise UserError(f"{ref.version_uri} (run {ref.run_id}) has no {name} artifact: it names the training "
                        "data; set dream.real.dataset_dir and dream.real.planets, or retrain the model") from None


def training_spectra(ref: ModelRef, real: Mapping[str, Any], root: Path) -> Spectra:
    """The model's training split, as its run recorded it; ``real`` may point at another dataset or planets."""
    run_config = yaml.safe_load(_run_artifact(ref, CONFIG_ARTIFACT))
    provenance = yaml.safe_load(_run_artifact(ref, PROVENANCE_ARTIFACT))  # JSON is YAML
    directory = Path(real.get("dataset_dir") or provenance["dataset_dir"])
    directory = directory if directory.is_absolute() else Path(root) / directory
    planets: str | Sequence[str] = real.get("planets") or provenance["planets"]
    planets = [planets] if isinstance(planets, str) else list(planets)
    data = run_config["data"]
    regenerate = str(data.get("regenerate") or "python src/generate.py planet={planet}")
    splits = load_splits(directory, provenance["composition"], planets, data, regenerate,
                         {"acceptance": acceptance_attr(run_config.get("dataset") or {})})
    return splits["train"]
