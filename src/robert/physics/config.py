"""Validated settings of the forward model, read from ``conf/simulate/*.yaml``.

Every user mistake (bad count, inverted range, unknown choice) raises :class:`UserError` naming the
config field (``simulate.<field>``) and what is allowed. Configs are OmegaConf nodes or plain mappings.
``geometry`` and ``clouds`` are optional: absent means emission without clouds, so the emission
configs (and the hashes of the datasets made from them) stay as they were before transmission existed.
Likewise ``chemistry.dissociation`` and ``continuum.h_minus``: absent means off (the spectra of before
they existed); ``conf/simulate/default.yaml`` switches both on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robert.errors import UserError, choice_error

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise UserError(f"simulate.{dotted} is missing from the simulate config")
        node = node[key]
    return node


def positive_int(cfg: Mapping[str, Any], field: str) -> int:
    value = _get(cfg, field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"simulate.{field} must be a positive integer, got {value!r}")
    return value


def positive_float(cfg: Mapping[str, Any], field: str) -> float:
    value = _get(cfg, field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(f"simulate.{field} must be a positive number, got {value!r}")
    return float(value)


def value_range(cfg: Mapping[str, Any], field: str) -> tuple[float, float]:
    """A ``[low, high]`` pair with low <= high (equal values fix the parameter)."""
    value = _get(cfg, field)
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not ok:
        raise UserError(f"simulate.{field} must be a [low, high] pair of numbers, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise UserError(f"simulate.{field} is inverted ({low} > {high}); expected [low, high] with low <= high")
    return low, high


def optional_flag(cfg: Mapping[str, Any], section: str, key: str) -> bool:
    """``simulate.<section>.<key>``: true or false, absent = false; a misspelt key is an error, not 'off'."""
    node = cfg.get(section)
    if node is None:
        return False
    if not isinstance(node, Mapping):
        raise UserError(f"simulate.{section} must be a mapping (e.g. {section}: {{{key}: true}}), got {node!r}")
    unknown = sorted(set(node) - {key})
    if unknown:
        raise UserError(f"simulate.{section} has unknown key(s) {', '.join(map(str, unknown))}; expected: {key}")
    value = node.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"simulate.{section}.{key} must be true or false, got {value!r}")
    return value


def choice(cfg: Mapping[str, Any], field: str, allowed: Sequence[str]) -> str:
    value = _get(cfg, field)
    if value not in allowed:
        raise UserError(f"simulate.{field} is {value!r}; expected one of: {', '.join(allowed)}")
    return str(value)


@dataclass(frozen=True)
class TemperaturePrior:
    isothermal_fraction: float
    isothermal_scale: tuple[float, float]
    redistribution_f: float
    irradiation_scale: tuple[float, float]
    log10_kappa_ir_cm2_g: tuple[float, float]
    log10_gamma: tuple[float, float]
    internal_temperature_K: tuple[float, float]


GEOMETRIES = ("emission", "transmission")


@dataclass(frozen=True)
class CloudPrior:
    """Grey cloud deck (transmission): a share of spectra gets an opaque deck, its top pressure log-uniform."""

    cloudy_fraction: float
    log10_top_pressure_bar: tuple[float, float]


NO_CLOUDS = CloudPrior(cloudy_fraction=0.0, log10_top_pressure_bar=(0.0, 0.0))


@dataclass(frozen=True)
class SimulateSettings:
    """The typed form of ``conf/simulate/default.yaml`` (see the comments there)."""

    n_layers: int
    pressure_top_bar: float
    pressure_bottom_bar: float
    n_angles: int
    he_h2_ratio: float
    log10_vmr_range: tuple[float, float]
    temperature: TemperaturePrior
    wavelength_min_um: float
    wavelength_max_um: float
    n_bins: int
    binning: str
    spectral_stride: int
    chunk_size: int
    compile: bool
    device: torch.device
    dtype: torch.dtype
    geometry: str = "emission"
    clouds: CloudPrior = NO_CLOUDS
    dissociation: bool = False  # chemistry.dissociation: Parmentier et al. 2018 (robert.physics.dissociation)
    h_minus: bool = False       # continuum.h_minus: John 1988 (robert.physics.h_minus)
    # mixing_ratio.log10_max: a lower top of the log-uniform range for named gases (an element's budget)
    log10_vmr_max: Mapping[str, float] = field(default_factory=dict)

    def vmr_range_of(self, molecule: str) -> tuple[float, float]:
        """The log10 VMR range ``molecule`` is drawn from: the common range, its top lowered where capped."""
        low, high = self.log10_vmr_range
        return low, min(high, self.log10_vmr_max.get(molecule, high))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | DictConfig) -> SimulateSettings:
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
        n_layers = positive_int(cfg, "n_layers")
        if n_layers < 2:
            raise UserError(f"simulate.n_layers must be at least 2, got {n_layers}")
        top, bottom = positive_float(cfg, "pressure_top_bar"), positive_float(cfg, "pressure_bottom_bar")
        if top >= bottom:
            raise UserError(f"simulate.pressure_top_bar ({top}) must be below "
                            f"simulate.pressure_bottom_bar ({bottom})")
        he = _get(cfg, "he_h2_ratio")
        if not isinstance(he, int | float) or he < 0:
            raise UserError(f"simulate.he_h2_ratio must be a number >= 0, got {he!r}")
        vmr = value_range(cfg, "mixing_ratio.log10_range")
        if vmr[1] >= 0:
            raise UserError(f"simulate.mixing_ratio.log10_range must lie below 0 (VMR < 1), got {list(vmr)}")
        caps = _vmr_caps(cfg, vmr)
        frac = _get(cfg, "temperature.isothermal_fraction")
        if not isinstance(frac, int | float) or not 0 <= frac <= 1:
            raise UserError(f"simulate.temperature.isothermal_fraction must be in [0, 1], got {frac!r}")
        temperature = TemperaturePrior(
            isothermal_fraction=float(frac),
            isothermal_scale=_positive_range(cfg, "temperature.isothermal_scale"),
            redistribution_f=positive_float(cfg, "temperature.redistribution_f"),
            irradiation_scale=_positive_range(cfg, "temperature.irradiation_scale"),
            log10_kappa_ir_cm2_g=value_range(cfg, "temperature.log10_kappa_ir_cm2_g"),
            log10_gamma=value_range(cfg, "temperature.log10_gamma"),
            internal_temperature_K=_positive_range(cfg, "temperature.internal_temperature_K"),
        )
        wl_min = positive_float(cfg, "output.wavelength_min_um")
        wl_max = positive_float(cfg, "output.wavelength_max_um")
        if wl_min >= wl_max:
            raise UserError(f"simulate.output.wavelength_min_um ({wl_min}) must be below "
                            f"simulate.output.wavelength_max_um ({wl_max})")
        compile_flag = _get(cfg, "compile")
        if not isinstance(compile_flag, bool):
            raise UserError(f"simulate.compile must be true or false, got {compile_flag!r}")
        try:
            device = torch.device(str(_get(cfg, "device")))
        except RuntimeError:
            raise UserError(f"simulate.device {_get(cfg, 'device')!r} is not a torch device "
                            "(cpu, cuda, cuda:0 ...)") from None
        dtype = {"float32": torch.float32, "float64": torch.float64}[choice(cfg, "dtype", ("float32", "float64"))]
        geometry = choice(cfg, "geometry", GEOMETRIES) if "geometry" in cfg else "emission"
        clouds = _cloud_prior(cfg, geometry, top, bottom) if "clouds" in cfg else NO_CLOUDS
        return cls(n_layers=n_layers, pressure_top_bar=top, pressure_bottom_bar=bottom,
                   n_angles=positive_int(cfg, "n_angles"), he_h2_ratio=float(he), log10_vmr_range=vmr,
                   temperature=temperature, wavelength_min_um=wl_min, wavelength_max_um=wl_max,
                   n_bins=positive_int(cfg, "output.n_bins"),
                   binning=choice(cfg, "output.binning", ("wavenumber", "wavelength")),
                   spectral_stride=positive_int(cfg, "spectral_stride"), chunk_size=positive_int(cfg, "chunk_size"),
                   compile=compile_flag, device=device, dtype=dtype, geometry=geometry, clouds=clouds,
                   dissociation=optional_flag(cfg, "chemistry", "dissociation"),
                   h_minus=optional_flag(cfg, "continuum", "h_minus"), log10_vmr_max=caps)


def _vmr_caps(cfg: Mapping[str, Any], vmr: tuple[float, float]) -> dict[str, float]:
    """``simulate.mixing_ratio.log10_max`` (absent or null: none): molecule -> a number above the range's floor."""
    caps = cfg["mixing_ratio"].get("log10_max") or {}
    if not isinstance(caps, Mapping):
        raise UserError(f"simulate.mixing_ratio.log10_max must map molecules to log10 VMRs (e.g. {{TiO: -5.3}}), "
                        f"got {caps!r}")
    known = {path.stem for path in (CONF_DIR / "molecules").glob("*.yaml") if path.stem != "default"}
    for molecule, cap in caps.items():
        if molecule not in known:  # a misspelt name would otherwise leave its gas uncapped without a word
            raise choice_error("molecule (simulate.mixing_ratio.log10_max, conf/molecules/)", molecule, known)
        if isinstance(cap, bool) or not isinstance(cap, int | float) or not vmr[0] < cap:
            raise UserError(f"simulate.mixing_ratio.log10_max.{molecule} must be a number above the range's floor "
                            f"{vmr[0]:g} (simulate.mixing_ratio.log10_range), got {cap!r}")
    return {str(m): float(c) for m, c in caps.items()}


