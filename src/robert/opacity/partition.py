"""Total internal partition sums Q(T).

TIPS-2021 (Gamache et al. 2021) from ``data/tips_2021.csv`` for HITRAN molecules; a rigid-rotor
harmonic-oscillator estimate for molecules that TIPS does not cover (TiO, VO, SiO), labelled as
such wherever it is used.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robert.errors import UserError

C2_CM_K = 1.4387769  # second radiation constant h c / k_B in cm K


@functools.lru_cache(maxsize=4)
def _read_tips(path: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    header = Path(path).read_text().split("\n", 1)[0].split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, 0], {name: table[:, i] for i, name in enumerate(header) if i > 0}


class TipsPartition:
    """Q(T) of one isotopologue, linearly interpolated in the 1 K-spaced TIPS-2021 table."""

    def __init__(self, tips_csv: Path, molecule: str, isotopologue: str):
        if not Path(tips_csv).exists():
            raise UserError(f"missing data file {tips_csv}; run `make data` (python src/fetch_data.py)")
        temps, columns = _read_tips(str(tips_csv))
        key = f"{molecule}_{isotopologue}"
        if key not in columns:
            raise UserError(f"no TIPS-2021 partition function for {key} in {tips_csv}; "
                            f"available for: {', '.join(sorted({c.split('_')[0] for c in columns}))}")
        self.label = f"TIPS-2021 {key}"
        valid = np.isfinite(columns[key])  # shorter tables are padded with nan (H2O stops at 5000 K)
        self._temps, self._q = temps[valid], columns[key][valid]

    def __call__(self, temperature_K) -> np.ndarray:
        t = np.asarray(temperature_K, dtype=float)
        if np.any(t < self._temps[0]) or np.any(t > self._temps[-1]):
            raise UserError(f"temperature outside the TIPS-2021 range {self._temps[0]}-{self._temps[-1]} K")
        return np.interp(t, self._temps, self._q)


class RigidRotorPartition:
    """Q(T) ~ (k T / h c B) x prod_i 1/(1 - exp(-c2 w_i / T)) x g: an approximation.

    For molecules absent from TIPS. Rotational part in the high-temperature limit of a linear
    rigid rotor, vibrational part as harmonic oscillators, electronic degeneracy ``g``.
    """

    def __init__(self, rotational_constant_cm: float, vibrational_modes_cm: Sequence[float],
                 degeneracy: float = 1.0):
        self.label = "rigid-rotor harmonic-oscillator estimate"
        self.b = float(rotational_constant_cm)
        self.modes = np.asarray(vibrational_modes_cm, dtype=float)
        self.g = float(degeneracy)

    def __call__(self, temperature_K) -> np.ndarray:
        t = np.asarray(temperature_K, dtype=float)
        rot = t / (C2_CM_K * self.b) + 1.0 / 3.0
        vib = np.prod(1.0 / (1.0 - np.exp(-C2_CM_K * self.modes[:, None] / t.reshape(1, -1))), axis=0)
        return self.g * rot * vib.reshape(t.shape)
