"""The dream figures: a Fig.-5-style panel (Waldmann 2016) and the dream confusion matrices.

Fig. 5 layout: one column per molecule; rows from the top: the hidden layers' activation maps
while dreaming (Ln ... L1, each layer's mean activation laid out on a grid), the dream spectrum of
each method, the class's real spectra (mean, +-1 sigma, each planet's mean), and the signatures
(spectrum minus the mean over all molecules: what the dream and the data say about this molecule
alone). Spectra on a log-wavelength axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from robert.atomic import atomic_output  # noqa: E402
from robert.dream.comparison import ConfusionResult, best_index, signatures  # noqa: E402
from robert.dream.real_spectra import ClassSpectra  # noqa: E402
from robert.dream.result import Dream  # noqa: E402

METHOD_COLOURS = {"generative": "C3", "optimisation": "C0"}
WAVELENGTH_TICKS_UM = (1, 2, 3, 5, 10, 20)
DPI = 100


def activation_grid(activation: np.ndarray) -> np.ndarray:
    """A layer's activations on a grid about twice as wide as tall (unused cells NaN), as in Fig. 5."""
    columns = math.ceil(math.sqrt(2 * len(activation)))
    rows = math.ceil(len(activation) / columns)
    grid = np.full(rows * columns, np.nan)
    grid[: len(activation)] = activation
    return grid.reshape(rows, columns)


def standardised(rows: np.ndarray) -> np.ndarray:
    """Each row divided by its standard deviation (a constant row stays zero)."""
    scale = rows.std(axis=1, keepdims=True)
    return rows / np.where(scale > 0, scale, 1.0)


def _wavelength_axis(ax: plt.Axes, wavelength_um: np.ndarray, label: bool) -> None:
    ax.set_xscale("log")
    low, high = float(wavelength_um.min()), float(wavelength_um.max())
    ax.set_xlim(low, high)
    ticks = [t for t in WAVELENGTH_TICKS_UM if low <= t <= high]
    ax.set_xticks(ticks, labels=[str(t) for t in ticks] if label else [])
    ax.minorticks_off()
    if label:
        ax.set_xlabel("wavelength (µm)", fontsize=8)
    ax.tick_params(labelsize=7)


