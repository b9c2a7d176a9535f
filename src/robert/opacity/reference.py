"""Reader for the HELIOS-K/HITEMP k-distribution reference tables, and binning of our cross-sections.

Validation only: the product never needs these files (they live in ``../shared/reference``).
The tables (Wogan et al., photochem_clima_data; HITEMP/HITRAN via HELIOS-K) hold, per wavelength bin,
``log10k`` (bin, T, P, g) in cm^2/molecule (-60 = zero) and g-point ``weights``; the g-weighted mean
of k is the bin-mean cross-section. We interpolate log10 k linearly in T and log10 P (as the
tables are meant to be used), then average over g. Our sampled sigma is averaged into the same
bins by trapezoid integration over wavenumber divided by the bin width.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robert.errors import UserError
from robert.opacity.sources import BUILDERS, cross_section_grid

REFERENCE_MOLECULES = ("H2O", "CO", "CO2", "CH4", "NH3", "C2H2")


def default_reference_dir(project_root: Path) -> Path:
    return Path(project_root).resolve().parent / "shared" / "reference" / "opacity-kdist"


@dataclass(frozen=True)
class KTable:
    """One molecule's k-table: bin edges (um, ascending), T (K), log10 P (bar), log10 k, g weights."""

    molecule: str
    edges_um: np.ndarray
    temperature_K: np.ndarray
    log10_pressure_bar: np.ndarray
    log10k: np.ndarray
    weights: np.ndarray

    def bin_mean_sigma(self, temperature_K: float, pressure_bar: float) -> np.ndarray:
        """g-weighted bin-mean sigma (cm^2/molecule) per bin at (T, P), log-interpolated in T and log P."""
        t, lp = float(temperature_K), float(np.log10(pressure_bar))
        for what, value, axis in (("temperature", t, self.temperature_K), ("log10 pressure", lp,
                                                                           self.log10_pressure_bar)):
            if not axis[0] <= value <= axis[-1]:
                raise UserError(f"{self.molecule} reference: {what} {value} outside the table "
                                f"{axis[0]}..{axis[-1]}")
        temps, lps = self.temperature_K, self.log10_pressure_bar
        it = int(np.clip(np.searchsorted(temps, t) - 1, 0, temps.size - 2))
        ip = int(np.clip(np.searchsorted(lps, lp) - 1, 0, lps.size - 2))
        ft = (t - temps[it]) / (temps[it + 1] - temps[it])
        fp = (lp - lps[ip]) / (lps[ip + 1] - lps[ip])
        block = self.log10k[:, it:it + 2, ip:ip + 2, :]
        wt = np.array([1 - ft, ft])[None, :, None, None] * np.array([1 - fp, fp])[None, None, :, None]
        log10k = (block * wt).sum(axis=(1, 2))
        k = np.where(log10k <= -59.0, 0.0, 10.0 ** log10k)
        return k @ self.weights

    def bins_within(self, wavelength_min_um: float, wavelength_max_um: float) -> np.ndarray:
        """Indices of bins lying wholly inside [min, max] um."""
        edges = self.edges_um
        return np.flatnonzero((edges[:-1] >= wavelength_min_um) & (edges[1:] <= wavelength_max_um))


def read_ktable(reference_dir: Path, molecule: str) -> KTable:
    import h5py

    path = Path(reference_dir) / f"{molecule}.h5"
    if not path.exists():
        raise UserError(f"no reference k-table {path}")
    with h5py.File(path, "r") as f:
        edges = np.asarray(f["wavelengths"], dtype=float)
        table = KTable(molecule, edges, np.asarray(f["T"], dtype=float), np.asarray(f["log10P"], dtype=float),
                       np.asarray(f["log10k"], dtype=float), np.asarray(f["weights"], dtype=float))
    expected = (edges.size - 1, table.temperature_K.size, table.log10_pressure_bar.size, table.weights.size)
    if table.log10k.shape != expected:
        raise UserError(f"{path}: log10k has shape {table.log10k.shape}, expected {expected}")
    return table


