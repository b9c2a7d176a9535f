"""Temperature scaling of line and band strengths (HITRAN convention).

S(T) = S(296) Q(296)/Q(T) exp(-c2 E''/T)/exp(-c2 E''/296) [1 - exp(-c2 nu/T)]/[1 - exp(-c2 nu/296)]
with c2 = h c / k_B = 1.4388 cm K (DESIGN.md section 4; Rothman et al. 1998, JQSRT 60, 665).
"""

from __future__ import annotations

import numpy as np

from robert.opacity.partition import C2_CM_K

T_REF_K = 296.0


def scale_line_strength(strength_296: np.ndarray, lower_energy_cm: np.ndarray, wavenumber_cm: np.ndarray,
                        temperature_K: float, q_ratio_296_over_t: float) -> np.ndarray:
    """Line strengths (cm/molecule) at ``temperature_K`` from their 296 K values.

    ``q_ratio_296_over_t`` is Q(296 K) / Q(T) of the isotopologue.
    """
    boltzmann = np.exp(-C2_CM_K * lower_energy_cm * (1.0 / temperature_K - 1.0 / T_REF_K))
    stimulated = -np.expm1(-C2_CM_K * wavenumber_cm / temperature_K) / -np.expm1(-C2_CM_K * wavenumber_cm / T_REF_K)
    return strength_296 * q_ratio_296_over_t * boltzmann * stimulated
