"""The results tables of README.md and BENCHMARKS.md, generated from the tracked numbers only.

    python benchmarks/tables.py            # rewrite the generated blocks in README.md, BENCHMARKS.md and docs/
    python benchmarks/tables.py --check    # exit 1 if a block differs from what the numbers say (a test runs this)

Sources: the evaluation stages' results/<regime>/metrics.json (``dvc metrics show``) and the benchmarks' records
benchmarks/results/<name>.json (``benchmarks/record.py``: date, machine, command, the JSON line). A generated block
sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; everything else in the files is prose.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
RECORDS = Path(__file__).resolve().parent / "results"
BLOCK = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)
VALUE = re.compile(r"(<!-- value:(?P<name>[\w-]+) -->)(?P<body>[^<]*)(<!-- /value:(?P=name) -->)")


def metrics(regime: str) -> dict | None:
    path = RESULTS / regime / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def record(name: str) -> dict | None:
    path = RECORDS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or value != value else f"{100 * value:.{digits}f} %"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def provenance(entry: dict) -> str:
    """Date, machine and command; a record merged from runs of some parts each (``measured``) lists every run."""
    measured = entry.get("result", {}).get("measured")
    if not measured:
        return f"{entry['date']}, {entry['machine']}: `{entry['command']}`"
    runs: dict[tuple[str, str], list[str]] = {}
    for part, when in measured.items():
        runs.setdefault((when["date"], when["command"]), []).append(part)
    listed = "; ".join(f"{', '.join(parts)}: `{command}` ({date})" for (date, command), parts in runs.items())
    return f"{entry['machine']}; {listed}"


# --- README -------------------------------------------------------------------------------------------------------


def results_table() -> str:
    """One table: the regimes (evaluation stages and the training benchmark) and the peers."""
    header = ["regime", "model", "macro-F1", "accuracy", "completeness, S/N ≥ 10 (worst gas)",
              "the same, profiled S/N", "false alarms (worst gas)", "reproduce"]
    rows = []
    for regime, name, command in (("emission", "robert (DBN)", "`make run`"),
                                  ("transmission", "robert-transmission (DBN)", "`make run`"),
                                  ("paper", "robert-paper (DBN)", "`make paper`")):
        m = metrics(regime)
        if m is None:
            continue
        label = {"emission": "realistic, emission: mixtures, any coverage (SNR 10)",
                 "transmission": "realistic, transmission: mixtures, any coverage (SNR 100)",
                 "paper": f"paper: one gas with its fingerprint (SNR {m['snr']})"}[regime]
        rows.append([label, name, *result_cells(m), command])
    train = record("train")
    if train is not None:
        result = train["result"]
        for key, label in (("single", "realistic, single gas, paper scale"),
                           ("mixture", "realistic, mixtures, paper scale")):
            if key in result:
                r = result[key]
                rows.append([label, "DBN", *result_cells(r), f"`python benchmarks/train.py --only {key}`"])
        for kind, peer in (result.get("peer_details") or {}).items():
            rows.append(["peers on the realistic emission set", kind.upper() if kind != "forest" else "random forest",
                         *result_cells(peer), "`python benchmarks/train.py --only peers`"])
    return table(header, rows)


def result_cells(scores: dict) -> list[str]:
    """macro-F1, accuracy, worst completeness at S/N >= 10 on the plain and the profiled axis, worst false alarms."""
    return [num(scores.get("macro_f1")), pct(scores.get("accuracy")), num(scores.get("completeness_snr_ge_10_min")),
            num(scores.get("profiled_completeness_snr_ge_10_min")), pct(scores.get("false_alarm_rate_max"), 2)]


def targets_table() -> str:
    """Where the numbers stand against the project's targets (met or not, never rounded into a pass)."""
    rows = []
    emission, paper, train = metrics("emission"), metrics("paper"), (record("train") or {}).get("result", {})

    def row(what: str, target: str, value: float | None, ok: bool | None, where: str) -> None:
        verdict = "–" if ok is None else ("met" if ok else "not met")
        rows.append([what, target, "–" if value is None or value != value else f"{value:.3f}", verdict, where])

    if emission:
        c10, c5, far = (emission.get(k) for k in ("completeness_snr_ge_10_min", "completeness_snr_5_10_min",
                                                 "false_alarm_rate_max"))
        row("completeness at S/N >= 10, worst gas", ">= 0.97", c10, c10 is not None and c10 >= 0.97, "results/emission")
        row("completeness at S/N 5-10, worst gas", ">= 0.80", c5, c5 is not None and c5 >= 0.80, "results/emission")
        row("false-alarm rate, worst gas", "<= 0.01", far, far is not None and far <= 0.01, "results/emission")
    if "mixture_macro_f1" in train:
        value = train["mixture_macro_f1"]
        row("macro-F1, paper-scale mixtures", ">= 0.95", value, value >= 0.95, "benchmarks/results/train.json")
    accuracy = (paper or {}).get("accuracy", train.get("paper_test_accuracy"))
    if accuracy is not None:
        row("paper regime accuracy, ten gases", ">= 0.997", accuracy, accuracy >= 0.997, "results/paper")
    eight = (paper or {}).get("accuracy_outside_groups", train.get("paper_test_accuracy_8"))
    if eight is not None:
        row("paper regime accuracy, eight gases (TiO/VO aside)", "–", eight, None, "results/paper")
    if "dbn_behind_best_peer" in train:
        gap = train["dbn_behind_best_peer"]
        row("DBN behind the best peer (macro-F1)", "<= 0.01", gap, gap <= 0.01, "benchmarks/results/train.json")
    return table(["quantity", "target", "measured", "", "source"], rows)


