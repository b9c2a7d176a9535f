"""Is a gas constrained by THIS spectrum's coverage and error bars? A physics answer, not the network's.

A gas is **constrained** when, were it present at an abundance in the upper part of the training prior
(log10 VMR >= ``inference.constraint.min_log10_vmr`` for a gas drawn over the common range; for a gas whose range
stops lower, its metal's budget, the same share of its own range: :func:`reference_floors`), this spectrum would
show it: for at least
``min_fraction`` of reference atmospheres holding it, its fingerprint's significance under the spectrum's own
coverage and errors reaches the detection threshold (Delta chi^2 >= labels.min_chi2,
:mod:`robert.spectra.detection`). Otherwise the verdict is "not constrained": "absent" would only mean
"invisible here" (WFC3 sees nothing of CO2's 4.3 um band; a Spitzer photometric point hides most bands).

The references are validation spectra of the model's own training set, stored with the model (float16, a few
MB): each one's depth and fingerprint relative to its mean depth. For a spectrum with observed mean depth
<D>, segment inverse variances w_s and the reference's relative fingerprint averaged over each segment
f_s (relative to the reference's mean over the observed cells m_r):
Delta chi^2 = <D>^2 sum_s w_s (f_s / m_r)^2. For a model trained with free levels between instruments, the
offset of every instrument but the first is profiled out as in the training labels
(:func:`robert.spectra.observation.profile_offsets`): minus <D>^2 (sum_{s in g} w_s f_s / m_r)^2 / sum_{s in g} w_s
per instrument g, so a fingerprint a level shift can mimic does not count. APPROXIMATION: a reference atmosphere of
another planet is scaled to this spectrum's mean depth; the answer is about the prior, averaged over its planets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robert.config_checks import check_mapping, check_number, check_positive_int
from robert.inference.grid_mapping import GridMapping


@dataclass(frozen=True)
class ConstraintSettings:
    min_log10_vmr: float = -5.0
    min_fraction: float = 0.5
    references_per_molecule: int = 64

    @classmethod
    def from_config(cls, section: Mapping, field: str = "inference.constraint") -> ConstraintSettings:
        check_mapping(section, field)
        return cls(check_number(section.get("min_log10_vmr", -5.0), f"{field}.min_log10_vmr"),
                   check_number(section.get("min_fraction", 0.5), f"{field}.min_fraction", minimum=0, maximum=1),
                   check_positive_int(section.get("references_per_molecule", 64), f"{field}.references_per_molecule"))


@dataclass
class ConstraintReferences:
    """Reference atmospheres: relative depths and fingerprints on the grid, and the molecule of each."""

    depth: np.ndarray          # (R, W) float16, D / mean(D)
    fingerprint: np.ndarray    # (R, W) float16, (D_with - D_without) / mean(D)
    molecule: np.ndarray       # (R,) int
    n_molecules: int
    min_chi2: float
    min_fraction: float
    # segment terms per coverage layout (cell_segment bytes): spectra of one instrument reuse them
    _terms: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, depth=self.depth, fingerprint=self.fingerprint, molecule=self.molecule,
                            n_molecules=self.n_molecules, min_chi2=self.min_chi2, min_fraction=self.min_fraction)

    @classmethod
    def load(cls, path: Path) -> ConstraintReferences:
        with np.load(path, allow_pickle=False) as data:  # plain arrays: never unpickles
            return cls(data["depth"], data["fingerprint"], data["molecule"], int(data["n_molecules"]),
                       float(data["min_chi2"]), float(data["min_fraction"]))

    def segment_terms(self, mapping: GridMapping) -> tuple[np.ndarray, np.ndarray]:
        """(n_segments, R) twice: segment-averaged fingerprint / mean over the observed cells, and its square."""
        return _segment_terms(self, mapping)

    def detectable_fraction(self, mapping: GridMapping, mean_depth: np.ndarray, inverse_variance: np.ndarray,
                            segment_groups: np.ndarray | None = None) -> np.ndarray:
        """(S, M): share of each molecule's references this spectrum would detect (NaN: none stored).

        ``segment_groups`` (n_segments,): each segment's instrument group (0 the reference); given, the level of
        every other group is profiled out of Delta chi^2."""
        # float32 products (the terms are float16 references): 7 digits where the threshold needs 2, ~2x faster;
        # Delta chi^2 = <D>^2 (w @ terms) >= min_chi2 compared as (w @ terms) >= min_chi2 / <D>^2
        relative, squared = self.segment_terms(mapping)
        weights = np.asarray(inverse_variance, np.float32)
        scaled = weights @ squared
        for group in range(1, 0 if segment_groups is None else int(np.max(segment_groups)) + 1):
            members = segment_groups == group
            group_weights = weights[:, members]
            fitted = group_weights @ relative[members]                          # (S, R)
            scaled -= fitted**2 / group_weights.sum(1, keepdims=True)
        limit = (self.min_chi2 / np.asarray(mean_depth, float) ** 2).astype(np.float32)
        detected = (scaled >= limit[:, None]).astype(np.float32)
        members = (self.molecule[:, None] == np.arange(self.n_molecules)).astype(np.float32)  # (R, M)
        with np.errstate(invalid="ignore", divide="ignore"):  # a molecule without references: 0 / 0 = NaN
            return (detected @ members).astype(float) / members.sum(0)


def _segment_terms(references: ConstraintReferences, mapping: GridMapping) -> tuple[np.ndarray, np.ndarray]:
    cache = references._terms
    key = mapping.cell_segment.tobytes()
    if key not in cache:
        cells = mapping.cell_segment
        observed = cells >= 0
        n_cells = mapping.cells_per_segment.astype(np.float32)
        depth = references.depth[:, observed].astype(np.float32)
        fingerprint = references.fingerprint[:, observed].astype(np.float32)
        mean_observed = depth.mean(1)                                    # (R,)
        sums = np.zeros((mapping.n_segments, len(depth)), dtype=np.float32)
        np.add.at(sums, cells[observed], fingerprint.T)
        relative = sums / n_cells[:, None] / mean_observed[None, :]
        cache[key] = relative, relative**2
        if len(cache) > 32:
            cache.pop(next(iter(cache)))
    return cache[key]


def reference_floors(settings: ConstraintSettings, common_range: tuple[float, float],
                     ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """(M,) the log10 VMR each molecule's references reach at least: ``settings.min_log10_vmr`` on the prior's
    common range (``common_range``), and the same share of its range for a molecule drawn over another
    (``ranges``, one (low, high) per molecule): -5 of [-8, -2] is the upper half, so VO's [-8, -6.36] gives -7.18."""
    low, high = common_range
    share = (settings.min_log10_vmr - low) / (high - low) if high > low else 0.0
    return np.array([own_low + share * (own_high - own_low) for own_low, own_high in ranges])


