"""``robert predict`` and the pyfunc on observed spectra of any coverage: verdicts, dropped rows, geometry routing.

Two tiny DBNs are trained on the synthetic shards (:mod:`helpers.synthetic`: H2O has bands at 1.4 and 6.0 um,
CO at 3.5 and 10.5 um, CO2 at 5.6 and 15 um) and registered where ``conf/predict.yaml`` routes each geometry
(``robert@champion`` for emission, ``robert-transmission@champion`` for transmission) in a private store.
Test spectra are the test split's clean spectra published over a wavelength window in bins, with per-bin error
bars that vary across the window and noise drawn from them (:func:`helpers.inference.published_table`).

The mask/sigma path: a window that misses all of a gas's bands cannot show that gas, whatever the network says,
so the gas must be "not constrained" (and never "detected") in every spectrum holding it; gases whose bands
lie in the window stay constrained (the test is not vacuous).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from helpers.config import ROOT
from helpers.inference import (
    RegisteredModels,
    published_table,
    registered_models,
    run_cli,
    run_command,
    the_error_line,
    write_observed_csv,
)
from robert.data.dataset import Spectra
from robert.inference.constraints import ConstraintSettings, build_references, reference_floors
from robert.inference.observed import validate_frame
from robert.inference.predictor import DETECTED, NOT_CONSTRAINED, NOT_DETECTED, predict_observed
from robert.inference.thresholds import ANY_COVERAGE, DetectionThresholds

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
EXAMPLES = sorted((ROOT / "examples").glob("*.csv"))
# (gas, a window in micron that holds none of its bands, the gases whose bands it holds)
MISSED = [("CO2", (1.0, 4.5), ["H2O", "CO"]), ("CO", (1.0, 2.8), ["H2O"]), ("H2O", (7.5, 20.0), ["CO", "CO2"])]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> RegisteredModels:
    registered = registered_models(tmp_path_factory.mktemp("models"))
    registered.use()
    return registered


def pyfunc(models: RegisteredModels, geometry: str = "emission") -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(models.uris[geometry])


def split_of(models: RegisteredModels, geometry: str = "emission") -> Spectra:
    return models.test[geometry]


def spectra_table(models: RegisteredModels, window: tuple[float, float], snr: float, rows: np.ndarray | None = None,
                  geometry: str = "emission", n_rows: int = 40) -> pd.DataFrame:
    """Test spectra ``rows`` (default: all) published over ``window``, told apart by ``spectrum``."""
    test = split_of(models, geometry)
    rows = np.arange(len(test)) if rows is None else rows
    return pd.concat([published_table(test.depth[i], models.grid_um, *window, n_rows, snr, int(i))
                      .assign(spectrum=f"s{i}") for i in rows], ignore_index=True)


def by_spectrum(out: pd.DataFrame, column: str, n_molecules: int) -> np.ndarray:
    return out[column].to_numpy().reshape(-1, n_molecules)


@pytest.mark.parametrize(("gas", "window", "seen"), MISSED)
def test_a_gas_whose_bands_lie_outside_the_coverage_is_not_constrained(models, gas, window, seen):
    test, m = split_of(models), models.molecules.index(gas)
    # precondition, from the data: the gas's fingerprint inside the window is negligible next to its bands
    inside = (models.grid_um >= window[0]) & (models.grid_um <= window[1])
    own = np.abs(test.delta[test.pair_index[test.pair_molecule == m]].astype(np.float32))
    assert own[:, inside].max() < 1e-4 * own.max()
    model = pyfunc(models)
    for snr in (30.0, 300.0):
        out = model.predict(spectra_table(models, window, snr))
        verdict, detected, fraction = (by_spectrum(out, column, len(models.molecules))
                                       for column in ("verdict", "detected", "detectable_fraction"))
        assert (test.injected[:, m] > 0).sum() >= 10  # the gas is there in many of these spectra
        assert set(verdict[:, m]) == {NOT_CONSTRAINED} and not detected[:, m].any()
        assert np.all(fraction[:, m] == 0)
        # the gases whose bands the window holds are constrained by it
        others = [models.molecules.index(name) for name in seen]
        assert np.all(fraction[:, others] >= 0.5) and NOT_CONSTRAINED not in set(verdict[:, others].ravel())


def test_a_gas_capped_by_its_metal_s_budget_keeps_references_from_the_top_of_its_own_range():
    # -5 is the upper half of the common [-8, -2]; VO drawn over [-8, -6.36] gets its own upper half
    settings = ConstraintSettings(min_log10_vmr=-5.0, references_per_molecule=100)
    floors = reference_floors(settings, (-8.0, -2.0), [(-8.0, -2.0), (-8.0, -6.36)])
    assert floors == pytest.approx([-5.0, -7.18])
    # one gas per row: rows 0-9 hold H2O, rows 10-19 VO, each at log10 VMR -8 ... -6.4 (none reaches -5)
    log10_vmr = np.full((20, 2), -np.inf)
    log10_vmr[:10, 0] = log10_vmr[10:, 1] = np.linspace(-8.0, -6.4, 10)
    pair_molecule = np.repeat([[0], [1]], 10, axis=0)
    ones = np.ones((20, 5))
    references = build_references(ones, ones, np.arange(20)[:, None], pair_molecule, log10_vmr, floors, settings,
                                  9.0, seed=0)
    assert not (references.molecule == 0).any()  # H2O below -5: not a reference of the upper prior
    vo = log10_vmr[10:, 1]
    assert (references.molecule == 1).sum() == (vo >= -7.18).sum() == 5


def test_the_gas_in_the_window_is_detected_where_present_and_only_there(models):
    """The network's side of the verdict on a partial coverage (1-2.8 um: H2O's 1.4 um band only), at SNR 100."""
    test, h2o = split_of(models), models.molecules.index("H2O")
    out = pyfunc(models).predict(spectra_table(models, (1.0, 2.8), 100.0))
    verdict = by_spectrum(out, "verdict", len(models.molecules))[:, h2o]
    present = test.injected[:, h2o] > 0
    assert np.mean(verdict[present] == DETECTED) >= 0.9          # measured: 1.0 (16 of 16)
    assert np.mean(verdict[~present] == NOT_DETECTED) >= 0.9     # measured: 1.0 (44 of 44)


def test_with_free_instrument_levels_an_offset_changes_nothing_and_a_level_alone_constrains_nothing(models):
    """A model trained with free levels between instruments (``level_instruments``) reads each name of the
    ``instrument`` column against its own level: adding a constant to one instrument's rows leaves every
    probability as it was, and a gas seen only through the levels of separate one-row instruments (CO2's 5.6 um
    band here, each row from 5 um up its own instrument) is not constrained, while it is without free levels."""
    loaded = pyfunc(models).unwrap_python_model()
    table = spectra_table(models, (1.0, 12.0), 300.0, rows=np.arange(12))
    table["instrument"] = np.where(table["wavelength_um"] < 5.0, "blue", "red_" + (table.index % 40).astype(str))
    settings = {"thresholds": DetectionThresholds(np.full(len(loaded.molecules), 0.5)), "min_bin_fraction": 0.5}

    def verdicts(frame: pd.DataFrame, level: bool) -> pd.DataFrame:
        spectra = validate_frame(frame, "input", default_name="spectrum")
        return predict_observed(loaded.network, loaded.molecules, models.grid_um, loaded.references,
                                settings | {"level_instruments": level}, spectra, "emission", "test")

    shifted = table.assign(depth=np.where(table["instrument"] == "red_30", table["depth"] + 2e-3, table["depth"]))
    levelled, moved = verdicts(table, True), verdicts(shifted, True)
    np.testing.assert_allclose(moved["probability"], levelled["probability"], rtol=1e-5, atol=1e-6)
    plain, plain_moved = verdicts(table, False), verdicts(shifted, False)
    assert np.abs(plain_moved["probability"] - plain["probability"]).max() > 1e-3  # without levels it shows
    n = len(models.molecules)
    co2, co = models.molecules.index("CO2"), models.molecules.index("CO")
    free, fixed = (by_spectrum(out, "detectable_fraction", n) for out in (levelled, plain))
    assert np.all(fixed[:, co2] >= 0.5) and np.all(free[:, co2] == 0.0)
    assert set(by_spectrum(levelled, "verdict", n)[:, co2]) == {NOT_CONSTRAINED}
    assert np.all(free[:, co] >= 0.5) and np.all(free <= fixed)  # CO keeps its 3.5 um band in the blue instrument


def test_a_batch_gives_the_same_answers_however_it_is_chunked(models, monkeypatch):
    """Large batches run in chunks of spectra (cache-sized arrays): the answer must not depend on the chunking, and a
    batch must answer each spectrum as it would alone."""
    import robert.inference.predictor as predictor

    table = spectra_table(models, (1.0, 12.0), 30.0)
    model = pyfunc(models)
    whole = model.predict(table)
    monkeypatch.setattr(predictor, "CHUNK_SPECTRA", 7)  # several chunks, the last one partial
    chunked = model.predict(table)
    pd.testing.assert_frame_equal(chunked, whole)
    alone = model.predict(table[table["spectrum"] == "s3"])
    row = whole[whole["spectrum"] == "s3"].reset_index(drop=True)
    np.testing.assert_allclose(alone["probability"], row["probability"], rtol=1e-5)
    assert list(alone["verdict"]) == list(row["verdict"])


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_row_median_is_the_median(n):
    from robert.inference.predictor import row_median

    values = np.random.default_rng(n).random((5, n)).astype(np.float32)
    values[0] = 0.5  # ties
    np.testing.assert_array_equal(row_median(values), np.median(values, axis=1))


def test_rows_outside_the_grid_are_dropped_listed_and_change_nothing(models, tmp_path, capsys):
    inside = published_table(split_of(models).depth[0], models.grid_um, 1.1, 5.0, 30, 50.0, 0)
    outside = pd.DataFrame({"wavelength_um": [0.55, 0.8, 23.5], "bin_low_um": [0.5, 0.75, 21.0],
                            "bin_high_um": [0.6, 0.85, 26.0], "depth": inside["depth"].iloc[:3].to_numpy(),
                            "depth_err": inside["depth_err"].iloc[:3].to_numpy()})
    table = pd.concat([outside.iloc[:2], inside, outside.iloc[2:]], ignore_index=True)
    model = pyfunc(models)
    alone, both = model.predict(inside), model.predict(table)
    assert both.attrs["dropped_rows"] == {"spectrum": [f"input row {i} ({w:g} um): outside the 1-20 um grid"
                                                       for i, w in [(0, 0.55), (1, 0.8), (32, 23.5)]]}
    assert set(both["n_points"]) == {30} and set(both["n_dropped"]) == {3} and "dropped_rows" not in alone.attrs
    np.testing.assert_allclose(both["probability"], alone["probability"], rtol=1e-6)
    assert both["verdict"].tolist() == alone["verdict"].tolist()

    path = write_observed_csv(tmp_path / "with_outside.csv", table.assign(geometry="emission"),
                              ["a spectrum with rows beyond 1-20 um"])
    status, out, err = run_cli(capsys, "predict", str(path), "--tracking-uri", models.tracking_uri)
    assert status == 0, err
    # the comment is line 1, the header line 2: input row i is line i + 3
    for line, wavelength in [(3, 0.55), (4, 0.8), (35, 23.5)]:
        assert f"    line {line} ({wavelength:g} um): outside the 1-20 um grid" in out.splitlines(), out
    assert "  30 rows used, 3 dropped:" in out.splitlines()


def test_a_file_of_nanometres_has_no_row_on_the_grid(models, tmp_path, capsys):
    table = published_table(split_of(models).depth[0], models.grid_um, 1.1, 5.0, 30, 50.0, 0)
    table[["wavelength_um", "bin_low_um", "bin_high_um"]] *= 1e3
    path = write_observed_csv(tmp_path / "nm.csv", table)
    line = the_error_line(*run_cli(capsys, "predict", str(path), "--geometry", "emission",
                                   "--tracking-uri", models.tracking_uri))
    assert line == (f"error: {path}: no row lies on the model grid (1-20 um; wavelength_um must be in micron)")


def test_geometry_chooses_the_model(models, tmp_path, capsys):
    emission = write_observed_csv(tmp_path / "e.csv", published_table(
        split_of(models).depth[1], models.grid_um, 1.1, 1.7, 20, 30.0, 1).assign(geometry="emission"))
    transmission = write_observed_csv(tmp_path / "t.csv", published_table(
        split_of(models, "transmission").depth[2], models.grid_um, 0.9, 12.0, 60, 100.0, 2)
        .assign(geometry="transmission"))
    status, out, err = run_cli(capsys, "predict", str(emission), str(transmission), "--format", "json",
                               "--tracking-uri", models.tracking_uri)
    assert status == 0, err
    report = json.loads(out)
    assert [(s["file"], s["geometry"], s["geometry_from"], s["model"]) for s in report["spectra"]] == [
        (str(emission), "emission", "geometry column", "models:/robert@champion"),
        (str(transmission), "transmission", "geometry column", "models:/robert-transmission@champion")]
    assert {(m["name"], m["version"], m["geometry"]) for m in report["models"]} == {
        ("robert", "1", "emission"), ("robert-transmission", "1", "transmission")}
    # a file without the column: --geometry says it
    bare = write_observed_csv(tmp_path / "bare.csv", pd.read_csv(transmission).drop(columns="geometry"))
    status, out, err = run_cli(capsys, "predict", str(bare), "--geometry", "transmission", "--format", "json",
                               "--tracking-uri", models.tracking_uri)
    assert status == 0, err
    (spectrum,) = json.loads(out)["spectra"]
    assert (spectrum["model"], spectrum["geometry_from"]) == ("models:/robert-transmission@champion", "--geometry")
    # one file, spectra of both geometries: each to its model, reported in the file's order
    mixed = write_observed_csv(tmp_path / "mixed.csv", pd.concat([
        pd.read_csv(transmission).assign(spectrum="t1"), pd.read_csv(emission).assign(spectrum="e1"),
        pd.read_csv(transmission).assign(spectrum="t2")]))
    status, out, err = run_cli(capsys, "predict", str(mixed), "--format", "json", "--tracking-uri",
                               models.tracking_uri)
    assert status == 0, err
    assert [(s["spectrum"], s["model"]) for s in json.loads(out)["spectra"]] == [
        ("t1", models.uris["transmission"]), ("e1", models.uris["emission"]), ("t2", models.uris["transmission"])]


def test_a_geometry_that_disagrees_with_the_model_is_one_line(models, tmp_path, capsys):
    table = published_table(split_of(models).depth[0], models.grid_um, 1.1, 5.0, 30, 50.0, 0)
    path = write_observed_csv(tmp_path / "t.csv", table.assign(geometry="transmission"))
    line = the_error_line(*run_cli(capsys, "predict", str(path), "--model", "models:/robert@champion",
                                   "--tracking-uri", models.tracking_uri))
    assert line == (f"error: {path} (transmission, from the geometry column): models:/robert@champion (robert v1) "
                    "reads emission spectra, not transmission: pass a model of that geometry with --model")
    bare = write_observed_csv(tmp_path / "bare.csv", table)
    line = the_error_line(*run_cli(capsys, "predict", str(bare), "--geometry", "emission", "--model",
                                   "models:/robert-transmission@champion", "--tracking-uri", models.tracking_uri))
    assert "(emission, from the --geometry): models:/robert-transmission@champion (robert-transmission v1) reads " \
           "transmission spectra, not emission" in line
    # Python: the pyfunc refuses a table that says it is of the other geometry
    with pytest.raises(MlflowException, match=r"^spectrum 'spectrum' says geometry transmission, but this model "
                                              r"reads emission spectra: use the transmission model$"):
        pyfunc(models).predict(table.assign(geometry="transmission"))


def test_the_same_verdicts_through_the_cli_and_the_pyfunc(models, tmp_path, capsys):
    """Three files (one of two spectra), partial and full coverages: the CLI's JSON is the pyfunc's answer."""
    frames = {"h2o_window.csv": spectra_table(models, (1.0, 2.8), 60.0, np.array([0])).drop(columns="spectrum"),
              "far_ir.csv": spectra_table(models, (7.5, 20.0), 60.0, np.array([1])).drop(columns="spectrum"),
              "two.csv": spectra_table(models, (1.0, 20.0), 20.0, np.array([2, 3]), n_rows=120)}
    paths = [write_observed_csv(tmp_path / name, frame.assign(geometry="emission")) for name, frame in frames.items()]
    status, out, err = run_cli(capsys, "predict", *map(str, paths), "--format", "json", "--tracking-uri",
                               models.tracking_uri)
    assert status == 0, err
    reports = json.loads(out)["spectra"]
    model = pyfunc(models)
    expected = pd.concat([model.predict(pd.read_csv(path)).assign(file=str(path)) for path in paths])
    got = pd.DataFrame([{"file": r["file"], "spectrum": r["spectrum"], **m} for r in reports for m in r["molecules"]])
    assert len(got) == len(expected) == 4 * len(models.molecules)
    assert got["molecule"].tolist() == expected["molecule"].tolist()
    for column in ("verdict", "detected", "constrained"):
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got["probability"], expected["probability"], atol=6e-5)
    np.testing.assert_allclose(got["detectable_fraction"], expected["detectable_fraction"], atol=6e-5)
    assert [r["spectrum"] for r in reports] == [str(paths[0]), str(paths[1]), "s2", "s3"]
    assert {r["verdict"] for r in reports[1]["molecules"] if r["molecule"] == "H2O"} == {NOT_CONSTRAINED}


def test_the_table_output(models, tmp_path, capsys):
    path = write_observed_csv(tmp_path / "h2o.csv", spectra_table(models, (1.0, 2.8), 60.0, np.array([0]))
                              .drop(columns="spectrum").assign(instrument="synthetic", geometry="emission"))
    status, out, err = run_cli(capsys, "predict", str(path), "--tracking-uri", models.tracking_uri)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[:3] == [f"{path}  [synthetic]",
                         "  emission (from the geometry column), read by models:/robert@champion (robert v1)",
                         "  40 rows used, 0 dropped"]
    assert re.fullmatch(r"  SNR \d+\.\d \(mean depth / median per-cell error on the grid\)", lines[3])
    # each molecule's own threshold, as the model stores it for the calibrated coverage this window matches (or the
    # shared one), set by the false-alarm rates of its training config
    basis = re.fullmatch(r"  thresholds: (?:those of the (\w+) coverage, which its observed cells match|shared .*)",
                         lines[4])
    assert basis, lines[4]
    settings = pyfunc(models).unwrap_python_model().settings
    stored = settings["coverage_thresholds"][basis[1]] if basis[1] else settings
    rows = {line.split()[0]: line for line in lines[6:9]}
    assert set(rows) == set(models.molecules)
    assert re.fullmatch(rf"  CO +not constrained +0\.\d{{3}} +{stored['thresholds']['CO']:.3f} +0\.00", rows["CO"])
    assert lines[-1].startswith("models:/robert@champion (robert v1): detected = constrained and P(present) >= "
                                "threshold, each molecule's set so that gases absent from validation spectra reach it "
                                "in 0.5 % of them")


def test_the_examples_run_with_no_model_option(models, tmp_path):
    """``robert predict examples/*.csv`` in a real process (the console script): a verdict per gas for both files,
    the rows beyond the grid listed (MIPS 24 um; the ten STIS bins below 1 um)."""
    console = Path(sys.executable).with_name("robert")
    assert console.exists(), "the `robert` console script is not installed (pip install -e .)"
    proc = run_command([str(console), "predict", *map(str, EXAMPLES), "--format", "json",
                        "--tracking-uri", models.tracking_uri], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    emission, transmission = json.loads(proc.stdout)["spectra"]
    assert (emission["model"], transmission["model"]) == tuple(models.uris[g] for g in ("emission", "transmission"))
    for report in (emission, transmission):
        assert [m["molecule"] for m in report["molecules"]] == models.molecules
        assert {m["verdict"] for m in report["molecules"]} <= {DETECTED, NOT_DETECTED, NOT_CONSTRAINED}
    assert (emission["n_points"], emission["n_dropped"]) == (33, 1)
    assert emission["dropped_rows"][0].endswith("(23.45 um): outside the 1-20 um grid")
    assert (transmission["n_points"], transmission["n_dropped"]) == (32, 10)
    assert all(row.endswith("um): outside the 1-20 um grid") for row in transmission["dropped_rows"])


def test_each_molecule_is_called_at_the_threshold_its_model_stores_for_the_spectrum_s_coverage(models):
    """Training stores per molecule the thresholds of each calibrated coverage (the whole grid and the prior's presets)
    and shared ones that hold on all of them; the pyfunc reports per row the threshold and whose it is, and calls a
    constrained gas detected exactly where P reaches it."""
    loaded = pyfunc(models)
    settings = loaded.unwrap_python_model().settings
    shared = settings["thresholds"]
    own = {name: entry["thresholds"] for name, entry in settings["coverage_thresholds"].items()}
    assert list(shared) == models.molecules and all(0.0 <= t <= 1.0 for t in shared.values())
    assert "full" in own and all(shared[m] >= max(t[m] for t in own.values()) for m in models.molecules)
    for window, basis, expected in (((1.0, 20.0), "full", own["full"]),  # the whole grid
                                    ((3.0, 3.6), ANY_COVERAGE, shared)):  # a window no calibrated coverage resembles
        out = loaded.predict(spectra_table(models, window, 30.0, np.arange(8)))
        assert set(out["threshold_coverage"]) == {basis}
        np.testing.assert_array_equal(out["threshold"], out["molecule"].map(expected))
        np.testing.assert_array_equal(out["detected"], out["constrained"] & (out["probability"] >= out["threshold"]))
