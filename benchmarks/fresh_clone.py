"""The README's two commands on a fresh clone, timed: `make run` (install included) and `make test`.

    python benchmarks/fresh_clone.py [--skip-test] [--keep DIR]

Clones this repository's committed HEAD into a temporary directory (no venv, no data, no build, no MLflow store:
what a newcomer has), runs `make run`, then `make run` again (which must do nothing), then `make test`, each timed
by the wall clock (`make run` also per part: install and data, then each DVC stage). pip's download cache is
not used, nor uv's (PIP_NO_CACHE_DIR, UV_NO_CACHE), nor torch.compile's (an empty TORCHINDUCTOR_CACHE_DIR). Last
line: one JSON object (seconds of each, whether the second run did nothing). The clone's ../shared is linked when
this checkout has one, as CI's is.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from record import emit

ROOT = Path(__file__).resolve().parents[1]


STAGE_START = re.compile(r"Running stage '([^']+)'")


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, int, dict[str, float]]:
    """Wall-clock seconds, exit code, and seconds per part: before the first DVC stage (install, data), then each
    stage from its "Running stage" line to the next (the last one includes the closing summary)."""
    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("install_and_data", start)]
    with log.open("w") as out, subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            match = STAGE_START.search(line)
            if match:
                marks.append((match.group(1), time.perf_counter()))
    end = time.perf_counter()
    stops = [stamp for _, stamp in marks[1:]] + [end]
    parts = {name: round(stop - begin, 1) for (name, begin), stop in zip(marks, stops, strict=True)}
    return end - start, process.returncode, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-test", action="store_true")
    parser.add_argument("--keep", type=Path, help="clone into this directory and keep it")
    args = parser.parse_args()
    parent = args.keep or Path(tempfile.mkdtemp(prefix="robert-fresh-"))
    clone = parent / "main"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if (ROOT.parent / "shared").exists() and not (parent / "shared").exists():
        (parent / "shared").symlink_to(ROOT.parent / "shared")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "MLFLOW_", "ROBERT_"))}
    # unbuffered: DVC's "Running stage" lines (which time the parts) reach the pipe when they are printed; an empty
    # torch.compile cache, as a new machine has (a warm one spares the simulator's kernels their compiling)
    env |= {"PIP_NO_CACHE_DIR": "1", "UV_NO_CACHE": "1", "PYTHONUNBUFFERED": "1",
            "TORCHINDUCTOR_CACHE_DIR": str(parent / "torchinductor"),
            "PATH": ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)}
    result: dict = {}
    run_seconds, rc, parts = timed(["make", "run"], clone, env, parent / "make-run.log")
    result |= {"make_run_seconds": round(run_seconds), "make_run_exit": rc, "make_run_parts_seconds": parts}
    again_seconds, rc, _ = timed(["make", "run"], clone, env, parent / "make-run-again.log")
    again = (parent / "make-run-again.log").read_text()
    result |= {"second_make_run_seconds": round(again_seconds), "second_run_did_nothing":
               rc == 0 and "nothing to do" in again and "Running stage" not in again}
    if not args.skip_test:
        test_seconds, rc, _ = timed(["make", "test"], clone, env, parent / "make-test.log")
        tail = (parent / "make-test.log").read_text().strip().splitlines()[-1:]
        result |= {"make_test_seconds": round(test_seconds), "make_test_exit": rc, "pytest_summary": tail}
    if not args.keep:
        shutil.rmtree(parent, ignore_errors=True)
    emit("fresh_clone", result)


if __name__ == "__main__":
    main()
