"""Instrument coverages: the wavelength bins a model sees, and which molecules a spectrum can constrain.

Approach to partial coverage (issue 7): one model per coverage. A coverage (``conf/instrument/<name>.yaml``)
is a list of segments on the model grid: the grid's own cells (``spacing: native``), or bins evenly spaced
in wavelength or log wavelength (a photometric band is one bin). A coverage model is trained by the same
``train()`` on the same clean simulated spectra, restricted to the coverage's bins (each bin: the mean of
the grid inside it, :mod:`robert.spectra.resample`) before noise and min-max scaling, so noise and
normalisation act on the vector the instrument would deliver; it is registered under its own name
(``instrument.registered_model``). ``full`` (the whole grid) is the identity and leaves training unchanged.

"Not constrained": a coverage can carry no information on a molecule (WFC3 sees nothing of CO2's 4.3 um
band). Each model stores, per SNR of a grid, how well its validation spectra of each molecule are told
apart from those of every other molecule (pairwise ROC AUC, :mod:`robert.inference.calibration`). A
molecule is constrained by a spectrum when, at the largest grid SNR not above the spectrum's own SNR,
its WORST pairwise AUC reaches ``min_auc``; otherwise the model cannot tell it from that partner (both
invisible to the coverage, or alike in it) and its "absent" would only mean "invisible here", so the
answer is "not constrained" (with the partner named).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from robert.errors import UserError
from robert.spectra.resample import Averaging, averaging_matrix, grid_cells_um

if TYPE_CHECKING:  # runtime import would be circular: the data module calls restrict_spectra
    from robert.data.datamodule import Spectra

SPACINGS = ("native", "linear", "log")
_REL = 1e-9  # relative tolerance on wavelengths that should coincide (float round-off of exp/log grids)


def _segment_bins(segment: Mapping, field: str, cell_low: np.ndarray, cell_high: np.ndarray,
                  centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        low, high = float(segment["low_um"]), float(segment["high_um"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{field} needs numeric low_um and high_um (micron); got {segment!r}") from None
    spacing = segment.get("spacing", "native")
    if spacing not in SPACINGS:
        raise UserError(f"{field}.spacing {spacing!r} is unknown; expected one of: {', '.join(SPACINGS)}")
    if not 0 < low < high:
        raise UserError(f"{field} needs 0 < low_um < high_um; got {low}, {high}")
    if low < cell_low[0] * (1 - _REL) or high > cell_high[-1] * (1 + _REL):
        raise UserError(f"{field} ({low}-{high} um) reaches beyond the model grid "
                        f"({cell_low[0]:.4g}-{cell_high[-1]:.4g} um)")
    if spacing == "native":
        inside = (centres >= low * (1 - _REL)) & (centres <= high * (1 + _REL))
        if not inside.any():
            raise UserError(f"{field} ({low}-{high} um) holds no model grid point")
        return cell_low[inside], cell_high[inside]
    n_bins = segment.get("n_bins")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise UserError(f"{field}.n_bins must be a positive integer for spacing {spacing}; got {n_bins!r}")
    edges = np.linspace(low, high, n_bins + 1) if spacing == "linear" else np.geomspace(low, high, n_bins + 1)
    return edges[:-1], edges[1:]


@dataclass(frozen=True)
class Coverage:
    """The bins a model sees (ascending, non-overlapping), in micron."""

    name: str
    description: str
    registered_model: str
    bin_low_um: np.ndarray
    bin_high_um: np.ndarray
    identity: bool                 # the bins are the model grid's cells: training inputs are the grid itself

    @classmethod
    def from_config(cls, instrument: Mapping, grid_centres_um: np.ndarray) -> Coverage:
        """Build from ``conf/instrument/<name>.yaml`` over a model grid of ascending bin centres."""
        name = instrument.get("name", "?")
        segments = instrument.get("segments")
        if not isinstance(segments, Sequence) or isinstance(segments, str) or not segments:
            raise UserError(f"instrument {name}: segments must be a non-empty list of "
                            "{low_um, high_um, spacing, n_bins}")
        centres = np.asarray(grid_centres_um, dtype=float)
        cell_low, cell_high = grid_cells_um(centres)
        parts = [_segment_bins(s, f"instrument {name}: segments[{i}]", cell_low, cell_high, centres)
                 for i, s in enumerate(segments)]
        low, high = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        order = np.argsort(low)
        low, high = low[order], high[order]
        clash = np.flatnonzero(low[1:] < high[:-1] * (1 - _REL))
        if clash.size:
            i = clash[0]
            raise UserError(f"instrument {name}: bins {low[i]:.4g}-{high[i]:.4g} um and {low[i + 1]:.4g}-"
                            f"{high[i + 1]:.4g} um overlap; segments must not overlap")
        identity = len(low) == len(centres) and np.allclose(low, cell_low) and np.allclose(high, cell_high)
        return cls(str(name), str(instrument.get("description", "")), str(instrument["registered_model"]),
                   low, high, bool(identity))

    @property
    def n_bins(self) -> int:
        return len(self.bin_low_um)

    @property
    def centres_um(self) -> np.ndarray:
        return np.sqrt(self.bin_low_um * self.bin_high_um)

    def ranges_um(self) -> list[tuple[float, float]]:
        """The coverage as contiguous wavelength ranges (touching bins merged)."""
        ranges = [[float(self.bin_low_um[0]), float(self.bin_high_um[0])]]
        for low, high in zip(self.bin_low_um[1:], self.bin_high_um[1:], strict=True):
            if low <= ranges[-1][1] * (1 + _REL):
                ranges[-1][1] = float(high)
            else:
                ranges.append([float(low), float(high)])
        return [(low, high) for low, high in ranges]

    def ranges_text(self) -> str:
        return ", ".join(f"{low:.3g}-{high:.3g}" for low, high in self.ranges_um()) + " um"

    def grid_averaging(self, grid_centres_um: np.ndarray) -> Averaging:
        """The training transform: model grid cells -> this coverage's bins."""
        return averaging_matrix(*grid_cells_um(grid_centres_um), self.bin_low_um, self.bin_high_um)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "registered_model": self.registered_model,
                "bin_low_um": self.bin_low_um.tolist(), "bin_high_um": self.bin_high_um.tolist(),
                "identity": self.identity}

    @classmethod
    def from_dict(cls, data: Mapping) -> Coverage:
        return cls(data["name"], data["description"], data["registered_model"], np.asarray(data["bin_low_um"]),
                   np.asarray(data["bin_high_um"]), bool(data["identity"]))


