"""The dream stage (``python src/dream.py``, DVC stage ``dream``): dream every molecule, compare, report, track.

Writes under ``dream.out_dir``:
  dreams.json          per molecule: pearson_r, rms, best_matching_class, signature_r, baselines, per planet,
                       every method's numbers; a summary (the DVC metric)
  dream_confusion.json the raw and signature dream confusion matrices of every method, class similarity
  dream_spectra.csv    every dream and each class's mean and spread on the model's wavelength grid
  dreams.png           the Fig.-5-style panel (dream.figure_molecules, default every molecule)
  molecules/<MOL>.png  one column per molecule (the report's sections)
  dream_confusion.png  the confusion matrices
  report.html          everything above in one self-contained page
All of it is logged to one MLflow run tagged ``dreamed_from=<name>/<version>``; the model version gets
the tag ``dream_run_id``.

Any registered recogniser can be dreamt by the optimisation method; the generative method needs a deep belief
network with a trained generative stack. A dream is a spectrum: the depth channel of the network's input
(the other channels, error and mask, are dreamt along or held fixed: :mod:`robert.dream.observation`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.tracking import MlflowClient

from robert.atomic import atomic_write_bytes
from robert.config_checks import (
    check_choice,
    check_mapping,
    check_number,
    check_positive,
    check_positive_int,
    require,
)
from robert.data.dataset import Spectra
from robert.dream.comparison import (
    ConfusionResult,
    Distinguishability,
    best_index,
    class_distinguishability,
    dream_confusion,
    pearson_r,
    rms,
)
from robert.dream.figure import draw_confusion, draw_dreams
from robert.dream.generative import associative_memory_accuracy, generative_dream, require_generative_stack
from robert.dream.observation import context_observation, observed_rows
from robert.dream.optimisation import OptimisationSettings, optimisation_dream
from robert.dream.real_spectra import HOLDS_GAS, ClassSpectra, training_spectra
from robert.dream.report import Table, write_html, write_json
from robert.dream.result import METHODS, Dream
from robert.errors import UserError
from robert.model.base import Recogniser
from robert.model.dbn import DREAM_STARTS
from robert.spectra.detection import LabelSettings, State
from robert.spectra.observation import Observation
from robert.spectra.transforms import stable_seed
from robert.tracking.registry import ModelRef, load_robert_model
from robert.tracking.setup import configure_tracking
from robert.training.train import flatten, torch_threads


def _methods(value: object) -> list[str]:
    methods = [value] if isinstance(value, str) else value
    if not methods or isinstance(methods, Mapping) or not isinstance(methods, Sequence):
        raise UserError(f"dream.methods must list one or more of: {', '.join(METHODS)}; got {value!r}")
    return list(dict.fromkeys(check_choice(m, f"dream.methods[{i}]", METHODS) for i, m in enumerate(methods)))


def _molecule_list(value: object, field: str) -> list[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{field} must be null or a list of molecule names; got {value!r}")
    return list(names)


@dataclass(frozen=True)
class DreamSettings:
    model_uri: str
    methods: list[str]
    seed: int
    n_chains: int
    n_gibbs_steps: int
    chain_start: str
    optimisation: OptimisationSettings
    context_snr: float
    max_similarity_r: float
    diagnostics_rows: int
    figure_molecules: list[str] | None
    out_dir: Path
    metrics: Path
    readme_figure: Path | None
    torch_threads: int | None
    workers: int

    @classmethod
    def from_config(cls, dream: Mapping[str, Any]) -> DreamSettings:
        check_mapping(dream, "dream")
        generative = check_mapping(require(dream, "generative", "dream.generative"), "dream.generative")
        threads = dream.get("torch_threads")
        return cls(
            str(require(dream, "model_uri", "dream.model_uri")), _methods(dream.get("methods")),
            int(check_number(require(dream, "seed", "dream.seed"), "dream.seed", integer=True)),
            check_positive_int(generative.get("n_chains"), "dream.generative.n_chains"),
            int(check_number(generative.get("n_gibbs_steps"), "dream.generative.n_gibbs_steps", integer=True,
                             minimum=0)),
            str(check_choice(generative.get("start", "random"), "dream.generative.start", DREAM_STARTS)),
            OptimisationSettings.from_config(require(dream, "optimisation", "dream.optimisation")),
            check_positive(dream.get("context_snr"), "dream.context_snr"),
            check_number(dream.get("max_similarity_r"), "dream.max_similarity_r", minimum=-1, strictly_above=True,
                         maximum=1),
            int(check_number(dream.get("diagnostics_rows"), "dream.diagnostics_rows", integer=True, minimum=0)),
            _molecule_list(dream.get("figure_molecules"), "dream.figure_molecules"),
            Path(require(dream, "out_dir", "dream.out_dir")), Path(require(dream, "metrics", "dream.metrics")),
            Path(dream["readme_figure"]) if dream.get("readme_figure") else None,
            None if threads is None else check_positive_int(threads, "dream.torch_threads"),
            (os.cpu_count() or 1) if dream.get("workers") is None
            else check_positive_int(dream.get("workers"), "dream.workers"))


def dream_all(network: Recogniser, molecules: list[str], method: str, settings: DreamSettings,
              contexts: Observation) -> list[Dream]:
    """One dream per molecule; ``contexts`` (M rows): the observation each molecule's optimisation dream is shown
    in (:mod:`robert.dream.optimisation`)."""
    if method == "generative":
        # molecules in parallel threads (torch releases the GIL in its kernels): each molecule's chains draw from
        # their own generator and run single-threaded kernels, so the dreams are the same bytes for any count
        def dream_one(j: int) -> Dream:
            return generative_dream(network, molecules, j, settings.n_chains, settings.n_gibbs_steps, settings.seed,
                                    settings.chain_start)

        with ThreadPoolExecutor(max_workers=settings.workers) as pool:
            return list(pool.map(dream_one, range(len(molecules))))
    return [optimisation_dream(network, molecules, j, settings.optimisation, contexts.slice(j, j + 1))
            for j in range(len(molecules))]


def score_method(dreams: Sequence[Dream], real: ClassSpectra, confusion: ConfusionResult,
                 probabilities: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per molecule: the dream against its class mean, overall and per planet, and the classifier's view of it."""
    scores = {}
    for j, dream in enumerate(dreams):
        raw_best = best_index(confusion.raw[j])
        per_planet = {planet: {"pearson_r": pearson_r(dream.spectrum, real.planet_mean[p, j]),
                               "rms": rms(dream.spectrum, real.planet_mean[p, j]),
                               "n_spectra": int(real.planet_count[p, j])}
                      for p, planet in enumerate(real.planets) if real.planet_count[p, j]}
        scores[dream.molecule] = {
            "pearson_r": pearson_r(dream.spectrum, real.mean[j]), "rms": rms(dream.spectrum, real.mean[j]),
            "best_matching_class": confusion.best_match(j), "signature_r": float(confusion.signature[j, j]),
            "raw_best_matching_class": None if raw_best is None else real.molecules[raw_best],
            "classifier_probability": float(probabilities[j, j]),
            "classified_as": real.molecules[int(probabilities[j].argmax())],
            "per_planet": per_planet, **dream.details}
    return scores