def bin_average(wavenumber_cm: np.ndarray, sigma: np.ndarray, edges_um: np.ndarray) -> np.ndarray:
    """Mean of sigma (..., nW) over wavenumber in each wavelength bin: trapezoid integral / bin width.

    Bins not wholly covered by the wavenumber grid come back as NaN.
    """
    nu = np.asarray(wavenumber_cm, dtype=float)
    nu_edges = np.sort(1e4 / np.asarray(edges_um, dtype=float))  # ascending wavenumber edges
    trapezoids = 0.5 * (sigma[..., 1:] + sigma[..., :-1]) * np.diff(nu)
    cum = np.concatenate([np.zeros(sigma.shape[:-1] + (1,)), np.cumsum(trapezoids, axis=-1)], axis=-1)
    at_edges = np.stack([np.interp(nu_edges, nu, c) for c in cum.reshape(-1, nu.size)]).reshape(
        sigma.shape[:-1] + (nu_edges.size,))
    means = np.diff(at_edges, axis=-1) / np.diff(nu_edges)
    covered = (nu_edges[:-1] >= nu[0]) & (nu_edges[1:] <= nu[-1])
    means[..., ~covered] = np.nan
    return means[..., ::-1]  # back to the ascending-wavelength order of the table


# --- the comparison (benchmarks/validate_opacity.py, tests/test_reference_opacity.py) ---

TEMPERATURES_K = (500.0, 1000.0, 1500.0)
PRESSURES_BAR = (0.01, 0.1, 1.0)
THRESHOLD = 1e-21
TOLERANCE = 3.0
WAVELENGTH_RANGE_UM = (1.0, 20.2)


def compare(molecule: str, spec: Mapping, reference_dir: Path, wavenumber_cm: np.ndarray, data_dir: Path,
            temperatures_K: tuple[float, ...] = TEMPERATURES_K,
            pressures_bar: tuple[float, ...] = PRESSURES_BAR) -> list[dict]:
    """Rows (molecule, T, P, bin, ref, ours, sampled, exact, factor) for every bin where the reference
    exceeds THRESHOLD; ``ours`` is the exact bin mean where the source provides one, else the mean of
    the samples (``sampled``); ``exact`` says which. All sigma in cm^2/molecule."""
    table = read_ktable(reference_dir, molecule)
    sigma = cross_section_grid(spec, wavenumber_cm, np.array(temperatures_K), np.array(pressures_bar),
                               data_dir)
    sampled = bin_average(wavenumber_cm, sigma, table.edges_um)  # (nP, nT, nBins), NaN where not covered
    ours, exact = sampled, False
    module = importlib.import_module(BUILDERS[spec["source"]])
    if hasattr(module, "bin_mean_cross_section"):
        nu_edges = 1e4 / table.edges_um  # descending wavenumber = ascending wavelength bins
        covered = np.flatnonzero((nu_edges >= wavenumber_cm[0]) & (nu_edges <= wavenumber_cm[-1]))
        edges_cm = nu_edges[covered][::-1]
        means = module.bin_mean_cross_section(spec, edges_cm, np.array(temperatures_K),
                                              np.array(pressures_bar), data_dir)
        ours, exact = np.full_like(sampled, np.nan), True
        ours[..., covered[0]:covered[-1]] = means[..., ::-1]
    rows = []
    for ip, p in enumerate(pressures_bar):
        for it, t in enumerate(temperatures_K):
            ref = table.bin_mean_sigma(t, p)
            for b in table.bins_within(*WAVELENGTH_RANGE_UM):
                if ref[b] > THRESHOLD:
                    mine = float(ours[ip, it, b])
                    if not np.isfinite(mine):
                        raise RuntimeError(f"{molecule}: bin {b} not covered by the wavenumber grid")
                    factor = max(mine / ref[b], ref[b] / mine) if mine > 0 else np.inf
                    rows.append({"molecule": molecule, "T": t, "P": p, "lo_um": float(table.edges_um[b]),
                                 "hi_um": float(table.edges_um[b + 1]), "ref": float(ref[b]), "ours": mine,
                                 "sampled": float(sampled[ip, it, b]), "exact": exact,
                                 "factor": float(factor)})
    return rows