def significance_table() -> str:
    """Per gas, the completeness of each realistic champion at S/N >= 10 on both significance axes (plain: the gas
    against the same atmosphere without it; profiled: after a continuum and the other gases' templates are fitted),
    and how many of the injected test gases each axis counts as detected."""
    blocks = []
    for regime in ("emission", "transmission"):
        scores = metrics(regime) or {}
        axes = scores.get("significance_axes")
        if not axes:
            continue
        plain, profiled = axes["plain"], axes["profiled"]
        rows = [[gas, num(value), num(profiled["completeness_snr_ge_10"].get(gas))]
                for gas, value in plain["completeness_snr_ge_10"].items()]
        rows.append(["detected test gases", str(plain["detected"]), str(profiled["detected"])])
        blocks.append(f"{regime}, headline test set (results/{regime}/metrics.json):\n\n" + table(
            ["gas", "completeness, plain S/N ≥ 10", "completeness, profiled S/N ≥ 10"], rows))
        presets = [(name, row) for name, row in scores.get("coverage", {}).items()
                   if "profiled_constrained" in row]
        if presets:
            count = lambda names: str(len([n for n in names.split(",") if n]))  # noqa: E731
            blocks.append(f"{regime}, per coverage preset (worst gas it constrains):\n\n" + table(
                ["coverage", "gases constrained, plain", "completeness, plain S/N ≥ 10", "gases constrained, profiled",
                 "completeness, profiled S/N ≥ 10"],
                [[name, count(row["constrained"]), num(row["completeness_snr_ge_10_min"]),
                  count(row["profiled_constrained"]), num(row["profiled_completeness_snr_ge_10_min"])]
                 for name, row in presets]))
    return "\n".join(blocks) or "Not evaluated yet: run `make run`.\n"