def restrict_spectra(spectra: Spectra, coverage: Coverage) -> Spectra:
    """Clean spectra on the model grid -> as the instrument sees them (the datamodule's coverage hook)."""
    if coverage.identity:
        return spectra
    depth = coverage.grid_averaging(spectra.wavelength_um).apply(spectra.depth.astype(np.float64))
    return dataclasses.replace(spectra, depth=depth.astype(np.float32), wavelength_um=coverage.centres_um)


def load_presets(conf_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ``conf/instrument/<name>.yaml``, by file name (plain YAML: the group has no interpolations)."""
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted((conf_dir / "instrument").glob("*.yaml"))}


def constraint_snr_index(snr_grid: Sequence[float], snr: np.ndarray) -> np.ndarray:
    """Index of the largest grid SNR not above each spectrum's SNR (the smallest one below the grid)."""
    return np.clip(np.searchsorted(np.asarray(snr_grid, float), np.asarray(snr, float), side="right") - 1,
                   0, len(snr_grid) - 1)


def constrained(separability: np.ndarray, partner: np.ndarray, snr_grid: Sequence[float], snr: np.ndarray,
                min_auc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For spectra of SNR ``snr`` (S,): (S, M) constrained flags, the worst pairwise AUC, that partner's index.

    ``separability``/``partner`` (len(snr_grid), M): :meth:`robert.inference.calibration.Calibration.separability`
    on the validation set of the model's own coverage.
    """
    index = constraint_snr_index(snr_grid, snr)
    auc = np.asarray(separability, float)[index]
    return auc >= min_auc, auc, np.asarray(partner)[index]