def summarise(methods: Sequence[str], scores: Mapping[str, Mapping[str, Mapping[str, Any]]],
              molecules: Sequence[str], distinguishable: Mapping[str, bool]) -> dict[str, Any]:
    summary: dict[str, Any] = {"primary_method": methods[0]}
    for method in methods:
        off = [m for m in molecules if scores[method][m]["best_matching_class"] != m]
        summary[method] = {
            "n_diagonal": len(molecules) - len(off), "off_diagonal": off,
            "off_diagonal_distinguishable": [m for m in off if distinguishable[m]],
            "diagonal_for_distinguishable": not any(distinguishable[m] for m in off),
            "mean_pearson_r": float(np.mean([scores[method][m]["pearson_r"] for m in molecules])),
            "mean_signature_r": float(np.mean([scores[method][m]["signature_r"] for m in molecules])),
            "mean_rms": float(np.mean([scores[method][m]["rms"] for m in molecules]))}
    summary["not_distinguishable"] = [m for m in molecules if not distinguishable[m]]
    return summary


def spectra_csv(path: Path, real: ClassSpectra, dreams: Mapping[str, Sequence[Dream]]) -> Path:
    columns = {"wavelength_um": real.wavelength_um}
    for j, molecule in enumerate(real.molecules):
        for method, method_dreams in dreams.items():
            columns[f"{molecule}_{method}"] = method_dreams[j].spectrum
            if method_dreams[j].spread is not None:
                columns[f"{molecule}_{method}_spread"] = method_dreams[j].spread
        columns[f"{molecule}_real_mean"], columns[f"{molecule}_real_std"] = real.mean[j], real.std[j]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(np.round(v, 6) for v in columns.values()), strict=True))
    atomic_write_bytes(path, buffer.getvalue().encode())
    return path