def dreams_table() -> str:
    """The champion's dreams (results/dream/dreams.json): which class each molecule's dream resembles most."""
    path = RESULTS / "dream" / "dreams.json"
    if not path.exists():
        return "Not made yet: `dvc repro dream`.\n"
    payload = json.loads(path.read_text())
    model = payload.get("model", {})
    rows = []
    for molecule, entry in payload.items():
        if not isinstance(entry, dict) or "methods" not in entry:
            continue
        for method, score in entry["methods"].items():
            rows.append([molecule, method, num(score.get("pearson_r")), num(score.get("signature_r")),
                         str(score.get("best_matching_class", "–"))])
    head = f"{model.get('name', '?')} v{model.get('version', '?')}: "
    summary = payload.get("summary", {})
    return head + json.dumps(summary) + "\n\n" + table(["molecule", "method", "Pearson r", "signature r",
                                                             "best match"], rows)


def examples_block() -> str:
    """`robert predict examples/*.csv` as the main job ran it on the champions (results/examples.txt)."""
    path = RESULTS / "examples.txt"
    if not path.exists():
        return "Not run yet: `dvc repro examples`.\n"
    return "```\n$ robert predict examples/*.csv\n" + path.read_text() + "```\n"


# --- BENCHMARKS ---------------------------------------------------------------------------------------------------


def lookup(result: dict, key: str):
    """``result[key]``, where a dotted key walks into nested objects (``test_metrics.default.macro_f1``)."""
    value = result
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def flat_rows(result: dict, keys: list[str]) -> list[list[str]]:
    values = {k: lookup(result, k) for k in keys}
    return [[k, json.dumps(v) if isinstance(v, dict | list) else str(v)] for k, v in values.items() if v is not None]


def benchmark_table(name: str, keys: list[str] | None = None) -> Callable[[], str]:
    def render() -> str:
        entry = record(name)
        if entry is None:
            return f"Not measured yet: run `python benchmarks/{name.removesuffix('_speed')}.py`.\n"
        result = entry["result"]
        chosen = keys or [k for k, v in result.items() if not isinstance(v, dict | list)]
        return provenance(entry) + "\n\n" + table(["quantity", "value"], flat_rows(result, chosen))
    return render


def seeds_table() -> str:
    """Per score: each training seed's test value and the spread over them (max - min)."""
    entry = record("train_seeds")
    if entry is None:
        return "Not measured yet: run `python benchmarks/train.py --only seeds`.\n"
    runs, spread = entry["result"]["runs"], entry["result"]["spread"]
    rows = [[key, *(num(run[key], 3) for run in runs.values()), num(value, 3)] for key, value in spread.items()]
    return provenance(entry) + "\n\n" + table(["score", *runs, "spread"], rows)


def ceiling_table() -> str:
    """Per gas and plain S/N band: the pairs refitted, the share still at Delta chi^2 >= 9 (and at >= 100 for
    S/N >= 10), the median share kept."""
    entry = record("ceiling")
    if entry is None:
        return "Not measured yet: run `python benchmarks/ceiling.py`.\n"
    high, low = entry["result"]["per_gas"], entry["result"].get("per_gas_5_10", {})
    missing = {"n": 0, "share_ge_9": float("nan"), "median_kept": float("nan")}
    rows = []
    for gas, v in high.items():
        w = low.get(gas, missing)
        rows.append([gas, str(v["n"]), num(v["share_ge_9"], 2), num(v["share_ge_100"], 2), num(v["median_kept"], 2),
                     str(w["n"]), num(w["share_ge_9"], 2), num(w["median_kept"], 2)])
    return provenance(entry) + "\n\n" + table(
        ["gas", "pairs at plain S/N ≥ 10", "after the refit: Δχ² ≥ 9", "Δχ² ≥ 100", "median share of Δχ² kept",
         "pairs at plain S/N 5–10", "after the refit: Δχ² ≥ 9", "median share kept"], rows)


