"""Run TauREx 3 on exactly our atmospheres and opacities, and compare the binned spectra.

TauREx reads our cache directly (cross-sections in its HDF5 layout, CIA in HITRAN format).
Each case hands TauREx our planet, star, pressure levels, temperature profile (interpolated in
log P at TauREx's own layer pressures, which are the same geometric means as ours) and
constant mixing ratios over an H2/He fill, to its ``EmissionModel`` or ``TransmissionModel``
(our model's ``simulate.geometry``; a cloud deck becomes its ``SimpleCloudsContribution``).
With thermal dissociation and the H- continuum on (``simulate.chemistry.dissociation``,
``simulate.continuum.h_minus``; both or neither), TauREx gets our per-layer mixing ratios (every gas,
He, atomic H and e-; H2 fills the rest) and its ``HydrogenIon`` contribution, with John's bound-free
polynomial in place of its own mistyped one (:func:`john_hydrogen_ion`).
Emission: TauREx's emergent Fp/Fs on the cache grid is turned back into planet flux with the same
stellar blackbody and binned with *our* binning matrix; transmission: its transit depth is binned
with our matrix directly. Any difference left is the radiative transfer and atmosphere code, not
the binning.
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
from robert.physics.clouds import NO_CLOUD_BAR, sample_cloud_top_pressure_bar
from robert.physics.config import SimulateSettings
from robert.physics.emission import planck_wavenumber
from robert.physics.h_minus import BOUND_FREE_C
from robert.physics.model import ForwardModel
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
    cloud_top_bar: float = NO_CLOUD_BAR  # transmission only
    layer_vmr: dict[str, np.ndarray] | None = None  # per layer, top first: with dissociation and H-

    @property
    def geometry(self) -> str:
        return self.settings.geometry

    @classmethod
    def from_model(cls, model: ForwardModel, temperature_K: np.ndarray, vmr: dict[str, float],
                   cloud_top_bar: float = NO_CLOUD_BAR) -> TaurexCase:
        settings, layer_vmr = model.settings, None
        if settings.dissociation != settings.h_minus:
            raise UserError("the TauREx comparison needs simulate.chemistry.dissociation and "
                            "simulate.continuum.h_minus both on or both off")
        if settings.dissociation:
            x = torch.zeros(1, len(model.molecules), dtype=settings.dtype, device=settings.device)
            for name, value in vmr.items():
                x[0, model.molecules.index(name)] = value
            t = torch.as_tensor(np.asarray(temperature_K), dtype=settings.dtype, device=settings.device)[None]
            layer_vmr = {name: profile[0].double().cpu().numpy()
                         for name, profile in model.layer_mixing_ratios(t, x).items() if name != "H-"}
        return cls(model.planet, settings, model.wavenumber_cm.double().cpu().numpy(),
                   model.profile_bar.double().cpu().numpy(), np.asarray(temperature_K, dtype=float), vmr,
                   float(cloud_top_bar), layer_vmr)


def john_hydrogen_ion():
    """TauREx 3's ``HydrogenIon`` contribution with John's (1988, eq. 5) bound-free polynomial.

    TauREx 3.3.2 lists the coefficients as 1, 52.519, 49.534, ... with powers n/2 from n = 0, where John's
    are C_1..C_6 = 152.519, 49.534, -118.858, ... with powers (n - 1)/2: 4.4x too small a cross-section at
    1 um (tests/test_taurex_h_minus.py). Everything else, free-free included, is TauREx's own.
    """
    from taurex.contributions.hm import HydrogenIon

    class JohnHydrogenIon(HydrogenIon):
        def f(self, lamb: np.ndarray) -> np.ndarray:
            x = 1.0 / lamb - 1.0 / self.photo_thresh
            with np.errstate(invalid="ignore"):  # beyond the threshold: NaN, zeroed by TauREx's sigma_pd
                return sum(c * x ** (n / 2) for n, c in enumerate(BOUND_FREE_C))

    return JohnHydrogenIon()


def taurex_fpfs(case: TaurexCase) -> tuple[np.ndarray, float]:
    """TauREx's spectrum on ``case.wavenumber_cm`` (Fp/Fs for emission, (R/Rs)^2 for transmission), and the
    seconds its forward model took (after ``build``)."""
    from astropy import units as u
    from taurex.chemistry import ArrayGas, ConstantGas, TaurexChemistry
    from taurex.contributions import (
        AbsorptionContribution,
        CIAContribution,
        RayleighContribution,
        SimpleCloudsContribution,
    )
    from taurex.data.profiles.temperature.temparray import TemperatureArray
    from taurex.model import EmissionModel as TaurexEmission
    from taurex.model import TransmissionModel as TaurexTransmission
    from taurex.planet import Planet as TaurexPlanet
    from taurex.pressure import SimplePressureProfile
    from taurex.stellar import BlackbodyStar

    planet, settings = case.planet, case.settings
    if case.layer_vmr is None:
        chemistry = TaurexChemistry(fill_gases=["H2", "He"], ratio=settings.he_h2_ratio)
        for name, x in case.vmr.items():
            if x > 0:
                chemistry.addGas(ConstantGas(name, mix_ratio=float(x)))
    else:  # our layers' mixing ratios, each gas as it is (He, H, e- too); H2 fills what they leave, as ours
        chemistry = TaurexChemistry(fill_gases=["H2"])
        gases = {name: profile for name, profile in case.layer_vmr.items() if name != "H2" and np.any(profile > 0)}
        # Our free electrons are counted beside the other species, not out of them: where H2 is all but gone
        # (WASP-12 b's hottest layers) the sum reaches 1 + 1e-4, which TauREx refuses. Scale those layers to 1.
        limit = 1.0 - 1e-9  # TauREx's test is total > 1: leave H2 a trace, not a rounding error
        scale = limit / np.maximum(limit, sum(gases.values()))
        for name, profile in gases.items():
            chemistry.addGas(ArrayGas(name, mix_ratio_array=list((profile * scale)[::-1])))  # TauREx: bottom first
    geometry = {"emission": lambda **kw: TaurexEmission(ngauss=settings.n_angles, **kw),
                "transmission": TaurexTransmission}[case.geometry]
    tx = geometry(
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
        chemistry=chemistry)
    tx.add_contribution(AbsorptionContribution())
    tx.add_contribution(CIAContribution(cia_pairs=["H2-H2", "H2-He"]))
    tx.add_contribution(RayleighContribution())
    if case.layer_vmr is not None and "e-" in case.layer_vmr:
        tx.add_contribution(john_hydrogen_ion())
    if np.isfinite(case.cloud_top_bar):
        tx.add_contribution(SimpleCloudsContribution(clouds_pressure=case.cloud_top_bar * PA_PER_BAR))
    tx.build()
    start = time.perf_counter()
    native_nu, fpfs, _, _ = tx.model()
    seconds = time.perf_counter() - start
    return np.interp(case.wavenumber_cm, native_nu, fpfs), seconds


def bin_like_ours(case: TaurexCase, fpfs_high_res: np.ndarray) -> np.ndarray:
    """Binned eclipse depth from a high-resolution Fp/Fs, binning the planet *flux* as our model does;
    binned transit depth (the depth averaged over each bin, as ours) for transmission."""
    planet, settings = case.planet, case.settings
    _, edges_um = binning.output_grid_um(settings.wavelength_min_um, settings.wavelength_max_um, settings.n_bins)
    matrix = binning.to_sparse(binning.binning_matrix(case.wavenumber_cm, edges_um, settings.binning),
                               torch.device("cpu"), torch.float64)
    if case.geometry == "transmission":
        return binning.bin_flux(matrix, torch.as_tensor(fpfs_high_res, dtype=torch.float64)[None])[0].numpy()
    nu = torch.as_tensor(case.wavenumber_cm, dtype=torch.float64)
    star = np.pi * planck_wavenumber(nu, torch.tensor([planet.star.temperature_K], dtype=torch.float64))
    planet_flux = torch.as_tensor(fpfs_high_res, dtype=torch.float64) * star[0] / planet.radius_ratio**2
    ratio = binning.bin_flux(matrix, planet_flux[None])[0] / binning.bin_flux(matrix, star)[0]
    return ratio.numpy() * planet.radius_ratio**2


def taurex_depth(case: TaurexCase) -> tuple[np.ndarray, float]:
    """TauREx's spectrum for ``case`` on our 901-point output grid, and its forward-model seconds."""
    spectrum, seconds = taurex_fpfs(case)
    return bin_like_ours(case, spectrum), seconds


