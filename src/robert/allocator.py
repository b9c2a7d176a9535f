"""Freed memory stays in the process: glibc's malloc is told not to hand large blocks back to the kernel.

Every training batch and every inference chunk allocates and frees tensors of 0.1-15 MB. glibc serves blocks above
its mmap threshold with fresh pages from the kernel and trims the top of its heap above its trim threshold, so such
a tensor pays a page fault per 4 kB page on first touch, again and again (measured on a 2-core VM: an elementwise
function of a 2048 x 901 float32 tensor took 6-30 ms with glibc's defaults, 5-7 ms with the settings below; the
same training 72.6 s against 60.3 s, the same weights). PyTorch's performance tuning guide recommends an allocator
that reuses memory (jemalloc, tcmalloc) for the same reason; a project installed from pip has neither, so glibc is
told with mallopt(3) to keep blocks up to 32 MiB on its heap (``M_MMAP_THRESHOLD``; 32 MiB is glibc's maximum on
64-bit) and never to trim it (``M_TRIM_THRESHOLD``). The price is that the process keeps its peak memory.

Elsewhere (macOS, musl, Windows) nothing is done. ``ROBERT_MALLOC=system`` leaves glibc's defaults (to measure the
difference: benchmarks/predict.py records both).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h> parameter numbers
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (once per process); True where they were set."""
    if os.environ.get("ROBERT_MALLOC", "") == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                  TRIM_THRESHOLD_BYTES))


__all__ = ["keep_freed_memory"]
