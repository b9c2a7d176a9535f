"""Collision-induced absorption (CIA): Borysow tables in, HITRAN ``.cia`` files out and in.

Borysow tables (as shipped by pyratbay) give k(nu, T) in cm^-1 amagat^-2; the binary
cross-section is sigma = k / n_L^2 in cm^5/molecule^2 with the Loschmidt number
n_L = 2.6867811e19 cm^-3 (DESIGN.md section 4). The cache keeps the tables' own wavenumber
sampling (CIA is smooth; resampling would only lose information) in the HITRAN CIA format
(Richard et al. 2012, JQSRT 113, 1276) that TauREx reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robert.atomic import atomic_write_bytes
from robert.errors import UserError

LOSCHMIDT_CM3 = 2.6867811e19  # molecules per cm^3 at 273.15 K, 1 atm (one amagat)


@dataclass(frozen=True)
class CiaTable:
    """sigma(T, nu) of one collision pair, cm^5/molecule^2."""

    pair: str  # e.g. "H2-H2"
    temperature_K: np.ndarray  # (nT,)
    wavenumber_cm: np.ndarray  # (nW,) ascending
    sigma_cm5: np.ndarray  # (nT, nW)
    provenance: str = ""

    def at(self, wavenumber_cm: np.ndarray, temperature_K: float) -> np.ndarray:
        """sigma at one temperature, linear in T (clamped to the table), linear in nu, 0 outside."""
        t = np.clip(temperature_K, self.temperature_K[0], self.temperature_K[-1])
        i = int(np.clip(np.searchsorted(self.temperature_K, t) - 1, 0, len(self.temperature_K) - 2))
        w = (t - self.temperature_K[i]) / (self.temperature_K[i + 1] - self.temperature_K[i])
        row = (1 - w) * self.sigma_cm5[i] + w * self.sigma_cm5[i + 1]
        return np.interp(wavenumber_cm, self.wavenumber_cm, row, left=0.0, right=0.0)


def read_borysow(path: Path, provenance: str = "") -> CiaTable:
    """Read a Borysow CIA table (``@SPECIES``, ``@TEMPERATURES``, ``@DATA`` sections)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"missing data file {path}; run `make data` (python src/fetch_data.py)")
    section, species, temps, rows = None, [], [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("@"):
            section = text[1:]
            continue
        try:
            if section == "SPECIES":
                species = text.split()
            elif section == "TEMPERATURES":
                temps.extend(float(v) for v in text.split())
            elif section == "DATA":
                rows.append([float(v) for v in text.split()])
        except ValueError:
            raise UserError(f"{path} line {lineno}: expected numbers in the @{section} section") from None
    if len(species) != 2 or not temps or not rows:
        raise UserError(f"{path}: expected @SPECIES (two names), @TEMPERATURES and @DATA sections")
    data = np.asarray(rows)
    if data.shape[1] != len(temps) + 1:
        raise UserError(f"{path}: @DATA rows have {data.shape[1]} columns, expected 1 + {len(temps)} temperatures")
    return CiaTable(pair="-".join(species), temperature_K=np.asarray(temps), wavenumber_cm=data[:, 0],
                    sigma_cm5=(data[:, 1:] / LOSCHMIDT_CM3**2).T.copy(), provenance=provenance)


def restrict(table: CiaTable, wavenumber_min_cm: float, wavenumber_max_cm: float) -> CiaTable:
    """The table cut to a wavenumber window, keeping one sample beyond each edge for interpolation."""
    lo = max(int(np.searchsorted(table.wavenumber_cm, wavenumber_min_cm)) - 1, 0)
    hi = min(int(np.searchsorted(table.wavenumber_cm, wavenumber_max_cm)) + 1, len(table.wavenumber_cm))
    return CiaTable(table.pair, table.temperature_K, table.wavenumber_cm[lo:hi],
                    table.sigma_cm5[:, lo:hi].copy(), table.provenance)


def write_hitran_cia(path: Path, table: CiaTable) -> None:
    """Write ``table`` in the HITRAN CIA format (one 100-character header per temperature), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nu = table.wavenumber_cm
    lines = []
    for t, sigma in zip(table.temperature_K, table.sigma_cm5, strict=True):
        lines.append(f"{table.pair:>20}{nu[0]:10.3f}{nu[-1]:10.3f}{len(nu):7d}{t:7.1f}{sigma.max():10.3E}"
                     f"{0.0:6.3f}{'Borysow tables':>27}{0:3d}")
        lines.extend(f"{w:10.4f} {s:10.4E}" for w, s in zip(nu, sigma, strict=True))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def read_hitran_cia(path: Path, provenance: str = "") -> CiaTable:
    """Read a HITRAN-format ``.cia`` file (ours or one downloaded from HITRAN)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"missing CIA file {path}; run `dvc repro opacities` to build the cache")
    lines = path.read_text().splitlines()
    temps, blocks, i, pair, grid = [], [], 0, "", None
    while i < len(lines):
        header = lines[i]
        try:
            pair = header[:20].strip()
            npts = int(header[40:47])
            temps.append(float(header[47:54]))
            block = np.loadtxt(lines[i + 1:i + 1 + npts], ndmin=2)
        except (ValueError, IndexError):
            raise UserError(f"{path} line {i + 1}: expected a HITRAN CIA header and its data block") from None
        if grid is None:
            grid = block[:, 0]
        elif block.shape[0] != grid.size or not np.allclose(block[:, 0], grid):
            raise UserError(f"{path}: the block at line {i + 1} has a different wavenumber grid")
        blocks.append(block[:, 1])
        i += 1 + npts
    if not blocks:
        raise UserError(f"{path}: empty CIA file")
    order = np.argsort(temps)
    return CiaTable(pair, np.asarray(temps)[order], grid, np.asarray(blocks)[order], provenance)
