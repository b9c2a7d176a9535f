"""Generate one planet's simulated-spectra dataset as shards (the ``simulate`` stage).

Each shard draws its parameters from its own seeded generator (seed, planet, shard index), so shards are
independent, byte-identical for the same seed, and a killed run resumes at the first missing or stale shard.
Labels: ``single`` gives every spectrum exactly one injected gas, cycling through the molecules so classes are
balanced; ``mixture`` draws a random subset of gases. Next to each spectrum we store every injected gas's
fingerprint: the same atmosphere computed without that gas, D_with - D_without relative to the mean depth
(:mod:`robert.simulate.shards`), from which training computes the gas's significance under any coverage and
error bars (:mod:`robert.spectra.observation`). ``dataset.acceptance`` (a regime's fingerprint rule) redraws
the parameters of a spectrum until every injected gas shows (its labels stay as drawn, so classes stay
balanced). ``simulate.geometry`` picks eclipse depths (emission) or transit depths (transmission, with a grey
cloud deck drawn per spectrum); transmission sets live under ``<dataset.out_dir>-transmission``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from robert.config_checks import check_mapping, check_positive, check_positive_int
from robert.errors import UserError, choice_error
from robert.physics.clouds import sample_cloud_top_pressure_bar
from robert.physics.config import SimulateSettings
from robert.physics.model import ForwardModel, forward_model
from robert.physics.planet import Planet, planet_from_config
from robert.physics.priors import TemperatureParameters, sample_parameters
from robert.simulate.shards import (
    Shard,
    acceptance_attr,
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


def fingerprints(model: ForwardModel, temperature_K: torch.Tensor, vmr: torch.Tensor, depth: torch.Tensor,
                 cloud_top_bar: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each injected gas's fingerprint: ((P, W) (D_with - D_without gas) / mean(D_with), (P, 2) (row, molecule)).

    The reference keeps everything else, the cloud deck included. Pairs come ordered by row, then molecule.
    """
    deltas, pairs = [], []
    for m in range(vmr.shape[1]):
        rows = torch.nonzero(vmr[:, m] > 0).flatten()
        if rows.numel() == 0:
            continue
        without = vmr[rows].clone()
        without[:, m] = 0.0
        clouds = None if cloud_top_bar is None else cloud_top_bar[rows]
        reference = model.depth_from_profiles(temperature_K[rows], without, clouds)
        with_gas = depth[rows].double()
        deltas.append(((with_gas - reference.double()) / with_gas.mean(1, keepdim=True)).cpu())
        pairs.append(torch.stack([rows.cpu(), torch.full_like(rows.cpu(), m)], dim=1))
    if not pairs:
        return torch.zeros(0, depth.shape[1], dtype=torch.float64), torch.zeros(0, 2, dtype=torch.long)
    pair = torch.cat(pairs)
    order = torch.argsort(pair[:, 0] * vmr.shape[1] + pair[:, 1])
    return torch.cat(deltas)[order], pair[order]


def feature_snr_white(delta_relative: torch.Tensor, snr: float) -> torch.Tensor:
    """(P,) S/N of each fingerprint over the whole grid under white noise sigma = mean(depth)/snr:
    sqrt(sum_bins (Delta D / sigma)^2) = snr * sqrt(sum_bins (Delta D / mean D)^2)."""
    return float(snr) * delta_relative.double().pow(2).sum(1).sqrt()


@dataclass(frozen=True)
class Acceptance:
    """The fingerprint rule of a regime (``dataset.acceptance``): keep a spectrum only when every injected gas
    reaches ``min_feature_snr`` under white noise at ``snr`` over the whole grid (null: keep every spectrum)."""

    min_feature_snr: float
    snr: float
    max_rounds: int = 50

    @classmethod
    def from_config(cls, section: Mapping | None) -> Acceptance | None:
        if section is None:
            return None
        check_mapping(section, "dataset.acceptance")
        return cls(check_positive(section.get("min_feature_snr"), "dataset.acceptance.min_feature_snr"),
                   check_positive(section.get("snr"), "dataset.acceptance.snr"))


def parameter_columns(params: TemperatureParameters, vmr: torch.Tensor, molecules: list[str]) -> dict:
    cols = {k: v.detach().cpu().double().numpy() for k, v in vars(params).items()}
    cols["isothermal"] = cols["isothermal"].astype(np.float32)
    for m, name in enumerate(molecules):
        cols[f"vmr_{name}"] = vmr[:, m].detach().cpu().double().numpy()
    return cols


