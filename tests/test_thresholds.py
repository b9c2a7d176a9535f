"""Detection thresholds set by a false-alarm rate (robert.inference.thresholds) and where they are applied."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.config import ROOT
from helpers.runs import run_config
from helpers.synthetic import PLANETS, write_synthetic_dataset
from robert.errors import UserError
from robert.inference.package import detection_thresholds
from robert.inference.thresholds import ThresholdSettings, false_alarm_thresholds, model_thresholds
from robert.training.metrics import classification_metrics, confusion_matrix, detection_report
from robert.training.train import build_datamodule


def test_each_threshold_admits_at_most_the_rate_of_absent_gases_and_no_lower_one_would():
    rng = np.random.default_rng(0)
    probs = np.stack([rng.beta(1, 8, 4000), rng.beta(2, 3, 4000)], 1)  # a confident and a vague molecule
    absent = rng.random((4000, 2)) < 0.7
    rate = 0.01
    thresholds = false_alarm_thresholds(probs, absent, rate, fallback=0.5)
    for j, t in enumerate(thresholds):
        negatives = probs[absent[:, j], j]
        assert (negatives >= t).mean() <= rate
        # the next lower value of P among the absent rows would let one more through: the threshold is the lowest
        below = negatives[negatives < t].max()
        assert (negatives >= below).mean() > rate
    assert thresholds[1] > thresholds[0]  # the vaguer molecule needs a higher P for the same false-alarm rate


def test_tied_probabilities_stay_below_the_threshold_and_a_molecule_never_absent_keeps_the_fallback():
    probs = np.array([[0.9, 0.3], [0.9, 0.2], [0.1, 0.4]])
    absent = np.array([[True, False], [True, False], [True, False]])
    thresholds = false_alarm_thresholds(probs, absent, 0.5, fallback=0.5)
    assert thresholds[0] > 0.9 and thresholds[1] == 0.5  # 2 of 3 rows tie at 0.9: admitting them would be 67 %


@pytest.mark.parametrize(("section", "field"), [({"false_alarm_rate": 0.0}, "inference.false_alarm_rate"),
                                                ({"false_alarm_rate": 1.0}, "inference.false_alarm_rate"),
                                                ({"threshold": 1.5}, "inference.threshold"),
                                                ({"calibration_draws": 0}, "inference.calibration_draws"),
                                                ({"preset_false_alarm_rate": -0.1},
                                                 "inference.preset_false_alarm_rate"),
                                                ({"preset_calibration_draws": 0},
                                                 "inference.preset_calibration_draws")])
def test_bad_threshold_settings_name_the_field(section, field):
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        ThresholdSettings.from_config(section)


def test_a_model_without_per_molecule_thresholds_reads_its_single_one():
    assert model_thresholds({"threshold": 0.4}, ["H2O", "CO"]).shared.tolist() == [0.4, 0.4]
    assert model_thresholds({"thresholds": {"CO": 0.7, "H2O": 0.2}}, ["H2O", "CO"]).shared.tolist() == [0.2, 0.7]


def test_a_spectrum_takes_the_thresholds_of_the_calibrated_coverage_its_cells_match_and_the_shared_ones_else():
    """Stored as inference.json holds them: a coverage on cells 0-9 and one on 10-19 of a 20-cell grid."""
    settings = {"grid_um": list(range(20)), "coverage_match": 0.8,
                "thresholds": {"H2O": 0.9, "CO": 0.8},
                "coverage_thresholds": {"blue": {"cells": list(range(10)), "thresholds": {"CO": 0.3, "H2O": 0.1}},
                                        "red": {"cells": list(range(10, 20)), "thresholds": {"CO": 0.4, "H2O": 0.2}}}}
    rule = model_thresholds(settings, ["H2O", "CO"])
    observed = np.zeros((4, 20), dtype=bool)
    observed[0, :10] = True    # blue exactly
    observed[1, 11:20] = True  # red less one cell: Jaccard 0.9
    observed[2, 3:15] = True   # straddles both: Jaccard 7/15 with blue
    observed[3, :8] = True     # blue less two cells: Jaccard 0.8, the limit, matches
    assert rule.basis(observed) == ["blue", "red", "any", "blue"]
    np.testing.assert_array_equal(rule.for_observed(observed), [[0.1, 0.3], [0.2, 0.4], [0.9, 0.8], [0.1, 0.3]])
    observed[3, 7] = False     # Jaccard 0.7
    assert rule.basis(observed[3:]) == ["any"]
    assert rule.to_settings(["H2O", "CO"]) == {**{k: settings[k] for k in ("thresholds", "coverage_match")},
                                               "coverage_thresholds": {
                                                   "blue": {"cells": list(range(10)),
                                                            "thresholds": {"H2O": 0.1, "CO": 0.3}},
                                                   "red": {"cells": list(range(10, 20)),
                                                           "thresholds": {"H2O": 0.2, "CO": 0.4}}}}


def test_scores_call_each_molecule_at_its_own_threshold():
    probs = np.array([[0.6, 0.6], [0.3, 0.3], [0.6, 0.1]])
    truth = np.array([[1, 1], [1, 0], [0, 0]])
    chi2 = np.full(probs.shape, 400.0)
    log10_vmr = np.full(probs.shape, -4.0)
    thresholds = np.array([0.25, 0.5])
    default = detection_report(probs, truth, chi2, log10_vmr, ["A", "B"])
    own = detection_report(probs, truth, chi2, log10_vmr, ["A", "B"], thresholds=thresholds)
    assert default["completeness_snr_ge_10"] == {"A": 0.5, "B": 1.0}
    assert own["completeness_snr_ge_10"] == {"A": 1.0, "B": 1.0}  # A's 0.3 reaches its threshold of 0.25
    assert own["false_alarm_rate"]["A"] == 1.0 and own["false_alarm_rate"]["B"] == 0.0
    f1 = classification_metrics(probs, truth, ["A", "B"], thresholds=thresholds)["per_molecule"]
    assert f1["A"]["recall"] == 1.0 and f1["A"]["precision"] == pytest.approx(2 / 3)
    assert confusion_matrix(probs, truth, thresholds).tolist() == [[2, 1], [1, 1]]


def test_a_preset_rate_raises_the_thresholds_to_what_each_instrument_preset_needs(tmp_path):
    """A stand-in recogniser whose P(gas) is the share of the grid left unobserved: under a whole-grid prior every
    absent gas reads 0, so the prior alone sets the lowest thresholds; each preset's absent gases then read its own
    unobserved share, and the preset rate must lift every threshold just above the largest of them."""
    synthetic = write_synthetic_dataset(tmp_path / "synthetic")
    cfg = run_config(tmp_path, synthetic, PLANETS, "~observation.coverage.weights",
                     "+observation.coverage.weights={full: 1.0}")
    datamodule = build_datamodule(cfg, PLANETS, ROOT)
    datamodule.setup()

    def unobserved_share(observation) -> np.ndarray:
        share = 1.0 - observation.mask.double().mean(1, keepdim=True)
        return share.expand(-1, len(datamodule.molecules)).numpy()

    prior_only = detection_thresholds(unobserved_share, datamodule, ThresholdSettings(false_alarm_rate=0.005), 7)
    assert np.all(prior_only.shared < 1e-300) and prior_only.coverage_names == ()  # just above 0, for any coverage
    presets = datamodule.prior.coverage.presets
    cells = {name: (datamodule.preset_view(name)[1].segments[0] >= 0).numpy() for name in ("full", *presets)}
    gaps = {name: 1.0 - float(observed.mean()) for name, observed in cells.items()}
    raised = detection_thresholds(unobserved_share, datamodule,
                                  ThresholdSettings(false_alarm_rate=0.005, preset_false_alarm_rate=0.0075), 7)
    np.testing.assert_array_equal(raised.shared, np.nextafter(max(gaps.values()), np.inf))
    assert raised.coverage_names == ("full", *presets)
    for name, observed in cells.items():  # each calibrated coverage: just above its own unobserved share
        np.testing.assert_array_equal(raised.for_observed(observed[None])[0], np.nextafter(gaps[name], np.inf))
    with pytest.raises(UserError, match=r"^evaluate\.coverages names 'nirspec_g935h'; conf/instrument/ has: .*g395h"):
        datamodule.preset_view("nirspec_g935h", field="evaluate.coverages")