def _notes(settings: DreamSettings, real: ClassSpectra, summary: Mapping[str, Any],
           similar: Mapping[str, tuple[str, float]], network: Recogniser) -> list[str]:
    channels = ", ".join(c for c in network.channels if c != "depth") or "none"
    notes = [
        "Real spectra: the model's own training split (noiseless, min-max normalised to [0, 1]); the class "
        f"mean and ±1σ over all {len(real.planets)} planets, and each planet's mean. A class is the rows where "
        "the molecule is the only injected gas; where it never is (a mixture set), every row that holds it "
        "(see class rows).",
        "pearson_r / rms: dream against the class mean. Normalised emission spectra are dominated by the "
        "continuum every class shares, so the mean of ALL training spectra already scores a high r "
        "(baseline r / baseline rms): a dream shows molecule-specific knowledge only where it beats that.",
        "Dream confusion matrix: r between signatures (dream minus the mean of all dreams; class mean minus the "
        "mean of all class means); best match = the highest r in a dream's row. The raw-spectrum matrix is "
        "shown beside it.",
        f"Generative: label clamped in the top RBM, {settings.n_chains} chains × {settings.n_gibbs_steps} Gibbs "
        f"steps from a {settings.chain_start} start, mean-field pass down, averaged over chains (band: ±1σ over "
        "chains). Optimisation: gradient "
        f"ascent on the molecule's logit from a flat spectrum ({settings.optimisation.start}), "
        f"{settings.optimisation.steps} Adam steps of lr {settings.optimisation.lr}, smoothness weight "
        f"{settings.optimisation.smoothness:g}, box [0, 1]; shown min-max normalised.",
        f"Dreams are spectra (the network's depth channel). The network's other input channels ({channels}) are "
        "dreamt along by the generative method (their means: mean_dreamt_*). The optimisation method shows its "
        f"spectrum in a full-coverage observation with white noise at SNR {settings.context_snr:g} of the class "
        "mean: the deviation channels are computed from the dreamt spectrum, the error and mask channels held.",
    ]
    blended = [m for m, how in zip(real.molecules, real.selection, strict=True) if how == HOLDS_GAS]
    if blended:
        notes.append("Never the only gas in the training split, so their class is every row that holds them (other "
                     f"gases' bands blend into the class mean): {', '.join(blended)}.")
    if summary["not_distinguishable"]:
        pairs = ", ".join(f"{m} (signature r {similar[m][1]:.2f} with {similar[m][0]})"
                          for m in summary["not_distinguishable"])
        notes.append(f"Not distinguishable by their class means (signature r >= {settings.max_similarity_r} "
                     f"with another class): {pairs}.")
    for method in settings.methods:
        off = summary[method]["off_diagonal_distinguishable"]
        if off:
            notes.append(f"{method}: distinguishable molecules whose dream matches another class best: "
                         f"{', '.join(off)}.")
    return notes


@dataclass(frozen=True)
class DreamSubject:
    """The model to dream with and the real spectra of its classes."""

    network: Recogniser
    molecules: list[str]
    ref: ModelRef
    label: str                 # "<uri> (<name> version <n>)", for messages
    spectra: Spectra           # its training split, clean
    real: ClassSpectra
    labels: LabelSettings      # what the model's label units meant in training (the detection threshold)


