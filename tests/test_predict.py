"""Inference on observed spectra: reading, resampling, coverage, calibration, the pyfunc and the CLI.

A tiny DBN is trained on the synthetic shards of test_train.py restricted to the HST WFC3 preset
(conf/instrument/wfc3.yaml, 1.12-1.64 um): there, only H2O has a band (1.4 um); CO (3.5, 10.5 um) and
CO2 (5.6, 15 um) are invisible, so the model must call H2O and say "not constrained" for CO and CO2.
Every bad input of issue 7 goes through the CLI (in-process: exit status, stderr) and two through real
processes (``python src/predict.py``, the ``robert`` console script).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException
from test_train import MOLECULES, PLANETS, train_config, use_store, write_synthetic_dataset

from helpers.config import ROOT, compose_config
from robert.cli import main as cli_main
from robert.data.datamodule import Spectra
from robert.errors import UserError
from robert.inference.calibration import f1_thresholds, pairwise_auc, reliability, roc_auc
from robert.inference.observed import read_observed_csv, validate_frame
from robert.inference.predictor import _row_median, to_coverage
from robert.spectra.coverage import Coverage, constrained, restrict_spectra
from robert.spectra.resample import averaging_matrix, grid_cells_um
from robert.training.evaluate import evaluate
from robert.training.train import build_datamodule, train

if TYPE_CHECKING:  # importing it defines the PythonModel, which makes MLflow warn
    from robert.tracking.pyfunc import RobertModel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning",
                                        "ignore::FutureWarning")
GRID = np.geomspace(1.0, 20.0, 901)  # the synthetic shards' grid (= simulate.output)
# The coverage models' recipe (dvc.yaml `coverage`: fine-tuning only, Gaussian visible units standardised per
# bin) with a higher rate for the ~70 training rows: separates H2O in 12 epochs (measured: val accuracy 2/3,
# the most 28 bins without CO/CO2 bands allow).
COVERAGE_LEARNS = ("model.pretrain.epochs_per_layer=0", "model.top.epochs=0", "model.visible=gaussian",
                   "model.finetune.lr=0.01", "model.finetune.epochs=12")
EXAMPLE = ROOT / "examples" / "hd189733b_emission.csv"


def preset(name: str) -> Coverage:
    return Coverage.from_config(compose_config("train", [f"instrument={name}"])["instrument"], GRID)


def observed_frame(depth: np.ndarray, coverage: Coverage, snr: float, seed: int) -> pd.DataFrame:
    """A clean coverage spectrum as a published table: noisy depth, its error, bins; rows shuffled."""
    rng = np.random.default_rng(seed)
    error = np.full(coverage.n_bins, depth.mean() / snr)
    frame = pd.DataFrame({"wavelength_um": coverage.centres_um, "bin_low_um": coverage.bin_low_um,
                          "bin_high_um": coverage.bin_high_um, "depth": depth + rng.normal(0, error),
                          "depth_err": error})
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def wfc3_model(tmp_path_factory) -> dict:
    """A tiny model of coverage wfc3 (registered robert-wfc3 v1, alias champion) and its test spectra."""
    tmp = tmp_path_factory.mktemp("wfc3")
    dataset = write_synthetic_dataset(tmp / "datasets", PLANETS)
    cfg = train_config(tmp, dataset, PLANETS, *COVERAGE_LEARNS, "instrument=wfc3")
    result = train(cfg, ROOT)
    use_store(result)
    mlflow.MlflowClient().set_registered_model_alias("robert-wfc3", "champion", result.registered_version)
    datamodule = build_datamodule(cfg, PLANETS, ROOT)
    test = datamodule.split("test")
    return {"cfg": cfg, "result": result, "uri": result.tracking_uri, "test": test, "tmp": tmp,
            "coverage": datamodule.coverage}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``robert`` in this process: (exit status, stdout, stderr)."""
    try:
        status = cli_main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def first_of(test: Spectra, molecule: str) -> int:
    return int(np.flatnonzero(test.labels[:, MOLECULES.index(molecule)] > 0)[0])


# --- resampling and coverages (no model) ------------------------------------------------------------


