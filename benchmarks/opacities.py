"""Time and peak memory of the `opacities` stage on the default config, from an empty cache.

    python benchmarks/opacities.py [extra Hydra overrides...]

Runs the real entry script in a child process (so its peak RSS is measured alone) and prints,
as the last line, one JSON object with at least ``seconds`` and ``peak_rss_mb``.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import emit  # benchmarks/record.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        cmd = [sys.executable, str(ROOT / "src" / "opacities.py"), f"opacity.cache_dir={cache}", *sys.argv[1:]]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        seconds = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in Path(cache).iterdir()) / 2**20
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    emit("opacities", {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
                      "cache_mb": round(size_mb, 1), "cpus": os.cpu_count(), "machine": platform.machine(),
                      "overrides": sys.argv[1:]})


if __name__ == "__main__":
    main()
