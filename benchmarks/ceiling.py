"""Ceiling benchmark: of the gases the plain detection label counts at S/N >= 10, how many would a retrieval detect?

    python benchmarks/ceiling.py                      # 40 test pairs per planet (~3 min on 2 cores)
    python benchmarks/ceiling.py --per-planet 100     # more pairs, proportionally longer

The plain label (:mod:`robert.spectra.detection`) compares a spectrum with the same atmosphere without the gas,
everything else held fixed. A retrieval refits everything else. This benchmark does that refit inside the training
prior's own forward model: for emission test spectra whose gas has plain feature S/N >= 10 (the headline
convention: the whole grid, white noise at ``data.snr``), the atmosphere *without* the gas is fitted to the
noiseless spectrum *with* it (an Asimov data set, so the figures are expectations, not one noise draw) by bounded
nonlinear least squares (``scipy.optimize.least_squares``, trust-region reflective) over the four Guillot
temperature parameters and the mixing ratio of every other molecule, the ones not injected included, within the
prior's ranges (``conf/simulate/default.yaml``), started from the truth without the gas. The Delta chi^2 left is what
a maximum-likelihood retrieval of this model family would find at best from that start; a global fit could only go
lower, so its share at >= 9 (3 sigma) bounds from above the completeness at S/N >= 10 that any recogniser can reach
while calling only 3-sigma detections. The Jacobian is a forward difference over one batch of the forward model.

Last line: one JSON object: per gas the pairs fitted, the share still at Delta chi^2 >= 9 and >= 100, the median
share of the plain Delta chi^2 that survives; the smallest share at >= 9 over the gases.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from scipy.optimize import least_squares

from record import emit  # benchmarks/record.py, beside this script
from robert.data.dataset import resolve_planets
from robert.physics.model import ForwardModel, forward_model_from_config
from robert.physics.priors import TemperatureParameters
from robert.training.train import build_datamodule

ROOT = Path(__file__).resolve().parents[1]
N_TEMPERATURE = 4  # irradiation and internal temperature, log10 kappa_IR, log10 gamma (Guillot 2010)


def compose_config(name: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=name, overrides=overrides), resolve=True)


class NoGasFit:
    """One planet's forward model as a function of (Guillot parameters, VMRs), with the prior's bounds."""

    def __init__(self, model: ForwardModel, prior: dict, log10_vmr_max: float) -> None:
        self.model = model
        t = prior["temperature"]
        irradiation = model.planet.equilibrium_temperature_K * 4**0.25 * np.asarray(t["irradiation_scale"])
        n_molecules = len(model.molecules)
        self.low = np.array([irradiation[0], t["internal_temperature_K"][0], t["log10_kappa_ir_cm2_g"][0],
                             t["log10_gamma"][0]] + [0.0] * n_molecules)
        self.high = np.array([irradiation[1], t["internal_temperature_K"][1], t["log10_kappa_ir_cm2_g"][1],
                              t["log10_gamma"][1]] + [10.0**log10_vmr_max] * n_molecules)

    def spectra(self, x: np.ndarray) -> np.ndarray:
        """(n, W) eclipse depths of n parameter vectors (n, 4 + M)."""
        x = torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)
        params = TemperatureParameters(isothermal=torch.zeros(len(x), dtype=torch.bool),
                                       isothermal_temperature_K=x[:, 0], irradiation_temperature_K=x[:, 0],
                                       internal_temperature_K=x[:, 1], kappa_ir_cm2_g=10 ** x[:, 2],
                                       gamma=10 ** x[:, 3])
        return self.model(params, x[:, N_TEMPERATURE:]).double().numpy()

    def refit(self, x_true: np.ndarray, gas: int, sigma: float) -> tuple[float, float]:
        """(plain, refitted) Delta chi^2 of molecule ``gas`` in the atmosphere ``x_true``: the truth without the gas,
        then the best fit without it over every other parameter."""
        data = self.spectra(x_true)[0]
        free = np.flatnonzero(np.arange(len(x_true)) != N_TEMPERATURE + gas)
        start = x_true.copy()
        start[N_TEMPERATURE + gas] = 0.0

        def full(z: np.ndarray) -> np.ndarray:
            x = np.repeat(start[None], len(np.atleast_2d(z)), 0)
            x[:, free] = np.atleast_2d(z)
            return x

        def residual(z: np.ndarray) -> np.ndarray:
            return (data - self.spectra(full(z))[0]) / sigma

        low, high = self.low[free], self.high[free]

        def jacobian(z: np.ndarray) -> np.ndarray:
            # forward differences (backward at the upper bound), the base and every step in one batch
            step = np.maximum(np.abs(z) * 1e-3, np.where(np.arange(len(z)) < N_TEMPERATURE, 1e-3, 1e-10))
            step = np.where(z + step > high, -step, step)
            columns = self.spectra(full(np.vstack([z, z + np.diag(step)])))
            return -(columns[1:] - columns[0]).T / step / sigma

        z0 = np.clip(start[free], low, high)
        plain = float(np.sum(residual(z0) ** 2))
        fit = least_squares(residual, z0, jac=jacobian, bounds=(low, high), method="trf", x_scale="jac",
                            max_nfev=40)
        return plain, float(min(2.0 * fit.cost, plain))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-planet", type=int, default=40, help="test pairs at S/N >= 10 fitted per planet")
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
    vmr = test.vmr().astype(np.float64)
    rng = np.random.default_rng(args.seed)
    start, fitted = time.perf_counter(), []
    for planet in resolve_planets(cfg):
        chosen = np.flatnonzero((test.planet[rows] == planet) & (plain >= 100.0)
                                & (test.params["isothermal"][rows] < 0.5))
        chosen = rng.choice(chosen, min(args.per_planet, len(chosen)), replace=False)
        generate = compose_config("generate", [f"planet={planet}", "simulate.dtype=float64"])
        model = forward_model_from_config(generate, molecules, ROOT / generate["cache_dir"])
        fit = NoGasFit(model, generate["simulate"], generate["simulate"]["mixing_ratio"]["log10_range"][1])
        for pair in chosen:
            row, gas = rows[pair], int(gases[pair])
            x_true = np.concatenate([[test.params["irradiation_temperature_K"][row],
                                      test.params["internal_temperature_K"][row],
                                      np.log10(test.params["kappa_ir_cm2_g"][row]),
                                      np.log10(test.params["gamma"][row])], vmr[row]]).astype(np.float64)
            sigma = float(fit.spectra(x_true)[0].mean()) / snr
            fitted.append((gas, *fit.refit(x_true, gas, sigma)))
        print(f"{planet}: {len(chosen)} pairs, {time.perf_counter() - start:.0f} s", flush=True)
    per_gas = {}
    for index, name in enumerate(molecules):
        values = np.array([(p, r) for g, p, r in fitted if g == index])
        if not len(values):
            continue
        per_gas[name] = {"n": len(values), "share_ge_9": round(float(np.mean(values[:, 1] >= 9.0)), 3),
                         "share_ge_100": round(float(np.mean(values[:, 1] >= 100.0)), 3),
                         "median_kept": round(float(np.median(values[:, 1] / values[:, 0])), 3)}
    emit("ceiling", {"snr": snr, "pairs": len(fitted), "per_planet": args.per_planet,
                     "share_ge_9_min": min(v["share_ge_9"] for v in per_gas.values()),
                     "share_ge_100_min": min(v["share_ge_100"] for v in per_gas.values()),
                     "per_gas": per_gas, "seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
