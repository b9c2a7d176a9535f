"""Per-layer optical depths from the opacity cache, batched in torch.

Molecular cross-sections sigma(P, T, nu) are interpolated bilinearly: linear in log P and linear in T
(in sigma, as TauREx's default). The layers sit at fixed pressures, so the log-P half of the
interpolation is done once at construction; per batch only the T index and weight of every
(spectrum, layer) are computed, and the kernel gathers two rows per molecule. Outside the table's
T or P range sigma is CLAMPED to the edge value (no extrapolation); construction logs a warning when
the layer pressures leave the table's range.

Continuum: H2-H2 and H2-He collision-induced absorption at the layer temperature (linear in T,
clamped, zero outside the tables' wavenumbers) and H2/He Rayleigh scattering (Dalgarno & Williams 1962),
treated as absorption (emission is computed without scattering). Because x_He = r x_H2 with a fixed r,
both CIA pairs fold into one table sigma_H2H2 + r sigma_H2He on the union of their T grids (exact for
piecewise-linear T interpolation), and Rayleigh into one row sigma_H2 + r sigma_He.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from robert.errors import UserError
from robert.opacity.cia import CiaTable, read_hitran_cia
from robert.opacity.rayleigh import rayleigh_cross_section
from robert.opacity.xsec_hdf5 import CrossSectionTable, read_xsec_hdf5

log = logging.getLogger(__name__)

CIA_PAIRS = ("H2-H2", "H2-He")
# Tables are stored in these units so that float32 neither overflows (n^2 dz reaches ~1e48 cm^-5 at
# 100 bar) nor drops into slow denormals (sigma ~ 1e-40 cm^2 in line wings); coefficients carry the rest.
SIGMA_UNIT_CM2 = 1e-20
CIA_UNIT_CM5 = 1e-45
DENSITY_UNIT_CM3 = CIA_UNIT_CM5 / SIGMA_UNIT_CM2


def load_cache(cache_dir: Path, molecules: Sequence[str],
               cia_pairs: Sequence[str] = CIA_PAIRS) -> tuple[list[CrossSectionTable], list[CiaTable]]:
    """Read ``<MOL>.xsec.h5`` for each molecule and ``<PAIR>.cia`` for each CIA pair from the cache."""
    if not molecules:
        raise UserError("no active molecules requested; give at least one (e.g. H2O)")
    cache_dir = Path(cache_dir)
    xsecs = [read_xsec_hdf5(cache_dir / f"{mol}.xsec.h5") for mol in molecules]
    cias = [read_hitran_cia(cache_dir / f"{pair}.cia") for pair in cia_pairs]
    return xsecs, cias


def interpolation_weights(grid: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index i and weight w with value ~ (1 - w) grid[i] + w grid[i + 1], clamped to the grid's ends."""
    v = values.clamp(grid[0], grid[-1])
    i = torch.clamp(torch.searchsorted(grid, v.contiguous(), right=True) - 1, 0, grid.shape[0] - 2)
    w = (v - grid[i]) / (grid[i + 1] - grid[i])
    return i, w