def _cloud_prior(cfg: Mapping[str, Any], geometry: str, top_bar: float, bottom_bar: float) -> CloudPrior:
    fraction = _get(cfg, "clouds.cloudy_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise UserError(f"simulate.clouds.cloudy_fraction must be in [0, 1], got {fraction!r}")
    if fraction > 0 and geometry != "transmission":
        raise UserError(f"simulate.clouds.cloudy_fraction is {fraction} but grey cloud decks are modelled in "
                        "transmission only: set simulate.geometry=transmission or simulate.clouds.cloudy_fraction=0")
    low, high = value_range(cfg, "clouds.log10_top_pressure_bar")
    # a deck above the model's top or below Rp (the bottom level) would mean nothing
    if fraction > 0 and not math.log10(top_bar) <= low <= high <= math.log10(bottom_bar):
        raise UserError(f"simulate.clouds.log10_top_pressure_bar [{low}, {high}] must lie inside the model "
                        f"atmosphere [{math.log10(top_bar):g}, {math.log10(bottom_bar):g}] (log10 bar)")
    return CloudPrior(cloudy_fraction=float(fraction), log10_top_pressure_bar=(low, high))


def _positive_range(cfg: Mapping[str, Any], field: str) -> tuple[float, float]:
    low, high = value_range(cfg, field)
    if low <= 0:
        raise UserError(f"simulate.{field} must be positive, got [{low}, {high}]")
    return low, high


def load_simulate_config(name: str = "default", overrides: Sequence[str] = (),
                         conf_dir: Path = CONF_DIR) -> SimulateSettings:
    """Compose ``conf/simulate/<name>.yaml`` with dotlist overrides (``n_angles=8``) and validate it."""
    cfg = OmegaConf.merge(_compose_simulate_file(name, conf_dir), OmegaConf.from_dotlist(list(overrides)))
    return SimulateSettings.from_config(cfg)  # type: ignore[arg-type]


def _compose_simulate_file(name: str, conf_dir: Path) -> DictConfig:
    """One ``conf/simulate`` file with the files its Hydra ``defaults`` list names (same group) merged under it."""
    path = conf_dir / "simulate" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (conf_dir / "simulate").glob("*.yaml"))
        raise UserError(f"unknown simulate config {name!r}; expected one of: {', '.join(known)}")
    own = OmegaConf.load(path)
    bases = [_compose_simulate_file(str(base), conf_dir) for base in own.pop("defaults", []) if base != "_self_"]
    return OmegaConf.merge(*bases, own)  # type: ignore[return-value]
