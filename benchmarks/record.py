"""Every benchmark's last line: one JSON object, also kept as benchmarks/results/<name>.json with the date, the
machine and the command, so the tables in BENCHMARKS.md and README.md are generated from it
(``python benchmarks/tables.py``) and never typed by hand."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    """This machine in words: cores, processor, memory, torch build."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            key, _, value = line.partition(":")
            if not line.strip():
                break  # the first processor's fields are enough
            fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name", "")
    # virtual machines often name only the vendor ("AMD EPYC"): family and model tell the generations apart
    # (two hosts both named "AMD EPYC" ran the same `make run` 2x apart)
    if "cpu family" in fields and "model" in fields:
        model = f"{model}, family {fields['cpu family']} model {fields['model']}"
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()} cores ({model or platform.machine()}), {memory:.0f} GiB, torch {torch.__version__}{gpu}"


def command_line() -> str:
    """The benchmark's command as a user types it from the project root."""
    return "python " + shlex.join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]])


def record_of(name: str) -> dict | None:
    """The last recorded entry of benchmark ``name`` (benchmarks/results/<name>.json), if any."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def compose_config(name: str, overrides: list[str]) -> dict:
    """``conf/<name>.yaml`` of this checkout with ``overrides``, composed and resolved (plain containers)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name, overrides=overrides), resolve=True)


def timed_training(cfg: Mapping, root: Path) -> tuple[Any, float]:
    """(:func:`robert.training.train.train`'s result, wall-clock seconds) of a whole training.

    A benchmark times trainings from their first epoch: the checkpoint that a killed earlier run of the same config
    left in the benchmark's private checkpoint directory is removed first (the training would resume from it, and
    its seconds would measure only the epochs left)."""
    from robert.training.train import checkpoint_dir_of, train

    shutil.rmtree(checkpoint_dir_of(cfg, root), ignore_errors=True)
    start = time.perf_counter()
    result = train(cfg, root)
    return result, time.perf_counter() - start


def emit(name: str, result: dict, record: bool = True) -> None:
    """Print the JSON line; with ``record``, write benchmarks/results/<name>.json atomically."""
    line = json.dumps(result)
    print(line, flush=True)
    if not record:
        return
    RESULTS.mkdir(exist_ok=True)
    entry = {"benchmark": name, "date": datetime.date.today().isoformat(), "machine": machine(),
             "command": command_line(), "result": result}
    tmp = RESULTS / f".{name}.json.tmp"
    tmp.write_text(json.dumps(entry, indent=2) + "\n")
    tmp.replace(RESULTS / f"{name}.json")