def test_observed_bins_that_tile_the_coverage_give_exactly_the_training_input():
    """The same transform: grid -> half bins (an 'observation') -> coverage bins == grid -> coverage bins."""
    coverage = preset("wfc3")
    spectrum = 1e-3 * (1 + 0.3 * np.sin(7 * np.log(GRID)))
    edges = np.sort(np.concatenate([coverage.bin_low_um, coverage.bin_high_um[-1:],
                                    np.sqrt(coverage.bin_low_um * coverage.bin_high_um)]))
    half_low, half_high = edges[:-1], edges[1:]
    observed = averaging_matrix(*grid_cells_um(GRID), half_low, half_high).apply(spectrum)
    via_observation = averaging_matrix(half_low, half_high, coverage.bin_low_um, coverage.bin_high_um).apply(observed)
    np.testing.assert_allclose(via_observation, coverage.grid_averaging(GRID).apply(spectrum), rtol=1e-12)


def test_presets_on_the_model_grid():
    assert preset("full").identity and preset("full").n_bins == 901
    irac = preset("irac")
    assert irac.n_bins == 4 and irac.ranges_text() == "3.2-5, 5.1-6.3, 6.6-9 um"
    # a broad band is the (wavenumber-weighted) mean of the grid inside it: between the extremes it spans
    spectrum = np.linspace(1.0, 2.0, 901)
    band = irac.grid_averaging(GRID).apply(spectrum)
    inside = (GRID > 3.2) & (GRID < 4.0)
    assert spectrum[inside].min() < band[0] < spectrum[inside].max()
    assert preset("wfc3_spitzer").n_bins == 33
    assert preset("niriss_soss").bin_low_um[0] < 1.0 < preset("niriss_soss").bin_high_um[0]  # grid starts at 1 um


def test_the_shipped_example_fits_wfc3_plus_spitzer_after_dropping_mips():
    spectra = read_observed_csv(EXAMPLE)
    assert spectra.counts.tolist() == [34] and "spitzer_mips_24um" in spectra.instruments[0]
    with pytest.raises(UserError, match=r"line 35: wavelength_um 23\.45 .* outside"):
        to_coverage(spectra, preset("wfc3_spitzer"), 0.5, False, "m")
    inputs = to_coverage(spectra, preset("wfc3_spitzer"), 0.5, True, "m")
    assert inputs.n_used.tolist() == [33] and len(inputs.dropped[0]) == 1
    # the published WFC3 bins are the preset's bins to < 1e-3 um: the averages are the published depths
    np.testing.assert_allclose(inputs.depth[0, :28], spectra.depth[:28], atol=2e-5)
    assert 5 < inputs.snr[0] < 50


def test_datamodule_restricts_clean_spectra_to_the_coverage(tmp_path):
    dataset = write_synthetic_dataset(tmp_path, PLANETS, n_per_planet=12)
    for name, n_bins in (("full", 901), ("irac", 4)):
        cfg = compose_config("train", ["data=tiny", f"data.dataset_dir={dataset}", f"instrument={name}"])
        module = build_datamodule(cfg, PLANETS, ROOT)
        assert module.n_visible == n_bins and module.coverage.name == name
    full = build_datamodule(compose_config("train", ["data=tiny", f"data.dataset_dir={dataset}"]), PLANETS, ROOT)
    irac = build_datamodule(cfg, PLANETS, ROOT)
    np.testing.assert_allclose(irac.split("val").depth,
                               restrict_spectra(full.split("val"), preset("irac")).depth, rtol=1e-6)


# --- calibration ------------------------------------------------------------------------------------


def test_roc_auc_and_f1_thresholds_against_brute_force():
    rng = np.random.default_rng(3)
    labels = (rng.random((300, 2)) < 0.3).astype(float)
    probs = np.clip(labels * 0.3 + rng.random((300, 2)) * 0.8, 0, 1)
    for m in range(2):
        pos, neg = probs[labels[:, m] > 0, m], probs[labels[:, m] == 0, m]
        brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / pos.size / neg.size
        assert roc_auc(probs, labels)[m] == pytest.approx(brute)
    thresholds, best = f1_thresholds(probs, labels)
    for m in range(2):
        truth = labels[:, m] > 0
        f1 = [2 * (truth & (probs[:, m] >= t)).sum() / ((probs[:, m] >= t).sum() + truth.sum()) for t in probs[:, m]]
        assert best[m] == pytest.approx(max(f1))
        assert 2 * (truth & (probs[:, m] >= thresholds[m])).sum() / ((probs[:, m] >= thresholds[m]).sum()
                                                                     + truth.sum()) == pytest.approx(max(f1))


