"""The ``robert`` command: which molecules an observed spectrum shows, from the model of its geometry.

    robert predict FILE... [--geometry emission|transmission] [--model URI] [--format table|json]
                           [--tracking-uri URI]

Any coverage within 1-20 um and any error bars: each FILE is a published table (see
:mod:`robert.inference.observed`), read by the registered model of its geometry (``predict.models`` in
conf/predict.yaml: ``models:/robert@champion`` for emission, ``models:/robert-transmission@champion`` for
transmission; ``--model`` for another one). The geometry comes from the file's ``geometry`` column or from
``--geometry`` (:mod:`robert.inference.routing`). Rows outside the grid are dropped and listed. Per gas the
verdict is detected / not detected / not constrained (by this coverage and these errors), with the network's
probability and the share of reference atmospheres this spectrum could show the gas in.

Why argparse and not ``@hydra.main`` as the pipeline stages: this is a user command over files
(``robert predict a.csv b.csv``), not a stage configured by overrides. Its defaults still come from
``conf/predict.yaml`` (Hydra compose). Every user error - a bad file, row or option, an unknown model URI, a
spectrum of unknown geometry - is one ``error: ...`` line on stderr and exit status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import robert
from robert.errors import UserError, exit_on_user_error
from robert.inference.observed import GEOMETRIES, read_observed_csv
from robert.inference.routing import Routed, model_uri, route
from robert.inference.thresholds import ANY_COVERAGE

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
    predict = commands.add_parser(
        "predict", help="which molecules are in these observed spectra",
        description="Each FILE: a CSV with wavelength_um, depth (a fraction: Fp/Fs in emission, (Rp/Rs)^2 in "
                    "transmission), depth_err (+ optional bin_low_um, bin_high_um, instrument, spectrum, geometry).")
    predict.add_argument("files", nargs="+", type=Path, metavar="FILE")
    predict.add_argument("--geometry", choices=GEOMETRIES,
                         help="the spectra's geometry, for files without a geometry column")
    predict.add_argument("--model", help="models:/<name>@<alias> or models:/<name>/<version> for every file "
                                         "(default: predict.models.<geometry> in conf/predict.yaml)")
    predict.add_argument("--format", choices=("table", "json"), help="output format (default: predict.format)")
    predict.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: conf/tracking)")
    return parser


def use_tracking(cfg: dict[str, Any], root: Path, uri: str | None) -> None:
    import mlflow

    from robert.tracking.setup import resolve_tracking_uri

    uri = uri or resolve_tracking_uri(cfg["tracking"], root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def load_model(uri: str) -> tuple[RobertModel, ModelRef]:
    from robert.tracking.registry import load_robert_model

    # Defining the PythonModel makes MLflow warn (with its own "once" filter, so no warnings filter helps) that
    # predict has no type hints; it has none on purpose (see pyfunc.py). Keep stderr to the one-line contract.
    with contextlib.redirect_stderr(io.StringIO()):
        import robert.tracking.pyfunc  # noqa: F401
    return load_robert_model(uri)


def registry_uri() -> str:
    import mlflow

    return mlflow.get_registry_uri()


def is_registered(uri: str) -> bool:
    """Whether the registered model a ``models:/<name>...`` URI names exists (other URIs: left to the loader)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    match = re.match(r"^models:/(?P<name>[^/@]+)", uri)
    if match is None:
        return True
    try:
        MlflowClient().get_registered_model(match["name"])
    except MlflowException:
        return False
    return True


