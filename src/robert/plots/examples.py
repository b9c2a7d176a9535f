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


def reference_profile(planet_teq_K: float, n: int, dtype: torch.dtype) -> TemperatureParameters:
    """``n`` copies of one Guillot profile in the middle of the prior: T_irr = 4^(1/4) Teq, T_int = 150 K,
    kappa_IR = 1e-2 cm^2/g, gamma = 0.4 (no inversion)."""
    full = lambda v: torch.full((n,), float(v), dtype=dtype)  # noqa: E731
    return TemperatureParameters(
        isothermal=torch.zeros(n, dtype=torch.bool), isothermal_temperature_K=full(planet_teq_K),
        irradiation_temperature_K=full(4**0.25 * planet_teq_K), internal_temperature_K=full(150.0),
        kappa_ir_cm2_g=full(1e-2), gamma=full(0.4))


def _model(cfg: Mapping, root: Path, molecules: list[str]) -> tuple[EmissionModel, object, SimulateSettings]:
    settings = SimulateSettings.from_config(cfg["simulate"])
    planet = planet_from_config(cfg["planet"])
    return EmissionModel.from_cache(settings, planet, molecules, root / cfg["cache_dir"]), planet, settings


def _log_axis(ax: plt.Axes) -> None:
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 3, 5, 10, 20], labels=["1", "2", "3", "5", "10", "20"])


def example_spectra(cfg: Mapping, root: Path, log10_vmr: float, out_png: Path) -> Path:
    """Plot Fp/Fs of each dataset molecule alone (at ``10**log10_vmr``, or at the top of its prior range where that
    is lower: a capped gas is never drawn at an abundance the training prior excludes) in one Guillot atmosphere
    (:func:`reference_profile`). The gas-free atmosphere is drawn in grey.
    """
    molecules = list(cfg["dataset"]["molecules"])
    provenance = cache_provenance(root / cfg["cache_dir"], molecules)
    model, planet, settings = _model(cfg, root, molecules)
    n = len(molecules)
    params = reference_profile(planet.equilibrium_temperature_K, n + 1, settings.dtype)
    drawn = [min(log10_vmr, settings.vmr_range_of(name)[1]) for name in molecules]
    vmr = torch.zeros(n + 1, n, dtype=settings.dtype)
    vmr[torch.arange(n), torch.arange(n)] = 10.0 ** torch.tensor(drawn, dtype=settings.dtype)  # last row: no gas
    depth_ppm = model(params, vmr).cpu().numpy() * 1e6
    fig, axes = plt.subplots((n + 1) // 2, 2, figsize=(11, 1.9 * ((n + 1) // 2)), sharex=True)
    for i, (ax, name) in enumerate(zip(axes.flat, molecules, strict=False)):
        ax.plot(model.wavelength_um, depth_ppm[-1], color="0.7", lw=1, label="H2/He only")
        ax.plot(model.wavelength_um, depth_ppm[i], lw=1, label=name)
        source = provenance[f"{name}.xsec.h5"].split("(")[0].strip()
        at = "" if drawn[i] == log10_vmr else f", VMR 1e{drawn[i]:.2f} (its prior's top)"
        ax.set_title(f"{name}  [{source}]{at}", fontsize=9, loc="left")
        ax.set_xscale("log")
        ax.set_ylabel("Fp/Fs (ppm)", fontsize=8)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("wavelength (um)")
        _log_axis(ax)
    fig.suptitle(f"{planet.name}: emission, one gas at VMR 1e{log10_vmr:g}, Guillot profile (gamma 0.4)", fontsize=10)
    return _save(fig, out_png)


def confused_pair(cfg: Mapping, root: Path, pair: list[str], log10_vmrs: list[float], out_png: Path) -> Path:
    """The two gases of a confused pair, each alone in the same atmosphere, as the network sees them.

    One column per mixing ratio: both spectra min-max normalised to [0, 1] (the network's input),
    and below, their difference against the noise of one bin at the default SNR (sigma / span of
    the normalised spectrum), so a reader sees whether any bin tells them apart.
    """
    from robert.spectra.transforms import normalise

    model, planet, settings = _model(cfg, root, list(pair))
    n = len(log10_vmrs)
    params = reference_profile(planet.equilibrium_temperature_K, 2 * n, settings.dtype)
    vmr = torch.zeros(2 * n, 2, dtype=settings.dtype)
    for column, log10_vmr in enumerate(log10_vmrs):
        vmr[2 * column, 0] = vmr[2 * column + 1, 1] = 10.0**log10_vmr
    depth = model(params, vmr).cpu()
    scaled = normalise(depth).numpy()
    snr = float(cfg.get("snr", 10))
    noise = (depth.mean(1) / snr / (depth.max(1).values - depth.min(1).values)).numpy()
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 5), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1]})
    for column, log10_vmr in enumerate(log10_vmrs):
        top, bottom = axes[0, column], axes[1, column]
        for k, name in enumerate(pair):
            top.plot(model.wavelength_um, scaled[2 * column + k], lw=1, label=name)
        difference = scaled[2 * column] - scaled[2 * column + 1]
        bottom.plot(model.wavelength_um, difference, lw=1, color="k")
        bottom.axhspan(-noise[2 * column], noise[2 * column], color="0.85", lw=0, label=f"1 sigma/bin, SNR {snr:g}")
        top.set_title(f"VMR 1e{log10_vmr:g}", fontsize=9)
        bottom.set_xlabel("wavelength (um)")
        _log_axis(bottom)
    axes[0, 0].set_ylabel("normalised depth")
    axes[1, 0].set_ylabel(f"{pair[0]} - {pair[1]}")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{planet.name}: {pair[0]} vs {pair[1]} alone in the same Guillot atmosphere", fontsize=10)
    return _save(fig, out_png)


def _save(fig: plt.Figure, out_png: Path) -> Path:
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
