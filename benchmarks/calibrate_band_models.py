"""Fit band-model parameters against the HELIOS-K/HITEMP k-tables (Wogan et al.; validation data only).

For each molecule (default CO2, CH4, NH3, C2H2) and every band in conf/molecules/<NAME>.yaml this
fits a strength factor, an envelope width factor, a P/R asymmetry, an effective vibrational
lower-state energy E'' and a small centre shift (+-0.5%), so that the band model averaged into the
reference bins matches the reference g-weighted bin-mean sigma at T = 300 ... 2000 K (acceptance
at 500, 1000, 1500 K and 0.01, 0.1, 1 bar; the bin means hardly depend on P there, so the fit uses
the 0.1 bar values and the analytic bin integrals of the envelopes).
Residuals are ln((ours + 1e-24)/(ref + 1e-24)) in every 1-20 um bin (full weight where the
reference exceeds 1e-21, the acceptance threshold; 0.3 elsewhere, so that no band grows where the
reference is empty; doubled at the acceptance temperatures), plus a weak pull of the factors
towards 1, i.e. towards the values in the yaml (at the first calibration, the DESIGN.md literature
strengths and rigid-rotor widths; a re-run starts from the recorded calibrated values).
It prints the fitted bands as YAML lines; record them in the yaml files by hand
(the product reads only the yaml, never ../shared at run time).

Usage: python benchmarks/calibrate_band_models.py [REFERENCE_DIR] [--molecules CO2 CH4 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from scipy.optimize import least_squares

from robert.errors import UserError, exit_on_user_error
from robert.opacity import band_model as bm
from robert.opacity.reference import KTable, default_reference_dir, read_ktable

ROOT = Path(__file__).resolve().parents[1]
TEMPERATURES_K = (500.0, 1000.0, 1500.0)  # the acceptance temperatures
FIT_TEMPERATURES_K = (300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0)  # wider, so E'' extrapolates sanely
PRESSURE_BAR = 0.1
THRESHOLD = 1e-21  # acceptance: factor 3 wherever the reference exceeds this (cm^2/molecule)
FLOOR = 1e-23      # residuals are softened below ~0.1 FLOOR
CENTRE_FREEDOM = 0.005
NPAR = 5  # fitted per band: ln strength factor, ln width factor, E'', relative centre shift, ln asymmetry
WAVELENGTH_RANGE_UM = (1.0, 20.2)


def load_spec(molecule: str) -> dict:
    path = ROOT / "conf" / "molecules" / f"{molecule}.yaml"
    if not path.exists():
        raise UserError(f"no molecule config {path}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def model_bin_means(spec: dict, bands: list[bm.Band], lo_cm: np.ndarray, hi_cm: np.ndarray,
                    temperatures_K: tuple[float, ...] = FIT_TEMPERATURES_K) -> np.ndarray:
    """Analytic band-model bin means (nT, nBins) for the fit (no pressure broadening)."""
    b_cm = bm.rotational_constant(spec)
    temps = np.array(temperatures_K)
    strengths = bm.band_strengths(spec, bands, temps, ROOT / "data")
    out = np.zeros((temps.size, lo_cm.size))
    for i, band in enumerate(bands):
        for j, temp in enumerate(temps):
            frac = bm.envelope_bin_fraction(band, b_cm, lo_cm - band.center_cm, hi_cm - band.center_cm, temp)
            out[j] += strengths[i, j] * frac / (hi_cm - lo_cm)
    return out


def adjusted(bands: list[bm.Band], params: np.ndarray) -> list[bm.Band]:
    out = []
    for band, (ln_s, ln_w, e_low, shift, ln_asym) in zip(bands, params.reshape(-1, NPAR), strict=True):
        out.append(dataclasses.replace(band, strength_296=band.strength_296 * np.exp(ln_s),
                                       width_factor=band.width_factor * np.exp(ln_w), lower_energy_cm=e_low,
                                       center_cm=band.center_cm * (1.0 + shift),
                                       asymmetry=band.asymmetry * np.exp(ln_asym)))
    return out


def calibrate(molecule: str, table: KTable) -> tuple[list[bm.Band], np.ndarray, np.ndarray]:
    spec = load_spec(molecule)
    bands = bm.parse_bands(spec)
    bins = table.bins_within(*WAVELENGTH_RANGE_UM)
    hi_cm, lo_cm = 1e4 / table.edges_um[bins], 1e4 / table.edges_um[bins + 1]
    ref = np.stack([table.bin_mean_sigma(t, PRESSURE_BAR)[bins] for t in FIT_TEMPERATURES_K])
    weight = np.where(ref > THRESHOLD, 1.0, 0.3)
    weight[[FIT_TEMPERATURES_K.index(t) for t in TEMPERATURES_K]] *= 2.0  # the acceptance temperatures

    def residuals(params: np.ndarray) -> np.ndarray:
        ours = model_bin_means(spec, adjusted(bands, params), lo_cm, hi_cm)
        r = weight * np.log((ours + 0.1 * FLOOR) / (ref + 0.1 * FLOOR))
        pull = 0.05 * params.reshape(-1, NPAR)[:, [0, 1, 4]].ravel()
        return np.concatenate([r.ravel(), pull])

    start = np.array([[0.0, 0.0, max(b.lower_energy_cm, 50.0), 0.0, 0.0] for b in bands]).ravel()  # off bound
    asym = [1.6 if b.shape != "gaussian" else 1e-9 for b in bands]  # ln of the asymmetry's range
    lower = np.array([[-5.0, -1.5, 0.0, -CENTRE_FREEDOM, -a] for a in asym]).ravel()
    upper = np.array([[5.0, 1.5, 5000.0, CENTRE_FREEDOM, a] for a in asym]).ravel()
    fit = least_squares(residuals, start, bounds=(lower, upper),
                        x_scale=np.tile([1, 1, 500, 0.01, 1], len(bands)), diff_step=1e-4,
                        ftol=1e-6, xtol=1e-6, max_nfev=300)
    new = adjusted(bands, fit.x)
    accept = [FIT_TEMPERATURES_K.index(t) for t in TEMPERATURES_K]
    return new, ref[accept], model_bin_means(spec, new, lo_cm, hi_cm, TEMPERATURES_K)


def band_yaml(band: bm.Band) -> str:
    fields = [f"center_cm: {band.center_cm:.1f}", f"strength_296: {band.strength_296:.3g}",
              f"shape: {band.shape}"]
    if band.shape == "PQR":
        fields.append(f"q_fraction: {band.q_fraction:g}")
    if band.shape == "gaussian":
        fields.append(f"fwhm_cm: {band.fwhm_cm:g}")
    fields += [f"width_factor: {band.width_factor:.3g}"]
    if band.shape != "gaussian":
        fields.append(f"asymmetry: {band.asymmetry:.3g}")
    fields.append(f"lower_energy_cm: {band.lower_energy_cm:.0f}")
    if band.hot_bands:
        fields.append("hot_bands: true")
    return "  - {" + ", ".join(fields) + "}"


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference_dir", nargs="?", type=Path, default=default_reference_dir(ROOT))
    parser.add_argument("--molecules", nargs="+", default=["CO2", "CH4", "NH3", "C2H2"])
    args = parser.parse_args(argv)
    if not args.reference_dir.is_dir():
        raise UserError(f"reference directory {args.reference_dir} not found "
                        "(validation data in ../shared/reference)")
    for molecule in args.molecules:
        table = read_ktable(args.reference_dir, molecule)
        bands, ref, ours = calibrate(molecule, table)
        checked = ref > THRESHOLD
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.maximum(ours / ref, ref / np.maximum(ours, 1e-300))
        ratio = factor[checked]
        print(f"# {molecule}: {checked.sum()} bins above {THRESHOLD:g}, {(ratio <= 3).sum()} within 3x, "
              f"worst factor {ratio.max():.2f} (analytic fit at 0.1 bar)")
        for it, ib in zip(*np.nonzero(checked & (factor > 3)), strict=True):
            edges = table.edges_um[table.bins_within(*WAVELENGTH_RANGE_UM)[ib]:][:2]
            print(f"#   outside 3x: T={TEMPERATURES_K[it]:g} K, {edges[0]:.2f}-{edges[1]:.2f} um, "
                  f"ref {ref[it, ib]:.2e}, ours {ours[it, ib]:.2e}")
        print(f"# {molecule} bands calibrated against HELIOS-K HITEMP k-tables (Wogan et al.):")
        for band in bands:
            print(band_yaml(band))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