def build_references(depth: np.ndarray, fingerprint_rows: np.ndarray, pair_index: np.ndarray,
                     pair_molecule: np.ndarray, log10_vmr: np.ndarray, floors: np.ndarray,
                     settings: ConstraintSettings, min_chi2: float, seed: int) -> ConstraintReferences:
    """Pick up to ``references_per_molecule`` rows per molecule m whose VMR of it is >= 10^floors[m]."""
    rng = np.random.default_rng(seed)
    n_molecules = log10_vmr.shape[1]
    chosen_depth, chosen_fingerprint, chosen_molecule = [], [], []
    for m in range(n_molecules):
        rows, slots = np.nonzero(pair_molecule == m)
        keep = log10_vmr[rows, m] >= floors[m]
        rows, slots = rows[keep], slots[keep]
        if len(rows) > settings.references_per_molecule:
            pick = np.sort(rng.choice(len(rows), settings.references_per_molecule, replace=False))
            rows, slots = rows[pick], slots[pick]
        mean = depth[rows].mean(1, keepdims=True)
        chosen_depth.append(depth[rows] / mean)
        chosen_fingerprint.append(fingerprint_rows[pair_index[rows, slots]].astype(np.float32))
        chosen_molecule.append(np.full(len(rows), m))
    return ConstraintReferences(np.concatenate(chosen_depth).astype(np.float16),
                                np.concatenate(chosen_fingerprint).astype(np.float16),
                                np.concatenate(chosen_molecule), n_molecules, float(min_chi2), settings.min_fraction)


__all__ = ["ConstraintReferences", "ConstraintSettings", "build_references", "reference_floors"]
