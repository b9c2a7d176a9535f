"""Our transmission spectra against POSEIDON's (the grid shipped in lazuli-exo): band contrasts over 1-1.85 um.

    python benchmarks/compare_poseidon.py [--cache build/opacities] [--config conf/validation/poseidon.yaml]

An independent forward model with its own opacities (POSEIDON 1.4.0, equilibrium chemistry from FastChem)
for the same isothermal atmosphere of the same planet (config: the grid's fiducial, 1 R_J at g = 10 m/s^2).
Both spectra are put on the same footing: zeta = -ln(P / 1 bar) of the effective transit radius (ours:
transit depth -> R_eff -> P through the exact isothermal hydrostatic solution 1/r = 1/Rp - (kT / mu m_u G M)
ln(P_ref / P), the grid's own definition), averaged over R ~ 100 bins. Reported per case: band contrasts
(band minus window, in scale heights), Pearson r and the RMS difference of the mean-subtracted zeta spectra.
The last line is one JSON object. Needs the default opacity cache (`dvc repro opacities`).
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from record import emit  # benchmarks/record.py, beside this script
from robert.errors import UserError, exit_on_user_error
from robert.inputs.fetch import ensure_archive, read_member
from robert.physics import atmosphere, binning
from robert.physics.chemistry import free_chemistry
from robert.physics.config import load_simulate_config
from robert.physics.model import TransmissionModel
from robert.physics.planet import Planet, Star

ROOT = Path(__file__).resolve().parents[1]


def load_grid(cfg: dict, root: Path) -> dict:
    """The zeta grid, read from the verified wheel in memory (never written anywhere)."""
    cache_dir = root / OmegaConf.load(root / "conf" / "inputs" / "default.yaml")["download_cache"]
    archive = ensure_archive("lazuli-exo", cfg["archive"], cache_dir, log=print)
    payload = read_member(archive, cfg["member"])
    import hashlib

    if hashlib.sha256(payload).hexdigest() != cfg["member_sha256"]:
        raise UserError(f"sha256 mismatch for {cfg['member']} inside {archive.name}")
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        grid = {k: npz[k] for k in npz.files}
    grid["meta"] = json.loads(str(grid["meta"]))
    return grid


def composition(case: dict, cfg: dict) -> dict[str, float]:
    """Volume mixing ratios of the simple-chemistry limit named by ``case['regime']`` (see the config)."""
    per_h = {k: float(v) * 10 ** float(cfg["log_met"]) if k != "He" else float(v)
             for k, v in cfg["solar_per_h"].items()}
    per_h["C"] = per_h["O"] * float(cfg["c_to_o"])
    molecules_per_h = 0.5 + per_h["He"]
    if case["regime"] == "hot":
        return {"CO": per_h["C"] / molecules_per_h, "H2O": (per_h["O"] - per_h["C"]) / molecules_per_h}
    if case["regime"] == "cool":
        return {"CH4": per_h["C"] / molecules_per_h, "H2O": per_h["O"] / molecules_per_h}
    raise UserError(f"case regime {case['regime']!r}; expected hot or cool")


def bin_edges_um(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    return binning.output_grid_um(float(cfg["wavelength_min_um"]), float(cfg["wavelength_max_um"]), int(cfg["n_bins"]))


def poseidon_zeta(grid: dict, temperature_K: float, cfg: dict) -> np.ndarray:
    """The grid's zeta at (T, [M/H], C/O) on its fiducial-0 planet, averaged over our bins."""
    index = [int(np.flatnonzero(np.isclose(grid[axis], value))[0]) if np.isclose(grid[axis], value).any() else -1
             for axis, value in (("T_K", temperature_K), ("log_met", cfg["log_met"]), ("c_to_o", cfg["c_to_o"]))]
    if min(index) < 0:
        raise UserError(f"(T, log_met, c_to_o) = ({temperature_K}, {cfg['log_met']}, {cfg['c_to_o']}) is not a node "
                        f"of the grid: T {grid['T_K'].tolist()}, log_met {grid['log_met'].tolist()}, "
                        f"c_to_o {grid['c_to_o'].tolist()}")
    zeta = grid["zeta"][index[0], index[1], index[2], 0].astype(float)
    wl = grid["wavelength_um"]
    _, edges = bin_edges_um(cfg)
    which = np.digitize(wl, edges) - 1
    return np.array([zeta[which == b].mean() for b in range(len(edges) - 1)])


