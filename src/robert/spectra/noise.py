"""Error-bar shapes: how the 1-sigma error of a spectrum varies from bin to bin.

Real error bars vary by an order of magnitude across a spectrum (photon noise follows the star's photon
flux and each instrument's throughput; a simulated JWST transit of a WASP-107 b-like planet with NIRISS SOSS,
NIRSpec G395H and MIRI LRS has sigma from ~0.006 % to ~0.08 % across 0.7-11.7 um: pcubillos/pyratbay,
docs/_static/data/sim_obs_wasp107b_transit_jwst.dat, simulated). Training draws each spectrum's shape from
these families (ASSUMPTIONS of the training prior, weights in ``conf/observation/*.yaml``):

* ``white``: the same sigma in every bin (the paper-regime convention, :mod:`robert.spectra.transforms`);
* ``smooth``: log10 sigma a random smooth curve in log wavelength (a few cosine modes with random phases)
  spanning ``amplitude_dex`` decades, drawn uniform in the configured range;
* ``photon``: photon-noise limited, sigma proportional to N^(-1/2) with N the photon count per grid cell of
  a blackbody star (N ~ B_lambda(T) lambda^2 per unit ln lambda), T drawn uniform in ``star_temperature_K``:
  sigma grows to long wavelengths (as lambda on the Rayleigh-Jeans side), from a minimum at the star's photon
  peak (~1.7 um at 3000 K; below the grid for hot stars): across 1-20 um sigma rises ~11x for a 6500 K star and
  ~5x from its minimum for a 3000 K one (tests/test_observation.py).

A shape is relative: :mod:`robert.spectra.observation` scales it so that the median over the observed bins
is ``mean(depth) / snr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from astropy import constants as const
from torch import Tensor

from robert.config_checks import check_number, check_range, check_weights

FAMILIES = ("white", "smooth", "photon")
C2_UM_K = float((const.h * const.c / const.k_B).to("um K").value)  # second radiation constant, um K


@dataclass(frozen=True)
class NoiseShapes:
    """The error-shape prior: family weights and each family's settings (validated)."""

    weights: dict[str, float]
    smooth_amplitude_dex: tuple[float, float] = (0.0, 1.0)
    smooth_modes: int = 3
    star_temperature_K: tuple[float, float] = (3000.0, 6500.0)

    @classmethod
    def from_config(cls, section: Mapping, field: str = "observation.noise") -> NoiseShapes:
        weights = check_weights(section.get("weights"), f"{field}.weights", FAMILIES)
        smooth, photon = section.get("smooth") or {}, section.get("photon") or {}
        modes = int(check_number(smooth.get("modes", 3), f"{field}.smooth.modes", integer=True, minimum=1))
        return cls(weights,
                   check_range(smooth.get("amplitude_dex", (0.0, 1.0)), f"{field}.smooth.amplitude_dex", minimum=0.0),
                   modes,
                   check_range(photon.get("star_temperature_K", (3000.0, 6500.0)),
                               f"{field}.photon.star_temperature_K", minimum=1.0, strictly_above=True))

    @classmethod
    def white_only(cls) -> NoiseShapes:
        return cls({"white": 1.0})

    def sample(self, wavelength_um: Tensor, n: int, generator: torch.Generator) -> Tensor:
        """(n, W) relative sigma shapes on the grid ``wavelength_um`` (W,), each family by its weight."""
        names = list(self.weights)
        probabilities = torch.tensor([self.weights[k] for k in names], dtype=torch.float64)
        family = torch.multinomial(probabilities, n, replacement=True, generator=generator)
        log_lambda = torch.log(wavelength_um.double().cpu())
        shapes = torch.ones(n, len(log_lambda), dtype=torch.float64)
        # every family draws its random numbers for all rows, so a row's shape depends only on its own draws
        smooth = self._smooth(log_lambda, n, generator)
        photon = self._photon(wavelength_um.double().cpu(), n, generator)
        for index, name in enumerate(names):
            rows = family == index
            if name == "smooth":
                shapes[rows] = smooth[rows]
            elif name == "photon":
                shapes[rows] = photon[rows]
        return shapes.float()

    def _smooth(self, log_lambda: Tensor, n: int, generator: torch.Generator) -> Tensor:
        x = (log_lambda - log_lambda[0]) / (log_lambda[-1] - log_lambda[0])  # 0 .. 1 across the grid
        modes = torch.arange(1, self.smooth_modes + 1, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand(n, self.smooth_modes, generator=generator, dtype=torch.float64)
        amplitude = torch.randn(n, self.smooth_modes, generator=generator, dtype=torch.float64) / modes
        curve = (amplitude[:, :, None] * torch.cos(math.pi * modes[None, :, None] * x + phase[:, :, None])).sum(1)
        low, high = curve.min(1, keepdim=True).values, curve.max(1, keepdim=True).values
        unit = (curve - low) / (high - low).clamp(min=1e-12) - 0.5  # spans exactly [-0.5, 0.5]
        lo_dex, hi_dex = self.smooth_amplitude_dex
        dex = lo_dex + (hi_dex - lo_dex) * torch.rand(n, 1, generator=generator, dtype=torch.float64)
        return 10.0 ** (dex * unit)

    def _photon(self, wavelength_um: Tensor, n: int, generator: torch.Generator) -> Tensor:
        low, high = self.star_temperature_K
        temperature = low + (high - low) * torch.rand(n, 1, generator=generator, dtype=torch.float64)
        # photons per unit ln(lambda) of a blackbody: B_lambda * lambda / (hc/lambda) ~ lambda^-3 / (e^x - 1)
        x = C2_UM_K / (wavelength_um[None, :] * temperature)
        photons = wavelength_um[None, :] ** -3 / torch.expm1(x)
        return photons.rsqrt()


__all__ = ["FAMILIES", "NoiseShapes"]
