"""Generate one planet's simulated-spectra dataset as shards (the ``simulate`` stage).

Each shard draws its parameters from its own seeded generator (seed, planet, shard index), so
shards are independent, byte-identical for the same seed, and a killed run resumes at the first
missing or stale shard. Labels: ``single`` gives every spectrum exactly one active gas, cycling
through the molecules so classes are balanced; ``mixture`` draws a random subset of gases.
Next to each spectrum we store how detectable each of its gases is: the same atmosphere is
computed without that gas, and RMS(D_with - D_without) / mean(D_with) is recorded.
``simulate.geometry`` picks eclipse depths (emission) or transit depths (transmission, with a grey
cloud deck drawn per spectrum); transmission sets live beside the emission ones, under
``<dataset.out_dir>-transmission``, so neither overwrites the other.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from robert.errors import UserError, choice_error
from robert.physics.clouds import sample_cloud_top_pressure_bar
from robert.physics.config import SimulateSettings
from robert.physics.model import ForwardModel, forward_model
from robert.physics.planet import planet_from_config
from robert.physics.priors import TemperatureParameters, sample_parameters
from robert.simulate.shards import (
    Shard,
    geometry_dataset_dir,
    list_shards,
    shard_config_hash,
    shard_path,
    write_shard,
)

COMPOSITIONS = ("single", "mixture")


def shard_seed(seed: int, planet_key: str, shard_index: int) -> int:
    """A 63-bit seed for one shard, stable across Python versions and machines."""
    digest = hashlib.sha256(f"{seed}/{planet_key}/{shard_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def positive_count(cfg: Mapping, key: str, where: str) -> int:
    value = cfg.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UserError(f"{where}.{key} must be a positive integer, got {value!r}")
    return value


def composition_labels(composition: Mapping, n_spectra: int, n_molecules: int, first_index: int,
                       generator: torch.Generator) -> torch.Tensor:
    """(n_spectra, n_molecules) 0/1 labels for spectra ``first_index ...`` of the planet."""
    kind = composition.get("kind")
    if kind == "single":
        labels = torch.zeros(n_spectra, n_molecules, dtype=torch.float64)
        labels[torch.arange(n_spectra), (torch.arange(n_spectra) + first_index) % n_molecules] = 1.0
        return labels
    if kind != "mixture":
        raise choice_error("composition.kind", kind, COMPOSITIONS)
    low, high = composition.get("min_gases"), composition.get("max_gases")
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= n_molecules):
        raise UserError(f"composition.min_gases/max_gases must satisfy 1 <= min <= max <= {n_molecules} "
                        f"(the number of molecules), got {low}, {high}")
    sizes = torch.randint(low, high + 1, (n_spectra,), generator=generator)
    # a random permutation per row: the molecules whose position is below the subset size are present
    positions = torch.argsort(torch.rand(n_spectra, n_molecules, generator=generator, dtype=torch.float64), dim=1)
    return (positions < sizes[:, None]).to(torch.float64)


def detectability(model: ForwardModel, temperature_K: torch.Tensor, vmr: torch.Tensor,
                  depth: torch.Tensor, cloud_top_bar: torch.Tensor | None = None) -> torch.Tensor:
    """(B, M): RMS(D_with - D_without gas m) / mean(D_with) for each present gas, NaN where absent.

    The reference keeps everything else, the cloud deck included.
    """
    out = torch.full(vmr.shape, float("nan"), dtype=torch.float64)
    for m in range(vmr.shape[1]):
        rows = torch.nonzero(vmr[:, m] > 0).flatten()
        if rows.numel() == 0:
            continue
        without = vmr[rows].clone()
        without[:, m] = 0.0
        clouds = None if cloud_top_bar is None else cloud_top_bar[rows]
        reference = model.depth_from_profiles(temperature_K[rows], without, clouds)
        diff = (depth[rows] - reference).double()
        out[rows.cpu(), m] = (diff.pow(2).mean(1).sqrt() / depth[rows].double().mean(1)).cpu()
    return out


def parameter_columns(params: TemperatureParameters, vmr: torch.Tensor, molecules: list[str]) -> dict:
    cols = {k: v.detach().cpu().double().numpy() for k, v in vars(params).items()}
    cols["isothermal"] = cols["isothermal"].astype(np.float32)
    for m, name in enumerate(molecules):
        cols[f"vmr_{name}"] = vmr[:, m].detach().cpu().double().numpy()
    return cols


def cache_provenance(cache_dir: Path, molecules: list[str]) -> dict[str, str]:
    """Provenance of each molecule's cross-sections and of the CIA, from the opacity cache."""
    path = Path(cache_dir) / "provenance.yaml"
    if not path.exists():
        raise UserError(f"no opacity cache at {cache_dir} (missing provenance.yaml); run `dvc repro opacities`")
    recorded = yaml.safe_load(path.read_text()) or {}
    missing = [m for m in molecules if f"{m}.xsec.h5" not in recorded]
    if missing:
        raise UserError(f"molecule(s) {', '.join(missing)} have no opacity in the cache {cache_dir}; "
                        f"cached: {', '.join(sorted(k.split('.')[0] for k in recorded if k.endswith('.xsec.h5')))}"
                        " (add them to opacity.molecules and run `dvc repro opacities`)")
    return {k: v for k, v in recorded.items() if k.split(".")[0] in molecules or k.endswith(".cia")}