@dataclass
class SimulatedRows:
    """One shard's spectra: depths (n, W), fingerprints (P, W) with their (row, molecule) pairs, parameters."""

    depth: torch.Tensor
    delta: torch.Tensor
    pair: torch.Tensor
    parameters: dict[str, np.ndarray]


def _simulate_batch(model: ForwardModel, settings: SimulateSettings, params: TemperatureParameters,
                    vmr: torch.Tensor, clouds: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(depth (n, W), fingerprints (P, W), pairs (P, 2)) of one batch of drawn atmospheres."""
    temperature = model.temperature_profiles(params)
    # spectra with the same set of gases side by side: the model skips absent gases per chunk
    present = (vmr > 0).double().cpu()
    order = torch.argsort((present * 2.0 ** torch.arange(vmr.shape[1])).sum(1), stable=True)
    inverse = torch.argsort(order)
    on = order.to(temperature.device)
    with torch.no_grad():
        c_sorted = None if clouds is None else clouds[on]
        depth_sorted = model.depth_from_profiles(temperature[on], vmr[on], c_sorted)
        delta, pair_sorted = fingerprints(model, temperature[on], vmr[on], depth_sorted, c_sorted)
    pair = torch.stack([order[pair_sorted[:, 0]], pair_sorted[:, 1]], 1)  # sorted row -> original row
    by_row = torch.argsort(pair[:, 0] * vmr.shape[1] + pair[:, 1])
    return depth_sorted[inverse.to(depth_sorted.device)].float().cpu(), delta[by_row], pair[by_row]


def simulate_rows(model: ForwardModel, settings: SimulateSettings, planet: Planet, labels: torch.Tensor,
                  acceptance: Acceptance | None, generator: torch.Generator) -> SimulatedRows:
    """Spectra for the given labels (n, M); with ``acceptance``, each row is redrawn until it passes."""
    n, n_molecules = labels.shape
    pending = torch.arange(n)
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, np.ndarray]]] = []
    rounds = acceptance.max_rounds if acceptance else 1
    for _ in range(rounds):
        params, vmr = sample_parameters(settings, planet, len(pending), model.molecules, generator)
        vmr = vmr * labels[pending].to(vmr.device, vmr.dtype)
        # drawn last, and only for transmission
        clouds = (sample_cloud_top_pressure_bar(settings.clouds, len(pending), generator).to(settings.device)
                  if settings.geometry == "transmission" else None)
        depth, delta, pair = _simulate_batch(model, settings, params, vmr, clouds)
        keep = torch.ones(len(pending), dtype=torch.bool)
        if acceptance is not None and len(pair):
            weak = feature_snr_white(delta, acceptance.snr) < acceptance.min_feature_snr
            keep[pair[weak, 0]] = False
        columns = parameter_columns(params, vmr, list(model.molecules))
        if clouds is not None:
            columns["cloud_top_pressure_bar"] = clouds.cpu().double().numpy()  # +inf: no deck
        kept_pairs = keep[pair[:, 0]]
        new_index = torch.cumsum(keep, 0) - 1  # row within this round's kept rows
        parts.append((pending[keep], depth[keep], delta[kept_pairs],
                      torch.stack([new_index[pair[kept_pairs, 0]], pair[kept_pairs, 1]], 1),
                      {k: v[keep.numpy()] for k, v in columns.items()}))
        pending = pending[~keep]
        if len(pending) == 0:
            break
    else:
        raise UserError(f"dataset.acceptance: {len(pending)} of {n} spectra still show a gas below feature S/N "
                        f"{acceptance.min_feature_snr:g} (white noise, SNR {acceptance.snr:g}) after "
                        f"{acceptance.max_rounds} draws each; lower dataset.acceptance.min_feature_snr or raise the "
                        "abundance floor (simulate.mixing_ratio.log10_range)")
    target = torch.cat([p[0] for p in parts])
    order = torch.argsort(target)
    offsets = torch.cumsum(torch.tensor([0] + [len(p[0]) for p in parts]), 0)
    pair = torch.cat([torch.stack([target[p[3][:, 0] + offsets[i]], p[3][:, 1]], 1) for i, p in enumerate(parts)])
    delta = torch.cat([p[2] for p in parts])
    by_row = torch.argsort(pair[:, 0] * n_molecules + pair[:, 1])
    order_np = order.numpy()
    return SimulatedRows(torch.cat([p[1] for p in parts])[order], delta[by_row], pair[by_row],
                         {k: np.concatenate([p[4][k] for p in parts])[order_np] for k in parts[0][4]})


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


def generate_planets(cfg: Mapping, planet_key: str, root: Path, log: Callable[[str], None] = print,
                     progress: bool = True) -> list[Path]:
    """One planet (``planet=<key>``) or each planet of a selection (``planet=all``: ``planet.keys``), in one process:
    the forward model's kernels compile once. A planet's shards are the same whichever way it was generated."""
    keys = list(cfg["planet"]["keys"]) if "keys" in cfg["planet"] else [planet_key]
    planets = {}
    for key in keys:  # every planet file is read (and checked) before the first spectrum is computed
        path = Path(root) / "conf" / "planet" / f"{key}.yaml"
        if not path.exists():
            raise UserError(f"planet {key} of planet={planet_key} has no conf/planet/{key}.yaml")
        planets[key] = cfg["planet"] if len(keys) == 1 and "keys" not in cfg["planet"] else yaml.safe_load(
            path.read_text())
    out_dirs, model = [], None
    for key, planet in planets.items():  # each planet's model shares the first one's opacity table
        out_dir, model = _generate_planet({**cfg, "planet": planet}, key, root, log, progress, model)
        out_dirs.append(out_dir)
    return out_dirs


def generate_planet(cfg: Mapping, planet_key: str, root: Path,
                    log: Callable[[str], None] = print, progress: bool = True) -> Path:
    """Write (or complete) the shards of one planet; returns the planet's dataset directory."""
    return _generate_planet(cfg, planet_key, root, log, progress)[0]


def _generate_planet(cfg: Mapping, planet_key: str, root: Path, log: Callable[[str], None], progress: bool,
                     earlier: ForwardModel | None = None) -> tuple[Path, ForwardModel]:
    """:func:`generate_planet`, reusing ``earlier`` (another planet's model) when it has the same settings and
    molecules; returns the directory and the model used."""
    dataset, composition = cfg["dataset"], cfg["composition"]
    n_total = check_positive_int(dataset.get("spectra_per_planet"), "dataset.spectra_per_planet")
    shard_size = check_positive_int(dataset.get("shard_size"), "dataset.shard_size")
    molecules = list(dataset["molecules"])
    if not molecules or len(set(molecules)) != len(molecules):
        raise UserError(f"dataset.molecules must be a non-empty list without repeats, got {molecules}")
    kind = composition.get("kind")
    if kind not in COMPOSITIONS:
        raise choice_error("composition.kind", kind, COMPOSITIONS)
    if "keys" in cfg["planet"]:
        raise UserError(f"planet={planet_key} selects several planets; generate_planets() takes a selection")
    # the config is checked in full before any file is read: a bad override is named as such even
    # where no opacity cache has been built yet
    settings = SimulateSettings.from_config(cfg["simulate"])
    planet = planet_from_config(cfg["planet"], where="planet")
    cache_dir = root / cfg["cache_dir"]
    provenance = cache_provenance(cache_dir, molecules)
    acceptance = Acceptance.from_config(dataset.get("acceptance"))
    same = earlier is not None and earlier.settings == settings and list(earlier.molecules) == molecules
    model = earlier.for_planet(planet) if same else forward_model(settings, planet, molecules, cache_dir)

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
        labels = composition_labels(composition, n, len(molecules), first, generator)
        rows = simulate_rows(model, settings, planet, labels, acceptance, generator)
        write_shard(path, Shard(
            eclipse_depth=rows.depth.numpy(), wavelength_um=np.asarray(model.wavelength_um),
            labels=labels.numpy(), delta_depth=rows.delta.numpy(), delta_pair=rows.pair.numpy(),
            params=rows.parameters, planet=planet_key, molecules=molecules,
            provenance=provenance, composition=kind, seed=int(dataset["seed"]), shard_index=index,
            config_hash=digest, extra_attrs={"planet_name": planet.name, "acceptance": acceptance_attr(dataset)},
            geometry=settings.geometry))
        bar.update(n)
    bar.close()
    log(f"{planet_key}: {n_total} spectra in {n_shards} shards under {out_dir}")
    return out_dir, model