def design_tables() -> str:
    """Every design record (``design.json`` from a full run, ``design_<choices>.json`` from ``--only``): per record,
    its default beside each alternative it measured, with the record's date and command."""
    blocks = []
    for path in sorted(RECORDS.glob("design*.json")):
        entry = json.loads(path.read_text())
        result = entry["result"]
        runs = [("default", f"`{result.get('model', 'dbn')}`", result["default"])]
        runs += [(choice, variant, scores) for choice, variants in result.items()
                 if isinstance(variants, dict) and choice != "default" for variant, scores in variants.items()]
        # records of choices judged on the coverage presets too carry their scores over the presets
        presets = any("coverage_macro_f1_mean" in scores for *_, scores in runs)
        # records that change the labels score every run on both significance axes
        axes = any("profiled_completeness_snr_ge_10_min" in scores for *_, scores in runs)
        rows = [[choice, variant, *design_cells(scores, presets, axes)] for choice, variant, scores in runs]
        blocks.append(provenance(entry) + "\n\n" + table(
            ["choice", "variant", "macro-F1",
             *(["completeness, plain S/N ≥ 10 (worst gas)", "completeness, profiled S/N ≥ 10 (worst gas)"] if axes
               else ["completeness, S/N ≥ 10 (worst gas)"]), "false alarms (worst gas)",
             *(["presets: mean macro-F1", "presets: worst completeness", "presets: worst false alarms"]
               if presets else []), "train s"], rows))
    return "\n".join(blocks) or "Not measured yet: run `python benchmarks/design.py`.\n"


def design_cells(scores: dict, presets: bool = False, axes: bool = False) -> list[str]:
    completeness = ([num(scores.get("plain_completeness_snr_ge_10_min")),
                     num(scores.get("profiled_completeness_snr_ge_10_min"))] if axes
                    else [num(scores.get("completeness_snr_ge_10_min"))])
    return [num(scores.get("macro_f1")), *completeness, pct(scores.get("false_alarm_rate_max"), 2),
            *([num(scores.get("coverage_macro_f1_mean")), num(scores.get("coverage_completeness_min")),
               pct(scores.get("coverage_false_alarm_rate_max"), 1)] if presets else []),
            f"{scores.get('train_seconds', float('nan')):.0f}"]


def make_run_parts() -> str:
    """Where a fresh clone's `make run` spends its time: install and data, then each DVC stage."""
    entry = record("fresh_clone")
    parts = (entry or {}).get("result", {}).get("make_run_parts_seconds")
    if not parts:
        return "Not measured yet: run `python benchmarks/fresh_clone.py`.\n"
    total = sum(parts.values())
    rows = [[f"`{name}`" if name != "install_and_data" else "install and data", f"{seconds / 60:.1f}",
             f"{100 * seconds / total:.0f} %"] for name, seconds in parts.items()]
    return provenance(entry) + "\n\n" + table(["part", "minutes", "share"], rows)


def coverage_rows() -> str:
    """The coverage benchmark per coverage: the one any-coverage model beside the model trained on that coverage
    alone (where the record holds those), worst gas's completeness at feature S/N >= 10 and worst false alarms."""
    entry = record("any_coverage")
    rows = (entry or {}).get("result", {}).get("coverages")
    if not rows:
        return "Not measured yet: run `python benchmarks/any_coverage.py`.\n"
    dedicated = any("old_completeness_snr_ge_10_min" in r for r in rows)
    header = ["coverage", "gases it constrains", "completeness, S/N ≥ 10 (worst gas)", "false alarms (worst gas)"]
    if dedicated:
        header += ["dedicated model: completeness (worst gas)", "dedicated model: false alarms (worst gas)"]
    body = [[r["coverage"], str(len(r["constrained"])), num(r["completeness_snr_ge_10_min"]),
             pct(r["false_alarm_rate_max"], 2),
             *([num(r.get("old_completeness_snr_ge_10_min")), pct(r.get("old_false_alarm_rate_max"), 2)]
               if dedicated else [])] for r in rows]
    return provenance(entry) + "\n\n" + table(header, body)


