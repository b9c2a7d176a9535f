"""What an observer gets from a simulated spectrum: partial coverage, per-bin error bars, noise, significance.

A **coverage pattern** lives on the model grid (the simulator's 901 cells): each cell carries the index of the
observed bin ("segment") it belongs to, or -1 where nothing was observed. A native-resolution instrument gives
every covered cell its own segment; a coarser bin (a WFC3 bin of ~4 cells, a Spitzer band of ~50) is one
segment over several cells. Observing a clean spectrum D with per-cell errors sigma_cell:

* each segment measures the mean of D over its cells, with sigma_seg = sqrt(sum sigma_cell^2) / n_cells (the
  mean of independent cells), plus one Gaussian draw of that sigma;
* the network sees the measured value in every cell of the segment and the cell-equivalent error
  sigma_seg * sqrt(n_cells) (so that summing (signal / error)^2 over the cells of a flat signal gives the
  segment's own (signal / sigma_seg)^2), and a mask;
* the significance of a gas is Delta chi^2 = sum over segments (Delta D_seg / sigma_seg)^2, with Delta D =
  D_with - D_without the gas (stored by the simulator) averaged like D: the detection label's statistic
  (:mod:`robert.spectra.detection`).

Every row of a batch can have its own pattern, SNR and error shape: the segment sums are one ``scatter_add``
over the batch, so the same code runs on CPU and GPU with no Python loop over spectra.

The training prior over patterns (ASSUMPTIONS, weights in ``conf/observation/*.yaml``): the whole grid, the
instrument presets of ``conf/instrument/``, unions of two or three presets, random contiguous sub-ranges,
random sub-ranges re-binned to a coarser resolution, and any of these with random gaps cut out. A union is
several instruments: with ``observation.offsets`` each but the first gets a random level offset, which the
Delta chi^2 of the labels then profiles out (:class:`OffsetPrior`, :func:`profile_offsets`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from robert.config_checks import check_mapping, check_number, check_positive_int, check_range, check_weights
from robert.errors import UserError
from robert.spectra.coverage import Coverage
from robert.spectra.noise import NoiseShapes
from robert.spectra.nuisance import CONTINUUM_DEGREE, profile_nuisance
from robert.spectra.transforms import value_range

PATTERN_FAMILIES = ("full", "preset", "union", "subrange", "binned", "gapped")
CHANNELS = ("depth", "white", "detrended", "error", "mask")
# The error channel is tanh(sigma / range / ERROR_SCALE): ~linear below a quarter of the spectrum's range,
# saturating at 1 (= unobserved) above it. Min-max scaling of a noisy spectrum puts its range at >= ~5 sigma
# for white noise, so typical errors land in 0.1-0.8.
ERROR_SCALE = 0.25
# The white channel is each cell's deviation from the spectrum's mean in units of its error, z, squashed into
# [0, 1] as 0.5 + 0.5 tanh(asinh(z) / WHITE_SCALE): ~linear for |z| < 1, logarithmic up to |z| ~ 100 (a
# high-SNR continuum), so both a 1-sigma wiggle and a 50-sigma band stay visible.
WHITE_SCALE = 3.0


# --- coverage patterns ---------------------------------------------------------------------------------------


def preset_segments(coverage: Coverage, grid_um: np.ndarray) -> np.ndarray:
    """(W,) segment index of each grid cell for a coverage preset: the bin holding the cell's centre, else -1."""
    centres = np.asarray(grid_um, dtype=float)
    index = np.searchsorted(coverage.bin_low_um, centres, side="right") - 1
    inside = (index >= 0) & (centres <= coverage.bin_high_um[np.clip(index, 0, None)])
    return renumber(np.where(inside, index, -1))


