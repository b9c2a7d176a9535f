"""The ``robert`` command: molecules in observed spectra from the registered model, and its coverages.

    robert predict FILE... [--model URI] [--format table|json] [--drop-outside] [--tracking-uri URI]
    robert coverage [--format table|json|markdown] [--tracking-uri URI]

Why argparse and not ``@hydra.main`` as the pipeline stages: this is a user command over files
(``robert predict a.csv b.csv --model ...``), not a stage configured by overrides. Its defaults still come
from ``conf/predict.yaml`` (Hydra compose). Every user error - a bad file, row or option, an unknown model
URI - is one ``error: ...`` line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

import robert
from robert.errors import UserError, exit_on_user_error
from robert.inference.observed import ObservedSpectra, read_observed_csv
from robert.inference.predictor import CoverageMismatch, to_coverage
from robert.physics.binning import output_grid_um
from robert.spectra.coverage import Coverage, constraint_snr_index, load_presets

if TYPE_CHECKING:
    import pandas as pd

    from robert.tracking.pyfunc import RobertModel
    from robert.tracking.registry import ModelRef


def project_root() -> Path:
    """``ROBERT_ROOT`` or the checkout this package lives in (src/robert/ -> the root)."""
    return Path(os.environ.get("ROBERT_ROOT") or Path(robert.__file__).resolve().parents[2])


def load_config(root: Path, name: str = "predict") -> dict[str, Any]:
    """``conf/<name>.yaml`` composed and resolved (plain containers)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    conf_dir = (root / "conf").resolve()  # Hydra wants an absolute directory (ROBERT_ROOT may be relative)
    if not (conf_dir / f"{name}.yaml").exists():
        raise UserError(f"no conf/{name}.yaml under {root}: set ROBERT_ROOT to the RobERt project directory")
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name), resolve=True)


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (argparse prints the usage block and 'error:')."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="robert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    predict = commands.add_parser("predict", help="which molecules are in these observed spectra",
                                  description="Each FILE: a CSV with wavelength_um, depth (Fp/Fs fraction), "
                                              "depth_err (+ optional bin_low_um, bin_high_um, instrument, spectrum).")
    predict.add_argument("files", nargs="+", type=Path, metavar="FILE")
    predict.add_argument("--model", help="models:/<name>@<alias> or models:/<name>/<version> "
                                         "(default: predict.model in conf/predict.yaml)")
    predict.add_argument("--format", choices=("table", "json"), help="output format (default: table)")
    predict.add_argument("--drop-outside", action="store_true", default=None,
                         help="ignore rows outside the model's coverage (listed in the output) instead of failing")
    predict.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: conf/tracking)")
    coverage = commands.add_parser("coverage", help="the instrument coverages, their models and what they constrain")
    coverage.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    coverage.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: conf/tracking)")
    return parser


