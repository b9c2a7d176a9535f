"""A small synthetic dataset in the simulator's shard layout, for tests of training mechanics.

Not physics: each molecule is two Gaussian absorption bands on a sloping continuum (depth = continuum x (1 - sum of
bands)), so its fingerprint D_with - D_without is known exactly (-continuum x its bands) and a tiny network learns
it in seconds. Tests of the physics use the real forward model on the tiny opacity cache instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robert.simulate.shards import Shard, shard_path, write_shard

MOLECULES = ["H2O", "CO", "CO2"]
PLANETS = ["gj1214b", "wasp12b"]
N_WAVELENGTHS = 901


def write_synthetic_dataset(out_dir: Path, planets: Sequence[str] = PLANETS, n_per_planet: int = 60,
                            composition: str = "single", n_wavelengths: int = N_WAVELENGTHS,
                            shard_size: int = 30) -> Path:
    """Shards under ``out_dir/<composition>/<planet>``; returns ``out_dir`` (use it as ``dataset.out_dir``)."""
    wavelength = np.geomspace(1.0, 20.0, n_wavelengths)
    log_wl = np.log(wavelength)
    centres = {m: np.log([1.4 + 2.1 * i, 6.0 + 4.5 * i]) for i, m in enumerate(MOLECULES)}
    for p_index, planet in enumerate(planets):
        rng = np.random.default_rng(100 + p_index)
        for start in range(0, n_per_planet, shard_size):
            n = min(shard_size, n_per_planet - start)
            if composition == "single":
                labels = np.eye(len(MOLECULES))[(np.arange(n) + start) % len(MOLECULES)]
            else:
                labels = (rng.random((n, len(MOLECULES))) < 0.5).astype(float)
                labels[labels.sum(1) == 0, rng.integers(len(MOLECULES))] = 1.0
            vmr = labels * 10 ** rng.uniform(-6, -2, labels.shape)
            strength = labels * (0.3 + 0.2 * (np.log10(np.where(vmr > 0, vmr, 1e-6)) + 6) / 4)
            continuum = 1e-3 * (1 + p_index) * (1 + rng.uniform(0.5, 0.6, (n, 1)) * (log_wl - log_wl[0]))
            band = {j: sum(np.exp(-0.5 * ((log_wl - c) / 0.04) ** 2) for c in centres[m])
                    for j, m in enumerate(MOLECULES)}
            depth = continuum * (1 - sum(strength[:, [j]] * band[j] for j in band))
            rows, molecules = np.nonzero(labels)
            delta = -continuum[rows] * strength[rows, molecules][:, None] * np.stack([band[j] for j in molecules])
            write_shard(shard_path(out_dir / composition / planet, start // shard_size), Shard(
                eclipse_depth=depth.astype(np.float32), wavelength_um=wavelength, labels=labels.astype(np.uint8),
                delta_depth=delta / depth[rows].mean(1, keepdims=True), delta_pair=np.stack([rows, molecules], 1),
                params={f"vmr_{m}": vmr[:, j] for j, m in enumerate(MOLECULES)}, planet=planet,
                molecules=MOLECULES, provenance={"synthetic": "tests/helpers/synthetic.py"},
                composition=composition, seed=0, shard_index=start // shard_size, config_hash="synthetic",
                extra_attrs={"acceptance": "null"}))
    return out_dir