def test_pairwise_auc_sees_through_exclusion():
    """One gas per spectrum: B and C invisible, A visible. One-vs-rest AUC of B is high, pairwise B-C is chance."""
    rng = np.random.default_rng(0)
    gas = np.repeat([0, 1, 2], 200)
    labels = np.eye(3)[gas]
    probs = np.where(gas[:, None] == 0, [0.95, 0.02, 0.02], [0.02, 0.5, 0.5]) + rng.normal(0, 0.01, (600, 3))
    assert roc_auc(probs, labels)[1] > 0.7
    table = pairwise_auc(probs, labels)
    assert table[1, 0] > 0.99 and abs(table[1, 2] - 0.5) < 0.1 and table[0, 1] > 0.99
    flags, worst, partner = constrained(np.nanmin(np.where(np.isnan(table), np.inf, table), 1)[None],
                                        np.array([[1, 2, 1]]), [10.0], np.array([30.0]), 0.8)
    assert flags.tolist() == [[True, False, False]] and partner[0, 1] == 2


def test_reliability_and_ece():
    rng = np.random.default_rng(1)
    p = rng.random((20000, 1))
    calibrated = (rng.random(p.shape) < p).astype(float)
    table, ece = reliability(p, calibrated, 10)
    assert ece < 0.02 and len(table) == 10 and sum(row["n"] for row in table) == p.size
    overconfident = np.full((20000, 1), 0.99)
    _, ece = reliability(overconfident, (rng.random(p.shape) < 0.6).astype(float), 10)
    assert ece == pytest.approx(0.39, abs=0.02)


# --- the model: pyfunc, CLI, evaluation ------------------------------------------------------------


def test_pyfunc_takes_published_tables_and_still_arrays(wfc3_model):
    use_store(wfc3_model["result"])
    loaded = mlflow.pyfunc.load_model("models:/robert-wfc3/1")
    assert loaded.metadata.get_input_schema().required_input_names() == ["wavelength_um", "depth", "depth_err"]
    assert loaded.metadata.get_params_schema().params[0].name == "drop_outside"
    assert loaded.input_example is not None and len(loaded.input_example) == 28
    test, coverage = wfc3_model["test"], wfc3_model["coverage"]
    frames = [observed_frame(test.depth[first_of(test, m)], coverage, 30, i).assign(spectrum=m)
              for i, m in enumerate(MOLECULES)]
    out = loaded.predict(pd.concat(frames))
    assert len(out) == 9 and set(out["spectrum"]) == set(MOLECULES)
    verdict = out.set_index(["spectrum", "molecule"])["verdict"]
    assert verdict["H2O", "H2O"] == "detected" and verdict["CO", "H2O"] == verdict["CO2", "H2O"] == "not detected"
    for spectrum in MOLECULES:  # CO and CO2 have no band in 1.12-1.64 um
        assert verdict[spectrum, "CO"] == verdict[spectrum, "CO2"] == "not constrained"
    assert set(out.loc[out["molecule"] == "CO", "confused_with"]) == {"CO2"}
    # the array path (evaluation stage): same network, same probabilities for the same coverage vector
    model = loaded.unwrap_python_model()
    x = np.stack([f.sort_values("wavelength_um")["depth"].to_numpy() for f in frames])
    np.testing.assert_allclose(model.predict_proba(x), out["probability"].to_numpy().reshape(3, 3), rtol=1e-5)
    with pytest.raises(MlflowException, match=r"input row \d+, column depth_err: expected a 1-sigma error > 0, got 0$"):
        loaded.predict(frames[0].assign(depth_err=0.0))