def load_subject(cfg: Mapping[str, Any], settings: DreamSettings, root: Path) -> DreamSubject:
    """The registered model and its training spectra, checked against each other and the settings."""
    model, ref = load_robert_model(settings.model_uri)
    label = f"{settings.model_uri} ({ref.name} version {ref.version})"
    network, molecules = model.network.eval(), list(model.molecules)
    if "generative" in settings.methods:
        require_generative_stack(network, model.generative_trained, label)
    spectra = training_spectra(ref, check_mapping(cfg["dream"].get("real") or {}, "dream.real"), root)
    if spectra.molecules != molecules or spectra.depth.shape[1] != network.n_grid:
        raise UserError(f"{label} predicts {molecules} from {network.n_grid} bins, but its recorded training "
                        f"spectra hold {spectra.molecules} on {spectra.depth.shape[1]} bins: point dream.real at the "
                        "dataset it was trained on")
    if len(molecules) < 2:
        raise UserError(f"{label} knows one molecule ({molecules}): a dream confusion matrix needs two or more")
    unknown = sorted(set(settings.figure_molecules or []) - set(molecules))
    if unknown:
        raise UserError(f"dream.figure_molecules names {unknown}, which {label} does not know ({molecules})")
    labels = LabelSettings.from_config(getattr(model, "labels", None) or {"kind": "injected"}, "the model's labels")
    return DreamSubject(network, molecules, ref, label, spectra, ClassSpectra.from_spectra(spectra), labels)


def memory_accuracy(subject: DreamSubject, settings: DreamSettings) -> np.ndarray:
    """The top RBM's label accuracy (:func:`associative_memory_accuracy`) on up to ``diagnostics_rows`` seeded
    training rows, observed as :mod:`robert.dream.observation` says. Scored: rows with one injected gas that is
    detected under that observation, so the true label is the same one-hot vector for detection and injected
    labels."""
    spectra, network = subject.spectra, subject.network
    rows = np.random.default_rng(stable_seed("dream-diagnostics", settings.seed)).permutation(len(spectra))
    batch = observed_rows(spectra, np.sort(rows[: settings.diagnostics_rows]), subject.labels,
                          settings.context_snr, stable_seed("dream-diagnostics-noise", settings.seed))
    injected = batch.states != int(State.ABSENT)
    scored = (injected.sum(dim=1) == 1) & (batch.states == int(State.DETECTED)).any(dim=1)
    truth = injected[scored].float().argmax(dim=1).numpy()
    return associative_memory_accuracy(network, network.encode(batch.observation)[scored], truth)


