"""The class's real spectra: the normalised training spectra the model learnt from, per molecule.

Which spectra: the training split of the dataset the model's own MLflow run recorded
(``dataset_provenance.json``: planets, composition, dataset directory; ``config.yaml``: the split
fractions and seeds, and the instrument coverage), rebuilt with the same :class:`SpectraDataModule`
so the rows, and a coverage model's bins, are exactly the ones the model was trained on. They are
taken noiseless and min-max normalised to [0, 1]: the expectation of what the network saw, without
the training noise (which only widens each spectrum's range and so flattens its normalised shape).
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

from robert.data.datamodule import Spectra, SpectraDataModule
from robert.errors import UserError
from robert.spectra.transforms import normalise
from robert.tracking.registry import ModelRef

CONFIG_ARTIFACT = "config.yaml"
PROVENANCE_ARTIFACT = "dataset_provenance.json"


@dataclass(frozen=True)
class ClassSpectra:
    """Mean and spread of each molecule's normalised training spectra, overall and per planet."""

    molecules: list[str]
    planets: list[str]
    wavelength_um: np.ndarray    # (W,)
    mean: np.ndarray             # (M, W) over every spectrum holding the molecule
    std: np.ndarray              # (M, W)
    count: np.ndarray            # (M,)
    planet_mean: np.ndarray      # (P, M, W); NaN where a planet has no spectrum of the molecule
    planet_count: np.ndarray     # (P, M)
    overall_mean: np.ndarray     # (W,) every training spectrum: the "knows no molecule" baseline

    @classmethod
    def from_spectra(cls, spectra: Spectra) -> ClassSpectra:
        """A class is every spectrum whose label is on (one gas per spectrum, or any mixture holding it)."""
        x = normalise(torch.as_tensor(spectra.depth, dtype=torch.float32)).numpy().astype(np.float64)
        present = spectra.labels > 0.5
        planets = list(dict.fromkeys(spectra.planet.tolist()))
        n_molecules, n_bins = present.shape[1], x.shape[1]
        mean, std = np.full((n_molecules, n_bins), np.nan), np.full((n_molecules, n_bins), np.nan)
        planet_mean = np.full((len(planets), n_molecules, n_bins), np.nan)
        planet_count = np.zeros((len(planets), n_molecules), dtype=int)
        for j in range(n_molecules):
            if present[:, j].any():
                mean[j], std[j] = x[present[:, j]].mean(axis=0), x[present[:, j]].std(axis=0)
            for p, planet in enumerate(planets):
                rows = present[:, j] & (spectra.planet == planet)
                planet_count[p, j] = int(rows.sum())
                if rows.any():
                    planet_mean[p, j] = x[rows].mean(axis=0)
        missing = [m for m, n in zip(spectra.molecules, present.sum(axis=0), strict=True) if n == 0]
        if missing:
            raise UserError(f"the training spectra hold no spectrum of {', '.join(missing)}: "
                            "no real spectrum to compare their dreams with")
        return cls(list(spectra.molecules), planets, np.asarray(spectra.wavelength_um, float), mean, std,
                   present.sum(axis=0), planet_mean, planet_count, x.mean(axis=0))


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
    data = dict(run_config["data"])
    data["dataset_dir"] = str(real.get("dataset_dir") or provenance["dataset_dir"])
    planets: str | Sequence[str] = real.get("planets") or provenance["planets"]
    planets = [planets] if isinstance(planets, str) else list(planets)
    module = SpectraDataModule(data, provenance["composition"], planets, root, batch_size=1,
                               seed=int(run_config["seed"]))
    return module.split("train")
