"""Batched forward models: eclipse depths (``EmissionModel``) or transit depths (``TransmissionModel``).

Both compose the same separable pieces up to the layers' vertical optical depths: profiles ->
chemistry (free, or thermally dissociated layer by layer: ``simulate.chemistry.dissociation``) ->
atmosphere (column densities) -> opacity (gathered cross-sections, CIA, Rayleigh, and the H- continuum
with ``simulate.continuum.h_minus``); they
differ only in the geometry after that: emission (Gauss-Legendre flux, binned planet flux over the
binned stellar blackbody, Fp/Fs (Rp/Rs)^2) or transmission (chord optical depths through the shells,
:mod:`robert.physics.transmission`, binned transit depth). :func:`forward_model` picks one from
``simulate.geometry``. The batch is cut into fixed-size chunks (the last one padded), so every
spectrum goes through the same tensor shapes whatever the batch size: results are independent of
batch size and ``torch.compile`` never recompiles. The same code runs on CPU and GPU (``simulate.device``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

import numpy as np
import torch

from robert.opacity.cia import CiaTable
from robert.opacity.xsec_hdf5 import CrossSectionTable
from robert.physics import atmosphere, binning
from robert.physics.chemistry import (
    Composition,
    dissociated_chemistry,
    dissociated_hydrogen,
    dissociation_fits,
    free_chemistry,
)
from robert.physics.clouds import NO_CLOUD_BAR
from robert.physics.config import SimulateSettings
from robert.physics.emission import flux_from_optical_depth, gauss_legendre_mu, planck_wavenumber
from robert.physics.h_minus import (
    K_B_CGS,
    HMinusContinuum,
    continuum_optical_depth,
    electron_density_cm3,
    h_minus_coefficients,
    saha_h_minus_cm2_dyn,
)
from robert.physics.opacity import (
    SIGMA_UNIT_CM2,
    LayerOpacity,
    accumulate_group,
    layer_optical_depth,
    load_cache,
)
from robert.physics.planet import Planet, planet_from_config
from robert.physics.priors import TemperatureParameters
from robert.physics.profiles import guillot_profile, isothermal_profile
from robert.physics.transmission import planet_terms, transit_depth_from_optical_depth, transit_geometry

log = logging.getLogger(__name__)


class ForwardModel:
    """What both geometries share: grids, opacity, profiles, chunking, the layers' vertical optical depths."""

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
        self.wavenumber_grid_cm = nu  # float64 numpy copy of the internal grid
        self.profile_bar = torch.cat([self.layer_bar, self.levels_bar[-1:]])  # layers + bottom boundary
        self.binning = binning.to_sparse(binning.binning_matrix(nu, edges_um, settings.binning), device, dtype)
        self.log10_layer_bar = torch.log10(self.layer_bar)
        self.dissociation_fits = dissociation_fits(self.molecules)
        # the hot loops are fused C++/Triton kernels; chunk shapes are fixed, so each compiles once
        self._eager: dict[str, Callable[..., torch.Tensor]] = {"accumulate": accumulate_group}
        self._kernels: dict[str, Callable[..., torch.Tensor]] = {}
        self.h_minus = HMinusContinuum(nu, SIGMA_UNIT_CM2, device, dtype) if settings.h_minus else None
        if self.h_minus is not None:
            # the electron Saha solve is ~100 small (B, L) ops: fused it costs little next to the (B, L, W) work
            self._eager.update(h_minus_coefficients=h_minus_coefficients, continuum=continuum_optical_depth)
        self._set_planet_terms()

    def for_planet(self, planet: Planet) -> Self:
        """This model for another planet: the opacity table, grids and compiled kernels (none of which depends on
        the planet) are shared, not rebuilt; building the table takes seconds per planet."""
        other = copy.copy(self)
        other.planet = planet
        other._set_planet_terms()
        return other

    def _set_planet_terms(self) -> None:
        """What depends on ``self.planet`` beyond the per-spectrum arithmetic (subclasses; set at construction and
        by ``for_planet``)."""

    def _compile_kernels(self) -> None:
        """Subclasses add their kernels to ``_eager`` first; compiled copies when ``simulate.compile``."""
        self._kernels = {name: torch.compile(fn, dynamic=False) if self.settings.compile else fn
                         for name, fn in self._eager.items()}

    @classmethod
    def from_cache(cls, settings: SimulateSettings, planet: Planet, molecules: Sequence[str],
                   cache_dir: Path) -> Self:
        xsecs, cias = load_cache(cache_dir, molecules)
        return cls(settings, planet, xsecs, cias)

    def temperature_profiles(self, params: TemperatureParameters) -> torch.Tensor:
        """(B, L + 1) temperatures: the layers top to bottom, then the bottom boundary."""
        guillot = guillot_profile(self.profile_bar, params.irradiation_temperature_K, params.internal_temperature_K,
                                  params.kappa_ir_cm2_g, params.gamma, self.planet.surface_gravity_m_s2,
                                  self.settings.temperature.redistribution_f)
        iso = isothermal_profile(self.profile_bar, params.isothermal_temperature_K)
        return torch.where(params.isothermal[:, None], iso, guillot)

    def _check_vmr(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> None:
        n = temperature_K.shape[0]
        if active_vmr.shape != (n, len(self.molecules)):
            raise ValueError(f"active_vmr must be ({n}, {len(self.molecules)}) for {self.molecules}, "
                             f"got {tuple(active_vmr.shape)}")

    def _chunked(self, chunk: Callable[..., torch.Tensor], *per_spectrum: torch.Tensor) -> torch.Tensor:
        """``chunk`` over fixed-size slices of the per-spectrum tensors (rows), concatenated."""
        size, n = self.settings.chunk_size, per_spectrum[0].shape[0]
        out = []
        for start in range(0, n, size):
            parts = [a[start:start + size] for a in per_spectrum]
            real = parts[0].shape[0]
            if real < size:  # pad with copies of the last row: same shapes, same numerics for every batch size
                parts = [torch.cat([a, a[-1:].expand(size - real, *a.shape[1:])]) for a in parts]
            out.append(self._with_fallback(chunk, *parts)[:real])
        return torch.cat(out)

    def _with_fallback(self, chunk: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
        try:
            return chunk(*args)
        except Exception as exc:  # no C++ compiler / unsupported backend: same numbers, just slower
            if self._kernels == self._eager:
                raise
            log.warning("torch.compile failed (%s); falling back to eager kernels (simulate.compile=false)",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._kernels = dict(self._eager)
            return chunk(*args)

    def composition(self, layer_temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> Composition:
        """Free chemistry, or per layer (B, L) with ``simulate.chemistry.dissociation`` (deep VMRs as sampled)."""
        if self.settings.dissociation:
            return dissociated_chemistry(active_vmr, self.opacity.mass_amu, self.settings.he_h2_ratio,
                                         self.dissociation_fits, layer_temperature_K, self.log10_layer_bar)
        return free_chemistry(active_vmr, self.opacity.mass_amu, self.settings.he_h2_ratio)

    def hydrogen_vmr(self, layer_temperature_K: torch.Tensor, active_vmr: torch.Tensor, comp: Composition
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Atomic H and all H nuclei per particle, (B, L) each: the H- continuum's hydrogen.

        With dissociation off the molecules and the mean molecular weight stay undissociated, but H- still
        takes its atomic H from the same H2 dissociation fit (there is no H- without atomic H).
        """
        if comp.h_vmr is not None:
            return comp.h_vmr, 2.0 * comp.h2_vmr + comp.h_vmr
        filler = torch.clamp(1.0 - active_vmr.sum(-1, keepdim=True), min=0.0)
        h2, h = dissociated_hydrogen(filler, 0.0, self.settings.he_h2_ratio, layer_temperature_K,
                                     self.log10_layer_bar)
        return h, 2.0 * h2 + h

    @torch.no_grad()
    def layer_mixing_ratios(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's volume mixing ratios per layer, (B, L) each, for (B, L + 1) temperatures and deep VMRs.

        The active gases, H2, He and, with dissociation or H-, atomic H; with H- also e- and H-. For
        inspection and validation (TauREx is handed these); the forward model does not call it.
        """
        t = temperature_K[:, :-1]
        comp = self.composition(t, active_vmr)
        per_layer = lambda x: x if x.dim() == 2 else x[:, None].expand_as(t)  # noqa: E731
        out = {m: per_layer(comp.active_vmr[:, i]) for i, m in enumerate(self.molecules)}
        out.update(H2=per_layer(comp.h2_vmr), He=per_layer(comp.he_vmr))
        if comp.h_vmr is not None:
            out["H"] = comp.h_vmr
        if self.h_minus is not None:
            h, nuclei = self.hydrogen_vmr(t, active_vmr, comp)
            density = atmosphere.number_density_cm3(self.layer_bar, t).double()
            electrons = electron_density_cm3(t, density, h, nuclei)
            pressure = electrons * K_B_CGS * t.double()
            out.update({"H": h, "e-": (electrons / density).to(t.dtype),
                        "H-": (h * pressure * saha_h_minus_cm2_dyn(t.double())).to(t.dtype)})
        return out

    def layer_optical_depth(self, layer_temperature_K: torch.Tensor, active_vmr: torch.Tensor
                            ) -> tuple[torch.Tensor, Composition]:
        """Vertical optical depth of every layer (B, L, W) and the composition, for (B, L) layer temperatures."""
        comp = self.composition(layer_temperature_K, active_vmr)
        column = atmosphere.layer_column_density_cm2(self.levels_bar, self.layer_bar, layer_temperature_K,
                                                     comp.mmw_amu, self.planet)
        density = atmosphere.number_density_cm3(self.layer_bar, layer_temperature_K)
        index, weight, coef, rayleigh_coef = self.opacity.gather_plan(layer_temperature_K, column, density,
                                                                      comp.active_vmr, comp.h2_vmr)
        # gases absent from every spectrum of the chunk add nothing: skip their table look-ups (for
        # single-gas datasets that is most of the molecules); eager, as the group count varies by chunk
        present = coef.flatten(1).any(dim=1)
        start = None
        if self.h_minus is not None:
            h, nuclei = self.hydrogen_vmr(layer_temperature_K, active_vmr, comp)
            ff, bf = self.h_minus.coefficients(layer_temperature_K, self.layer_bar, column, h, nuclei,
                                               kernel=self._kernels["h_minus_coefficients"])
            # a chunk whose layers all lack free electrons (a cool planet) keeps the Rayleigh-only start: its
            # coefficients are exactly 0, so the result does not depend on the chunk's other spectra
            if bool(bf.any() | ff.any()):
                start = self.h_minus.start(rayleigh_coef, self.opacity.rayleigh, ff, bf, layer_temperature_K,
                                           kernel=self._kernels["continuum"])
        dtau = layer_optical_depth(self.opacity.rows, index[present], weight[present], coef[present], rayleigh_coef,
                                   self.opacity.rayleigh, accumulate=self._kernels["accumulate"], start=start)
        return dtau, comp

    def depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor,
                            cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        """The geometry's spectrum on the output grid, (B, n_bins), for (B, L + 1) temperatures."""
        raise NotImplementedError


class EmissionModel(ForwardModel):
    """Batched emission forward model of one planet for a fixed set of active molecules."""

    def __init__(self, settings: SimulateSettings, planet: Planet, xsecs: Sequence[CrossSectionTable],
                 cias: Sequence[CiaTable]):
        super().__init__(settings, planet, xsecs, cias)
        as_t = lambda a: torch.as_tensor(a, device=settings.device, dtype=settings.dtype)  # noqa: E731
        mu, w = gauss_legendre_mu(settings.n_angles)
        self.mu, self.flux_weight = as_t(mu), as_t(2 * w * mu)
        # the radiative transfer (exponentials over layers x wavenumbers x angles) is the hot loop
        self._eager["flux"] = flux_from_optical_depth
        self._compile_kernels()

    def _set_planet_terms(self) -> None:
        star_flux = np.pi * planck_wavenumber(torch.as_tensor(self.wavenumber_grid_cm),
                                              torch.tensor([self.planet.star.temperature_K]))
        self.star_flux_binned = binning.bin_flux(self.binning, star_flux.to(self.settings.device,
                                                                            self.settings.dtype))[0]

    def emergent_flux(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        """High-resolution planet flux (B, W) [W m^-2 (cm^-1)^-1] on ``self.wavenumber_cm``."""
        self._check_vmr(temperature_K, active_vmr)
        return self._chunked(self._chunk, temperature_K, active_vmr)

    def _chunk(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        dtau, _ = self.layer_optical_depth(temperature_K[:, :-1], active_vmr)
        return self._kernels["flux"](torch.cumsum(dtau, dim=1), temperature_K, self.wavenumber_cm, self.mu,
                                     self.flux_weight)

    def eclipse_depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor) -> torch.Tensor:
        """Fp/Fs (Rp/Rs)^2 on the output grid, (B, n_bins), for given (B, L + 1) temperatures."""
        flux = binning.bin_flux(self.binning, self.emergent_flux(temperature_K, active_vmr))
        return flux / self.star_flux_binned * self.planet.radius_ratio**2

    def depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor,
                            cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        if cloud_top_bar is not None and bool(torch.isfinite(cloud_top_bar).any()):
            raise ValueError("cloud decks are modelled in transmission only (simulate.geometry=transmission)")
        return self.eclipse_depth_from_profiles(temperature_K, active_vmr)

    @torch.no_grad()
    def __call__(self, params: TemperatureParameters, active_vmr: torch.Tensor) -> torch.Tensor:
        """Eclipse depths (B, n_bins) for B temperature-parameter sets and active VMRs (B, M)."""
        return self.eclipse_depth_from_profiles(self.temperature_profiles(params), active_vmr)


class TransmissionModel(ForwardModel):
    """Batched transmission forward model: the same atmosphere and opacities as :class:`EmissionModel`, in transit.

    The high-resolution transit depth is binned like the emergent flux (an average over each bin): the
    stellar flux that would weight it varies by well under 1 % across an R ~ 300 bin.
    """

    def __init__(self, settings: SimulateSettings, planet: Planet, xsecs: Sequence[CrossSectionTable],
                 cias: Sequence[CiaTable]):
        super().__init__(settings, planet, xsecs, cias)
        # the chord optical depths and exponentials over rays x wavenumbers are the hot loop; the geometry
        # is small (B x L x L) but ~30 ops, which one fused kernel runs ~10x faster
        self._eager["transit"] = transit_depth_from_optical_depth
        self._eager["geometry"] = transit_geometry
        self._compile_kernels()

    def _set_planet_terms(self) -> None:
        self.planet_terms = planet_terms(self.planet, self.settings.device)

    def no_clouds(self, n_spectra: int) -> torch.Tensor:
        return torch.full((n_spectra,), NO_CLOUD_BAR, device=self.settings.device, dtype=torch.float64)

    def transit_depth_high_res(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor,
                               cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        """(B, W) transit depth (R/Rs)^2 on ``self.wavenumber_cm``; ``cloud_top_bar`` (B,), +inf = no deck."""
        self._check_vmr(temperature_K, active_vmr)
        if cloud_top_bar is None:
            cloud_top_bar = self.no_clouds(temperature_K.shape[0])
        if cloud_top_bar.shape != (temperature_K.shape[0],):
            raise ValueError(f"cloud_top_bar must be ({temperature_K.shape[0]},), got {tuple(cloud_top_bar.shape)}")
        return self._chunked(self._chunk, temperature_K, active_vmr, cloud_top_bar.to(torch.float64))

    def _chunk(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor, cloud_top_bar: torch.Tensor
               ) -> torch.Tensor:
        layer_t = temperature_K[:, :-1]
        dtau, comp = self.layer_optical_depth(layer_t, active_vmr)
        geometry = self._kernels["geometry"](self.levels_bar, self.layer_bar, layer_t, comp.mmw_amu, cloud_top_bar,
                                             *self.planet_terms)
        airmass, annulus, blocked = (g.to(self.settings.dtype) for g in geometry)
        return self._kernels["transit"](dtau, airmass, annulus, blocked)

    def transit_depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor,
                                    cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        """(R/Rs)^2 on the output grid, (B, n_bins), for given (B, L + 1) temperatures."""
        return binning.bin_flux(self.binning, self.transit_depth_high_res(temperature_K, active_vmr, cloud_top_bar))

    def depth_from_profiles(self, temperature_K: torch.Tensor, active_vmr: torch.Tensor,
                            cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        return self.transit_depth_from_profiles(temperature_K, active_vmr, cloud_top_bar)

    @torch.no_grad()
    def __call__(self, params: TemperatureParameters, active_vmr: torch.Tensor,
                 cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
        """Transit depths (B, n_bins) for B temperature-parameter sets, active VMRs (B, M) and deck tops (B,)."""
        return self.transit_depth_from_profiles(self.temperature_profiles(params), active_vmr, cloud_top_bar)


GEOMETRY_MODELS: dict[str, type[ForwardModel]] = {"emission": EmissionModel, "transmission": TransmissionModel}


def forward_model(settings: SimulateSettings, planet: Planet, molecules: Sequence[str],
                  cache_dir: Path) -> ForwardModel:
    """The model of ``settings.geometry`` (validated by :class:`SimulateSettings`) over the cached opacities."""
    return GEOMETRY_MODELS[settings.geometry].from_cache(settings, planet, molecules, cache_dir)


def forward_model_from_config(cfg: Mapping, molecules: Sequence[str], cache_dir: Path) -> ForwardModel:
    """:func:`forward_model` from a composed ``generate``-style config (its ``simulate`` and one ``planet``).

    The model keeps what it was built from: ``model.settings`` and ``model.planet``.
    """
    planet = planet_from_config(cfg["planet"], where="planet")
    return forward_model(SimulateSettings.from_config(cfg["simulate"]), planet, molecules, cache_dir)
