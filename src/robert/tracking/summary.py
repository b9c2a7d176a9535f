"""What a pipeline run built, in a few lines: stages run, registered models and their champions, headline metrics,
where the reports are. Printed at the end of ``make run`` (``python src/summary.py --log <dvc repro output>``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from robert.tracking.setup import configure_tracking

RESULTS = {"emission": ("robert", "results/emission/metrics.json"),
           "transmission": ("robert-transmission", "results/transmission/metrics.json"),
           "paper": ("robert-paper", "results/paper/metrics.json")}


def stages_run(log: str) -> list[str]:
    """The stages ``dvc repro`` ran, from its output (``Running stage 'name':``)."""
    return re.findall(r"Running stage '([^']+)'", log)


def _champion(client: MlflowClient, name: str) -> str:
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return "no @champion"
    return f"v{version.version} @champion"


def dream_line(payload: Mapping) -> str:
    """How many molecules' dreams look most like their own class, per dream method (results/dream/dreams.json)."""
    n_molecules = sum(isinstance(entry, Mapping) and "methods" in entry for entry in payload.values())
    methods = {k: v for k, v in payload["summary"].items() if isinstance(v, Mapping) and "n_diagonal" in v}
    counts = ", ".join(f"{method} {m['n_diagonal']} of {n_molecules}" for method, m in methods.items())
    return f"dreams on the diagonal: {counts} [build/dream/report.html]"


def summary_lines(root: Path, tracking: Mapping, log: str | None) -> list[str]:
    lines = []
    if log is not None:
        ran = stages_run(log)
        lines.append("dvc repro: nothing to do, every stage up to date" if not ran
                     else f"dvc repro ran {len(ran)} stage(s): {', '.join(ran)}")
    configure_tracking(tracking, root)
    client = MlflowClient()
    for regime, (name, path) in RESULTS.items():
        metrics_path = root / path
        if not metrics_path.exists():
            continue
        m = json.loads(metrics_path.read_text())
        if regime == "paper":
            scores = f"accuracy {m.get('accuracy', float('nan')):.4f}"
        else:
            scores = (f"macro-F1 {m['macro_f1']:.3f}, completeness S/N>=10 min {m['completeness_snr_ge_10_min']:.3f}, "
                      f"false alarms max {m['false_alarm_rate_max']:.3%}")
        lines.append(f"{name} ({_champion(client, name)}): {scores} at SNR {m['snr']} [{path}]")
    dreams = root / "results/dream/dreams.json"
    if dreams.exists():
        lines.append(dream_line(json.loads(dreams.read_text())))
    lines.append("browse runs and models: make ui (http://127.0.0.1:5000); predict: robert predict examples/*.csv")
    return lines
