"""Run TauREx 3 on exactly our atmospheres and opacities, and compare the binned spectra.

TauREx reads our cache directly (cross-sections in its HDF5 layout, CIA in HITRAN format).
Each case hands TauREx our planet, star, pressure levels, temperature profile (interpolated in
log P at TauREx's own layer pressures, which are the same geometric means as ours) and
constant mixing ratios over an H2/He fill. TauREx's emergent Fp/Fs on the cache grid is turned
back into planet flux with the same stellar blackbody and binned with *our* binning matrix, so
any difference left is the radiative transfer and atmosphere code, not the binning.
Optional: needs ``pip install -e '.[validate]'`` (taurex, numba).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robert.errors import UserError
from robert.physics import binning
from robert.physics.config import SimulateSettings
from robert.physics.emission import planck_wavenumber
from robert.physics.model import EmissionModel
from robert.physics.planet import Planet
from robert.physics.priors import sample_parameters

PA_PER_BAR = 1e5


def _require_taurex():
    try:
        import taurex  # noqa: F401
    except ImportError:
        raise UserError("TauREx 3 is not installed; install the optional extra: pip install -e '.[validate]'") from None


def configure_taurex_cache(cache_dir: Path) -> None:
    """Point TauREx's global opacity and CIA caches at our cache directory."""
    _require_taurex()
    from taurex.cache import CIACache, OpacityCache

    OpacityCache().clear_cache()
    OpacityCache().set_opacity_path(str(cache_dir))
    CIACache().set_cia_path(str(cache_dir))


@dataclass(frozen=True)
class TaurexCase:
    """Everything TauREx needs for one of our spectra, as plain picklable data."""

    planet: Planet
    settings: SimulateSettings
    wavenumber_cm: np.ndarray  # our model's internal grid
    profile_bar: np.ndarray  # our layer pressures, then the bottom level
    temperature_K: np.ndarray  # on profile_bar
    vmr: dict[str, float]

    @classmethod
    def from_model(cls, model: EmissionModel, temperature_K: np.ndarray, vmr: dict[str, float]) -> TaurexCase:
        return cls(model.planet, model.settings, model.wavenumber_cm.double().cpu().numpy(),
                   model.profile_bar.double().cpu().numpy(), np.asarray(temperature_K, dtype=float), vmr)


def taurex_fpfs(case: TaurexCase) -> tuple[np.ndarray, float]:
    """TauREx Fp/Fs on ``case.wavenumber_cm``, and the seconds its forward model took (after ``build``)."""
    from astropy import units as u
    from taurex.chemistry import ConstantGas, TaurexChemistry
    from taurex.contributions import AbsorptionContribution, CIAContribution, RayleighContribution
    from taurex.data.profiles.temperature.temparray import TemperatureArray
    from taurex.model import EmissionModel as TaurexEmission
    from taurex.planet import Planet as TaurexPlanet
    from taurex.pressure import SimplePressureProfile
    from taurex.stellar import BlackbodyStar

    planet, settings = case.planet, case.settings
    chemistry = TaurexChemistry(fill_gases=["H2", "He"], ratio=settings.he_h2_ratio)
    for name, x in case.vmr.items():
        if x > 0:
            chemistry.addGas(ConstantGas(name, mix_ratio=float(x)))
    tx = TaurexEmission(
        planet=TaurexPlanet(planet_radius=(planet.radius_m * u.m).to(u.R_jup).value,
                            planet_mass=(planet.mass_kg * u.kg).to(u.M_jup).value),
        star=BlackbodyStar(temperature=planet.star.temperature_K,
                           radius=(planet.star.radius_m * u.m).to(u.R_sun).value),
        pressure_profile=SimplePressureProfile(nlayers=settings.n_layers,
                                               atm_min_pressure=settings.pressure_top_bar * PA_PER_BAR,
                                               atm_max_pressure=settings.pressure_bottom_bar * PA_PER_BAR),
        # TauREx orders profiles bottom first (its out-of-range fill values assume so): reverse=True
        temperature_profile=TemperatureArray(tp_array=case.temperature_K, p_points=case.profile_bar * PA_PER_BAR,
                                             reverse=True),
        chemistry=chemistry, ngauss=settings.n_angles)
    tx.add_contribution(AbsorptionContribution())
    tx.add_contribution(CIAContribution(cia_pairs=["H2-H2", "H2-He"]))
    tx.add_contribution(RayleighContribution())
    tx.build()
    start = time.perf_counter()
    native_nu, fpfs, _, _ = tx.model()
    seconds = time.perf_counter() - start
    return np.interp(case.wavenumber_cm, native_nu, fpfs), seconds