def renumber(segments: np.ndarray) -> np.ndarray:
    """Segment ids 0, 1, ... in order of first appearance along the grid (-1 stays -1)."""
    segments = np.asarray(segments, dtype=np.int64)
    out = np.full_like(segments, -1)
    observed = segments >= 0
    if observed.any():
        _, first, inverse = np.unique(segments[observed], return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        out[observed] = order[inverse]
    return out


@dataclass(frozen=True)
class PatternPrior:
    """The coverage-pattern prior (``observation.coverage``), validated."""

    weights: dict[str, float]
    n_patterns: int
    min_cells: int
    bin_cells: tuple[int, int]
    max_gaps: int
    presets: tuple[str, ...]

    @classmethod
    def from_config(cls, section: Mapping, field: str = "observation.coverage") -> PatternPrior:
        check_mapping(section, field)
        bin_cells = check_range(section.get("bin_cells", (2, 8)), f"{field}.bin_cells", minimum=1)
        presets = section.get("presets") or ()
        if isinstance(presets, str) or not isinstance(presets, Sequence):
            raise UserError(f"{field}.presets must be a list of conf/instrument names; got {presets!r}")
        return cls(check_weights(section.get("weights"), f"{field}.weights", PATTERN_FAMILIES),
                   check_positive_int(section.get("n_patterns", 1024), f"{field}.n_patterns"),
                   check_positive_int(section.get("min_cells", 30), f"{field}.min_cells"),
                   (int(bin_cells[0]), int(bin_cells[1])),
                   int(check_number(section.get("max_gaps", 3), f"{field}.max_gaps", integer=True, minimum=0)),
                   tuple(str(p) for p in presets))

    @classmethod
    def full_only(cls) -> PatternPrior:
        return cls({"full": 1.0}, 1, 1, (1, 1), 0, ())


def _random_subrange(n_cells: int, min_cells: int, rng: np.random.Generator) -> tuple[int, int]:
    width = int(rng.integers(min(min_cells, n_cells), n_cells + 1))
    start = int(rng.integers(0, n_cells - width + 1))
    return start, start + width


def _cut_gaps(segments: np.ndarray, max_gaps: int, min_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Remove 1..max_gaps random stretches (each up to a fifth of the observed cells); keeps >= min_cells.

    A gap removes every segment it touches whole: an instrument bin (a photometric band) is measured over all
    of its cells or not at all, never over the part a gap leaves."""
    out = segments.copy()
    observed = np.flatnonzero(out >= 0)
    for _ in range(int(rng.integers(1, max(max_gaps, 1) + 1))):
        width = int(rng.integers(1, max(2, len(observed) // 5)))
        start = int(rng.integers(observed[0], max(observed[0] + 1, observed[-1] - width + 1)))
        trial = out.copy()
        touched = trial[start:start + width]
        trial[np.isin(trial, touched[touched >= 0])] = -1
        if (trial >= 0).sum() >= min_cells:
            out = trial
    return out


def sample_pattern(family: str, prior: PatternPrior, presets: Sequence[np.ndarray], n_cells: int,
                   rng: np.random.Generator) -> np.ndarray:
    """One (W,) segment pattern of ``family``."""
    if family == "full" or (family in ("preset", "union") and not presets):
        return np.arange(n_cells)
    if family == "preset":
        return presets[int(rng.integers(len(presets)))].copy()
    if family == "union":
        chosen = rng.choice(len(presets), size=min(len(presets), int(rng.integers(2, 4))), replace=False)
        union = np.full(n_cells, -1)
        for offset, index in enumerate(chosen):  # ids made distinct per preset; where presets overlap the first wins
            pattern = presets[index]
            # a bin reaching into cells an earlier preset holds is left out whole (no bin over part of its cells)
            taken = np.unique(pattern[(union >= 0) & (pattern >= 0)])
            free = (pattern >= 0) & ~np.isin(pattern, taken)
            union[free] = pattern[free] + (offset + 1) * n_cells
        return union
    if family == "subrange":
        start, stop = _random_subrange(n_cells, prior.min_cells, rng)
        pattern = np.full(n_cells, -1)
        pattern[start:stop] = np.arange(start, stop)
        return pattern
    if family == "binned":
        start, stop = _random_subrange(n_cells, prior.min_cells, rng)
        size = int(rng.integers(prior.bin_cells[0], prior.bin_cells[1] + 1))
        pattern = np.full(n_cells, -1)
        pattern[start:stop] = np.arange(stop - start) // size
        return pattern
    if family == "gapped":
        base = sample_pattern(str(rng.choice(["full", "preset", "union", "subrange"])), prior, presets, n_cells, rng)
        return _cut_gaps(base, prior.max_gaps, prior.min_cells, rng)
    raise UserError(f"unknown coverage family {family!r}; expected one of: {', '.join(PATTERN_FAMILIES)}")


def instrument_groups(raw_segments: np.ndarray, n_cells: int) -> np.ndarray:
    """(W,) instrument group of each cell of a pattern from :func:`sample_pattern` (-1 unobserved): a union's
    presets keep their segment ids apart by multiples of ``n_cells``, so ``id // n_cells`` names the preset a
    cell came from; every other family is one instrument (group 0)."""
    raw_segments = np.asarray(raw_segments, dtype=np.int64)
    return renumber(np.where(raw_segments >= 0, raw_segments // n_cells, -1))


@dataclass
class PatternBank:
    """Coverage patterns to draw from: (P, W) segment ids (-1 unobserved), the instrument group of each cell
    (-1 unobserved; groups are what :class:`OffsetPrior` shifts against each other) and each pattern's family."""

    segments: Tensor
    families: list[str]
    groups: Tensor | None = None  # None: one instrument per pattern

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = torch.where(self.segments >= 0, 0, -1)

    def __len__(self) -> int:
        return int(self.segments.shape[0])

    def to(self, device: torch.device | str) -> PatternBank:
        return PatternBank(self.segments.to(device), self.families, self.groups.to(device))

    @classmethod
    def single(cls, segments: np.ndarray, family: str = "full") -> PatternBank:
        return cls(torch.as_tensor(renumber(segments))[None], [family])


def build_pattern_bank(prior: PatternPrior, presets: Mapping[str, Coverage], grid_um: np.ndarray,
                       seed: int) -> PatternBank:
    """``prior.n_patterns`` patterns drawn by family weight from a seeded generator (the same bank every run)."""
    n_cells = len(grid_um)
    missing = sorted(set(prior.presets) - set(presets))
    if missing:
        raise UserError(f"observation.coverage.presets names {', '.join(missing)}, which conf/instrument/ does not "
                        f"have ({', '.join(sorted(presets))})")
    preset_patterns = [preset_segments(presets[name], grid_um) for name in prior.presets]
    rng = np.random.default_rng(seed)
    names = list(prior.weights)
    probabilities = np.array([prior.weights[k] for k in names]) / sum(prior.weights.values())
    families = [names[i] for i in rng.choice(len(names), size=prior.n_patterns, p=probabilities)]
    raw = [sample_pattern(f, prior, preset_patterns, n_cells, rng) for f in families]
    return PatternBank(torch.as_tensor(np.stack([renumber(r) for r in raw])), families,
                       torch.as_tensor(np.stack([instrument_groups(r, n_cells) for r in raw])))


# --- observing a batch ---------------------------------------------------------------------------------------


@dataclass
class Observation:
    """A batch of observed spectra on the model grid; every tensor (B, W) unless stated."""

    values: Tensor           # measured depth in each observed cell (its segment's value), 0 where unobserved
    sigma: Tensor            # cell-equivalent 1-sigma error (sigma_seg * sqrt(n_cells)); inf where unobserved
    mask: Tensor             # bool: observed
    chi2: Tensor | None = None  # (B, K) Delta chi^2 of each stored gas difference (None without differences)
    # (B, W) instrument group of each cell (-1 unobserved) when the levels between instruments are free
    # (offsets profiled out of chi2): the network then reads each group against its own mean (level_groups)
    groups: Tensor | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_observed(self) -> Tensor:
        return self.mask.sum(dim=1)

    def _map(self, function: Callable[[Tensor], Tensor]) -> Observation:
        """``function`` applied to every field that is set (None stays None)."""
        return replace(self, **{f.name: None if getattr(self, f.name) is None else function(getattr(self, f.name))
                                for f in fields(self)})

    def to(self, device: torch.device | str) -> Observation:
        return self._map(lambda t: t.to(device))

    def slice(self, start: int, stop: int) -> Observation:
        """Rows ``start:stop`` of every field."""
        return self._map(lambda t: t[start:stop])

    @classmethod
    def concat(cls, parts: Sequence[Observation]) -> Observation:
        """The rows of ``parts`` one after another (a field that the first part lacks stays None)."""
        first = parts[0]
        return replace(first, **{f.name: None if getattr(first, f.name) is None
                                 else torch.cat([getattr(p, f.name) for p in parts]) for f in fields(first)})


def _segment_index(segments: Tensor) -> tuple[Tensor, int]:
    """Flat scatter index: row b's segment s -> b * W + s; unobserved cells -> the dump slot B * W."""
    n_rows, n_cells = segments.shape
    dump = n_rows * n_cells
    offsets = torch.arange(n_rows, device=segments.device)[:, None] * n_cells
    observed = (segments >= 0).long()
    return (segments + offsets) * observed + dump * (1 - observed), dump + 1


def _segment_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    return torch.zeros(size, device=values.device, dtype=values.dtype).scatter_add_(0, index.flatten(),
                                                                                    values.flatten())


def _row_segment_sums(values: Tensor, row_index: Tensor) -> Tensor:
    """(B, Q, W) per-cell values -> (B, Q, W) sums over each row's segments, segment s in slot s (unobserved: none)."""
    n_rows, n_values, n_cells = values.shape
    return torch.zeros(n_rows, n_values, n_cells + 1, device=values.device, dtype=values.dtype).scatter_add_(
        2, row_index[:, None, :].expand(n_rows, n_values, n_cells), values)[..., :n_cells]


def observe(depth: Tensor, segments: Tensor, cell_sigma: Tensor | None, generator: torch.Generator | None,
            delta: Tensor | None = None, groups: Tensor | None = None, nuisance: Tensor | None = None,
            exclude: Tensor | None = None) -> Observation:
    """Observe clean spectra ``depth`` (B, W) through ``segments`` (B, W) with per-cell errors ``cell_sigma``.

    ``cell_sigma`` None is noiseless (the error channel is then 0 and ``chi2`` infinite where a difference is
    non-zero). ``delta`` (B, K, W): clean differences D_with - D_without of K gases per row (zeros for padding);
    their Delta chi^2 over the segments is returned in ``Observation.chi2``. ``groups`` (B, W): the instrument
    group of each cell; given, the level of every group but the first is a free parameter, profiled out of
    Delta chi^2 (:func:`profile_offsets`), as a retrieval fits an offset per instrument. ``nuisance`` (B, Q, W):
    columns that every difference is profiled over as well (with those offsets, in one fit), ``exclude`` (B, K, Q)
    leaving a column out of a difference's fit (:func:`robert.spectra.nuisance.profile_nuisance`).

    Written for speed on CPU as well as GPU (this runs on every training batch): blends by a float mask and
    ``index_select`` where ``torch.where`` and advanced indexing are several times slower on CPU (measured,
    benchmarks/train.py --speed).
    """
    index, size = _segment_index(segments)
    flat = index.flatten()
    cells = _segment_sum(torch.ones_like(depth), index, size)
    counts = cells.clamp(min=1.0)
    mean = _segment_sum(depth, index, size) / counts
    mask = segments >= 0
    if cell_sigma is None:
        variance_sum = torch.zeros_like(counts)
        sigma_seg = variance_sum
        measured = mean
    else:
        variance_sum = _segment_sum(cell_sigma.to(depth.dtype) ** 2, index, size)
        sigma_seg = variance_sum.sqrt() / counts
        noise = torch.randn(size, generator=generator, device=generator.device if generator else None,
                            dtype=depth.dtype).to(depth.device)
        measured = mean + sigma_seg * noise
    cell_sigma_seg = sigma_seg * counts.sqrt()
    # the dump slot (every unobserved cell) reads 0 for the value and inf for the error
    measured[-1], cell_sigma_seg[-1] = 0.0, torch.inf
    values = measured.index_select(0, flat).view_as(depth)
    sigma = cell_sigma_seg.index_select(0, flat).view_as(depth)
    chi2 = None
    if delta is not None:
        n_rows, n_gases, n_cells = delta.shape
        # per-row segment sums of every gas's difference: row b's segment s in slot s, unobserved in slot W
        row_index = (index - torch.arange(n_rows, device=depth.device)[:, None] * n_cells).clamp(max=n_cells)
        delta_sum = _row_segment_sums(delta.to(depth.dtype), row_index)
        variance = variance_sum[:-1].view(n_rows, 1, n_cells)
        with torch.no_grad():
            # (Delta D_seg / sigma_seg)^2 = (sum of Delta D)^2 / (sum of sigma^2): the cell counts cancel;
            # a difference with zero error (noiseless) is infinitely significant
            weight = torch.where(variance > 0, variance.reciprocal(), 0.0)
            counts_row = counts[:-1].view(n_rows, 1, n_cells)
            if nuisance is not None:  # the plain sum is taken inside, in float64, with the fit
                column_sum = _row_segment_sums(nuisance.to(depth.dtype), row_index)
                if exclude is None:
                    exclude = torch.zeros(n_rows, n_gases, nuisance.shape[1], dtype=torch.bool, device=depth.device)
                if groups is not None:  # an offset of instrument g adds its level to every cell of g's segments
                    segment_group = _segment_groups(groups, row_index)
                    levels = torch.arange(1, max(int(segment_group.max().item()) + 1, 1), device=depth.device)
                    offsets = (segment_group[:, None, :] == levels[None, :, None]) * counts_row
                    column_sum = torch.cat([column_sum, offsets.to(column_sum.dtype)], 1)
                    exclude = torch.cat([exclude, exclude.new_zeros(n_rows, n_gases, len(levels))], 2)
                chi2 = profile_nuisance(delta_sum, column_sum, weight, exclude)
            else:
                chi2 = (delta_sum.square() * weight).sum(dim=2)
                if groups is not None:
                    chi2 = profile_offsets(chi2, delta_sum * counts_row * weight, counts_row.square() * weight,
                                           groups, row_index)
            # a segment with cells but no error (noiseless, or zero sigma) makes any difference over it infinitely
            # significant; a slot without cells holds no difference. Checked per pair only where such a segment is
            # (with noise there is none: this skips a pass over every difference)
            zero_error = (variance_sum[:-1] == 0) & (cells[:-1] > 0)
            if cell_sigma is None or bool(zero_error.any()):
                undefined = ((delta_sum != 0) & zero_error.view(n_rows, 1, n_cells)).any(dim=2)
                chi2 = torch.where(undefined, torch.inf, chi2)
    return Observation(values, sigma, mask, chi2, groups)


def _segment_groups(groups: Tensor, row_index: Tensor) -> Tensor:
    """(B, W) instrument group of each segment slot (-1: no segment): all cells of a segment share their group."""
    n_rows, n_cells = groups.shape
    segment_group = torch.full((n_rows, n_cells + 1), -1, dtype=torch.long, device=groups.device)
    segment_group.scatter_(1, row_index, groups.long())
    return segment_group[:, :n_cells]


def profile_offsets(chi2: Tensor, weighted_delta: Tensor, weight: Tensor, groups: Tensor,
                    row_index: Tensor) -> Tensor:
    """Delta chi^2 (B, K) with a free level offset for every instrument group but the first, profiled out.

    Per segment s: ``weighted_delta`` = w_s Delta D_s (B, K, W) and ``weight`` = w_s = 1 / sigma_s^2 (B, 1, W),
    in segment slots; ``groups`` (B, W) per cell and ``row_index`` (B, W) each cell's segment slot (W = unobserved).
    Fitting an offset c_g to the difference over group g's segments removes (sum_g w Delta D)^2 / sum_g w from
    the sum of squares (weighted least squares of a constant): what is left is the part of the fingerprint no
    level shift between instruments can mimic."""
    # each segment's group (all cells of a segment share it), then per-group sums over segments
    segment_group = _segment_groups(groups, row_index)
    n_rows = segment_group.shape[0]
    n_groups = int(segment_group.max().item()) + 1
    if n_groups < 2:
        return chi2
    slot = torch.where(segment_group >= 1, segment_group, n_groups)  # group 0 (the reference) and empty: dump
    shape = (n_rows, weighted_delta.shape[1], n_groups + 1)
    fitted = torch.zeros(shape, dtype=chi2.dtype, device=chi2.device).scatter_add_(
        2, slot[:, None, :].expand_as(weighted_delta), weighted_delta)[..., 1:n_groups]
    total = torch.zeros(n_rows, 1, n_groups + 1, dtype=chi2.dtype, device=chi2.device).scatter_add_(
        2, slot[:, None, :], weight)[..., 1:n_groups]
    removed = torch.where(total > 0, fitted.square() / total.clamp(min=torch.finfo(chi2.dtype).tiny), 0.0)
    return (chi2 - removed.sum(dim=2)).clamp(min=0.0)


def level_groups(values: Tensor, groups: Tensor) -> Tensor:
    """``values`` (B, W) with every instrument group's mean over its cells moved to that of group 0.

    What the network reads when the levels between instruments are free: a constant offset of a group (any
    size) leaves the result unchanged, as it leaves the profiled Delta chi^2 of the labels unchanged
    (:func:`profile_offsets`); what remains is each instrument's shape, the first one's level and range.
    Unobserved cells (group -1) are returned as they are."""
    n_groups = int(groups.max().item()) + 1
    if n_groups < 2:
        return values
    observed = (groups >= 0).to(values.dtype)
    slot = groups.clamp(min=0)
    sums = torch.zeros(values.shape[0], n_groups, dtype=values.dtype, device=values.device)
    counts = torch.zeros_like(sums).scatter_add_(1, slot, observed)
    means = sums.scatter_add_(1, slot, values * observed) / counts.clamp(min=1)
    shift = (means[:, :1] - means).gather(1, slot)
    return values + shift * observed


def observed_mean(depth: Tensor, mask: Tensor) -> Tensor:
    """(B,) mean of ``depth`` (B, W) over the cells where ``mask`` is true."""
    return torch.where(mask, depth, torch.zeros_like(depth)).sum(1) / mask.sum(1).clamp(min=1)


def cell_sigma_for(depth: Tensor, mask: Tensor, snr: Tensor, shape: Tensor) -> Tensor:
    """Per-cell errors: ``shape`` (B, W) scaled so that its median over the observed cells is mean(depth)/snr."""
    observed_depth = observed_mean(depth, mask)
    median_shape = torch.where(mask, shape, torch.full_like(shape, torch.nan)).nanmedian(dim=1).values
    return shape * (observed_depth / snr / median_shape)[:, None]


# --- what the network sees -----------------------------------------------------------------------------------


def network_inputs(observation: Observation, channels: Sequence[str]) -> Tensor:
    """(B, C * W) network input: the chosen channels side by side, each in [0, 1].

    ``depth``: min-max scaled over the observed cells (0 where unobserved); ``white``: the whitened deviation from
    the observed mean, 0.5 + 0.5 tanh(asinh(z) / WHITE_SCALE), 0.5 where unobserved (noiseless: +-1 sigma is
    infinite, so the channel holds the sign); ``detrended``: the same squashing of the deviation from the row's own
    quadratic continuum (:func:`detrended_deviation`); ``error``: tanh(sigma / range / ERROR_SCALE), 1 where
    unobserved; ``mask``: 1 observed, 0 not. Measured (docs/training.md): a deviation channel makes a network learn
    detections faster than the min-max spectrum alone, since a band's significance is its size in sigma, and
    ``detrended`` far faster than ``white``, whose deviations a continuum spanning tens of sigma dominates.
    """
    values, mask = observation.values, observation.mask
    if observation.groups is not None:
        values = level_groups(values, observation.groups)
    observed = mask.to(values.dtype)
    low, span = value_range(values, mask)
    # blends by the float mask instead of torch.where, and the white channel's tanh(asinh(z) / s) as a sigmoid of
    # an asinh from log1p and sqrt: the same values, several times faster on CPU (every training batch runs this)
    parts = []
    for channel in channels:
        if channel == "depth":
            parts.append((values - low).div_(span).nan_to_num_().mul_(observed))
        elif channel == "white":
            mean = (values * observed).sum(1, keepdim=True) / observed.sum(1, keepdim=True).clamp(min=1)
            # sigma 0 (noiseless): the channel holds the sign, |z| capped at 1e6; inf (unobserved): z = 0
            z = (values - mean).mul_(observed).div_(observation.sigma.clamp(min=torch.finfo(values.dtype).tiny))
            parts.append(_squashed(z.clamp_(-1e6, 1e6)))
        elif channel == "detrended":
            parts.append(_squashed(detrended_deviation(values, observed, observation.sigma)))
        elif channel == "error":  # not a default channel: kept in its plain form
            parts.append(torch.where(mask, torch.tanh(observation.sigma / span / ERROR_SCALE), torch.ones_like(values)))
        elif channel == "mask":
            parts.append(observed)
        else:
            raise UserError(f"unknown input channel {channel!r}; expected some of: {', '.join(CHANNELS)}")
    return torch.cat(parts, dim=1)


@functools.cache
def _powers(n_cells: int, degree: int, device: torch.device) -> Tensor:
    """(W, 2 degree + 1) float64 powers x^k of the cell position x in [-1, 1] (log wavelength on the model grid)."""
    x = torch.linspace(-1.0, 1.0, n_cells, dtype=torch.float64, device=device)
    return torch.stack([x ** k for k in range(2 * degree + 1)], 1)


def detrended_deviation(values: Tensor, observed: Tensor, sigma: Tensor,
                        degree: int = CONTINUUM_DEGREE) -> Tensor:
    """(B, W) each observed cell's deviation, in sigma, from the row's weighted least-squares continuum: a
    polynomial of ``degree`` in log wavelength over the observed cells (unobserved: 0; |z| capped at 1e6).

    The model grid is evenly spaced in log wavelength, so the cell position stands in for log wavelength. Why: an
    emission continuum spans many sigma across 1-20 um (the deviation from the mean has an RMS of ~8 sigma at SNR 10
    on the test spectra), which squashes a band of a few sigma per bin into the channel's flat tail; after a
    quadratic the RMS is ~1 sigma and a fingerprint keeps ~4/5 of its Delta chi^2 (measured, docs/training.md).
    A noiseless row (sigma 0) is fitted unweighted; the deviation then holds the sign, as the white channel's.
    The normal equations come from weighted moments, sum w x^k, as two float64 matrix products (a coverage of a few
    per cent of the grid leaves the powers nearly collinear: float64 keeps the fit; per-cell temporaries of a
    large batch are what costs on CPU, so there are few)."""
    powers = _powers(values.shape[1], degree, values.device)
    inverse = sigma.reciprocal().mul_(observed)                # 1 / sigma, 0 where unobserved
    scale = inverse.amax(1, keepdim=True)
    noiseless = ~torch.isfinite(scale)
    weight = inverse.div_(scale.where(~noiseless, 1.0)).square_()  # relative to the row's smallest error
    if bool(noiseless.any()):
        weight = torch.where(noiseless, observed, weight)
    weight = weight.double()
    moments = weight @ powers                                  # (B, 2 degree + 1)
    index = torch.arange(degree + 1, device=values.device)
    gram = moments[:, index[:, None] + index[None, :]]         # (B, Q, Q)
    gram = gram + torch.diag_embed(1e-12 * torch.diagonal(gram, dim1=1, dim2=2) + 1e-300)
    rhs = weight.mul_(values) @ powers[:, :degree + 1]         # (B, Q)
    coefficients = torch.linalg.solve(gram, rhs[..., None])[..., 0]
    continuum = (coefficients @ powers[:, :degree + 1].T).to(values.dtype)
    z = continuum.neg_().add_(values).mul_(observed).div_(sigma.clamp(min=torch.finfo(values.dtype).tiny))
    return z.nan_to_num_(0.0).clamp_(-1e6, 1e6)


def _squashed(z: Tensor) -> Tensor:
    """A deviation channel: 0.5 + 0.5 tanh(asinh(z) / WHITE_SCALE) = sigmoid(2 asinh(z) / WHITE_SCALE), so 0.5
    where z is 0 (both callers set z = 0 in unobserved cells). Differentiable in z (the optimisation dream ascends
    through it: no in-place step overwrites a value that autograd keeps)."""
    return _asinh(z).mul_(2.0 / WHITE_SCALE).sigmoid_()


def _asinh(z: Tensor) -> Tensor:
    """asinh from log1p and sqrt (torch.asinh has no vectorised CPU kernel: ~5x slower), accurate near 0 too:
    sign(z) log1p(|z| + z^2 / (1 + sqrt(z^2 + 1))), in place on two temporaries (each new tensor of a large batch
    costs page faults). Under autograd (``z`` requires a gradient: one dreamt spectrum, not a batch) torch's own,
    since the in-place chain overwrites what its backward pass would need."""
    if z.requires_grad:
        return torch.asinh(z)
    size = z.abs()
    square = size * size
    root = (square + 1.0).sqrt_().add_(1.0)
    return square.div_(root).add_(size).log1p_().copysign_(z)


# --- the observation prior -----------------------------------------------------------------------------------


def parse_snr(value: object, field: str) -> tuple[float, float] | None:
    """``snr``: a number (fixed), a [low, high] pair (log-uniform per spectrum) or null (noiseless)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        snr = check_number(value, field, minimum=0.0, strictly_above=True)
        return snr, snr
    return check_range(value, field, minimum=0.0, strictly_above=True)


@dataclass(frozen=True)
class OffsetPrior:
    """Level offsets between the instruments of one spectrum (``observation.offsets``).

    Spectra stitched from several instruments (WFC3 + Spitzer, NIRISS + NIRSpec) carry relative offsets of the
    order of their error bars or more (different visits, stellar activity, systematics models); retrievals fit
    one per instrument. Every instrument group but the first is shifted by c_g ~ N(0, s <D>), s drawn
    log-uniform in ``relative_sigma`` per spectrum (<D>: the observed mean depth), and the detection labels
    profile those offsets out (:func:`profile_offsets`): a gas counts as detected only through what an offset
    cannot mimic."""

    relative_sigma: tuple[float, float]

    @classmethod
    def from_config(cls, section: object, field: str = "observation.offsets") -> OffsetPrior | None:
        if section is None:
            return None
        check_mapping(section, field)
        low, high = check_range(section.get("relative_sigma"), f"{field}.relative_sigma", minimum=0.0,
                                strictly_above=True)
        return cls((float(low), float(high)))


@dataclass(frozen=True)
class ObservationPrior:
    """How training spectra are observed (``conf/observation/*.yaml``): SNR, error shapes, coverage patterns,
    offsets between instruments (None: none)."""

    snr: tuple[float, float] | None
    noise: NoiseShapes
    coverage: PatternPrior
    offsets: OffsetPrior | None = None

    @classmethod
    def from_config(cls, section: Mapping, field: str = "observation") -> ObservationPrior:
        check_mapping(section, field)
        noise = section.get("noise")
        return cls(parse_snr(section.get("snr"), f"{field}.snr"),
                   NoiseShapes.white_only() if noise is None else NoiseShapes.from_config(noise, f"{field}.noise"),
                   PatternPrior.full_only() if section.get("coverage") is None
                   else PatternPrior.from_config(section["coverage"], f"{field}.coverage"),
                   OffsetPrior.from_config(section.get("offsets"), f"{field}.offsets"))

    @classmethod
    def white(cls, snr: float | None) -> ObservationPrior:
        """Full coverage, one sigma per spectrum (the paper-regime convention)."""
        fixed = None if snr is None else (float(snr), float(snr))
        return cls(fixed, NoiseShapes.white_only(), PatternPrior.full_only())

    @property
    def full_coverage_only(self) -> bool:
        return set(self.coverage.weights) == {"full"}


def log_uniform(low: float, high: float, n: int, generator: torch.Generator | None) -> Tensor:
    """(n,) float64 draws, log-uniform in [low, high]."""
    return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * torch.rand(n, generator=generator,
                                                                                 dtype=torch.float64))


class Observer:
    """Draws an observation for every row of a batch from an :class:`ObservationPrior` (or fixed choices).

    The coverage patterns and error shapes are drawn once from ``seed`` (banks of a few thousand); each spectrum
    then picks one of each and its SNR from the generator it is given.
    """

    def __init__(self, prior: ObservationPrior, wavelength_um: np.ndarray, presets: Mapping[str, Coverage],
                 seed: int, bank: PatternBank | None = None, n_shapes: int = 4096) -> None:
        self.prior = prior
        self.wavelength_um = torch.as_tensor(np.asarray(wavelength_um, dtype=np.float64))
        self.bank = bank or build_pattern_bank(prior.coverage, presets, np.asarray(wavelength_um), seed)
        self.n_groups = int(self.bank.groups.max().item()) + 1  # instrument groups of the widest pattern
        # error shapes drawn once, like the patterns: a batch picks rows of this bank (no per-batch float64 work)
        shapes = 1 if set(prior.noise.weights) == {"white"} else n_shapes
        self.shapes = prior.noise.sample(self.wavelength_um, shapes, torch.Generator().manual_seed(seed))

    def __call__(self, depth: Tensor, generator: torch.Generator, delta: Tensor | None = None,
                 nuisance: Tensor | None = None, exclude: Tensor | None = None) -> Observation:
        """One observation of every row of ``depth``; ``delta``, ``nuisance``, ``exclude``: see :func:`observe`."""
        n = depth.shape[0]
        cpu = torch.device("cpu")
        # draws on a CPU generator in a fixed order: the same observation on any device
        gen = generator if generator.device == cpu else None
        pattern = torch.randint(len(self.bank), (n,), generator=gen)
        segments = self.bank.segments[pattern].to(depth.device)
        if self.prior.snr is None:
            return observe(depth, segments, None, None, delta, nuisance=nuisance, exclude=exclude)
        snr = log_uniform(*self.prior.snr, n, gen)
        shape = self.shapes[torch.randint(len(self.shapes), (n,), generator=gen)]
        sigma = cell_sigma_for(depth, segments >= 0, snr.to(depth.device, depth.dtype), shape.to(depth.device))
        groups = None
        if self.prior.offsets is not None:  # drawn only when configured: other priors keep their random stream
            groups = self.bank.groups[pattern].to(depth.device)
            depth = depth + self._offsets(depth, groups, gen)
        return observe(depth, segments, sigma, generator, delta, groups, nuisance, exclude)

    def _offsets(self, depth: Tensor, groups: Tensor, gen: torch.Generator | None) -> Tensor:
        """(B, W) level offset of each cell: 0 in the first instrument group, c_g ~ N(0, s <D>) in the others."""
        n = depth.shape[0]
        scale = log_uniform(*self.prior.offsets.relative_sigma, n, gen)
        draws = torch.randn(n, max(self.n_groups, 1), generator=gen, dtype=torch.float64)
        draws[:, 0] = 0.0
        observed = groups >= 0
        per_group = (draws * scale[:, None]).to(depth.device, depth.dtype) * observed_mean(depth, observed)[:, None]
        return torch.where(observed, per_group.gather(1, groups.clamp(min=0)), 0.0)


__all__ = ["CHANNELS", "ERROR_SCALE", "WHITE_SCALE", "Observation", "ObservationPrior", "Observer", "OffsetPrior",
           "PatternBank", "PatternPrior", "build_pattern_bank", "cell_sigma_for", "instrument_groups",
           "level_groups", "log_uniform", "network_inputs", "observe", "observed_mean", "parse_snr", "preset_segments",
           "profile_offsets", "renumber", "sample_pattern"]
