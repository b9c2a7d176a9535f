"""What else could make a gas's fingerprint: a detection significance profiled over a continuum and the other gases.

The plain detection statistic (:mod:`robert.spectra.detection`) compares the spectrum with the same atmosphere
without the gas, everything else held fixed: Delta chi^2 = |Delta D / sigma|^2. A retrieval refits everything else
(Benneke & Seager 2013: the Bayes factor of nested models), so a feature that another gas or a change of the
temperature structure can imitate is not a detection there. Here that refit is approximated linearly: Delta chi^2
is what is left of the fingerprint after the weighted least-squares fit of nuisance columns is removed,

    Delta chi^2_profiled = |a|^2 - c^T G^-1 c,  a = Delta D / sigma,  N = columns / sigma,  G = N N^T,  c = N a,

over the observed bins (segment sums, as the plain statistic; :func:`robert.spectra.observation.observe`), with

* a smooth **continuum**: a quadratic in log wavelength times the mean depth (what a change of the temperature
  profile or of the planet's radius does to a spectrum, in its simplest form), and
* one **template per other gas**: the first principal direction of that gas's fingerprints (D_with - D_without,
  relative to the mean depth) in the training set, free in sign and size, as a linear stand-in for "some of that gas".

APPROXIMATE, in both directions: one direction per gas cannot follow a band's change of shape with temperature
(less freedom than a retrieval), and a free sign lets an absent gas "emit" where it can only absorb (more freedom).
Measured on the emission test set, it leaves roughly nine in ten of the plain detections standing; what it removes
are features that another gas imitates (the evaluation reports completeness on both axes: docs/detection.md).
Written here because no maintained library profiles batched per-bin chi^2 over arbitrary per-row segmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

CONTINUUM_DEGREE = 2     # quadratic in log wavelength
TEMPLATE_PAIRS = 4000    # fingerprints per gas that its template is computed from (the first ones of the split)


def continuum_columns(wavelength_um: np.ndarray, degree: int = CONTINUUM_DEGREE) -> np.ndarray:
    """(degree + 1, W) powers of the standardised log wavelength: a smooth continuum's shapes."""
    x = np.log(np.asarray(wavelength_um, dtype=np.float64))
    x = (x - x.mean()) / x.std()
    return np.stack([x ** d for d in range(degree + 1)])


def gas_templates(delta: np.ndarray, pair_molecule: np.ndarray, pair_index: np.ndarray, n_molecules: int,
                  max_pairs: int = TEMPLATE_PAIRS) -> np.ndarray:
    """(M, W) unit template of each gas: the first right-singular vector of its relative fingerprints.

    ``delta`` (P, W) fingerprints, ``pair_index`` / ``pair_molecule`` (N, K) each row's fingerprint rows and their
    molecules (-1 padding), as in :class:`robert.data.dataset.Spectra`. A gas with no fingerprint gets a zero row
    (no column: :func:`profile_nuisance` skips empty columns). The sign is fixed (largest entry positive) so the
    template does not depend on the LAPACK build's choice."""
    templates = np.zeros((n_molecules, delta.shape[1]), dtype=np.float64)
    for gas in range(n_molecules):
        rows = pair_index[pair_molecule == gas][:max_pairs]
        if not len(rows):
            continue
        fingerprints = delta[rows].astype(np.float64)
        _, _, vt = np.linalg.svd(fingerprints, full_matrices=False)
        template = vt[0]
        templates[gas] = template * np.sign(template[np.argmax(np.abs(template))])
    return templates


@dataclass(frozen=True)
class NuisanceBasis:
    """The columns a gas's Delta chi^2 is profiled over, relative to the mean depth: (Q, W) = continuum, then one
    template per molecule (``gas_column[m]`` is molecule m's own, left out when m itself is profiled)."""

    columns: Tensor       # (Q, W) float32
    gas_column: Tensor    # (M,) long

    @classmethod
    def build(cls, wavelength_um: np.ndarray, templates: np.ndarray) -> NuisanceBasis:
        continuum = continuum_columns(wavelength_um)
        columns = np.concatenate([continuum, templates]).astype(np.float32)
        return cls(torch.as_tensor(columns), torch.arange(len(templates)) + len(continuum))

    def for_rows(self, mean_depth: Tensor) -> Tensor:
        """(B, Q, W) columns in the depth's units of each row (times its mean depth, as the fingerprints are)."""
        return self.columns.to(mean_depth.device, mean_depth.dtype)[None] * mean_depth[:, None, None]

    def exclusions(self, pair_molecule: Tensor) -> Tensor:
        """(B, K, Q) True where column q is pair k's own gas's template (padding pairs exclude nothing)."""
        own = self.gas_column.to(pair_molecule.device)[pair_molecule.clamp(min=0)]
        columns = torch.arange(self.columns.shape[0], device=pair_molecule.device)
        return (columns[None, None, :] == own[..., None]) & (pair_molecule[..., None] >= 0)


def profile_nuisance(delta_sum: Tensor, column_sum: Tensor, weight: Tensor, exclude: Tensor) -> Tensor:
    """Delta chi^2 (B, K) of each fingerprint less what the nuisance columns fit of it (weighted least squares).

    Per row, in segment slots S: ``delta_sum`` (B, K, S) and ``column_sum`` (B, Q, S) are the fingerprints' and
    the columns' sums over each segment's cells, ``weight`` (B, 1, S) = 1 / (sum of the cells' sigma^2): the plain
    Delta chi^2 is sum_s w delta_sum^2; ``exclude`` (B, K, Q) leaves a column out of pair k's fit (its own gas). A
    column that is empty over the coverage can fit nothing and is left out too. Solved in float64 with a relative
    ridge of 1e-9, so nearly collinear columns stay finite (and the difference of two large sums keeps its digits)."""
    chi2 = (delta_sum.double().square() * weight.double()).sum(-1)
    weighted = column_sum.double() * weight.double()                               # (B, Q, S)
    c = torch.einsum("bks,bqs->bkq", delta_sum.double(), weighted)                 # (B, K, Q)
    gram = torch.einsum("bqs,bps->bqp", weighted, column_sum.double())             # (B, Q, Q)
    diagonal = torch.diagonal(gram, dim1=1, dim2=2)                                # (B, Q)
    keep = ((~exclude) & (diagonal > 0)[:, None, :]).double()                      # (B, K, Q)
    system = gram[:, None] * keep[..., :, None] * keep[..., None, :]               # (B, K, Q, Q)
    # a ridge on the kept columns' diagonal, 1 on the left-out ones (their rows and columns are otherwise zero)
    system = system + torch.diag_embed(1e-9 * diagonal[:, None, :] * keep + (1.0 - keep))
    rhs = c * keep
    removed = (rhs * torch.linalg.solve(system, rhs[..., None])[..., 0]).sum(-1)
    return (chi2 - removed).clamp(min=0.0).to(delta_sum.dtype)


__all__ = ["CONTINUUM_DEGREE", "NuisanceBasis", "continuum_columns", "gas_templates", "profile_nuisance"]