def draw_dreams(path: Path, draw: Sequence[str], dreams: Mapping[str, Sequence[Dream]], real: ClassSpectra,
                scores: Mapping[str, Mapping[str, Mapping[str, float]]], title: str) -> Path:
    """The Fig.-5 panel for the molecules ``draw``; ``dreams[method]`` holds one dream per ``real.molecules``.

    ``scores[method][molecule]`` gives ``pearson_r``, ``rms`` and ``signature_r`` for the annotations.
    """
    methods = list(dreams)
    # activation maps: the generative dream's (the network dreaming), else the DBN classifier's at the optimum
    # (none for peer networks)
    maps_method = "generative" if "generative" in dreams else methods[0]
    n_layers = len(dreams[maps_method][0].activations)
    n_rows = n_layers + len(methods) + 2
    column_width_in = 2.3 if len(draw) > 2 else 5.0  # a molecule's own figure (the report's sections): wider
    fig = plt.figure(figsize=(0.9 + column_width_in * len(draw), 0.95 * n_layers + 1.45 * (n_rows - n_layers) + 0.6))
    grid = fig.add_gridspec(n_rows, len(draw), height_ratios=[0.75] * n_layers + [1.25] * (n_rows - n_layers),
                            hspace=0.55, wspace=0.18)
    # Signatures in units of their own standard deviation: the optimisation dream's span the whole [0, 1]
    # range, the class means' a few per cent; r (shape) is what is compared, and it ignores the scale.
    dream_signatures = {m: standardised(signatures(np.stack([d.spectrum for d in dreams[m]]))) for m in methods}
    class_signatures = standardised(signatures(real.mean))
    wavelength = real.wavelength_um
    for column, molecule in enumerate(draw):
        j = real.molecules.index(molecule)
        first = column == 0
        for row, layer in enumerate(reversed(range(n_layers))):
            ax = fig.add_subplot(grid[row, column])
            activation = dreams[maps_method][j].activations[layer]
            ax.imshow(activation_grid(activation), cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                      aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if first:
                ax.set_ylabel(f"L{layer + 1} ({len(activation)})", fontsize=8)
        for offset, method in enumerate(methods):
            ax = fig.add_subplot(grid[n_layers + offset, column])
            dream, score = dreams[method][j], scores[method][molecule]
            colour = METHOD_COLOURS.get(method, "C2")
            if dream.spread is not None:
                ax.fill_between(wavelength, np.clip(dream.spectrum - dream.spread, 0, 1),
                                np.clip(dream.spectrum + dream.spread, 0, 1), color=colour, alpha=0.15, lw=0)
            ax.plot(wavelength, dream.spectrum, color=colour, lw=1)
            ax.text(0.03, 0.95, f"r={score['pearson_r']:.2f} rms={score['rms']:.2f}", transform=ax.transAxes,
                    fontsize=7, va="top")
            ax.set_ylim(-0.02, 1.02)
            _wavelength_axis(ax, wavelength, label=False)
            if first:
                ax.set_ylabel(f"{method}\ndream", fontsize=8)
        # the column's top panel: an activation map, or the first dream where there are none (peer networks)
        fig.axes[-(n_layers + len(methods))].set_title(molecule, fontsize=11, fontweight="bold")
        ax = fig.add_subplot(grid[n_rows - 2, column])
        ax.fill_between(wavelength, np.clip(real.mean[j] - real.std[j], 0, 1),
                        np.clip(real.mean[j] + real.std[j], 0, 1), color="0.8", lw=0)
        for p, planet in enumerate(real.planets):
            if real.planet_count[p, j]:
                ax.plot(wavelength, real.planet_mean[p, j], lw=0.6, alpha=0.8, label=planet)
        ax.plot(wavelength, real.mean[j], color="k", lw=1.1, label="all planets")
        ax.set_ylim(-0.02, 1.02)
        _wavelength_axis(ax, wavelength, label=False)
        if first:
            ax.set_ylabel("real\n(mean, ±1σ)", fontsize=8)
            ax.legend(fontsize=5, loc="lower right", frameon=False)
        ax = fig.add_subplot(grid[n_rows - 1, column])
        ax.axhline(0, color="0.7", lw=0.5)
        ax.plot(wavelength, class_signatures[j], color="k", lw=1.1)
        texts = []
        for method in methods:
            ax.plot(wavelength, dream_signatures[method][j], color=METHOD_COLOURS.get(method, "C2"), lw=0.9)
            texts.append(f"{method[:3]} r={scores[method][molecule]['signature_r']:.2f}")
        ax.text(0.03, 0.95, "  ".join(texts), transform=ax.transAxes, fontsize=6, va="top")
        _wavelength_axis(ax, wavelength, label=True)
        if first:
            ax.set_ylabel("signature / σ\n(− all-class mean)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.7 / fig.get_figwidth() + 0.02, right=0.985, top=1 - 0.75 / fig.get_figheight(),
                        bottom=0.55 / fig.get_figheight())
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


def draw_confusion(path: Path, confusions: Mapping[str, ConfusionResult], title: str) -> Path:
    """Per method: the raw and the signature dream confusion matrices; each row's best match boxed."""
    methods = list(confusions)
    molecules = confusions[methods[0]].molecules
    size = 1.2 + 0.42 * len(molecules)
    fig, axes = plt.subplots(len(methods), 2, figsize=(2 * size + 1.0, size * len(methods)), squeeze=False)
    for row, method in enumerate(methods):
        result = confusions[method]
        for ax, matrix, kind in ((axes[row, 0], result.raw, "raw spectra"),
                                 (axes[row, 1], result.signature, "signatures")):
            image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks(range(len(molecules)), molecules, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(molecules)), molecules, fontsize=7)
            ax.set_xlabel("class mean", fontsize=8)
            ax.set_ylabel(f"{method} dream", fontsize=8)
            ax.set_title(f"{method}: r on {kind}", fontsize=9)
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if abs(value) > 0.6 else "black")
            for i, best in enumerate(map(best_index, matrix)):
                if best is not None:
                    ax.add_patch(Rectangle((best - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="k", lw=1.2))
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path