def generate_planet(cfg: Mapping, planet_key: str, root: Path,
                    log: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Write (or complete) the shards of one planet; returns the planet's dataset directory."""
    dataset, composition = cfg["dataset"], cfg["composition"]
    n_total = positive_count(dataset, "spectra_per_planet", "dataset")
    shard_size = positive_count(dataset, "shard_size", "dataset")
    molecules = list(dataset["molecules"])
    if not molecules or len(set(molecules)) != len(molecules):
        raise UserError(f"dataset.molecules must be a non-empty list without repeats, got {molecules}")
    kind = composition.get("kind")
    if kind not in COMPOSITIONS:
        raise choice_error("composition.kind", kind, COMPOSITIONS)
    if "keys" in cfg["planet"]:
        raise UserError(f"planet={planet_key} selects several planets ({', '.join(cfg['planet']['keys'])}); the "
                        "generator takes one: python src/generate.py planet=<one of them> (`dvc repro` runs all)")
    # the config is checked in full before any file is read: a bad override is named as such even
    # where no opacity cache has been built yet
    settings = SimulateSettings.from_config(cfg["simulate"])
    planet = planet_from_config(cfg["planet"], where="planet")
    cache_dir = root / cfg["cache_dir"]
    provenance = cache_provenance(cache_dir, molecules)
    model = forward_model(settings, planet, molecules, cache_dir)

    out_dir = geometry_dataset_dir(root / dataset["out_dir"], settings.geometry) / kind / planet_key
    # what the spectra depend on (not where they are written)
    content = {k: v for k, v in dataset.items() if k != "out_dir"}
    digest = hashlib.sha256(json.dumps([cfg["simulate"], cfg["planet"], content, composition, provenance],
                                       sort_keys=True, default=str).encode()).hexdigest()[:16]
    n_shards = math.ceil(n_total / shard_size)
    for stale in list_shards(out_dir)[n_shards:]:
        stale.unlink()  # left over from a larger earlier configuration
    bar = tqdm(total=n_total, unit="spectra", desc=f"{planet_key} ({kind}, {settings.geometry})",
               disable=not progress)
    for index in range(n_shards):
        first, n = index * shard_size, min(shard_size, n_total - index * shard_size)
        path = shard_path(out_dir, index)
        if shard_config_hash(path) == digest:
            bar.update(n)  # done in an earlier (possibly killed) run
            continue
        generator = torch.Generator().manual_seed(shard_seed(int(dataset["seed"]), planet_key, index))
        params, vmr = sample_parameters(settings, planet, n, len(molecules), generator)
        labels = composition_labels(composition, n, len(molecules), first, generator)
        vmr = vmr * labels.to(vmr.device, vmr.dtype)
        # drawn last, and only for transmission: the emission draws (and shards) stay as they were
        clouds = (sample_cloud_top_pressure_bar(settings.clouds, n, generator).to(settings.device)
                  if settings.geometry == "transmission" else None)
        temperature = model.temperature_profiles(params)
        # spectra with the same set of gases side by side: the model skips absent gases per chunk
        order = torch.argsort((labels * 2.0 ** torch.arange(len(molecules))).sum(1), stable=True)
        inverse = torch.argsort(order)
        with torch.no_grad():
            t_sorted, x_sorted = temperature[order.to(temperature.device)], vmr[order.to(vmr.device)]
            c_sorted = None if clouds is None else clouds[order.to(clouds.device)]
            depth_sorted = model.depth_from_profiles(t_sorted, x_sorted, c_sorted)
            detect = detectability(model, t_sorted, x_sorted, depth_sorted, c_sorted)[inverse]
            depth = depth_sorted[inverse.to(depth_sorted.device)]
        columns = parameter_columns(params, vmr, molecules)
        if clouds is not None:
            columns["cloud_top_pressure_bar"] = clouds.cpu().double().numpy()  # +inf: no deck
        write_shard(path, Shard(
            eclipse_depth=depth.cpu().numpy(), wavelength_um=np.asarray(model.wavelength_um),
            labels=labels.numpy(), detectability=detect.numpy(),
            params=columns, planet=planet_key, molecules=molecules,
            provenance=provenance, composition=kind, seed=int(dataset["seed"]), shard_index=index,
            config_hash=digest, extra_attrs={"planet_name": planet.name}, geometry=settings.geometry))
        bar.update(n)
    bar.close()
    log(f"{planet_key}: {n_total} spectra in {n_shards} shards under {out_dir}")
    return out_dir
