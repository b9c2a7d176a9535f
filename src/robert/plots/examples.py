"""One example emission spectrum per molecule, from the real forward model and opacity cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from robert.physics.config import SimulateSettings  # noqa: E402
from robert.physics.model import EmissionModel  # noqa: E402
from robert.physics.planet import planet_from_config  # noqa: E402
from robert.physics.priors import TemperatureParameters  # noqa: E402
from robert.simulate.generate import cache_provenance  # noqa: E402


def example_spectra(cfg: Mapping, root: Path, log10_vmr: float, out_png: Path) -> Path:
    """Plot Fp/Fs of each dataset molecule alone (at ``10**log10_vmr``) in one Guillot atmosphere.

    The profile sits in the middle of the prior: T_irr = 4^(1/4) Teq, T_int = 150 K,
    kappa_IR = 1e-2 cm^2/g, gamma = 0.4 (no inversion). The gas-free atmosphere is drawn in grey.
    """
    molecules = list(cfg["dataset"]["molecules"])
    cache = root / cfg["cache_dir"]
    provenance = cache_provenance(cache, molecules)
    settings = SimulateSettings.from_config(cfg["simulate"])
    planet = planet_from_config(cfg["planet"])
    model = EmissionModel.from_cache(settings, planet, molecules, cache)
    n = len(molecules)
    full = lambda v: torch.full((n + 1,), float(v), dtype=settings.dtype)  # noqa: E731
    params = TemperatureParameters(
        isothermal=torch.zeros(n + 1, dtype=torch.bool),
        isothermal_temperature_K=full(planet.equilibrium_temperature_K),
        irradiation_temperature_K=full(4**0.25 * planet.equilibrium_temperature_K),
        internal_temperature_K=full(150.0), kappa_ir_cm2_g=full(1e-2), gamma=full(0.4))
    vmr = torch.zeros(n + 1, n, dtype=settings.dtype)
    vmr[torch.arange(n), torch.arange(n)] = 10.0**log10_vmr  # the last row: no active gas
    depth_ppm = model(params, vmr).cpu().numpy() * 1e6
    fig, axes = plt.subplots((n + 1) // 2, 2, figsize=(11, 1.9 * ((n + 1) // 2)), sharex=True)
    for i, (ax, name) in enumerate(zip(axes.flat, molecules, strict=False)):
        ax.plot(model.wavelength_um, depth_ppm[-1], color="0.7", lw=1, label="H2/He only")
        ax.plot(model.wavelength_um, depth_ppm[i], lw=1, label=name)
        source = provenance[f"{name}.xsec.h5"].split("(")[0].strip()
        ax.set_title(f"{name}  [{source}]", fontsize=9, loc="left")
        ax.set_xscale("log")
        ax.set_ylabel("Fp/Fs (ppm)", fontsize=8)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("wavelength (um)")
        ax.set_xticks([1, 2, 3, 5, 10, 20], labels=["1", "2", "3", "5", "10", "20"])
    fig.suptitle(f"{planet.name}: emission, one gas at VMR 1e{log10_vmr:g}, Guillot profile (gamma 0.4)", fontsize=10)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
