"""Instrument coverages: the wavelength bins an instrument delivers, as presets in ``conf/instrument/``.

A coverage is a list of segments on the model grid: the grid's own cells (``spacing: native``), or bins evenly
spaced in wavelength or log wavelength (a photometric band is one bin). The presets serve as templates of the
training prior's coverage patterns (:mod:`robert.spectra.observation`) and as the fixed coverages the
evaluation scores the recogniser on; the recogniser itself takes any coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robert.errors import UserError
from robert.spectra.resample import Averaging, averaging_matrix, grid_cells_um

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
        return cls(str(name), str(instrument.get("description", "")), low, high, bool(identity))

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
        return {"name": self.name, "description": self.description, "bin_low_um": self.bin_low_um.tolist(),
                "bin_high_um": self.bin_high_um.tolist(),
                "identity": self.identity}

    @classmethod
    def from_dict(cls, data: Mapping) -> Coverage:
        return cls(data["name"], data["description"], np.asarray(data["bin_low_um"]),
                   np.asarray(data["bin_high_um"]), bool(data["identity"]))


def coverage_presets(conf_dir: Path, grid_centres_um: np.ndarray) -> dict[str, Coverage]:
    """Every ``conf/instrument/<name>.yaml`` as a :class:`Coverage` on the given grid, by file name."""
    return {path.stem: Coverage.from_config(yaml.safe_load(path.read_text()) | {"name": path.stem}, grid_centres_um)
            for path in sorted((Path(conf_dir) / "instrument").glob("*.yaml"))}