def _pad_single(grid: np.ndarray, table: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """A one-point grid becomes two identical points, so the same two-point interpolation works."""
    if grid.size > 1:
        return grid, table
    return np.array([grid[0], grid[0] + 1.0]), np.concatenate([table, table], axis=axis)


def _resample_nu(rows: np.ndarray, table_nu: np.ndarray, model_nu: np.ndarray) -> np.ndarray:
    """Rows (..., nW) on the model grid: picked when the model grid is a subset (the usual case), else linear."""
    pick = np.clip(np.searchsorted(table_nu, model_nu), 0, table_nu.size - 1)
    if np.array_equal(table_nu[pick], model_nu):
        return rows[..., pick]
    flat = rows.reshape(-1, rows.shape[-1])
    out = np.stack([np.interp(model_nu, table_nu, r, left=0.0, right=0.0) for r in flat])
    return out.reshape(*rows.shape[:-1], model_nu.size)


def _pressure_interpolated(table: CrossSectionTable, layer_bar: np.ndarray, model_nu: np.ndarray) -> np.ndarray:
    """sigma at every layer pressure and table temperature on the model grid: (L, nT, W), log-P linear."""
    if table.pressure_bar.min() > layer_bar.min() or table.pressure_bar.max() < layer_bar.max():
        log.warning("%s cross-sections cover %.3g-%.3g bar; layers outside are clamped to the edge values",
                    table.molecule, table.pressure_bar.min(), table.pressure_bar.max())
    order = np.argsort(table.pressure_bar)
    xsec = _resample_nu(table.xsec_cm2[order], table.wavenumber_cm, model_nu)
    log_p, xsec = _pad_single(np.log(table.pressure_bar[order]), xsec, axis=0)
    lp = np.clip(np.log(layer_bar), log_p[0], log_p[-1])
    i = np.clip(np.searchsorted(log_p, lp, side="right") - 1, 0, log_p.size - 2)
    w = ((lp - log_p[i]) / (log_p[i + 1] - log_p[i]))[:, None, None]
    return (1 - w) * xsec[i] + w * xsec[i + 1]  # (L, nT, W)


class LayerOpacity:
    """All absorbers of one model on one wavenumber grid, as one table of rows to gather from.

    Rows: for each molecule its (layer, temperature) rows, then the folded CIA rows (one per CIA
    temperature). The Rayleigh row is kept apart (it does not depend on T).
    """

    def __init__(self, xsecs: Sequence[CrossSectionTable], cias: Sequence[CiaTable], layer_bar: np.ndarray,
                 wavenumber_cm: np.ndarray, he_h2_ratio: float, device: torch.device, dtype: torch.dtype):
        self.molecules = tuple(t.molecule for t in xsecs)
        masses = np.array([t.mass_amu for t in xsecs])
        if not np.all(np.isfinite(masses)):
            bad = [t.molecule for t in xsecs if not np.isfinite(t.mass_amu)]
            raise UserError(f"cross-section files of {', '.join(bad)} lack mol_mass; rebuild the opacity cache")
        self.mass_amu = torch.as_tensor(masses, device=device, dtype=dtype)
        self.n_layers = layer_bar.size
        rows, self.t_grids, self.row_offsets = [], [], []
        offset = 0
        for table in xsecs:
            t_order = np.argsort(table.temperature_K)
            sigma = _pressure_interpolated(table, layer_bar, wavenumber_cm)[:, t_order]
            t_grid, sigma = _pad_single(table.temperature_K[t_order], sigma, axis=1)
            rows.append(sigma.reshape(-1, wavenumber_cm.size) / SIGMA_UNIT_CM2)
            self.t_grids.append(torch.as_tensor(t_grid, device=device, dtype=dtype))
            self.row_offsets.append(offset)
            offset += sigma.shape[0] * sigma.shape[1]
        self.n_t = [g.shape[0] for g in self.t_grids]
        cia_t, cia_sigma = self._folded_cia(cias, wavenumber_cm, he_h2_ratio)
        rows.append(cia_sigma / CIA_UNIT_CM5)
        self.cia_t_grid = torch.as_tensor(cia_t, device=device, dtype=dtype)
        self.cia_offset = offset
        # (R, W) in SIGMA_UNIT_CM2 (molecules) | CIA_UNIT_CM5 (CIA)
        self.rows = torch.as_tensor(np.concatenate(rows), device=device, dtype=dtype)
        rayleigh = rayleigh_cross_section("H2", wavenumber_cm) \
            + he_h2_ratio * rayleigh_cross_section("He", wavenumber_cm)
        self.rayleigh = torch.as_tensor(rayleigh / SIGMA_UNIT_CM2, device=device, dtype=dtype)  # per H2 molecule
        self.layer_index = torch.arange(self.n_layers, device=device)

    @staticmethod
    def _folded_cia(cias: Sequence[CiaTable], wavenumber_cm: np.ndarray, he_h2_ratio: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """sigma_H2H2 + r sigma_H2He per H2 pair on the union T grid: (nT, W) cm^5."""
        factors = {"H2-H2": 1.0, "H2-He": he_h2_ratio, "He-H2": he_h2_ratio}
        unknown = [c.pair for c in cias if c.pair not in factors]
        if unknown:
            raise UserError(f"unsupported CIA pair(s) {', '.join(unknown)}; expected one of: H2-H2, H2-He")
        if not cias:
            return np.array([100.0, 101.0]), np.zeros((2, wavenumber_cm.size))
        t_union = np.unique(np.concatenate([c.temperature_K for c in cias]))
        sigma = sum(factors[c.pair] * np.stack([c.at(wavenumber_cm, t) for t in t_union]) for c in cias)
        return _pad_single(t_union, np.asarray(sigma), axis=0)

    def gather_plan(self, temperature_K: torch.Tensor, column_cm2: torch.Tensor, number_density_cm3: torch.Tensor,
                    active_vmr: torch.Tensor, h2_vmr: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row indices (G, B, L), weights (G, B, L), coefficients (G, B, L) and the Rayleigh coefficient (B, L).

        Group g < M is molecule g (coefficient x_g N, N the layer column), the last group is CIA
        (coefficient x_H2^2 n N); optical depth = sum_g coef (row_i + w (row_(i+1) - row_i)) + coef_R sigma_R.
        Mixing ratios are per spectrum (``active_vmr`` (B, M), ``h2_vmr`` (B,)) or, with thermal dissociation,
        per layer ((B, M, L), (B, L)). The CIA and Rayleigh rows fold He in as x_He = r x_H2: where H2
        dissociates x_He / x_H2 exceeds r, so H2-He CIA and He Rayleigh are there underestimated (APPROXIMATE;
        H- dominates the continuum in those layers).
        """
        column = column_cm2 * SIGMA_UNIT_CM2
        layered = active_vmr.dim() == 3
        index, weight, coef = [], [], []
        for m, grid in enumerate(self.t_grids):
            i, w = interpolation_weights(grid, temperature_K)
            index.append(self.row_offsets[m] + self.layer_index * self.n_t[m] + i)
            weight.append(w)
            coef.append((active_vmr[:, m] if layered else active_vmr[:, m, None]) * column)
        i, w = interpolation_weights(self.cia_t_grid, temperature_K)
        index.append(self.cia_offset + i)
        weight.append(w)
        h2 = h2_vmr if h2_vmr.dim() == 2 else h2_vmr[:, None]
        rayleigh_coef = h2 * column
        coef.append(h2 * rayleigh_coef * (number_density_cm3 * DENSITY_UNIT_CM3))
        return torch.stack(index), torch.stack(weight), torch.stack(coef), rayleigh_coef


def accumulate_group(dtau: torch.Tensor, rows: torch.Tensor, index: torch.Tensor, weight: torch.Tensor,
                     coef: torch.Tensor) -> torch.Tensor:
    """dtau + coef x (table row interpolated in T) for one group (a molecule or the CIA), all (B, L[, W])."""
    low, high = rows[index], rows[index + 1]
    return dtau + coef[..., None] * (low + weight[..., None] * (high - low))


def layer_optical_depth(rows: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, coef: torch.Tensor,
                        rayleigh_coef: torch.Tensor, rayleigh: torch.Tensor,
                        accumulate: Callable[..., torch.Tensor] = accumulate_group,
                        start: torch.Tensor | None = None) -> torch.Tensor:
    """Vertical optical depth of every layer, (B, L, W), from a :meth:`LayerOpacity.gather_plan`.

    ``accumulate`` may be a compiled :func:`accumulate_group` (same shapes for every group, so it
    compiles once however many groups a chunk has). ``start``: the Rayleigh term with any other continuum
    already in it (the H- kernel computes both in one pass); default the Rayleigh term alone.
    """
    dtau = rayleigh_coef[..., None] * rayleigh if start is None else start
    for g in range(index.shape[0]):  # a handful of groups (molecules + CIA), not layers
        dtau = accumulate(dtau, rows, index[g], weight[g], coef[g])
    return dtau