def test_row_order_and_inferred_bins(wfc3_model, tmp_path, capsys):
    test, coverage = wfc3_model["test"], wfc3_model["coverage"]
    frame = observed_frame(test.depth[first_of(test, "H2O")], coverage, 20, 0)
    frame.to_csv(tmp_path / "shuffled.csv", index=False)
    frame.sort_values("wavelength_um").to_csv(tmp_path / "sorted.csv", index=False)
    frame.drop(columns=["bin_low_um", "bin_high_um"]).to_csv(tmp_path / "no_bins.csv", index=False)
    status, out, err = run_cli(capsys, "predict", *(str(tmp_path / f"{n}.csv") for n in ("shuffled", "sorted",
                               "no_bins")), "--model", "models:/robert-wfc3@champion", "--tracking-uri",
                               wfc3_model["uri"], "--format", "json")
    assert status == 0, err
    report = json.loads(out)
    assert report["model"]["version"] == "1" and report["model"]["coverage"] == "wfc3"
    shuffled, ordered, no_bins = ({m["molecule"]: m for m in s["molecules"]} for s in report["spectra"])
    assert shuffled == ordered and shuffled["H2O"]["verdict"] == "detected"
    # bins inferred from the centres (halfway in log) are the preset's linear bins to < 1 %: same verdicts
    assert {m: v["verdict"] for m, v in no_bins.items()} == {m: v["verdict"] for m, v in shuffled.items()}
    assert report["spectra"][0]["snr"] == pytest.approx(20, rel=0.15)


def test_observed_snr_follows_the_errors(wfc3_model):
    test, coverage = wfc3_model["test"], wfc3_model["coverage"]
    frame = observed_frame(test.depth[0], coverage, 10, 0)
    model = mlflow.pyfunc.load_model("models:/robert-wfc3/1").unwrap_python_model()
    low, high = (model.predict_observed(frame.assign(depth_err=frame["depth_err"] * k))["snr"].iloc[0]
                 for k in (2.0, 1.0))
    assert high == pytest.approx(2 * low)


def three_grids(test: Spectra, coverage: Coverage, n: int, seed: int) -> list[pd.DataFrame]:
    """``n`` test spectra as published tables on three grids: the coverage's bins, half bins tiling them, and the
    coverage's centres without bins (inferred); rows shuffled in each, some with an instrument name."""
    edges = np.sort(np.concatenate([coverage.bin_low_um, coverage.bin_high_um[-1:], coverage.centres_um]))
    frames = []
    for i in range(n):
        frame = observed_frame(test.depth[i % len(test)], coverage, 10 + 5 * i, seed + i)
        if i % 3 == 1:  # the same depths on half bins (both halves of a bin carry the bin's value)
            order = frame["wavelength_um"].argsort().to_numpy()
            depth, error = (np.repeat(frame[c].to_numpy()[order], 2) for c in ("depth", "depth_err"))
            frame = pd.DataFrame({"wavelength_um": np.sqrt(edges[:-1] * edges[1:]), "bin_low_um": edges[:-1],
                                  "bin_high_um": edges[1:], "depth": depth, "depth_err": error * np.sqrt(2)})
            frame = frame.sample(frac=1, random_state=seed + i).reset_index(drop=True)
        elif i % 3 == 2:
            frame = frame.assign(bin_low_um=np.nan, bin_high_um=np.nan)
        frames.append(frame.assign(instrument="WFC3" if i % 2 else ""))
    return frames


