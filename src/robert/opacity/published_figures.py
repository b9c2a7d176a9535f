"""Published low-resolution cross-sections read off figures (validation data only, never product input).

The pyratbay 2.1.2 sdist that the data stage already downloads (conf/inputs, sha256-pinned) ships the
figures of its documentation, among them ExoMol cross-sections of VO (HyVO line list, Bowesman et al.
2024) and HCN (Harris et al. 2008; Barber et al. 2014) at 300 and 1950 K, sampled at R = 25,000 over
0.3 (0.5) - 12 um (``docs/figures/VO_cross_section.png``, ``HCN_cross_section.png``; pyratbay:
Cubillos & Blecic 2021). No pressure is stated in the figures; bin means hardly depend on it.

Hand-written digitiser (no maintained library reads matplotlib PNGs back into data): the axes box is
found as the long dark lines, the axis calibration from the tick marks inside it (log x and log y),
and each curve from its colour. Every pixel column spans ~50 of the R = 25,000 samples, so a column
gives the minimum and maximum of sigma there, not its mean: the published bin mean lies between the
means of the column minima (``lower``) and maxima (``upper``) over a bin. APPROXIMATE: the axis
calibration is good to ~1 pixel (0.2 % in wavelength, 2 % in sigma); the line width adds ~2 px.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from robert.errors import UserError
from robert.opacity.reference import bin_average
from robert.opacity.sources import BUILDERS, cross_section_grid

DARK = 200            # sum of RGB below which a pixel is part of the black frame / ticks
COLOUR_TOLERANCE = 30  # max |RGB difference| for a pixel to belong to a curve
LEGEND_FRAME_RGB = (212, 212, 212)  # matplotlib's light-grey legend frame: its box is masked out


@dataclass(frozen=True)
class FigureSpec:
    """Where a figure lives in the pyratbay sdist, and what its ticks and curves are."""

    member: str
    x_tick_um: tuple[float, ...]        # major x ticks inside the frame, left to right
    y_tick_cm2: tuple[float, ...]       # major y ticks on the left edge, top to bottom (first ones)
    curves: dict[float, tuple[tuple[int, int, int], ...]]  # temperature_K -> the curve's RGB colours
    source: str


FIGURES = {
    "VO": FigureSpec("pyratbay-2.1.2/docs/figures/VO_cross_section.png", (1.0, 3.0, 10.0),
                     (1e-16, 1e-18, 1e-20, 1e-22),
                     {1950.0: ((250, 140, 128), (233, 127, 125))},
                     "ExoMol HyVO (Bowesman et al. 2024), pyratbay 2.1.2 docs figure"),
    "HCN": FigureSpec("pyratbay-2.1.2/docs/figures/HCN_cross_section.png", (3.0, 10.0),
                      (1e-18, 1e-20, 1e-22, 1e-24),
                      {1950.0: ((250, 140, 128), (233, 127, 125))},
                      "ExoMol Harris/Larner HCN (Harris et al. 2008, Barber et al. 2014), pyratbay 2.1.2 docs figure"),
}


@dataclass(frozen=True)
class DigitisedCurve:
    """Per pixel column: wavelength (um) and the min / max sigma (cm^2/molecule) drawn there."""

    wavelength_um: np.ndarray
    sigma_min_cm2: np.ndarray
    sigma_max_cm2: np.ndarray
    frame_um: tuple[float, float]       # wavelengths of the axes box's left and right edges
    frame_cm2: tuple[float, float]      # sigma of its bottom and top edges


def _runs(indices: np.ndarray) -> np.ndarray:
    """Centres of the runs of consecutive integers in ``indices``."""
    if indices.size == 0:
        return indices.astype(float)
    breaks = np.flatnonzero(np.diff(indices) > 1) + 1
    return np.array([part.mean() for part in np.split(indices, breaks)])


def _frame(dark: np.ndarray) -> tuple[int, int, int, int]:
    cols = np.flatnonzero(dark.sum(axis=0) > 0.5 * dark.shape[0])
    rows = np.flatnonzero(dark.sum(axis=1) > 0.5 * dark.shape[1])
    if cols.size < 2 or rows.size < 2:
        raise UserError("figure digitiser: no axes frame found")
    return int(cols.min()), int(cols.max()), int(rows.min()), int(rows.max())


def digitise(png: bytes, figure: FigureSpec, temperature_K: float) -> DigitisedCurve:
    """The curve of ``temperature_K`` in the figure, as per-column min/max sigma."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    dark = image.sum(axis=2) < DARK
    left, right, top, bottom = _frame(dark)
    # tick marks point inwards: scan one row above the bottom frame line, one column right of the left one
    x_ticks = _runs(np.flatnonzero(dark[bottom - 10, left + 3:right - 2]) + left + 3)
    y_ticks = _runs(np.flatnonzero(dark[top + 3:bottom - 2, left + 5]) + top + 3)
    if x_ticks.size != len(figure.x_tick_um) or y_ticks.size < len(figure.y_tick_cm2):
        raise UserError(f"figure digitiser: found x ticks {x_ticks.tolist()} and y ticks {y_ticks.tolist()}, "
                        f"expected {len(figure.x_tick_um)} and >= {len(figure.y_tick_cm2)}")
    x_fit = np.polyfit(x_ticks, np.log10(figure.x_tick_um), 1)
    y_fit = np.polyfit(y_ticks[:len(figure.y_tick_cm2)], np.log10(figure.y_tick_cm2), 1)
    colours = figure.curves.get(temperature_K)
    if colours is None:
        raise UserError(f"figure has no {temperature_K} K curve; have: {sorted(figure.curves)}")
    plot = image[top + 2:bottom - 1, left + 2:right - 1]
    on_curve = np.zeros(plot.shape[:2], dtype=bool)
    for rgb in colours:
        on_curve |= np.abs(plot - np.array(rgb)).max(axis=2) <= COLOUR_TOLERANCE
    grey = np.abs(plot - np.array(LEGEND_FRAME_RGB)).max(axis=2) <= 3
    grey[:2, :] = grey[-2:, :] = grey[:, :2] = grey[:, -2:] = False  # the anti-aliased axes frame
    legend_rows = np.flatnonzero(grey.sum(axis=1) > 100)
    legend_cols = np.flatnonzero(grey.sum(axis=0) > 100)
    if legend_rows.size and legend_cols.size:  # the legend's sample lines have the curves' colours
        on_curve[legend_rows.min():legend_rows.max() + 1, legend_cols.min():legend_cols.max() + 1] = False
    columns = np.flatnonzero(on_curve.any(axis=0))
    rows_top = np.array([np.flatnonzero(on_curve[:, c])[0] for c in columns]) + top + 2
    rows_bottom = np.array([np.flatnonzero(on_curve[:, c])[-1] for c in columns]) + top + 2
    return DigitisedCurve(10 ** np.polyval(x_fit, columns + left + 2.0), 10 ** np.polyval(y_fit, rows_bottom),
                          10 ** np.polyval(y_fit, rows_top),
                          (float(10 ** np.polyval(x_fit, left)), float(10 ** np.polyval(x_fit, right))),
                          (float(10 ** np.polyval(y_fit, bottom)), float(10 ** np.polyval(y_fit, top))))