def use_tracking(cfg: dict[str, Any], root: Path, uri: str | None) -> None:
    import mlflow

    from robert.tracking.setup import resolve_tracking_uri

    uri = uri or resolve_tracking_uri(cfg["tracking"], root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def preset_coverages(cfg: dict[str, Any], root: Path) -> dict[str, Coverage]:
    """The ``conf/instrument`` presets on the configured model grid."""
    output = cfg["simulate"]["output"]
    grid, _ = output_grid_um(float(output["wavelength_min_um"]), float(output["wavelength_max_um"]),
                             int(output["n_bins"]))
    return {name: Coverage.from_config(preset, grid) for name, preset in load_presets(root / "conf").items()}


def fitting_presets(spectra: ObservedSpectra, presets: dict[str, Coverage], min_bin_fraction: float,
                    drop_outside: bool, alias: str) -> str:
    """Which presets would take this spectrum, as advice appended to a coverage error."""
    fits = []
    for coverage in presets.values():
        for drop in (False, True) if not drop_outside else (True,):
            try:
                to_coverage(spectra, coverage, min_bin_fraction, drop, coverage.registered_model)
            except CoverageMismatch:
                continue
            fits.append(f"--model models:/{coverage.registered_model}@{alias}" + (" --drop-outside" if drop else ""))
            break
    if fits:
        return "; coverage models that fit it: " + ", ".join(fits)
    return "; no conf/instrument preset fits it (add conf/instrument/<name>.yaml, train `instrument=<name>`)"


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def spectrum_reports(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The long prediction table as one report per spectrum."""
    reports = []
    dropped = table.attrs.get("dropped_rows", {})
    for name, rows in table.groupby("spectrum", sort=False):
        first = rows.iloc[0]
        reports.append({
            "spectrum": name, "coverage": first["coverage"], "instrument": first["instrument"],
            "n_points": int(first["n_points"]), "n_dropped": int(first["n_dropped"]),
            "dropped_rows": [row.removeprefix(f"{name} ") for row in dropped.get(name, [])],
            "snr": _finite(first["snr"]),
            "calibration_snr": _finite(first["calibration_snr"]),
            "molecules": [{"molecule": r["molecule"], "probability": round(float(r["probability"]), 4),
                           "threshold": round(float(r["threshold"]), 4), "detected": bool(r["detected"]),
                           "constrained": bool(r["constrained"]), "verdict": r["verdict"],
                           "min_pair_auc": _finite(round(float(r["min_pair_auc"]), 4)),
                           "confused_with": r["confused_with"] or None} for _, r in rows.iterrows()]})
    return reports


def format_table(model: dict[str, Any], reports: Sequence[dict[str, Any]]) -> str:
    lines = [f"model {model['uri']} = {model['name']} version {model['version']}, coverage {model['coverage']} "
             f"({model['coverage_ranges']}, {model['n_bins']} bins)"]
    for report in reports:
        snr = "n/a" if report["snr"] is None else f"{report['snr']:.1f}"
        more = report["n_dropped"] - 4
        shown = report["dropped_rows"][:4] + ([f"... {more} more"] if more > 0 else [])
        lines += ["", report["spectrum"] + (f"  [{report['instrument']}]" if report["instrument"] else ""),
                  f"  {report['n_points']} rows used" + (f", {report['n_dropped']} dropped (outside the coverage): "
                                                           + "; ".join(shown) if report["n_dropped"] else ""),
                  f"  SNR {snr} (mean depth / median error on the model's bins); constraints from validation "
                  f"spectra at SNR {report['calibration_snr']:g}",
                  f"  {'molecule':<9}{'P(present)':>11}{'threshold':>11}  verdict"]
        for m in report["molecules"]:
            auc = "n/a" if m["min_pair_auc"] is None else f"{m['min_pair_auc']:.2f}"
            why = "" if m["constrained"] else f" (cannot tell it from {m['confused_with']}: pairwise AUC {auc})"
            lines.append(f"  {m['molecule']:<9}{m['probability']:>11.3f}{m['threshold']:>11.3f}  {m['verdict']}{why}")
    return "\n".join(lines)


def load_model(uri: str) -> tuple[RobertModel, ModelRef]:
    from robert.tracking.registry import load_robert_model

    # Defining the PythonModel makes MLflow warn (with its own "once" filter, so no warnings filter helps) that
    # predict has no type hints; it has none on purpose (see pyfunc.py). Keep stderr to the one-line contract.
    with contextlib.redirect_stderr(io.StringIO()):
        import robert.tracking.pyfunc  # noqa: F401
    return load_robert_model(uri)


def run_predict(args: argparse.Namespace, cfg: dict[str, Any], root: Path) -> str:
    settings = cfg["predict"]
    matching = cfg["inference"]["observed"]
    drop = settings["drop_outside"] if args.drop_outside is None else args.drop_outside
    # every file is read and checked before the (slower) model load
    spectra = [read_observed_csv(path, int(matching["min_points"])) for path in args.files]
    uri = args.model or settings["model"]
    use_tracking(cfg, root, args.tracking_uri)
    model, ref = load_model(uri)
    if model.coverage is None:
        raise UserError(f"{uri} ({ref.version_uri}) was logged before observed-spectrum support (no coverage.json): "
                        "retrain it with `python src/train.py`")
    reports = []
    for observed in spectra:
        try:
            table = model.predict_observed(observed, drop, model_label=f"{ref.name} v{ref.version}")
        except CoverageMismatch as exc:
            advice = fitting_presets(observed, preset_coverages(cfg, root), float(model.matching["min_bin_fraction"]),
                                     drop, settings["alias"])
            raise CoverageMismatch(f"{exc}{advice}") from None
        reports += spectrum_reports(table)
    coverage = model.coverage
    summary = {"uri": uri, "name": ref.name, "version": ref.version, "coverage": coverage.name,
               "coverage_ranges": coverage.ranges_text(), "n_bins": coverage.n_bins}
    if (args.format or settings["format"]) == "json":
        return json.dumps({"model": summary, "spectra": reports}, indent=2)
    return format_table(summary, reports)


def coverage_rows(cfg: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """Per preset: its bins, its registered model's champion, test accuracy by SNR, what it constrains."""
    from mlflow.tracking import MlflowClient

    client, alias, rows = MlflowClient(), cfg["predict"]["alias"], []
    for name, coverage in preset_coverages(cfg, root).items():
        row: dict[str, Any] = {"coverage": name, "description": coverage.description,
                               "wavelengths_um": coverage.ranges_text(), "n_bins": coverage.n_bins,
                               "model": f"models:/{coverage.registered_model}@{alias}", "version": None,
                               "test_accuracy": {}, "constrained_at_snr": None, "constrained": []}
        try:
            model, ref = load_model(row["model"])
        except UserError:
            rows.append(row)
            continue
        row["version"] = ref.version
        metrics = client.get_run(ref.run_id).data.metrics
        prefix = "test/accuracy_snr_"
        row["test_accuracy"] = {k[len(prefix):]: v for k, v in sorted(
            metrics.items(), key=lambda kv: float(kv[0][len(prefix):]) if kv[0][len(prefix):].replace(
                ".", "", 1).isdigit() else math.inf) if k.startswith(prefix)}
        if model.calibration is not None:
            calibration = model.calibration
            snr = calibration.training_snr or max(calibration.snr_grid)
            index = int(constraint_snr_index(calibration.snr_grid, np.asarray([snr]))[0])
            worst = calibration.separability()[0][index]
            row["constrained_at_snr"] = calibration.snr_grid[index]
            row["constrained"] = [m for m, a in zip(calibration.molecules, worst, strict=True)
                                  if a >= calibration.min_auc]
        rows.append(row)
    return rows


def format_coverage(rows: list[dict[str, Any]], markdown: bool) -> str:
    snrs = list(dict.fromkeys(k for row in rows for k in row["test_accuracy"]))
    header = ["coverage", "wavelengths (um)", "bins", "model", *[f"acc. SNR {s}" for s in snrs], "constrained"]
    body = [[row["coverage"], row["wavelengths_um"].removesuffix(" um"), str(row["n_bins"]),
             f"{row['model']} v{row['version']}" if row["version"] else f"{row['model']} (not trained)",
             *[f"{row['test_accuracy'][s]:.3f}" if s in row["test_accuracy"] else "-" for s in snrs],
             (f"SNR {row['constrained_at_snr']:g}: " + (", ".join(row["constrained"]) or "none"))
             if row["constrained_at_snr"] is not None else "-"] for row in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                          *["| " + " | ".join(cells) + " |" for cells in body]])
    widths = [max(len(c) for c in column) for column in zip(header, *body, strict=True)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in [header, *body])


@exit_on_user_error
def run(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # store migrations would otherwise log to stderr
    root = project_root()
    cfg = load_config(root)
    if args.command == "predict":
        print(run_predict(args, cfg, root))
    else:
        use_tracking(cfg, root, args.tracking_uri)
        rows = coverage_rows(cfg, root)
        print(json.dumps(rows, indent=2) if args.format == "json" else format_coverage(rows, args.format == "markdown"))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``[project.scripts] robert``)."""
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
