"""Spectrum transforms shared by training, evaluation and inference: noise and [0, 1] scaling.

Noise convention (an assumption; the paper states none): white Gaussian noise with one sigma for
every bin of a spectrum, ``sigma = mean(depth over the spectrum) / snr``. ``snr=None`` is noiseless.
Normalisation: each spectrum min-max scaled to [0, 1], as the paper's Fig. 5 shows; it is
idempotent, so already-normalised input passes through unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, the same on every machine and Python version."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def add_noise(depth: Tensor, snr: float | None, generator: torch.Generator) -> Tensor:
    """``depth`` (B, W) plus Gaussian noise of sigma = mean(depth of the row) / snr."""
    if snr is None:
        return depth
    sigma = depth.mean(dim=1, keepdim=True) / float(snr)
    noise = torch.randn(depth.shape, generator=generator, device=depth.device, dtype=depth.dtype)
    return depth + sigma * noise


def normalise(x: Tensor) -> Tensor:
    """Each row min-max scaled to [0, 1]; a flat row becomes zeros."""
    low = x.min(dim=1, keepdim=True).values
    span = x.max(dim=1, keepdim=True).values - low
    return (x - low) / span.clamp(min=torch.finfo(x.dtype).tiny)


def noisy_normalised(depth: np.ndarray | Tensor, snr: float | None, seed: int) -> Tensor:
    """A fixed (seeded) noisy, normalised copy of clean depths: validation/test sets, SNR curves."""
    depth = torch.as_tensor(np.asarray(depth), dtype=torch.float32)
    return normalise(add_noise(depth, snr, torch.Generator().manual_seed(seed)))
