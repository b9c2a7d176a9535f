"""Stable seeds, white noise and [0, 1] scaling: the transforms every spectrum goes through.

White-noise convention (an assumption; the paper states none): one sigma for every bin of a spectrum,
``sigma = mean(depth over the spectrum) / snr``; ``snr=None`` is noiseless. Per-bin error bars and partial
coverage are :mod:`robert.spectra.observation`'s job; this module is the plain full-grid case.
Scaling: each spectrum min-max scaled to [0, 1] over its observed bins, as the paper's Fig. 5 shows; it is
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
    noise = torch.randn(depth.shape, generator=generator, device=generator.device, dtype=depth.dtype)
    return depth + sigma * noise.to(depth.device)


def value_range(x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(min, max - min) of each row over its observed bins (``mask`` True), each (B, 1)."""
    if mask is None:
        low, high = x.min(dim=1, keepdim=True).values, x.max(dim=1, keepdim=True).values
    else:
        low = torch.where(mask, x, torch.inf).min(dim=1, keepdim=True).values
        high = torch.where(mask, x, -torch.inf).max(dim=1, keepdim=True).values
    return low, (high - low).clamp(min=torch.finfo(x.dtype).tiny)


def normalise(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Each row min-max scaled to [0, 1] over its observed bins; unobserved bins 0; a flat row becomes zeros."""
    low, span = value_range(x, mask)
    scaled = (x - low) / span
    return scaled if mask is None else torch.where(mask, scaled, torch.zeros_like(scaled))


def noisy_normalised(depth: np.ndarray | Tensor, snr: float | None, seed: int) -> Tensor:
    """A fixed (seeded) noisy, normalised copy of clean depths (white noise, the whole grid)."""
    depth = torch.as_tensor(np.asarray(depth), dtype=torch.float32)
    return normalise(add_noise(depth, snr, torch.Generator().manual_seed(seed)))
