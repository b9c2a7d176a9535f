"""The digitiser of the published VO/HCN cross-section figures (pyratbay 2.1.2 docs) and its axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from robert.opacity import published_figures as pf

ROOT = Path(__file__).resolve().parents[1]
INPUTS = yaml.safe_load((ROOT / "conf/inputs/default.yaml").read_text())
# the data stage's download cache (``make data`` fills it); the lead's checkout when run from a worktree
CANDIDATES = [ROOT / INPUTS["download_cache"], ROOT.parent / "main" / INPUTS["download_cache"]]
ARCHIVE = next((c / INPUTS["archives"]["pyratbay"]["filename"] for c in CANDIDATES
                if (c / INPUTS["archives"]["pyratbay"]["filename"]).exists()), None)
pytestmark = pytest.mark.skipif(ARCHIVE is None, reason="pyratbay sdist not downloaded (run `make data`)")


@pytest.mark.parametrize(("molecule", "x_min_um", "y_range_cm2"), [("VO", 0.3, (1e-26, 1e-14)),
                                                                     ("HCN", 0.5, (1e-26, 1e-17))])
def test_axes_calibrated_from_the_ticks(molecule, x_min_um, y_range_cm2):
    """The tick fit puts the frame's edges at the labelled limits (0.3 / 0.5 um left, 1e-26 bottom)."""
    figure = pf.FIGURES[molecule]
    curve = pf.digitise(pf.read_figure_png(ARCHIVE, figure), figure, 1950.0)
    assert curve.frame_um[0] == pytest.approx(x_min_um, rel=0.01)
    assert curve.frame_um[1] == pytest.approx(12.0, rel=0.03)  # unlabelled right edge
    np.testing.assert_allclose(np.log10(curve.frame_cm2), np.log10(y_range_cm2), atol=0.03)
    assert np.all(curve.sigma_max_cm2 >= curve.sigma_min_cm2)
    assert curve.frame_um[0] <= curve.wavelength_um.min() and curve.wavelength_um.max() <= curve.frame_um[1]


def test_vo_fundamental_and_electronic_levels_as_plotted():
    """Read-back values where the figure is unambiguous: the 1950 K VO curve tops out near 2e-17 at the
    A-X band (1.05-1.11 um) and near 1e-18 at the 10 um fundamental."""
    figure = pf.FIGURES["VO"]
    curve = pf.digitise(pf.read_figure_png(ARCHIVE, figure), figure, 1950.0)
    env = pf.envelope_bin_means(curve, np.array([1.05, 1.11, 9.65, 10.67]))
    assert env.upper_cm2[0] == pytest.approx(2e-17, rel=0.5)
    assert env.upper_cm2[2] == pytest.approx(1e-18, rel=0.5)
    assert np.all(env.lower_cm2 < env.estimate_cm2) and np.all(env.estimate_cm2 < env.upper_cm2)
