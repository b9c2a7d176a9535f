"""Transmission geometry: chord optical depths through the spherical shells, and the transit depth.

Shells are the model's layers between the hydrostatic level radii r_0 (top) > ... > r_L = Rp
(:mod:`robert.physics.atmosphere`, the same solution the emission model's column densities use).
One ray per layer, its impact parameter b_j at the radius of the layer's own pressure (the geometric
mean of its levels). The chord through layer k has length
    ds_jk = 2 [sqrt(r_k^2 - b_j^2) - sqrt(r_(k+1)^2 - b_j^2)]   (each root clamped at 0),
so layers below the ray are not crossed. Each layer's gas is spread evenly over its thickness
dz_k = r_k - r_(k+1), so the ray's optical depth is tau_j = sum_k A_jk dtau_k with the air-mass matrix
A_jk = ds_jk / dz_k and dtau_k the layer's VERTICAL optical depth, computed exactly as for emission
(same column densities, same opacities): the two geometries share everything up to dtau.

Transit depth (Rp^2 + 2 int (1 - e^(-tau(b))) b db) / Rs^2: over layer j's annulus 2 int b db =
r_j^2 - r_(j+1)^2 exactly, with tau(b) = tau_j across it (midpoint rule in ln P). A cloud deck at
radius r_c blocks every ray below it: r_c^2 takes the place of Rp^2 and the annuli are clipped at r_c.

The geometry is computed in float64 with r^2 - b^2 = (z_r - z_b)(2 Rp + z_r + z_b) from altitudes z
above Rp: r is ~1e8 m while a layer is ~1e4 m thick, which float32 r^2 would not resolve.
Hand-written for the reason given in :mod:`robert.physics`: batched torch on our own cache.
"""

from __future__ import annotations

import torch

from robert.physics import atmosphere
from robert.physics.clouds import deck_inverse_radius
from robert.physics.planet import Planet


def altitude_m(inverse_radius: torch.Tensor, radius_m: float | torch.Tensor) -> torch.Tensor:
    """Altitude above Rp [m] from 1/r; an unbound atmosphere (1/r <= 0, absurd priors only) is capped at 1000 Rp."""
    return 1.0 / torch.clamp(inverse_radius, min=1e-3 / radius_m) - radius_m


def chord_airmass(level_altitude_m: torch.Tensor, ray_altitude_m: torch.Tensor,
                  radius_m: float | torch.Tensor) -> torch.Tensor:
    """A_jk = ds_jk / dz_k, (B, L, L): rays j (B, L altitudes) through layers k between levels (B, L + 1), top first."""
    level = level_altitude_m[:, None, :]
    ray = ray_altitude_m[:, :, None]
    half_chord = torch.sqrt(torch.clamp((level - ray) * (2 * radius_m + level + ray), min=0.0))  # (B, L, L + 1)
    path = 2.0 * (half_chord[..., :-1] - half_chord[..., 1:])
    thickness = level_altitude_m[:, :-1] - level_altitude_m[:, 1:]
    return path / thickness[:, None, :]


def annulus_areas_m2(level_altitude_m: torch.Tensor, floor_altitude_m: torch.Tensor,
                     radius_m: float | torch.Tensor) -> torch.Tensor:
    """r_top^2 - r_bottom^2 of each layer's annulus above the floor (the deck, or Rp), (B, L); pi omitted."""
    floor = floor_altitude_m[:, None]
    top = torch.maximum(level_altitude_m[:, :-1], floor)
    bottom = torch.maximum(level_altitude_m[:, 1:], floor)
    return (top - bottom) * (2 * radius_m + top + bottom)


def planet_terms(planet: Planet, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rp [m], Rs [m] and Mp [kg] as 0-d float64 tensors: :func:`transit_geometry`'s planet arguments."""
    return tuple(torch.tensor(v, dtype=torch.float64, device=device)
                 for v in (planet.radius_m, planet.star.radius_m, planet.mass_kg))


def transit_geometry(levels_bar: torch.Tensor, layer_bar: torch.Tensor, temperature_K: torch.Tensor,
                     mmw_amu: torch.Tensor, cloud_top_bar: torch.Tensor, radius_m: torch.Tensor,
                     star_radius_m: torch.Tensor, mass_kg: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Air-mass matrix (B, L, L), annulus areas / Rs^2 (B, L) and the blocked disc / Rs^2 (B,), all float64.

    ``temperature_K`` (B, L) per layer, ``mmw_amu`` (B,), ``cloud_top_bar`` (B,) (+inf: no deck); the planet's
    radius, its star's and its mass as 0-d float64 tensors (:func:`planet_terms`): compiled, the kernel then
    takes them as inputs, not as constants, so one graph serves every planet.
    """
    f64 = torch.float64
    levels, layers, t, mmw = levels_bar.to(f64), layer_bar.to(f64), temperature_K.to(f64), mmw_amu.to(f64)
    level_inv_r = atmosphere.inverse_radius_at_pressures(levels, levels, t, mmw, radius_m, mass_kg)
    ray_inv_r = atmosphere.inverse_radius_at_pressures(layers, levels, t, mmw, radius_m, mass_kg)
    level_z, ray_z = altitude_m(level_inv_r, radius_m), altitude_m(ray_inv_r, radius_m)
    deck_z = altitude_m(deck_inverse_radius(cloud_top_bar, levels, level_inv_r), radius_m).clamp(min=0.0)
    star_area = star_radius_m**2
    blocked = (radius_m + deck_z) ** 2 / star_area
    return (chord_airmass(level_z, ray_z, radius_m),
            annulus_areas_m2(level_z, deck_z, radius_m) / star_area, blocked)


def transit_depth_from_optical_depth(dtau: torch.Tensor, airmass: torch.Tensor, annulus: torch.Tensor,
                                     blocked: torch.Tensor) -> torch.Tensor:
    """(R^2 blocked + sum_j annulus_j (1 - e^(-tau_j))) / Rs^2, (B, W), from vertical layer depths (B, L, W).

    ``annulus`` and ``blocked`` already divided by Rs^2 (see :func:`transit_geometry`), in dtau's dtype.
    """
    tau = torch.bmm(airmass, dtau)  # chord optical depth of every ray
    return blocked[:, None] + (annulus[:, :, None] * -torch.expm1(-tau)).sum(1)