@dataclass(frozen=True)
class BinnedEnvelope:
    """Per bin: means over its pixel columns of the column minimum, maximum and log-uniform mean."""

    lower_cm2: np.ndarray
    upper_cm2: np.ndarray
    estimate_cm2: np.ndarray  # mean of (max - min) / ln(max / min): a log-uniform spread in each column
    columns: np.ndarray


def envelope_bin_means(curve: DigitisedCurve, edges_um: np.ndarray) -> BinnedEnvelope:
    """The digitised curve averaged into bins between ascending ``edges_um`` (um).

    The published bin mean lies between ``lower`` and ``upper``; ``estimate`` assumes log sigma spread
    uniformly between each column's minimum and maximum (APPROXIMATE, within a factor ~2 of the truth
    for the 1-2 dex spreads of these figures).
    """
    index = np.digitize(curve.wavelength_um, edges_um) - 1
    n = edges_um.size - 1
    inside = (index >= 0) & (index < n)
    lo, hi = curve.sigma_min_cm2[inside], curve.sigma_max_cm2[inside]
    ratio = np.log(hi / lo)
    column_mean = np.where(ratio > 1e-6, (hi - lo) / np.where(ratio > 1e-6, ratio, 1.0), hi)
    counts = np.bincount(index[inside], minlength=n)

    def mean(values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(index[inside], weights=values, minlength=n) / counts

    return BinnedEnvelope(mean(lo), mean(hi), mean(column_mean), counts)


def read_figure_png(archive: Path, figure: FigureSpec) -> bytes:
    """The figure's bytes from the (already verified) pyratbay sdist."""
    from robert.inputs.fetch import read_member

    return read_member(archive, figure.member)


# --- the comparison (benchmarks/validate_opacity.py) ---------------------------------------------

FIGURE_EDGES_UM = np.geomspace(1.0, 11.8, 50)  # R ~ 20 bins over the figures' range above 1 um
FIGURE_THRESHOLD = 1e-21   # bins checked where the figure's upper envelope exceeds this (cm^2/molecule)
FIGURE_PRESSURE_BAR = 1.0  # not stated in the figures; bin means hardly depend on it


def compare_figure(molecule: str, spec: Mapping, archive: Path, data_dir: Path,
                   temperature_K: float = 1950.0) -> list[dict]:
    """Rows (bin, lower, upper, estimate, ours, factor) for one molecule against its published figure.

    ``ours`` is the exact bin mean where the builder has one (line sources), else the mean of its
    samples on a fine grid (band models); ``factor`` = max(ours / upper, lower / ours, 1): how far ours
    lies outside the range the figure allows for the bin mean.
    """
    figure = FIGURES[molecule]
    curve = digitise(read_figure_png(archive, figure), figure, temperature_K)
    env = envelope_bin_means(curve, FIGURE_EDGES_UM)
    nu_edges = np.sort(1e4 / FIGURE_EDGES_UM)
    temps, press = np.array([temperature_K]), np.array([FIGURE_PRESSURE_BAR])
    module = importlib.import_module(BUILDERS[spec["source"]])
    if hasattr(module, "bin_mean_cross_section"):
        ours = module.bin_mean_cross_section(spec, nu_edges, temps, press, data_dir)[0, 0][::-1]
    else:  # smooth band model: the mean of dense samples is its bin mean
        fine = np.geomspace(nu_edges[0], nu_edges[-1], 100_000)
        ours = bin_average(fine, cross_section_grid(spec, fine, temps, press, data_dir)[0, 0], FIGURE_EDGES_UM)
    rows = []
    for b in np.flatnonzero((env.upper_cm2 > FIGURE_THRESHOLD) & (env.columns > 0)):
        mine, lo, hi = float(ours[b]), float(env.lower_cm2[b]), float(env.upper_cm2[b])
        factor = max(mine / hi, lo / mine, 1.0) if mine > 0 else np.inf
        rows.append({"molecule": molecule, "T": temperature_K, "P": FIGURE_PRESSURE_BAR,
                     "lo_um": float(FIGURE_EDGES_UM[b]), "hi_um": float(FIGURE_EDGES_UM[b + 1]), "lower": lo,
                     "upper": hi, "estimate": float(env.estimate_cm2[b]), "ours": mine, "factor": float(factor)})
    return rows
