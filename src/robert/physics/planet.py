"""Planet and host star from ``conf/planet/<name>.yaml``, in SI units.

Lengths in metres, masses in kilograms, temperatures in kelvin. The yaml carries its units in the
key names (``radius_rjup`` or ``radius_rearth``, ``mass_mjup`` or ``mass_mearth``, ``radius_rsun``,
``semi_major_axis_AU``); conversion uses astropy's IAU nominal constants, once, to plain floats.
A user adds a planet by adding a yaml file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy import constants as const
from astropy import units as u
from omegaconf import OmegaConf

from robert.errors import UserError
from robert.physics.config import CONF_DIR

G_SI = float(const.G.si.value)
_LENGTH_M = {"rjup": float(u.R_jup.to(u.m)), "rearth": float(u.R_earth.to(u.m)), "rsun": float(u.R_sun.to(u.m))}
_MASS_KG = {"mjup": float(u.M_jup.to(u.kg)), "mearth": float(u.M_earth.to(u.kg))}
AU_M = float(u.AU.to(u.m))


@dataclass(frozen=True)
class Star:
    radius_m: float
    temperature_K: float


@dataclass(frozen=True)
class Planet:
    name: str
    radius_m: float  # at the bottom boundary of the model atmosphere (pressure_bottom_bar)
    mass_kg: float
    equilibrium_temperature_K: float
    semi_major_axis_m: float
    star: Star

    @property
    def surface_gravity_m_s2(self) -> float:
        return G_SI * self.mass_kg / self.radius_m**2

    @property
    def radius_ratio(self) -> float:
        """Rp / Rs."""
        return self.radius_m / self.star.radius_m


def _one_of(cfg: Mapping[str, Any], where: str, stem: str, table: dict[str, float]) -> float:
    keys = [f"{stem}_{unit}" for unit in table if f"{stem}_{unit}" in cfg]
    if len(keys) != 1:
        allowed = " or ".join(f"{stem}_{unit}" for unit in table)
        raise UserError(f"{where}: give exactly one of {allowed}, found {keys or 'none'}")
    value = cfg[keys[0]]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(f"{where}.{keys[0]} must be a positive number, got {value!r}")
    return float(value) * table[keys[0].rsplit("_", 1)[1]]


def _positive(cfg: Mapping[str, Any], where: str, key: str) -> float:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(f"{where}.{key} must be a positive number, got {value!r}")
    return float(value)


def planet_from_config(cfg: Mapping[str, Any], where: str = "planet") -> Planet:
    """Build a :class:`Planet` from a planet config node (see ``conf/planet/hd209458b.yaml``)."""
    if not isinstance(cfg, Mapping):
        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    star_cfg = cfg.get("star")
    if not isinstance(star_cfg, Mapping):
        raise UserError(f"{where}.star must be a mapping with radius_rsun and temperature_K")
    star = Star(radius_m=_one_of(star_cfg, f"{where}.star", "radius", {"rsun": _LENGTH_M["rsun"]}),
                temperature_K=_positive(star_cfg, f"{where}.star", "temperature_K"))
    return Planet(name=str(cfg.get("name", where)),
                  radius_m=_one_of(cfg, where, "radius", {k: _LENGTH_M[k] for k in ("rjup", "rearth")}),
                  mass_kg=_one_of(cfg, where, "mass", _MASS_KG),
                  equilibrium_temperature_K=_positive(cfg, where, "equilibrium_temperature_K"),
                  semi_major_axis_m=_positive(cfg, where, "semi_major_axis_AU") * AU_M, star=star)


def available_planets(conf_dir: Path = CONF_DIR) -> list[str]:
    """Planet config names; selections of several planets (``keys:``, e.g. ``all.yaml``) are not planets."""
    return sorted(p.stem for p in (conf_dir / "planet").glob("*.yaml") if "keys" not in OmegaConf.load(p))


def load_planet(name: str, conf_dir: Path = CONF_DIR) -> Planet:
    """The planet of ``conf/planet/<name>.yaml``; unknown names list the available files."""
    path = conf_dir / "planet" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown planet {name!r} (no conf/planet/{name}.yaml); "
                        f"expected one of: {', '.join(available_planets(conf_dir))}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return planet_from_config(cfg, where=f"planet {name}")  # type: ignore[arg-type]


def zero_albedo_equilibrium_temperature_K(planet: Planet) -> float:
    """Teq = Teff sqrt(Rs / 2a) (zero albedo, full redistribution): a check on the yaml's Teq."""
    return planet.star.temperature_K * math.sqrt(planet.star.radius_m / (2 * planet.semi_major_axis_m))
