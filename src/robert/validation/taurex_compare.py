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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robert.errors import UserError
from robert.physics import binning
from robert.physics.emission import planck_wavenumber
from robert.physics.model import EmissionModel

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


def taurex_fpfs(model: EmissionModel, temperature_K: np.ndarray, vmr: dict[str, float],
                n_angles: int) -> np.ndarray:
    """TauREx Fp/Fs on ``model.wavenumber_cm`` for one case (temperature_K on our layers + bottom level)."""
    from astropy import units as u
    from taurex.chemistry import ConstantGas, TaurexChemistry
    from taurex.contributions import AbsorptionContribution, CIAContribution, RayleighContribution
    from taurex.model import EmissionModel as TaurexEmission
    from taurex.planet import Planet as TaurexPlanet
    from taurex.pressure import SimplePressureProfile
    from taurex.stellar import BlackbodyStar
    from taurex.data.profiles.temperature.temparray import TemperatureArray

    planet, settings = model.planet, model.settings
    chemistry = TaurexChemistry(fill_gases=["H2", "He"], ratio=settings.he_h2_ratio)
    for name, x in vmr.items():
        if x > 0:
            chemistry.addGas(ConstantGas(name, mix_ratio=float(x)))
    pressure_pa = np.concatenate([model.layer_bar.cpu().numpy(), model.levels_bar[-1:].cpu().numpy()]) * PA_PER_BAR
    tx = TaurexEmission(
        planet=TaurexPlanet(planet_radius=(planet.radius_m * u.m).to(u.R_jup).value,
                            planet_mass=(planet.mass_kg * u.kg).to(u.M_jup).value),
        star=BlackbodyStar(temperature=planet.star.temperature_K,
                           radius=(planet.star.radius_m * u.m).to(u.R_sun).value),
        pressure_profile=SimplePressureProfile(nlayers=settings.n_layers,
                                               atm_min_pressure=settings.pressure_top_bar * PA_PER_BAR,
                                               atm_max_pressure=settings.pressure_bottom_bar * PA_PER_BAR),
        temperature_profile=TemperatureArray(tp_array=np.asarray(temperature_K, dtype=float), p_points=pressure_pa),
        chemistry=chemistry, ngauss=n_angles)
    tx.add_contribution(AbsorptionContribution())
    tx.add_contribution(CIAContribution(cia_pairs=["H2-H2", "H2-He"]))
    tx.add_contribution(RayleighContribution())
    tx.build()
    native_nu, fpfs, _, _ = tx.model()
    nu = model.wavenumber_cm.cpu().numpy()
    return np.interp(nu, native_nu, fpfs)


def bin_like_ours(model: EmissionModel, fpfs_high_res: np.ndarray) -> np.ndarray:
    """Binned eclipse depth from a high-resolution Fp/Fs, binning the planet *flux* as our model does."""
    nu = model.wavenumber_cm.cpu().double()
    star = np.pi * planck_wavenumber(nu, torch.tensor([model.planet.star.temperature_K], dtype=torch.float64))
    planet_flux = torch.as_tensor(fpfs_high_res, dtype=torch.float64) * star[0] / model.planet.radius_ratio**2
    settings = model.settings
    _, edges_um = binning.output_grid_um(settings.wavelength_min_um, settings.wavelength_max_um, settings.n_bins)
    matrix = binning.to_sparse(binning.binning_matrix(nu.numpy(), edges_um, settings.binning),
                               torch.device("cpu"), torch.float64)
    return (binning.bin_flux(matrix, planet_flux[None])[0] / binning.bin_flux(matrix, star)[0]).numpy() \
        * model.planet.radius_ratio**2


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