@dataclass
class LoadedModel:
    uri: str
    model: RobertModel
    ref: ModelRef

    @property
    def label(self) -> str:
        return f"{self.ref.name} v{self.ref.version}"

    def summary(self) -> dict[str, Any]:
        """The model and the numbers its verdicts rest on (what "detected" and "not constrained" mean)."""
        settings, references = self.model.settings or {}, self.model.references
        return {"uri": self.uri, "name": self.ref.name, "version": self.ref.version, "geometry": self.model.geometry,
                "false_alarm_rate": settings.get("false_alarm_rate"),
                "preset_false_alarm_rate": settings.get("preset_false_alarm_rate"),
                "by_coverage": bool(settings.get("coverage_thresholds")),
                "reference_min_log10_vmr": settings.get("constraint", {}).get("min_log10_vmr"),
                "reference_min_log10_vmr_by_molecule": settings.get("constraint", {}).get("min_log10_vmr_by_molecule")
                or {},
                "min_chi2": None if references is None else references.min_chi2,
                "min_detectable_fraction": None if references is None else references.min_fraction}


class Models:
    """The registered models this run needs, each loaded once, checked against the geometry it is asked to read."""

    def __init__(self, settings: dict[str, Any], override: str | None) -> None:
        self.settings, self.override = settings, override
        self.loaded: dict[str, LoadedModel] = {}

    def for_spectra(self, routed: Routed) -> LoadedModel:
        uri = model_uri(routed.geometry, self.settings["models"], self.override)
        where = f"{routed.source} ({routed.geometry}, from the {routed.geometry_from})"
        if uri not in self.loaded:
            if not self.override and not is_registered(uri):
                raise UserError(f"{where}: no {routed.geometry} model yet: {uri} (predict.models.{routed.geometry}) "
                                f"is not registered in {registry_uri()}; train it with "
                                f"`{self.settings['trained_by'][routed.geometry]}` or pass --model")
            try:
                self.loaded[uri] = LoadedModel(uri, *load_model(uri))
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
        loaded = self.loaded[uri]
        if loaded.model.geometry != routed.geometry:
            fix = ("pass a model of that geometry with --model" if self.override else
                   f"predict.models.{routed.geometry} in conf/predict.yaml must name a {routed.geometry} model")
            raise UserError(f"{where}: {uri} ({loaded.label}) reads {loaded.model.geometry} spectra, not "
                            f"{routed.geometry}: {fix}")
        return loaded