def dream_report(cfg: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """Run the stage from a resolved ``conf/dream.yaml``; returns the contents of ``dreams.json``."""
    root = Path(root)
    settings = DreamSettings.from_config(cfg["dream"])
    experiment_id = configure_tracking(cfg["tracking"], root)
    subject = load_subject(cfg, settings, root)
    network, molecules, real = subject.network, subject.molecules, subject.real

    with torch_threads(settings.torch_threads):
        contexts = context_observation(real.depth_mean, real.wavelength_um, settings.context_snr,
                                       stable_seed("dream-context", settings.seed))
        dreams = {method: dream_all(network, molecules, method, settings, contexts) for method in settings.methods}
        # the classifier's view of each dream: the dream as a whole network input (Dream.network_input)
        probabilities = {method: network.predict_proba(torch.as_tensor(np.stack([d.network_input for d in ds]),
                                                                        dtype=torch.float32)).double().numpy()
                         for method, ds in dreams.items()}
        memory = (memory_accuracy(subject, settings)
                  if "generative" in settings.methods and settings.diagnostics_rows else None)

    confusions = {m: dream_confusion(np.stack([d.spectrum for d in dreams[m]]), real.mean, molecules)
                  for m in settings.methods}
    scores = {m: score_method(dreams[m], real, confusions[m], probabilities[m]) for m in settings.methods}
    similarity = class_distinguishability(real.mean, molecules, settings.max_similarity_r)
    payload = dreams_payload(settings.methods, scores, real, similarity, memory, subject.ref, settings.model_uri,
                             network)
    files = write_outputs(root / settings.out_dir, settings, subject, dreams, scores, confusions, similarity, payload)
    log_run(experiment_id, subject.ref, cfg["dream"], settings.methods, scores, payload["summary"], files,
            root / settings.out_dir)
    # the stage's metric, committed beside the other results (dvc metrics show / diff); the report stays in out_dir
    atomic_write_bytes(root / settings.metrics, (root / settings.out_dir / "dreams.json").read_bytes())
    if settings.readme_figure is not None:
        atomic_write_bytes(root / settings.readme_figure, (root / settings.out_dir / "dreams.png").read_bytes())
    return payload


def dreams_payload(methods: Sequence[str], scores: Mapping[str, Mapping[str, Mapping[str, Any]]],
                   real: ClassSpectra, similarity: Distinguishability, memory: np.ndarray | None, ref: ModelRef,
                   uri: str, network: Recogniser) -> dict[str, Any]:
    """``dreams.json``: molecule -> the headline method's numbers + baselines + every method's; model; summary."""
    molecules = real.molecules
    distinguishable = dict(zip(molecules, similarity.distinguishable, strict=True))
    payload: dict[str, Any] = {}
    for j, molecule in enumerate(molecules):
        payload[molecule] = {
            **{k: scores[methods[0]][molecule][k]
               for k in ("pearson_r", "rms", "best_matching_class", "signature_r", "per_planet")},
            "baseline_pearson_r": pearson_r(real.overall_mean, real.mean[j]),
            "baseline_rms": rms(real.overall_mean, real.mean[j]),
            "distinguishable": distinguishable[molecule], "most_similar_class": similarity.most_similar[j],
            "most_similar_class_signature_r": similarity.most_similar_r[j], "n_spectra": int(real.count[j]),
            "class_rows": real.selection[j],
            **({"associative_memory_accuracy": float(memory[j])} if memory is not None else {}),
            "methods": {m: scores[m][molecule] for m in methods}}
    payload["model"] = {"name": ref.name, "version": ref.version, "uri": uri, "run_id": ref.run_id,
                        "kind": network.kind, "inputs": list(network.channels)}
    payload["summary"] = summarise(methods, scores, molecules, distinguishable)
    return payload


def write_outputs(out_dir: Path, settings: DreamSettings, subject: DreamSubject,
                  dreams: Mapping[str, Sequence[Dream]], scores: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  confusions: Mapping[str, ConfusionResult], similarity: Distinguishability,
                  payload: Mapping[str, Any]) -> list[Path]:
    """Every file of the stage (see the module docstring); returns their paths."""
    ref, real, molecules = subject.ref, subject.real, subject.molecules
    files = [write_json(out_dir / "dreams.json", payload),
             write_json(out_dir / "dream_confusion.json", {
                 "molecules": molecules, "rows": "dream", "columns": "class mean",
                 **{m: {"raw": c.raw.tolist(), "signature": c.signature.tolist()} for m, c in confusions.items()},
                 "class_signature_similarity": similarity.similarity.tolist()}),
             spectra_csv(out_dir / "dream_spectra.csv", real, dreams)]
    title = f"{ref.name} v{ref.version}: what the network dreams each molecule looks like"
    figure = draw_dreams(out_dir / "dreams.png", settings.figure_molecules or molecules, dreams, real, scores, title)
    confusion_png = draw_confusion(out_dir / "dream_confusion.png", confusions,
                                   f"{ref.name} v{ref.version}: dream confusion (rows: dreams; columns: class means)")
    molecule_pngs = {m: draw_dreams(out_dir / "molecules" / f"{m}.png", [m], dreams, real, scores,
                                    f"{m}: dream and data") for m in molecules}
    files += [figure, confusion_png, *molecule_pngs.values()]
    similar = {m: (similarity.most_similar[j], similarity.most_similar_r[j]) for j, m in enumerate(molecules)}
    files.append(write_html(
        out_dir / "report.html", f"RobERt dreams: {ref.name} version {ref.version}",
        [["model", f"{ref.name} version {ref.version} ({settings.model_uri})"], ["training run", ref.run_id],
         ["molecules", ", ".join(molecules)], ["planets", ", ".join(real.planets)],
         ["network", f"{subject.network.kind}, inputs: {', '.join(subject.network.channels)}"],
         ["training spectra", len(subject.spectra)],
         ["wavelengths", f"{len(real.wavelength_um)} bins, {real.wavelength_um.min():.3g}-"
                         f"{real.wavelength_um.max():.3g} µm"], ["methods", ", ".join(settings.methods)]],
        _notes(settings, real, payload["summary"], similar, subject.network),
        [(f"Summary: {m} dream", summary_table(m, payload, molecules)) for m in settings.methods],
        [("Dreams (Fig. 5 layout)", figure, "dreams of every molecule"),
         ("Dream confusion matrices", confusion_png, "dream confusion matrices")],
        {m: (molecule_pngs[m], planet_table(settings.methods, payload[m])) for m in molecules}))
    return files


def summary_table(method: str, payload: Mapping[str, Any], molecules: Sequence[str]) -> Table:
    """One row per molecule: the class's own numbers, then the ``method`` dream's."""
    memory = method == "generative" and "associative_memory_accuracy" in payload[molecules[0]]
    headers = ["molecule", "distinguishable (closest class, signature r)", "baseline r", "baseline rms", "r", "rms",
               "signature r", "best match", "P(molecule | dream)", *(["top-RBM accuracy"] if memory else [])]
    rows = []
    for molecule in molecules:
        entry, score = payload[molecule], payload[molecule]["methods"][method]
        hit = score["best_matching_class"] == molecule
        rows.append([molecule, f"{'yes' if entry['distinguishable'] else 'NO'} ({entry['most_similar_class']}, "
                               f"{entry['most_similar_class_signature_r']:.2f})",
                     entry["baseline_pearson_r"], entry["baseline_rms"], score["pearson_r"], score["rms"],
                     score["signature_r"], (score["best_matching_class"] or "none", "hit" if hit else "miss"),
                     score["classifier_probability"], *([entry["associative_memory_accuracy"]] if memory else [])])
    return headers, rows


def planet_table(methods: Sequence[str], entry: Mapping[str, Any]) -> Table:
    headers = ["planet", "spectra"] + [f"{m} {k}" for m in methods for k in ("r", "rms")]
    planets = entry["methods"][methods[0]]["per_planet"]
    rows = [[planet, planets[planet]["n_spectra"],
             *[entry["methods"][m]["per_planet"][planet][k] for m in methods for k in ("pearson_r", "rms")]]
            for planet in planets]
    return headers, rows


def log_run(experiment_id: str, ref: ModelRef, dream_cfg: Mapping[str, Any], methods: Sequence[str],
            scores: Mapping[str, Mapping[str, Mapping[str, Any]]], summary: Mapping[str, Any],
            files: Sequence[Path], out_dir: Path) -> str:
    """One MLflow run tagged with the model version it dreamt from (artifacts as laid out under ``out_dir``)."""
    metrics = {}
    for method in methods:
        for molecule, score in scores[method].items():
            for key in ("pearson_r", "rms", "signature_r", "classifier_probability"):
                if np.isfinite(score[key]):
                    metrics[f"{method}/{molecule}/{key}"] = float(score[key])
        for key in ("n_diagonal", "mean_pearson_r", "mean_signature_r", "mean_rms"):
            metrics[f"{method}/{key}"] = float(summary[method][key])
    tags = {"stage": "dream", "dreamed_from": f"{ref.name}/{ref.version}", "dreamed_from_uri": dream_cfg["model_uri"],
            "dreamed_from_run": ref.run_id}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"dream-{ref.name}-v{ref.version}", tags=tags) as run:
        mlflow.log_params({k: str(v) for k, v in flatten(dream_cfg, "dream.").items()})
        mlflow.log_metrics(metrics)
        for path in files:
            mlflow.log_artifact(str(path), str(Path("dream") / path.parent.relative_to(out_dir)))
    MlflowClient().set_model_version_tag(ref.name, ref.version, "dream_run_id", run.info.run_id)
    return run.info.run_id
