"""Ceiling benchmark: of the gases the plain detection label counts at S/N >= 10 (and 5-10), how many would a
retrieval detect?

    python benchmarks/ceiling.py                 # up to 5 test pairs per planet, gas and S/N band (~7 min on 2 cores)
    python benchmarks/ceiling.py --per-gas 10    # more pairs, proportionally longer

The plain label (:mod:`robert.spectra.detection`) compares a spectrum with the same atmosphere without the gas,
everything else held fixed. A retrieval refits everything else. This benchmark does that refit inside the training
prior's own forward model: for emission test spectra whose gas has plain feature S/N >= 10 (the headline
convention: the whole grid, white noise at ``data.snr``), the atmosphere *without* the gas is fitted to the
noiseless spectrum *with* it (an Asimov data set, so the figures are expectations, not one noise draw) by bounded
nonlinear least squares over the four Guillot temperature parameters and the mixing ratio of every other molecule,
the ones not injected included, within the prior's ranges (``conf/simulate/default.yaml``: each gas's own top, so a
capped gas stays below its cap), started from the truth without the gas. The Delta chi^2 left is what a
maximum-likelihood retrieval of this model family would find from that start; a global fit could only go lower, so
its share at >= 9 (3 sigma) bounds from above the completeness in that S/N band that any recogniser can reach while
calling only 3-sigma detections. Pairs are drawn per planet and gas (``--per-gas``), so a gas that rarely reaches a
band (TiO and VO at the abundances their metals allow) still gets pairs where the test set has them.

The fit is a projected Levenberg-Marquardt (Marquardt's diagonal scaling, the step clipped to the bounds) written
here because it runs every pair of a planet in one batch of the batched forward model, the Jacobians by forward
differences in the same batch: ``scipy.optimize.least_squares`` fits one pair per call and took ~3 s a pair on
2 cores, about ten times as long.

Last line: one JSON object: per S/N band and gas the pairs fitted, the share still at Delta chi^2 >= 9 and >= 100,
the median share of the plain Delta chi^2 that survives; per band the smallest share at >= 9 over the gases
(``share_ge_9_min``: S/N >= 10, ``share_ge_9_min_5_10``: S/N 5-10).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from record import compose_config, emit  # benchmarks/record.py, beside this script
from robert.data.dataset import resolve_planets
from robert.physics.model import ForwardModel, forward_model_from_config
from robert.physics.priors import TemperatureParameters
from robert.training.train import build_datamodule

ROOT = Path(__file__).resolve().parents[1]
N_TEMPERATURE = 4  # irradiation and internal temperature, log10 kappa_IR, log10 gamma (Guillot 2010)
ITERATIONS = 10   # Levenberg-Marquardt iterations (the median Delta chi^2 left changed little after ~8 in a probe)
TRIALS = 4        # damping increases tried per iteration before a pair keeps its point
BANDS = {"snr_ge_10": (100.0, np.inf), "snr_5_10": (25.0, 100.0)}  # plain Delta chi^2 = (feature S/N)^2


class NoGasFit:
    """One planet's forward model as a function of (Guillot parameters, VMRs), with the prior's bounds."""

    def __init__(self, model: ForwardModel) -> None:
        self.model = model
        t, vmr_range_of = model.settings.temperature, model.settings.vmr_range_of  # the prior the model was built on
        irradiation = model.planet.equilibrium_temperature_K * 4**0.25 * np.asarray(t.irradiation_scale)
        self.low = np.array([irradiation[0], t.internal_temperature_K[0], t.log10_kappa_ir_cm2_g[0],
                             t.log10_gamma[0]] + [0.0] * len(model.molecules))
        self.high = np.array([irradiation[1], t.internal_temperature_K[1], t.log10_kappa_ir_cm2_g[1],
                              t.log10_gamma[1]] + [10.0 ** vmr_range_of(m)[1] for m in model.molecules])

    def spectra(self, x: np.ndarray) -> np.ndarray:
        """(n, W) eclipse depths of n parameter vectors (n, 4 + M)."""
        x = torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)
        params = TemperatureParameters(isothermal=torch.zeros(len(x), dtype=torch.bool),
                                       isothermal_temperature_K=x[:, 0], irradiation_temperature_K=x[:, 0],
                                       internal_temperature_K=x[:, 1], kappa_ir_cm2_g=10 ** x[:, 2],
                                       gamma=10 ** x[:, 3])
        return self.model(params, x[:, N_TEMPERATURE:]).double().numpy()

    def refit(self, x_true: np.ndarray, gas: np.ndarray, sigma: np.ndarray, iterations: int = ITERATIONS
              ) -> tuple[np.ndarray, np.ndarray]:
        """(plain, refitted) Delta chi^2 (n,) of molecule ``gas`` (n,) in the atmospheres ``x_true`` (n, 4 + M) with
        white errors ``sigma`` (n,): the truth without the gas, then the best fit without it over the rest."""
        n, n_params = x_true.shape
        data = self.spectra(x_true)
        free = np.ones((n, n_params), dtype=bool)
        free[np.arange(n), N_TEMPERATURE + gas] = False
        x = np.clip(np.where(free, x_true, 0.0), self.low, self.high)
        model = self.spectra(x)
        chi2 = (((data - model) / sigma[:, None]) ** 2).sum(1)
        plain, damping = chi2.copy(), np.full(n, 1e-2)
        minimum_step = np.where(np.arange(n_params) < N_TEMPERATURE, 1e-3, 1e-10)
        for _ in range(iterations):
            # forward differences (backward at the upper bound), every parameter of every pair in one batch
            step = np.maximum(np.abs(x) * 1e-3, minimum_step)
            step = np.where(x + step > self.high, -step, step)
            shifted = x[:, None, :] + step[:, :, None] * np.eye(n_params)[None]
            columns = self.spectra(shifted.reshape(-1, n_params)).reshape(n, n_params, -1)
            jacobian = (columns - model[:, None]) / step[..., None] / sigma[:, None, None] * free[..., None]
            residual = (data - model) / sigma[:, None]
            normal = jacobian @ jacobian.transpose(0, 2, 1)                      # (n, P, P)
            gradient = (jacobian @ residual[..., None])[..., 0]                  # (n, P)
            diagonal = np.maximum(np.diagonal(normal, axis1=1, axis2=2), 1e-300)
            for _ in range(TRIALS):
                system = normal + (damping[:, None] * diagonal + ~free)[..., None] * np.eye(n_params)[None]
                trial = np.clip(x + np.linalg.solve(system, gradient[..., None])[..., 0] * free, self.low, self.high)
                trial_model = self.spectra(trial)
                trial_chi2 = (((data - trial_model) / sigma[:, None]) ** 2).sum(1)
                better = trial_chi2 < chi2
                x, model = np.where(better[:, None], trial, x), np.where(better[:, None], trial_model, model)
                chi2 = np.where(better, trial_chi2, chi2)
                damping = np.where(better, damping / 5.0, damping * 10.0)
                if better.all():
                    break
        return plain, chi2


def shares(fitted: list[tuple[int, float, float]], molecules: list[str]) -> dict:
    """Per gas of ``fitted`` (gas index, plain, refitted Delta chi^2): pairs, shares kept at >= 9 and >= 100, median
    share of the plain Delta chi^2 kept."""
    per_gas = {}
    for index, name in enumerate(molecules):
        values = np.array([(p, r) for g, p, r in fitted if g == index])
        if len(values):
            per_gas[name] = {"n": len(values), "share_ge_9": round(float(np.mean(values[:, 1] >= 9.0)), 3),
                             "share_ge_100": round(float(np.mean(values[:, 1] >= 100.0)), 3),
                             "median_kept": round(float(np.median(values[:, 1] / values[:, 0])), 3)}
    return per_gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-gas", type=int, default=5, help="test pairs fitted per planet, gas and S/N band")
    parser.add_argument("--seed", type=int, default=0, help="which pairs are drawn")
    args = parser.parse_args()
    cfg = compose_config("evaluate", [])
    snr = float(cfg["data"]["snr"])
    datamodule = build_datamodule(cfg, resolve_planets(cfg), ROOT)
    test = datamodule.split("test")
    molecules = test.molecules
    rows, slots = np.nonzero(test.pair_index >= 0)
    gases = test.pair_molecule[rows, slots]
    plain = snr**2 * (test.delta[test.pair_index[rows, slots]].astype(np.float64) ** 2).sum(1)
    band_of = np.full(len(plain), "", dtype=object)
    for band, (low, high) in BANDS.items():
        band_of[(plain >= low) & (plain < high)] = band
    vmr = test.vmr().astype(np.float64)
    rng = np.random.default_rng(args.seed)
    start, fitted = time.perf_counter(), {band: [] for band in BANDS}
    for planet in resolve_planets(cfg):
        eligible = (test.planet[rows] == planet) & (test.params["isothermal"][rows] < 0.5)
        chosen = []
        for band in BANDS:
            for index in range(len(molecules)):
                pool = np.flatnonzero(eligible & (band_of == band) & (gases == index))
                chosen += list(rng.choice(pool, min(args.per_gas, len(pool)), replace=False))
        chosen = np.asarray(chosen, dtype=int)
        generate = compose_config("generate", [f"planet={planet}", "simulate.dtype=float64"])
        fit = NoGasFit(forward_model_from_config(generate, molecules, ROOT / generate["cache_dir"]))
        row, gas = rows[chosen], gases[chosen].astype(int)
        x_true = np.column_stack([test.params["irradiation_temperature_K"][row],
                                  test.params["internal_temperature_K"][row],
                                  np.log10(test.params["kappa_ir_cm2_g"][row]),
                                  np.log10(test.params["gamma"][row]), vmr[row]]).astype(np.float64)
        sigma = fit.spectra(x_true).mean(1) / snr
        for band, *pair in zip(band_of[chosen], gas, *fit.refit(x_true, gas, sigma), strict=True):
            fitted[band].append(tuple(pair))
        print(f"{planet}: {len(chosen)} pairs, {time.perf_counter() - start:.0f} s", flush=True)
    per_gas, per_gas_5_10 = shares(fitted["snr_ge_10"], molecules), shares(fitted["snr_5_10"], molecules)
    emit("ceiling", {"snr": snr, "pairs": sum(len(f) for f in fitted.values()), "per_gas_and_band": args.per_gas,
                     "share_ge_9_min": min(v["share_ge_9"] for v in per_gas.values()),
                     "share_ge_100_min": min(v["share_ge_100"] for v in per_gas.values()),
                     "share_ge_9_min_5_10": min(v["share_ge_9"] for v in per_gas_5_10.values()),
                     "per_gas": per_gas, "per_gas_5_10": per_gas_5_10,
                     "seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