@pytest.mark.parametrize("layout", ["contiguous", "interleaved", "one_grid", "one_grid_descending"])
def test_a_batch_gives_what_each_spectrum_gives_alone(wfc3_model, layout, monkeypatch):
    """The vectorised batch path (one sort, grids shared, one matrix per grid; sorting and gathering on two
    threads as for a large table) == spectrum by spectrum."""
    model = mlflow.pyfunc.load_model("models:/robert-wfc3/1").unwrap_python_model()
    monkeypatch.setattr(sys.modules["robert.inference.observed"], "_PARALLEL_ROWS", 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check_batch_against_single_spectra(model, wfc3_model["test"], wfc3_model["coverage"], layout)
    finally:
        torch.set_num_threads(threads)


def check_batch_against_single_spectra(model: RobertModel, test: Spectra, coverage: Coverage, layout: str) -> None:
    frames = three_grids(test, coverage, 9, 0)
    if layout.startswith("one_grid"):  # every spectrum on the coverage's bins: the equal-length reshape path
        frames = [observed_frame(test.depth[i % len(test)], coverage, 20, i) for i in range(9)]
    if layout == "one_grid_descending":  # as tables in wavenumber order are published: no sort, a reversal
        frames = [f.sort_values("wavelength_um", ascending=False, ignore_index=True) for f in frames]
    alone = [model.predict_observed(f) for f in frames]
    batch = pd.concat([f.assign(spectrum=f"s{i}") for i, f in enumerate(frames)], ignore_index=True)
    if layout == "interleaved":  # rows of all spectra mixed: the global sort
        batch = batch.sample(frac=1, random_state=1).reset_index(drop=True)
    out = model.predict_observed(batch)
    names = out["spectrum"].unique().tolist()  # in order of first appearance
    assert names == list(dict.fromkeys(batch["spectrum"])) and sorted(names) == sorted(f"s{i}" for i in range(9))
    out = out.set_index("spectrum")
    for i, expected in enumerate(alone):
        got = out.loc[f"s{i}"]
        np.testing.assert_allclose(got["probability"], expected["probability"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got["snr"], expected["snr"], rtol=1e-12)
        for column in ("molecule", "detected", "constrained", "verdict", "n_points", "instrument"):
            assert got[column].tolist() == expected[column].tolist(), (i, column)
    # half bins give the coverage bins' own depths back: same input as the bins themselves
    if layout == "contiguous":
        assert set(out.loc["s1", "n_points"]) == {2 * coverage.n_bins}


def test_batch_errors_name_the_input_row():
    """Checks run over the whole table at once; the message still names the first offending input row."""
    grid = np.geomspace(1.1, 1.7, 12)
    rng = np.random.default_rng(0)
    batch = pd.concat([pd.DataFrame({"spectrum": f"s{i}", "wavelength_um": rng.permutation(grid), "depth": 1e-4,
                                     "depth_err": 1e-5}) for i in range(4)], ignore_index=True)
    assert len(validate_frame(batch, "input")) == 4
    for column, row, value, expected in [("depth_err", 30, 0.0, "a 1-sigma error > 0, got 0"),
                                         ("depth", 41, np.nan, "a finite number, got nan"),
                                         ("wavelength_um", 7, -1.2, "a wavelength in micron > 0, got -1.2")]:
        bad = batch.copy()
        bad.loc[row, column] = value
        with pytest.raises(UserError, match=rf"^input row {row}, column {column}: expected {expected}$"):
            validate_frame(bad, "input")
    # three rows of one wavelength: the first two input rows are named, whatever order the sort met them in
    tripled = batch.copy()
    tripled.loc[np.flatnonzero(batch["spectrum"] == "s2")[[0, 4, 9]], "wavelength_um"] = 1.25
    for table in (tripled, tripled.sample(frac=1, random_state=0).reset_index(drop=True)):
        rows = np.flatnonzero((table["spectrum"] == "s2") & (table["wavelength_um"] == 1.25))
        with pytest.raises(UserError, match=rf"^input row {rows[0]} and input row {rows[1]}: duplicated "
                                            r"wavelength_um 1\.25; expected one row per wavelength$"):
            validate_frame(table, "input")


def test_sparse_and_selection_averaging_equal_the_dense_product():
    """Averaging applies its matrix sparsely, or as a plain selection when every target bin is one source bin."""
    rng = np.random.default_rng(3)
    coverage = preset("wfc3")
    edges = np.sort(np.concatenate([coverage.bin_low_um, coverage.bin_high_um[-1:], coverage.centres_um]))
    bins = (coverage.bin_low_um, coverage.bin_high_um)
    for source, target in [((edges[:-1], edges[1:]), bins), (bins, bins), (bins, (bins[0][::-1], bins[1][::-1]))]:
        averaging = averaging_matrix(*source, *target)
        x, e = rng.random((5, len(source[0]))), rng.random((5, len(source[0])))
        np.testing.assert_allclose(averaging.apply(x), x @ averaging.weights.T, rtol=1e-12)
        np.testing.assert_allclose(averaging.apply(x[0]), x[0] @ averaging.weights.T, rtol=1e-12)
        np.testing.assert_allclose(averaging.apply_errors(e), np.sqrt((e**2) @ (averaging.weights**2).T), rtol=1e-12)
    assert np.array_equal(_row_median(x), np.median(x, axis=1))
    assert np.array_equal(_row_median(x[:, :-1]), np.median(x[:, :-1], axis=1))  # an even number of bins


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def good_rows(coverage: Coverage, n: int | None = None) -> list[str]:
    depth = 1e-4 * (1 + 0.1 * np.sin(np.arange(coverage.n_bins)))
    return [f"{w:.5f},{d:.4e},{d / 10:.2e}" for w, d in zip(coverage.centres_um[:n], depth[:n], strict=False)]


HEADER = "wavelength_um,depth,depth_err"


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing_column", "wavelength_um,depth\n1.2,1e-4\n",
     r"missing column depth_err; expected columns wavelength_um, depth, depth_err .*; found: wavelength_um, depth"),
    ("nan", lambda rows: [HEADER, rows[0], rows[1].replace(rows[1].split(",")[1], "nan"), *rows[2:]],
     r"line 3, column depth: expected a finite number, got 'nan'"),
    ("inf", lambda rows: [HEADER, *rows[:4], rows[4].rsplit(",", 1)[0] + ",inf", *rows[5:]],
     r"line 6, column depth_err: expected a finite number, got 'inf'"),
    ("zero_error", lambda rows: [HEADER, rows[0].rsplit(",", 1)[0] + ",0", *rows[1:]],
     r"line 2, column depth_err: expected a 1-sigma error > 0, got '0'$"),
    ("negative_error", lambda rows: [HEADER, *rows[:9], rows[9].rsplit(",", 1)[0] + ",-3e-5", *rows[10:]],
     r"line 11, column depth_err: expected a 1-sigma error > 0, got '-3e-5'$"),
    ("outside", lambda rows: [HEADER, *rows, "25.0,2e-3,1e-4"],
     r"line 30: wavelength_um 25 \(bin .* um\) lies outside what model robert-wfc3 v1 \(coverage wfc3: "
     r"1\.12-1\.64 um\) knows; .*--drop-outside"),
    ("nanometres", lambda rows: [HEADER, "1400.0,1e-4,1e-5", *rows], r"line 2: wavelength_um 1400 \(wavelength_um "
                                                                     r"must be in micron\)"),
    ("duplicated", lambda rows: [HEADER, *rows, rows[3]],
     r"line 5 and .* line 30: duplicated wavelength_um 1\.18\d+; expected one row per wavelength"),
    ("too_few", lambda rows: [HEADER, *rows[:2]], r": 2 spectral point\(s\); at least 3 needed"),
    ("too_little_coverage", lambda rows: [HEADER, *rows[:5]], r": covers 5 of the 28 bins of model robert-wfc3 v1 "
                                                               r".* first uncovered bin 1\.212-1\.231 um"),
    ("ppm", lambda rows: [HEADER, "1.2,150.0,40.0", *rows[1:]], r"line 2, column depth: expected the eclipse depth "
                                                                r"as a fraction"),
    ("not_a_number", lambda rows: [HEADER, rows[0].replace(rows[0].split(",")[0], "abc"), *rows[1:]],
     r"line 2, column wavelength_um: expected a number, got 'abc'"),
    ("ragged", lambda rows: [HEADER, rows[0] + ",9", *rows[1:]], r"line 2: 4 field\(s\), but the header \(line 1\) "
                                                                 r"names 3"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not a CSV file \(binary content, not UTF-8 text\)"),
    ("json", '{"wavelength_um": [1.2], "depth": [1e-4]}\n', r"missing column wavelength_um, depth, depth_err"),
    ("empty", "# only a comment\n\n", r"empty; expected a header row"),
    ("bins_inverted", lambda rows: ["wavelength_um,depth,depth_err,bin_low_um,bin_high_um",
                                    *(r + ",," for r in rows[1:]), rows[0] + ",1.2,1.1"],
     r"line 29, columns bin_low_um/bin_high_um: expected 0 < bin_low_um <= wavelength_um <= bin_high_um"),
])
def test_each_bad_input_is_one_line_through_the_cli(wfc3_model, tmp_path, capsys, name, content, expected):
    if callable(content):
        content = "\n".join(content(good_rows(wfc3_model["coverage"]))) + "\n"
    path = write(tmp_path / f"{name}.csv", content)
    status, out, err = run_cli(capsys, "predict", str(path), "--model", "models:/robert-wfc3@champion",
                               "--tracking-uri", wfc3_model["uri"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and not out and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), err
    assert re.search(expected, lines[0]), lines[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--model", "models:/robert-wfc3@champoin"], r"error: model URI 'models:/robert-wfc3@champoin' names no "
                                                  r"version of 'robert-wfc3' \(versions: 1; aliases: @champion -> 1\)"),
    (["--model", "models:/robert-wfc3/7"], r"names no version .* \(versions: 1; aliases: @champion -> 1\)"),
    (["--model", "models:/robert-nope@champion"], r"error: no registered model 'robert-nope' .*\(registered models: "
                                                  r"robert-wfc3\)"),
    (["--model", "robert-wfc3"], r"error: model URI 'robert-wfc3' is not of the form models:/"),
    (["--format", "xml"], r"error: robert predict: argument --format: invalid choice: 'xml'"),
])
def test_bad_model_uri_and_options_are_one_line(wfc3_model, tmp_path, capsys, argv, expected):
    path = write(tmp_path / "ok.csv", "\n".join([HEADER, *good_rows(wfc3_model["coverage"])]) + "\n")
    status, out, err = run_cli(capsys, "predict", str(path), "--tracking-uri", wfc3_model["uri"], *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(expected, lines[0]), lines[0]


def test_a_missing_file_and_a_coverage_mismatch_with_advice(wfc3_model, tmp_path, capsys):
    status, _, err = run_cli(capsys, "predict", str(tmp_path / "nope.csv"), "--tracking-uri", wfc3_model["uri"])
    assert status == 2 and err.strip() == f"error: {tmp_path / 'nope.csv'}: no such file"
    status, _, err = run_cli(capsys, "predict", str(EXAMPLE), "--model", "models:/robert-wfc3@champion",
                             "--tracking-uri", wfc3_model["uri"])
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "line 30: wavelength_um 3.6" in err and "--model models:/robert-wfc3_spitzer@champion --drop-outside" in err


def test_real_processes_script_and_console_entry(wfc3_model, tmp_path):
    test = wfc3_model["test"]
    path = tmp_path / "h2o.csv"
    observed_frame(test.depth[first_of(test, "H2O")], wfc3_model["coverage"], 20, 1).to_csv(path, index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    common = ["--model", "models:/robert-wfc3@champion", "--tracking-uri", wfc3_model["uri"]]
    proc = subprocess.run([sys.executable, str(ROOT / "src" / "predict.py"), str(path), *common], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{path}" in proc.stdout and any(line.split()[:1] == ["H2O"] and line.endswith("detected")
                                            for line in proc.stdout.splitlines()), proc.stdout
    console = Path(sys.executable).with_name("robert")
    assert console.exists(), "the `robert` console script is not installed (pip install -e .)"
    bad = write(tmp_path / "bad.csv", "\n".join([HEADER, *good_rows(wfc3_model["coverage"])[:5], "1.3,nan,1e-5"]))
    proc = subprocess.run([str(console), "predict", str(bad), *common], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"error: {bad} line 7, column depth: expected a finite number, got 'nan'"]


def test_evaluation_writes_the_reliability_diagram_and_ece(wfc3_model):
    cfg = wfc3_model["cfg"]
    summary = evaluate(cfg, ROOT)
    out = Path(cfg["evaluate"]["out_dir"])
    rows = pd.read_csv(out / "reliability.csv")
    assert (out / "reliability.png").stat().st_size > 0 and rows["n"].sum() == summary["n_test"] * len(MOLECULES)
    expected = (rows["n"] * (rows["observed_frequency"] - rows["mean_probability"]).abs()).sum() / rows["n"].sum()
    assert summary["ece"] == pytest.approx(expected, abs=1e-6) and 0 <= summary["ece_top_label"] <= 1
    client = mlflow.MlflowClient()
    assert client.get_run(wfc3_model["result"].run_id).data.metrics["test/ece"] == pytest.approx(summary["ece"])


def test_coverage_command_lists_presets_and_the_trained_one(wfc3_model, capsys):
    status, out, err = run_cli(capsys, "coverage", "--tracking-uri", wfc3_model["uri"], "--format", "json")
    assert status == 0, err
    rows = {row["coverage"]: row for row in json.loads(out)}
    assert {"full", "wfc3", "irac", "niriss_soss", "nirspec_g395h", "miri_lrs", "wfc3_spitzer"} <= set(rows)
    assert rows["wfc3"]["version"] == "1" and rows["irac"]["version"] is None
    assert rows["wfc3"]["constrained"] == ["H2O"]


def test_validate_frame_names_dataframe_rows():
    frame = pd.DataFrame({"wavelength_um": [1.2, 1.3, 1.4], "depth": [1e-4, 2e-4, np.inf], "depth_err": [1e-5] * 3})
    with pytest.raises(UserError, match=r"^input row 2, column depth: expected a finite number, got inf$"):
        validate_frame(frame, "input")
