"""``EmissionModel``: eclipse depths (B, n_bins) for a batch of temperature profiles and VMRs.

Composition of the separable pieces: profiles -> chemistry -> atmosphere (column densities) ->
opacity (gathered cross-sections, CIA, Rayleigh) -> emission (Gauss-Legendre flux) -> binning of the
planet flux and of the stellar blackbody -> Fp/Fs (Rp/Rs)^2. The batch is cut into fixed-size
chunks (the last one padded), so every spectrum goes through the same tensor shapes whatever the
batch size: results are independent of batch size and ``torch.compile`` never recompiles.
The same code runs on CPU and GPU (``simulate.device``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from robert.opacity.cia import CiaTable
from robert.opacity.xsec_hdf5 import CrossSectionTable
from robert.physics import atmosphere, binning
from robert.physics.chemistry import free_chemistry
from robert.physics.config import SimulateSettings
from robert.physics.emission import flux_from_optical_depth, gauss_legendre_mu, planck_wavenumber
from robert.physics.opacity import LayerOpacity, accumulate_group, layer_optical_depth, load_cache
from robert.physics.planet import Planet
from robert.physics.priors import TemperatureParameters
from robert.physics.profiles import guillot_profile, isothermal_profile

log = logging.getLogger(__name__)


class EmissionModel:
    """Batched emission forward model of one planet for a fixed set of active molecules."""

    def __init__(self, settings: SimulateSettings, planet: Planet, xsecs: Sequence[CrossSectionTable],
                 cias: Sequence[CiaTable]):
        self.settings, self.planet = settings, planet
        device, dtype = settings.device, settings.dtype
        self.wavelength_um, edges_um = binning.output_grid_um(settings.wavelength_min_um, settings.wavelength_max_um,
                                                              settings.n_bins)
        cache_nu = np.asarray(xsecs[0].wavenumber_cm, dtype=float)
        nu = cache_nu[binning.covering_slice(cache_nu, edges_um, settings.spectral_stride)]
        levels = atmosphere.pressure_levels_bar(settings.n_layers, settings.pressure_top_bar,
                                                settings.pressure_bottom_bar)
        layers = atmosphere.layer_pressures_bar(levels)
        self.opacity = LayerOpacity(xsecs, cias, layers, nu, settings.he_h2_ratio, device, dtype)
        self.molecules = self.opacity.molecules
        as_t = lambda a: torch.as_tensor(a, device=device, dtype=dtype)  # noqa: E731
        self.wavenumber_cm, self.levels_bar, self.layer_bar = as_t(nu), as_t(levels), as_t(layers)
        self.profile_bar = torch.cat([self.layer_bar, self.levels_bar[-1:]])  # layers + bottom boundary
        mu, w = gauss_legendre_mu(settings.n_angles)
        self.mu, self.flux_weight = as_t(mu), as_t(2 * w * mu)
        self.binning = binning.to_sparse(binning.binning_matrix(nu, edges_um, settings.binning), device, dtype)
        star_flux = np.pi * planck_wavenumber(torch.as_tensor(nu), torch.tensor([planet.star.temperature_K]))
        self.star_flux_binned = binning.bin_flux(self.binning, star_flux.to(device, dtype))[0]  # (n_bins,)
        # the radiative transfer (exponentials over layers x wavenumbers x angles) is the hot loop: fused
        # C++/Triton kernel; chunk shapes are fixed, so it compiles once
        self._flux_kernel: Callable[..., torch.Tensor] = flux_from_optical_depth
        self._accumulate: Callable[..., torch.Tensor] = accumulate_group
        if settings.compile:
            self._flux_kernel = torch.compile(flux_from_optical_depth, dynamic=False)
            self._accumulate = torch.compile(accumulate_group, dynamic=False)

    @classmethod
    def from_cache(cls, settings: SimulateSettings, planet: Planet, molecules: Sequence[str],
                   cache_dir: Path) -> EmissionModel:
        xsecs, cias = load_cache(cache_dir, molecules)
        return cls(settings, planet, xsecs, cias)

    def temperature_profiles(self, params: TemperatureParameters) -> torch.Tensor:
        """(B, L + 1) temperatures: the layers top to bottom, then the bottom boundary."""
        guillot = guillot_profile(self.profile_bar, params.irradiation_temperature_K, params.internal_temperature_K,
                                  params.kappa_ir_cm2_g, params.gamma, self.planet.surface_gravity_m_s2,
                                  self.settings.temperature.redistribution_f)
        iso = isothermal_profile(self.profile_bar, params.isothermal_temperature_K)
        return torch.where(params.isothermal[:, None], iso, guillot)

    def emergent_flux(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        """High-resolution planet flux (B, W) [W m^-2 (cm^-1)^-1] on ``self.wavenumber_cm``."""
        n = temperature_K.shape[0]
        if active_vmr.shape != (n, len(self.molecules)):
            raise ValueError(f"active_vmr must be ({n}, {len(self.molecules)}) for {self.molecules}, "
                             f"got {tuple(active_vmr.shape)}")
        size = self.settings.chunk_size
        out = []
        for start in range(0, n, size):
            t, x = temperature_K[start:start + size], active_vmr[start:start + size]
            real = t.shape[0]
            if real < size:  # pad with copies of the last row: same shapes, same numerics for every batch size
                t = torch.cat([t, t[-1:].expand(size - real, -1)])
                x = torch.cat([x, x[-1:].expand(size - real, -1)])
            out.append(self._chunk(t, x)[:real])
        return torch.cat(out)

    def _chunk(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        layer_t = temperature_K[:, :-1]
        comp = free_chemistry(active_vmr, self.opacity.mass_amu, self.settings.he_h2_ratio)
        column = atmosphere.layer_column_density_cm2(self.levels_bar, self.layer_bar, layer_t, comp.mmw_amu,
                                                     self.planet)
        density = atmosphere.number_density_cm3(self.layer_bar, layer_t)
        index, weight, coef, rayleigh_coef = self.opacity.gather_plan(layer_t, column, density, comp.active_vmr,
                                                                      comp.h2_vmr)
        # gases absent from every spectrum of the chunk add nothing: skip their table look-ups (for
        # single-gas datasets that is most of the molecules); eager, as the group count varies by chunk
        present = coef.flatten(1).any(dim=1)
        groups = (self.opacity.rows, index[present], weight[present], coef[present], rayleigh_coef,
                  self.opacity.rayleigh)
        try:
            dtau = layer_optical_depth(*groups, accumulate=self._accumulate)
            return self._flux_kernel(torch.cumsum(dtau, dim=1), temperature_K, self.wavenumber_cm, self.mu,
                                     self.flux_weight)
        except Exception as exc:  # no C++ compiler / unsupported backend: same numbers, just slower
            if self._flux_kernel is flux_from_optical_depth:
                raise
            log.warning("torch.compile failed (%s); falling back to eager kernels (simulate.compile=false)",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._flux_kernel, self._accumulate = flux_from_optical_depth, accumulate_group
            return self._chunk(temperature_K, active_vmr)

    def eclipse_depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        """Fp/Fs (Rp/Rs)^2 on the output grid, (B, n_bins), for given (B, L + 1) temperatures."""
        flux = binning.bin_flux(self.binning, self.emergent_flux(temperature_K, active_vmr))
        return flux / self.star_flux_binned * self.planet.radius_ratio**2

    @torch.no_grad()
    def __call__(self, params: TemperatureParameters, active_vmr: torch.Tensor) -> torch.Tensor:
        """Eclipse depths (B, n_bins) for B temperature-parameter sets and active VMRs (B, M)."""
        return self.eclipse_depth_from_profiles(self.temperature_profiles(params), active_vmr)