def our_zeta(temperature_K: float, vmr: dict[str, float], planet: Planet, reference_bar: float, cfg: dict,
             cache: Path) -> tuple[np.ndarray, float]:
    """Our isothermal transit depth as zeta on the same bins, and our mean molecular weight."""
    settings = load_simulate_config("transmission", [
        "compile=false", "dtype=float64", f"pressure_bottom_bar={reference_bar}", "clouds.cloudy_fraction=0",
        f"output.wavelength_min_um={cfg['wavelength_min_um']}", f"output.wavelength_max_um={cfg['wavelength_max_um']}",
        f"output.n_bins={cfg['n_bins']}"])
    model = TransmissionModel.from_cache(settings, planet, list(vmr), cache)
    x = torch.tensor([[vmr[m] for m in model.molecules]], dtype=torch.float64)
    temperature = torch.full((1, settings.n_layers + 1), float(temperature_K), dtype=torch.float64)
    depth = model.transit_depth_from_profiles(temperature, x)[0].numpy()
    mmw = float(free_chemistry(x, model.opacity.mass_amu, settings.he_h2_ratio).mmw_amu[0])
    radius = np.sqrt(depth) * planet.star.radius_m
    slope = atmosphere.K_B_SI * temperature_K / (mmw * atmosphere.AMU_KG * atmosphere.G_SI * planet.mass_kg)
    ln_p_ref_over_p = (1.0 / planet.radius_m - 1.0 / radius) / slope
    return ln_p_ref_over_p - math.log(reference_bar), mmw


def band_mean(zeta: np.ndarray, centres_um: np.ndarray, span: list[float]) -> float:
    inside = (centres_um >= span[0]) & (centres_um <= span[1])
    if not inside.any():
        raise UserError(f"band {span} um holds no bin of the comparison grid")
    return float(zeta[inside].mean())


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "opacities")
    parser.add_argument("--config", type=Path, default=ROOT / "conf" / "validation" / "poseidon.yaml")
    args = parser.parse_args()
    cfg = OmegaConf.to_container(OmegaConf.load(args.config), resolve=True)
    grid = load_grid(cfg, ROOT)
    fiducial = grid["meta"]["fiducial"]
    planet = Planet("poseidon-fiducial", radius_m=fiducial["R_p_m"], mass_kg=fiducial["M_p_kg"],
                    equilibrium_temperature_K=1000.0, semi_major_axis_m=1.0,
                    star=Star(radius_m=fiducial["R_s_m"], temperature_K=5772.0))
    centres, _ = bin_edges_um(cfg)
    rows = []
    for case in cfg["cases"]:
        temperature, vmr = float(case["temperature_K"]), composition(case, cfg)
        theirs = poseidon_zeta(grid, temperature, cfg)
        ours, mmw = our_zeta(temperature, vmr, planet, float(fiducial["P_ref_bar"]), cfg, args.cache)
        tolerance = float(cfg["tolerance_H"][case["regime"]])
        contrasts = {}
        for name, spans in cfg["contrasts"].items():
            c_ours = band_mean(ours, centres, spans["band"]) - band_mean(ours, centres, spans["window"])
            c_theirs = band_mean(theirs, centres, spans["band"]) - band_mean(theirs, centres, spans["window"])
            contrasts[name] = {"ours_H": round(c_ours, 3), "poseidon_H": round(c_theirs, 3),
                               "difference_H": round(c_ours - c_theirs, 3),
                               "within_tolerance": abs(c_ours - c_theirs) <= tolerance}
        residual = (ours - ours.mean()) - (theirs - theirs.mean())
        row = {"temperature_K": temperature, "regime": case["regime"],
               "vmr": {k: float(f"{v:.3g}") for k, v in vmr.items()}, "mmw_amu": round(mmw, 4),
               "mean_offset_H": round(float(ours.mean() - theirs.mean()), 3),
               "pearson": round(float(np.corrcoef(ours, theirs)[0, 1]), 4),
               "rms_difference_H": round(float(np.sqrt(np.mean(residual**2))), 3),
               "span_H": {"ours": round(float(np.ptp(ours)), 3), "poseidon": round(float(np.ptp(theirs)), 3)},
               "tolerance_H": tolerance, "contrasts": contrasts}
        rows.append(row)
        print(f"T = {temperature:.0f} K ({case['regime']}: {row['vmr']}): pearson {row['pearson']:.3f}, rms "
              f"{row['rms_difference_H']:.2f} H, span ours {row['span_H']['ours']:.2f} H vs POSEIDON "
              f"{row['span_H']['poseidon']:.2f} H, mean offset {row['mean_offset_H']:+.2f} H")
        for name, c in contrasts.items():
            print(f"    {name:>16}: ours {c['ours_H']:+.2f} H, POSEIDON {c['poseidon_H']:+.2f} H, "
                  f"difference {c['difference_H']:+.2f} H{'' if c['within_tolerance'] else '  (beyond tolerance)'}")
    every = [c for r in rows for c in r["contrasts"].values()]
    emit("compare_poseidon", {"cases": rows, "contrasts_within_tolerance": sum(c["within_tolerance"] for c in every),
                      "contrasts": len(every),
                      "median_abs_contrast_difference_H": float(np.median([abs(c["difference_H"]) for c in every])),
                      "min_pearson": min(r["pearson"] for r in rows)})


if __name__ == "__main__":
    main()