def bin_like_ours(case: TaurexCase, fpfs_high_res: np.ndarray) -> np.ndarray:
    """Binned eclipse depth from a high-resolution Fp/Fs, binning the planet *flux* as our model does."""
    planet, settings = case.planet, case.settings
    nu = torch.as_tensor(case.wavenumber_cm, dtype=torch.float64)
    star = np.pi * planck_wavenumber(nu, torch.tensor([planet.star.temperature_K], dtype=torch.float64))
    planet_flux = torch.as_tensor(fpfs_high_res, dtype=torch.float64) * star[0] / planet.radius_ratio**2
    _, edges_um = binning.output_grid_um(settings.wavelength_min_um, settings.wavelength_max_um, settings.n_bins)
    matrix = binning.to_sparse(binning.binning_matrix(case.wavenumber_cm, edges_um, settings.binning),
                               torch.device("cpu"), torch.float64)
    ratio = binning.bin_flux(matrix, planet_flux[None])[0] / binning.bin_flux(matrix, star)[0]
    return ratio.numpy() * planet.radius_ratio**2


def taurex_eclipse_depth(case: TaurexCase) -> tuple[np.ndarray, float]:
    """TauREx's spectrum for ``case`` on our 901-point output grid, and its forward-model seconds."""
    fpfs, seconds = taurex_fpfs(case)
    return bin_like_ours(case, fpfs), seconds


def random_cases(models: Mapping[str, EmissionModel], planets: Sequence[str], n_cases: int,
                 seed: int = 7) -> list[dict]:
    """n_cases (planet, molecule, temperature profile, VMR) from the models' priors, cycling planets and molecules."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n_cases):
        planet = planets[i % len(planets)]
        model = models[planet]
        m = (3 * i + i // len(planets)) % len(model.molecules)
        params, vmr = sample_parameters(model.settings, model.planet, 1, len(model.molecules), gen)
        x = torch.zeros_like(vmr)
        x[0, m] = vmr[0, m]
        cases.append({"planet": planet, "molecule": model.molecules[m], "vmr": float(vmr[0, m]),
                      "temperature_K": model.temperature_profiles(params)[0].double(), "x": x})
    return cases


def our_depths(models: Mapping[str, EmissionModel], cases: list[dict]) -> np.ndarray:
    out = []
    for case in cases:
        model = models[case["planet"]]
        t = case["temperature_K"].to(model.settings.device, model.settings.dtype)
        out.append(model.eclipse_depth_from_profiles(t[None], case["x"])[0].double().cpu().numpy())
    return np.array(out)


@dataclass
class Comparison:
    median_rel_diff: float
    max_rel_diff: float
    min_pearson: float
    per_case: list[dict]


def normalise(spectrum: np.ndarray) -> np.ndarray:
    return (spectrum - spectrum.min()) / (spectrum.max() - spectrum.min())


def compare(ours: np.ndarray, theirs: np.ndarray, labels: list[dict]) -> Comparison:
    """Relative differences of eclipse depth (per bin) and Pearson r of the [0,1]-normalised spectra."""
    rel = np.abs(ours - theirs) / np.abs(theirs)
    pearson = [float(np.corrcoef(normalise(a), normalise(b))[0, 1]) for a, b in zip(ours, theirs, strict=True)]
    per_case = [dict(label, median_rel_diff=float(np.median(r)), max_rel_diff=float(r.max()), pearson=p)
                for label, r, p in zip(labels, rel, pearson, strict=True)]
    return Comparison(float(np.median(rel)), float(rel.max()), float(min(pearson)), per_case)


def limit_threads(n: int) -> None:
    """TauREx + numba and torch on the same ``n`` cores, for a fair comparison."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(n))
    torch.set_num_threads(n)