def thresholds_table() -> str:
    """The threshold benchmark: one model, its thresholds set by each rule."""
    entry = record("thresholds")
    if entry is None:
        return "Not measured yet: run `python benchmarks/thresholds.py`.\n"
    header = ["thresholds", "headline macro-F1", "headline worst completeness, S/N ≥ 10",
              "headline worst false alarms", "presets: worst false alarms", "presets: mean macro-F1"]
    rows = [[rule, num(s["macro_f1"]), num(s["completeness_snr_ge_10_min"]), pct(s["false_alarm_rate_max"], 2),
             pct(s["presets_false_alarm_rate_max"], 2), num(s["presets_macro_f1_mean"])]
            for rule, s in entry["result"]["rules"].items()]
    return f"{entry['result']['model']}, {provenance(entry)}\n\n" + table(header, rows)


BLOCKS: dict[str, Callable[[], str]] = {
    "results": results_table,
    "targets": targets_table,
    "dreams": dreams_table,
    "significance": significance_table,
    "examples": examples_block,
    "train": benchmark_table("train", ["paper_test_accuracy", "paper_test_accuracy_8", "completeness_snr_ge_10_min",
                                       "completeness_snr_5_10_min", "false_alarm_rate_max", "mixture_macro_f1",
                                       "peers", "dbn_behind_best_peer", "train_seconds"]),
    "train_speed": benchmark_table("train_speed", ["train_seconds", "baseline_train_seconds", "speedup",
                                                   "test_metrics.default.macro_f1", "test_metrics.baseline.macro_f1",
                                                   "test_metrics.default.false_alarm_rate_max",
                                                   "test_metrics.baseline.false_alarm_rate_max",
                                                   "short.finetune_epochs", "short.train_seconds", "short.speedup",
                                                   "short.metrics_not_worse", "test_metrics.short.macro_f1",
                                                   "test_metrics.short.accuracy", "test_metrics.baseline.accuracy",
                                                   "test_metrics.short.false_alarm_rate_max",
                                                   "test_metrics.short.completeness_snr_ge_10_min",
                                                   "test_metrics.baseline.completeness_snr_ge_10_min",
                                                   "profile.epochs_by_phase", "profile.outside_epochs_seconds",
                                                   "profile.actions.observe_and_label.ms_per_call",
                                                   "profile.actions.training_step.ms_per_call",
                                                   "profile.actions.optimizer_step.ms_per_call"]),
    "ceiling": ceiling_table,
    "train_seeds": seeds_table,
    "design": design_tables,
    "any_coverage": benchmark_table("any_coverage", ["model", "snr", "completeness_snr_ge_10_min",
                                                     "false_alarm_rate_max"]),
    "any_coverage_rows": coverage_rows,
    "thresholds": thresholds_table,
    "simulate": benchmark_table("simulate"),
    "simulate_speed": benchmark_table("simulate_speed"),
    "predict": benchmark_table("predict"),
    "validate_opacity": benchmark_table("validate_opacity"),
    "tio_vo": benchmark_table("tio_vo"),
    "opacities": benchmark_table("opacities"),
    "tune": benchmark_table("tune"),
    "compare_poseidon": benchmark_table("compare_poseidon"),
    "fresh_clone": benchmark_table("fresh_clone"),
    "make_run_parts": make_run_parts,
}


def minutes(key: str) -> Callable[[], str]:
    def render() -> str:
        entry = record("fresh_clone")
        if entry is None or key not in entry["result"]:
            return "not measured yet (python benchmarks/fresh_clone.py)"
        return f"{entry['result'][key] / 60:.1f} min (measured {entry['date']})"
    return render


def ratio(numerator: str, denominator: str) -> Callable[[dict], float | None]:
    """The quotient of two figures of one record (dotted keys, as :func:`lookup`)."""
    def compute(result: dict) -> float | None:
        top, bottom = lookup(result, numerator), lookup(result, denominator)
        return None if top is None or not bottom else top / bottom
    return compute


