"""Reader for the HELIOS-K/HITEMP k-distribution reference tables, and binning of our cross-sections.

Validation only: the product never needs these files (they live in ``../shared/reference``).
The tables (Wogan et al., photochem_clima_data; HITEMP/HITRAN via HELIOS-K) hold, per wavelength bin,
``log10k`` (bin, T, P, g) in cm^2/molecule (-60 = zero) and g-point ``weights``; the g-weighted mean
of k is the bin-mean cross-section. We interpolate log10 k linearly in T and log10 P (as the
tables are meant to be used), then average over g. Our sampled sigma is averaged into the same
bins by trapezoid integration over wavenumber divided by the bin width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robert.errors import UserError

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