def _finite(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def spectrum_reports(table: pd.DataFrame, routed: Routed, loaded: LoadedModel) -> dict[str, dict[str, Any]]:
    """The long prediction table (one row per spectrum and molecule) as one report per spectrum, by name."""
    reports = {}
    dropped = table.attrs.get("dropped_rows", {})
    for name, rows in table.groupby("spectrum", sort=False):
        first = rows.iloc[0]
        reports[name] = {
            "file": routed.source, "spectrum": name, "instrument": first["instrument"],
            "geometry": routed.geometry, "geometry_from": routed.geometry_from, "model": loaded.uri,
            "n_points": int(first["n_points"]), "n_dropped": int(first["n_dropped"]),
            "dropped_rows": [row.removeprefix(f"{routed.source} ") for row in dropped.get(name, [])],
            "snr": _finite(first["snr"], 2), "threshold_coverage": first.get("threshold_coverage", ANY_COVERAGE),
            "molecules": [{"molecule": r["molecule"], "verdict": r["verdict"],
                           "probability": _finite(r["probability"]), "threshold": _finite(r["threshold"]),
                           "detected": bool(r["detected"]),
                           "constrained": bool(r["constrained"]),
                           "detectable_fraction": _finite(r["detectable_fraction"])} for _, r in rows.iterrows()]}
    return reports


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _capped_floors(model: dict[str, Any]) -> str:
    """The reference floors of gases whose prior stops below the common top (their metal's budget), in words."""
    floors = model["reference_min_log10_vmr_by_molecule"]
    return "" if not floors else " (the same share of a capped range: " + ", ".join(
        f"{m} >= {_number(f, 'g')}" for m, f in floors.items()) + ")"


def coverage_basis(name: str) -> str:
    """Which thresholds a spectrum was called at, in words (robert.inference.thresholds)."""
    if name == ANY_COVERAGE:
        return "shared (its coverage matches no calibrated one: the thresholds that hold on all of them)"
    return f"those of the {name} coverage, which its observed cells match"


def format_table(models: Sequence[dict[str, Any]], reports: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for report in reports:
        title = report["file"] if report["spectrum"] == report["file"] else f"{report['file']}, {report['spectrum']}"
        model = next(m for m in models if m["uri"] == report["model"])
        dropped = report["dropped_rows"]
        lines += [title + (f"  [{report['instrument']}]" if report["instrument"] else ""),
                  f"  {report['geometry']} (from the {report['geometry_from']}), read by {model['uri']} "
                  f"({model['name']} v{model['version']})",
                  f"  {report['n_points']} rows used, {report['n_dropped']} dropped" + (":" if dropped else ""),
                  *(f"    {row}" for row in dropped),
                  f"  SNR {_number(report['snr'], '.1f')} (mean depth / median per-cell error on the grid)",
                  f"  thresholds: {coverage_basis(report['threshold_coverage'])}",
                  f"  {'molecule':<10}{'verdict':<17}{'P(present)':>10}{'threshold':>11}{'detectable':>12}"]
        lines += [f"  {m['molecule']:<10}{m['verdict']:<17}{_number(m['probability'], '.3f'):>10}"
                  f"{_number(m['threshold'], '.3f'):>11}{_number(m['detectable_fraction'], '.2f'):>12}"
                  for m in report["molecules"]]
        lines.append("")
    for model in models:
        rate = model["false_alarm_rate"]
        # a threshold per molecule, set where absent gases reach it at the stated rate (robert.inference.thresholds)
        basis = "" if rate is None else (f", each molecule's set so that gases absent from validation spectra reach "
                                         f"it in {100 * rate:g} % of them")
        if rate is not None and model["preset_false_alarm_rate"] is not None:
            preset_rate = f"{100 * model['preset_false_alarm_rate']:g} %"
            basis += (f"; on a calibrated coverage its own, reached in {preset_rate} of that coverage's spectra, "
                      "elsewhere the highest of these" if model["by_coverage"] else
                      f" (and in at most {preset_rate} on each instrument preset)")
        lines.append(f"{model['uri']} ({model['name']} v{model['version']}): detected = constrained and "
                     f"P(present) >= threshold{basis}; detectable = share of reference "
                     f"{model['geometry']} atmospheres holding the gas at log10 VMR >= "
                     f"{_number(model['reference_min_log10_vmr'], 'g')}{_capped_floors(model)} in which this "
                     "coverage and these errors "
                     f"would show it (Delta chi^2 >= {_number(model['min_chi2'], 'g')}); below "
                     f"{_number(model['min_detectable_fraction'], 'g')}: not constrained")
    return "\n".join(lines)


def run_predict(args: argparse.Namespace, cfg: dict[str, Any], root: Path) -> str:
    settings = cfg["predict"]
    min_points = int(cfg["inference"]["observed"]["min_points"])
    # every file is read and routed before the (slower) model loads: a bad file or a missing geometry fails fast
    files = [(str(path), read_observed_csv(path, min_points)) for path in args.files]
    routed = [(spectra, route(spectra, source, args.geometry)) for source, spectra in files]
    use_tracking(cfg, root, args.tracking_uri)
    models = Models(settings, args.model)
    reports = []
    for spectra, groups in routed:
        by_name: dict[str, dict[str, Any]] = {}
        for group in groups:
            loaded = models.for_spectra(group)
            table = loaded.model.predict_observed(group.spectra, model_label=loaded.label)
            by_name |= spectrum_reports(table, group, loaded)
        reports += [by_name[name] for name in spectra.names]  # the file's own order
    summaries = [loaded.summary() for loaded in models.loaded.values()]
    if (args.format or settings["format"]) == "json":
        return json.dumps({"models": summaries, "spectra": reports}, indent=2)
    return format_table(summaries, reports)


@exit_on_user_error
def run(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # a new store's creation and migrations would otherwise log INFO lines to stderr
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    root = project_root()
    print(run_predict(args, load_config(root), root))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``[project.scripts] robert``)."""
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