def record_value(record_name: str, value: str | Callable[[dict], float | None], show: Callable[[float], str],
                 command: str) -> Callable[[], str]:
    """One figure of a benchmark record: ``result`` at a dotted key, or computed from it."""
    def render() -> str:
        entry = record(record_name)
        result = None if entry is None else entry["result"]
        figure = None if result is None else lookup(result, value) if isinstance(value, str) else value(result)
        return f"not measured yet ({command})" if figure is None else show(figure)
    return render


DESIGN, PEERS = "python benchmarks/design.py", "python benchmarks/train.py --only peers"
SEEDS = "python benchmarks/train.py --only seeds"
VALUES: dict[str, Callable[[], str]] = {
    "make-run": minutes("make_run_seconds"),
    "make-test": minutes("make_test_seconds"),
    "white-macro-f1": record_value("design_observation", "observation.white.macro_f1", num, DESIGN),
    "white-preset-false-alarms": record_value("design_observation", "observation.white.coverage_false_alarm_rate_max",
                                              lambda v: pct(v, 0), DESIGN),
    "white-input-macro-f1": record_value("design_continuum", "continuum.white.macro_f1", num, DESIGN),
    "detrended-input-macro-f1": record_value("design_continuum", "default.macro_f1", num, DESIGN),
    "white-input-completeness": record_value("design_continuum", "continuum.white.completeness_snr_ge_10_min", num,
                                             DESIGN),
    "detrended-input-completeness": record_value("design_continuum", "default.completeness_snr_ge_10_min", num,
                                                 DESIGN),
    "ceiling-share-ge-9": record_value("ceiling", "share_ge_9_min", lambda v: f"{v:.2f}",
                                       "python benchmarks/ceiling.py"),
    "ceiling-share-ge-9-5-10": record_value("ceiling", "share_ge_9_min_5_10", lambda v: f"{v:.2f}",
                                            "python benchmarks/ceiling.py"),
    "cnn-time-ratio": record_value("train", ratio("peer_details.cnn.train_seconds", "peer_details.dbn.train_seconds"),
                                   lambda v: f"{v:.1f}", PEERS),
    "mlp-macro-f1": record_value("train", "peers.mlp", num, PEERS),
    "dbn-peer-macro-f1": record_value("train", "peers.dbn", num, PEERS),
    "dbn-half-epochs-macro-f1": record_value("design_epochs", "epochs.60.macro_f1", num, DESIGN),
    "dbn-epochs-macro-f1": record_value("design_epochs", "default.macro_f1", num, DESIGN),
    "dbn-half-epochs-time-ratio": record_value("design_epochs", ratio("epochs.60.train_seconds",
                                                                      "default.train_seconds"),
                                               lambda v: f"{v:.1f}", DESIGN),
    "seeds-spread-macro-f1": record_value("train_seeds", "spread.macro_f1", num, SEEDS),
    "seeds-spread-worst": record_value("train_seeds", "spread.completeness_snr_ge_10_min", num, SEEDS),
    "seeds-spread-worst-5-10": record_value("train_seeds", "spread.completeness_snr_5_10_min", num, SEEDS),
}


def render(text: str) -> str:
    def replace(match: re.Match, known: dict[str, Callable[[], str]]) -> str:
        name = match["name"]
        if name not in known:
            raise SystemExit(f"error: unknown generated block {name!r}; known: {', '.join(known)}")
        return match.group(1) + known[name]() + match.group(4)
    text = BLOCK.sub(lambda m: replace(m, BLOCKS), text)
    return VALUE.sub(lambda m: replace(m, VALUES), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks instead of rewriting them")
    args = parser.parse_args()
    stale = []
    for path in (ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))):
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"error: generated tables out of date in {', '.join(stale)}: run `python benchmarks/tables.py`",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