def random_cases(models: Mapping[str, ForwardModel], planets: Sequence[str], n_cases: int,
                 seed: int = 7, clouds: bool = False) -> list[dict]:
    """n_cases (planet, molecule, temperature profile, VMR) from the models' priors, cycling planets and molecules.

    ``clouds``: also a deck top from the models' cloud prior (``cloud_top_bar``, +inf = none); else none.
    """
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n_cases):
        planet = planets[i % len(planets)]
        model = models[planet]
        m = (3 * i + i // len(planets)) % len(model.molecules)
        params, vmr = sample_parameters(model.settings, model.planet, 1, model.molecules, gen)
        x = torch.zeros_like(vmr)
        x[0, m] = vmr[0, m]
        deck = float(sample_cloud_top_pressure_bar(model.settings.clouds, 1, gen)[0]) if clouds else NO_CLOUD_BAR
        cases.append({"planet": planet, "molecule": model.molecules[m], "vmr": float(vmr[0, m]),
                      "temperature_K": model.temperature_profiles(params)[0].double(), "x": x,
                      "cloud_top_bar": deck})
    return cases


def case_for_taurex(models: Mapping[str, ForwardModel], case: dict) -> TaurexCase:
    """The :class:`TaurexCase` of one of :func:`random_cases`."""
    return TaurexCase.from_model(models[case["planet"]], case["temperature_K"].numpy(),
                                 {case["molecule"]: case["vmr"]}, case.get("cloud_top_bar", NO_CLOUD_BAR))


def our_depths(models: Mapping[str, ForwardModel], cases: list[dict]) -> np.ndarray:
    out = []
    for case in cases:
        model = models[case["planet"]]
        t = case["temperature_K"].to(model.settings.device, model.settings.dtype)
        deck = torch.tensor([case.get("cloud_top_bar", NO_CLOUD_BAR)], dtype=torch.float64)
        clouds = deck.to(model.settings.device) if model.settings.geometry == "transmission" else None
        out.append(model.depth_from_profiles(t[None], case["x"], clouds)[0].double().cpu().numpy())
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
    """Relative differences of the depth (per bin) and Pearson r of the [0,1]-normalised spectra."""
    rel = np.abs(ours - theirs) / np.abs(theirs)
    pearson = [float(np.corrcoef(normalise(a), normalise(b))[0, 1]) for a, b in zip(ours, theirs, strict=True)]
    per_case = [dict(label, median_rel_diff=float(np.median(r)), max_rel_diff=float(r.max()), pearson=p)
                for label, r, p in zip(labels, rel, pearson, strict=True)]
    return Comparison(float(np.median(rel)), float(rel.max()), float(min(pearson)), per_case)


def limit_threads(n: int) -> None:
    """TauREx + numba and torch on the same ``n`` cores, for a fair comparison."""
    os.environ.setdefault("NUMBA_NUM_THREADS", str(n))
    torch.set_num_threads(n)
