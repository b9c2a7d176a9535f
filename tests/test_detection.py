"""Detection labels: stored fingerprints against the forward model, Delta chi^2 against a hand computation, the
three label states, and the shard format's version check."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from helpers.config import ROOT, tiny_generate_config
from robert.data.batches import RowFetcher, observe_rows, observe_split, observe_unlabelled
from robert.data.dataset import load_planet
from robert.errors import UserError
from robert.physics.model import forward_model_from_config
from robert.physics.priors import TemperatureParameters
from robert.simulate.generate import generate_planet
from robert.simulate.shards import list_shards, read_shard
from robert.spectra.detection import LabelSettings, State, gas_chi2, states, targets_and_weights
from robert.spectra.nuisance import NuisanceBasis, gas_templates
from robert.spectra.observation import ObservationPrior, Observer, PatternBank, network_inputs, observe


@pytest.fixture(scope="module")
def mixture_set(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixture")
    cfg = tiny_generate_config(tiny_cache, out, "composition=mixture", "composition.max_gases=3",
                               "dataset.spectra_per_planet=12", "dataset.shard_size=12")
    planet_dir = generate_planet(cfg, "hd209458b", ROOT, log=lambda m: None, progress=False)
    return cfg, tiny_cache, planet_dir


def hand_fingerprint(cfg, cache, shard, row: int, molecule: int) -> tuple[np.ndarray, np.ndarray]:
    """(D_with, D_with - D_without) of one stored spectrum, recomputed from its stored parameters."""
    model = forward_model_from_config(cfg, shard.molecules, cache)
    p = shard.params
    params = TemperatureParameters(**{k: torch.as_tensor(p[k][row:row + 1], dtype=torch.float64)
                                      for k in ("isothermal_temperature_K", "irradiation_temperature_K",
                                                "internal_temperature_K", "kappa_ir_cm2_g", "gamma")},
                                   isothermal=torch.as_tensor(p["isothermal"][row:row + 1] > 0.5))
    params = TemperatureParameters(**{k: v.to(model.settings.dtype) if v.is_floating_point() else v
                                      for k, v in vars(params).items()})
    vmr = torch.as_tensor(np.array([[p[f"vmr_{m}"][row] for m in shard.molecules]]), dtype=model.settings.dtype)
    temperature = model.temperature_profiles(params)
    with torch.no_grad():
        with_gas = model.depth_from_profiles(temperature, vmr).double()
        without = vmr.clone()
        without[0, molecule] = 0
        return with_gas[0].numpy(), (with_gas - model.depth_from_profiles(temperature, without).double())[0].numpy()


def test_stored_fingerprints_are_the_forward_models_difference(mixture_set):
    cfg, cache, planet_dir = mixture_set
    shard = read_shard(list_shards(planet_dir)[0])
    assert shard.delta_depth.dtype == np.float16
    # one stored pair per injected gas, ordered by row then molecule
    rows, molecules = np.nonzero(shard.labels)
    np.testing.assert_array_equal(shard.delta_pair, np.stack([rows, molecules], 1))
    for pair in (0, len(rows) // 2, len(rows) - 1):
        row, molecule = shard.delta_pair[pair]
        depth, delta = hand_fingerprint(cfg, cache, shard, row, molecule)
        np.testing.assert_allclose(depth, shard.eclipse_depth[row], rtol=1e-5)
        stored = shard.delta_depth[pair].astype(np.float64) * depth.mean()
        # float16 keeps 3 significant digits of the relative fingerprint
        np.testing.assert_allclose(stored, delta, rtol=2e-3, atol=2e-3 * np.abs(delta).max())


def test_delta_chi2_matches_a_hand_computation_with_one_sigma_and_with_per_bin_sigma(mixture_set):
    _, _, planet_dir = mixture_set
    spectra = load_planet(planet_dir.parent.parent, "mixture", "hd209458b", "regenerate")
    raw = RowFetcher(spectra)[list(range(len(spectra)))]
    depth, delta = raw["depth"].double(), raw["delta"].double()
    n, w = depth.shape
    grid = torch.arange(w)
    # one sigma per spectrum (SNR 10) and a per-bin sigma growing 10x across the grid
    for sigma in (depth.mean(1, keepdim=True).expand(n, w) / 10,
                  depth.mean(1, keepdim=True) / 10 * torch.logspace(-0.5, 0.5, w, dtype=torch.float64)):
        observation = observe(depth, grid.expand(n, w), sigma, torch.Generator().manual_seed(0), delta)
        hand = (delta / sigma[:, None, :]).pow(2).sum(-1)
        np.testing.assert_allclose(observation.chi2.numpy(), hand.numpy(), rtol=1e-9)
    # coarse bins: four cells per segment; the segment measures the mean, with sigma_seg = sqrt(sum sigma^2) / 4
    segments = (grid // 4).expand(n, w)
    sigma = depth.mean(1, keepdim=True).expand(n, w) / 10
    observation = observe(depth, segments, sigma, torch.Generator().manual_seed(0), delta)
    usable = (w // 4) * 4
    delta_seg = delta[..., :usable].reshape(n, delta.shape[1], -1, 4).mean(-1)
    sigma_seg = sigma[:, :usable].reshape(n, -1, 4).pow(2).sum(-1).sqrt() / 4
    tail = delta[..., usable:].mean(-1) ** 2 / (sigma[:, usable:].pow(2).sum(-1) / (w - usable) ** 2)[:, None]
    hand = (delta_seg / sigma_seg[:, None, :]).pow(2).sum(-1) + tail
    np.testing.assert_allclose(observation.chi2.numpy(), hand.numpy(), rtol=1e-9)


def test_a_gas_below_the_threshold_is_never_labelled_detected(mixture_set):
    _, _, planet_dir = mixture_set
    spectra = load_planet(planet_dir.parent.parent, "mixture", "hd209458b", "regenerate")
    fetcher = RowFetcher(spectra)
    observer = Observer(ObservationPrior.white(3.0), spectra.wavelength_um, {}, seed=0)
    settings = LabelSettings("detection", 9.0, "negative")
    batch = observe_rows(fetcher[list(range(len(spectra)))], observer, torch.Generator().manual_seed(1), settings)
    injected = torch.as_tensor(spectra.injected) > 0.5
    assert torch.all(batch.targets[batch.chi2 < 9.0] == 0)
    assert torch.all(batch.targets[~injected] == 0)
    assert torch.equal(batch.targets > 0, injected & (batch.chi2 >= 9.0))
    # low SNR buries some gases: the three states all occur, and ignore gives them no loss
    assert {int(s) for s in batch.states.unique()} == {State.ABSENT, State.DETECTED, State.UNDETECTABLE}
    _, weights = targets_and_weights(batch.states, LabelSettings("detection", 9.0, "ignore"))
    assert torch.equal(weights == 0, batch.states == int(State.UNDETECTABLE))
    # the paper's protocol: every injected gas is a positive
    targets, weights = targets_and_weights(batch.states, LabelSettings("injected", 9.0, "negative"))
    assert torch.equal(targets > 0, injected) and torch.all(weights == 1)


def test_an_unlabelled_split_is_the_observation_its_labelled_split_draws(mixture_set):
    """The false-alarm calibration observes without the fingerprints: the draws (patterns, SNRs, noise) must be
    those of the labelled split from the same seed, chunk for chunk."""
    _, _, planet_dir = mixture_set
    spectra = load_planet(planet_dir.parent.parent, "mixture", "hd209458b", "regenerate")
    observer = Observer(ObservationPrior.white(3.0), spectra.wavelength_um, {}, seed=0)
    settings = LabelSettings("detection", 9.0, "negative")
    labelled = observe_split(RowFetcher(spectra), observer, 5, settings, chunk=5)
    unlabelled = observe_unlabelled(RowFetcher(spectra), observer, 5, chunk=5)
    assert len(unlabelled) == len(spectra) and unlabelled.chi2 is None
    for name in ("values", "sigma", "mask"):
        assert torch.equal(getattr(unlabelled, name), getattr(labelled.observation, name)), name
    # a third chunk size draws other noise: the equality above is not two empty comparisons
    assert not torch.equal(observe_unlabelled(RowFetcher(spectra), observer, 5, chunk=7).values, unlabelled.values)


def test_gas_chi2_places_each_pair_in_its_molecules_column():
    pair_chi2 = torch.tensor([[4.0, 25.0], [16.0, 0.0]])
    pair_molecule = torch.tensor([[0, 2], [1, -1]])
    np.testing.assert_array_equal(gas_chi2(pair_chi2, pair_molecule, 3).numpy(), [[4, 0, 25], [0, 16, 0]])
    assert states(torch.tensor([[4.0, 0, 25]]), torch.tensor([[1.0, 0, 1]]), 9.0).tolist() == [[2, 0, 1]]


def test_noiseless_observation_detects_any_nonzero_fingerprint():
    depth = torch.ones(1, 5)
    delta = torch.tensor([[[0, 0, 1e-9, 0, 0], [0, 0, 0, 0, 0]]], dtype=torch.float32)
    observation = observe(depth, torch.arange(5)[None], None, None, delta)
    assert observation.chi2[0, 0] == torch.inf and observation.chi2[0, 1] == 0


def test_a_zero_error_bar_makes_a_difference_over_it_infinitely_significant():
    # row 0: a zero sigma under the first gas's difference; row 1: the same sigmas, shifted off the difference
    depth = torch.ones(2, 5)
    sigma = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0, 1.0]])
    delta = torch.tensor([[0, 0, 1e-3, 0, 0], [0, 0, 0, 0, 2.0]]).expand(2, 2, 5)
    chi2 = observe(depth, torch.arange(5).expand(2, 5), sigma, torch.Generator().manual_seed(0), delta).chi2
    assert chi2[0, 0] == torch.inf and chi2[0, 1] == pytest.approx(4.0)
    assert chi2[1].tolist() == pytest.approx([1e-6, 4.0])


def test_an_old_shard_is_one_clear_error_naming_the_command(mixture_set, tmp_path):
    _, _, planet_dir = mixture_set
    old = tmp_path / "mixture" / "hd209458b" / "shard-00000.h5"
    old.parent.mkdir(parents=True)
    old.write_bytes(list_shards(planet_dir)[0].read_bytes())
    with h5py.File(old, "a") as f:  # the layout of format 1: no fingerprints, no version
        del f.attrs["format_version"], f["delta_depth"], f["delta_pair"]
        f.create_dataset("detectability", data=np.zeros((12, 3), np.float32))
    with pytest.raises(UserError, match=r"format 1, written by an older RobERt .* regenerate it with "
                                        r"`dvc repro simulate@hd209458b`"):
        load_planet(tmp_path, "mixture", "hd209458b", "dvc repro simulate@hd209458b")


@pytest.mark.parametrize(("section", "message"), [
    ({"kind": "detection", "min_chi2": 0}, r"labels.min_chi2 must be a number > 0; got 0"),
    ({"kind": "detection", "min_chi2": -9}, r"labels.min_chi2 must be a number > 0; got -9"),
    ({"kind": "significance"}, r"unknown labels.kind 'significance'; expected one of: detection, injected"),
    ({"kind": "detection", "undetectable": "drop"}, r"unknown labels.undetectable 'drop'"),
    ({"kind": "detection", "profile": "all"}, r"unknown labels.profile 'all'; expected one of: gases, none"),
])
def test_bad_label_settings_are_one_line_errors(section, message):
    with pytest.raises(UserError, match=message):
        LabelSettings.from_config(section)


def test_offsets_between_instruments_are_profiled_out_of_delta_chi2():
    """Two instruments (groups 0 and 1): Delta chi^2 with the second one's level free equals a weighted least-squares
    fit of that offset by hand; a fingerprint that is only a level step between the instruments is never detected,
    and one inside the reference instrument alone keeps its whole significance."""
    segments = torch.tensor([[0, 0, 1, 1, 2, 2, -1, 3, 4, 5, -1, -1]])
    groups = torch.tensor([[0, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1, -1]])
    sigma = torch.linspace(0.5, 1.5, 12)[None]
    random = torch.randn(1, 1, 12, generator=torch.Generator().manual_seed(1))
    step = torch.zeros(1, 1, 12)
    step[0, 0, 7:10] = 3.0
    inside = torch.zeros(1, 1, 12)
    inside[0, 0, 2:4] = 1.0
    delta = torch.cat([random, step, inside], dim=1)
    depth = torch.full((1, 12), 100.0)
    free = observe(depth, segments, sigma, torch.Generator().manual_seed(2), delta, groups).chi2[0]
    fixed = observe(depth, segments, sigma, torch.Generator().manual_seed(2), delta).chi2[0]
    # by hand, per segment: the mean difference, its sigma, and the fitted offset of group 1
    ids = [[0, 1], [2, 3], [4, 5], [7], [8], [9]]
    seg_sigma = np.array([np.sqrt(sum(sigma[0, c].item() ** 2 for c in cells)) / len(cells) for cells in ids])
    weight = seg_sigma ** -2.0
    in_group1 = np.array([False, False, False, True, True, True])
    for k in range(3):
        seg_delta = np.array([delta[0, k, cells].mean().item() for cells in ids])
        whole = np.sum(weight * seg_delta ** 2)
        profiled = whole - np.sum((weight * seg_delta)[in_group1]) ** 2 / np.sum(weight[in_group1])
        assert fixed[k].item() == pytest.approx(whole, rel=1e-5)
        assert free[k].item() == pytest.approx(profiled, rel=1e-5, abs=1e-5)
    assert fixed[1] > 9.0 and free[1].item() == pytest.approx(0.0, abs=1e-5)
    assert free[2].item() == pytest.approx(fixed[2].item(), rel=1e-6)


def test_the_offset_prior_shifts_all_but_the_first_instrument_and_names_its_field():
    prior = ObservationPrior.from_config({"snr": 50.0, "offsets": {"relative_sigma": [0.01, 0.02]}})
    bank = PatternBank(torch.tensor([[0, 1, 2, 3, 4, 5]]), ["union"], torch.tensor([[0, 0, 0, 1, 1, 1]]))
    observer = Observer(prior, np.linspace(1.0, 2.0, 6), {}, seed=0, bank=bank)
    shifts = observer._offsets(torch.full((4000, 6), 2.0), bank.groups.expand(4000, 6), torch.Generator())
    assert torch.all(shifts[:, :3] == 0) and torch.all(shifts[:, 3:] == shifts[:, 3:4])
    spread = shifts[:, 3].std().item() / 2.0  # relative to the mean depth
    assert 0.01 < spread < 0.02
    for section, message in [({"relative_sigma": [0.0, 0.1]}, r"observation.offsets.relative_sigma"),
                             ({}, r"observation.offsets.relative_sigma"), ("big", r"observation.offsets")]:
        with pytest.raises(UserError, match=message):
            ObservationPrior.from_config({"snr": 50.0, "offsets": section})


def test_with_free_instrument_levels_the_network_reads_the_same_inputs_whatever_the_offset():
    """An observation that carries its instrument groups is encoded with each group against its own level: a
    constant added to the second instrument (any size) leaves every channel unchanged, as it leaves the profiled
    Delta chi^2; without the groups the same offset changes the inputs."""
    segments = torch.tensor([[0, 0, 1, 1, 2, 2, -1, 3, 4, 5, -1, -1]])
    groups = torch.tensor([[0, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1, -1]])
    depth = 100.0 + torch.randn(1, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    step = torch.zeros(1, 12, dtype=torch.float64)
    step[0, 7:10] = 7.5
    sigma = torch.full((1, 12), 0.5, dtype=torch.float64)
    channels = ["depth", "white", "mask"]

    def inputs(shift: torch.Tensor, with_groups: bool) -> torch.Tensor:
        seen = observe(depth + shift, segments, sigma, torch.Generator().manual_seed(4), None,
                       groups if with_groups else None)
        assert (seen.groups is not None) == with_groups
        return network_inputs(seen, channels)

    torch.testing.assert_close(inputs(step, True), inputs(0 * step, True))
    assert not torch.allclose(inputs(step, False), inputs(0 * step, False))
    # one instrument: the groups change nothing
    single = observe(depth, segments, sigma, torch.Generator().manual_seed(4), None, torch.where(segments >= 0, 0, -1))
    plain = observe(depth, segments, sigma, torch.Generator().manual_seed(4))
    torch.testing.assert_close(network_inputs(single, channels), network_inputs(plain, channels))


def test_a_single_pattern_bank_observes_every_row_the_same_way():
    bank = PatternBank.single(np.array([-1, 5, 5, 9, -1]))
    assert bank.segments.tolist() == [[-1, 0, 0, 1, -1]]


def _bump(n_cells: int, centre: float, width: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((torch.arange(n_cells, dtype=torch.float64) - centre) / width) ** 2)


def test_nuisance_columns_are_profiled_out_of_delta_chi2_as_a_weighted_least_squares_fit():
    """Delta chi^2 profiled over nuisance columns (and the second instrument's level, in one fit) equals a weighted
    least-squares fit by hand over the segments; a column left out of a pair's fit does not touch that pair; with
    empty columns the fit is the instrument offset's alone, the closed form of the offsets-only path."""
    segments = torch.tensor([[0, 0, 1, 1, 2, 2, -1, 3, 4, 5, -1, 6]])
    groups = torch.tensor([[0, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1, 1]])
    sigma = torch.linspace(0.5, 1.5, 12, dtype=torch.float64)[None]
    depth = torch.full((1, 12), 100.0, dtype=torch.float64)
    ramp, template = torch.linspace(-1, 1, 12, dtype=torch.float64), _bump(12, 3.0, 1.5)
    nuisance = torch.stack([ramp, template])[None]                          # (1, Q=2, W)
    random = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    delta = torch.stack([random, 4.0 * template, 4.0 * template])[None]    # (1, K=3, W)
    exclude = torch.tensor([[[False, False], [False, False], [False, True]]])
    profiled = observe(depth, segments, sigma, torch.Generator().manual_seed(2), delta, groups, nuisance,
                       exclude).chi2[0]
    ids = [[0, 1], [2, 3], [4, 5], [7], [8], [9], [11]]
    weight = np.array([len(c) ** 2 / sum(sigma[0, i].item() ** 2 for i in c) for c in ids])  # 1/sigma_seg^2
    mean = lambda v: np.array([v[c].mean().item() for c in ids])  # noqa: E731
    offset = np.array([0, 0, 0, 1, 1, 1, 1], dtype=float)
    for k, own_left_out in ((0, False), (1, False), (2, True)):
        columns = [mean(ramp), offset] + ([] if own_left_out else [mean(template)])
        design = np.stack(columns, 1) * np.sqrt(weight)[:, None]
        target = mean(delta[0, k]) * np.sqrt(weight)
        residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
        assert profiled[k].item() == pytest.approx(float(residual @ residual), rel=1e-6, abs=1e-6)
    assert profiled[1].item() == pytest.approx(0.0, abs=1e-6)  # another gas's template imitates it exactly
    assert profiled[2].item() > 9.0                               # its own template is not a nuisance
    empty = observe(depth, segments, sigma, torch.Generator().manual_seed(2), delta, groups,
                    torch.zeros_like(nuisance)).chi2[0]
    offsets_only = observe(depth, segments, sigma, torch.Generator().manual_seed(2), delta, groups).chi2[0]
    torch.testing.assert_close(empty, offsets_only, rtol=1e-9, atol=1e-9)


def test_a_gas_template_is_the_shared_shape_of_its_fingerprints():
    """Fingerprints that are scaled copies of one band shape give that shape (unit norm, largest entry positive);
    a gas that was never injected has no template."""
    shape = _bump(40, 12.0, 3.0).numpy() - 0.3 * _bump(40, 25.0, 2.0).numpy()
    scales = np.array([-2.0, 0.5, 1.5, -0.1])
    delta = (scales[:, None] * shape).astype(np.float16)
    pair_index = np.arange(4)[:, None]
    pair_molecule = np.zeros((4, 1), dtype=np.int64)
    templates = gas_templates(delta, pair_molecule, pair_index, n_molecules=2)
    np.testing.assert_allclose(templates[0], shape / np.linalg.norm(shape), atol=2e-3)
    assert not templates[1].any()


def test_profiled_labels_do_not_detect_a_feature_another_gas_imitates():
    """Gas 0's fingerprint is gas 1's band: a plain detection, but not once the other gases' templates are fitted;
    gas 1's own band stays detected (its template is not its own nuisance), and profiling only ever lowers Delta
    chi^2."""
    n_cells = 80
    wavelength = np.geomspace(1.0, 20.0, n_cells)
    band0, band1 = _bump(n_cells, 20.0, 2.0), _bump(n_cells, 55.0, 2.0)
    basis = NuisanceBasis.build(wavelength, torch.stack([band0, band1]).numpy() / np.sqrt(2 * np.pi ** 0.5 * 2))
    depth = torch.full((2, n_cells), 1e-3)
    raw = {"depth": depth, "injected": torch.tensor([[1.0, 0.0], [0.0, 1.0]]), "rows": torch.arange(2),
           "delta": torch.stack([-3e-4 * band1, -3e-4 * band1]).float()[:, None, :],
           "pair_molecule": torch.tensor([[0], [1]])}
    observer = Observer(ObservationPrior.white(10.0), wavelength, {}, seed=0)
    plain = observe_rows(raw, observer, torch.Generator().manual_seed(3), LabelSettings())
    profiled = observe_rows(raw, observer, torch.Generator().manual_seed(3), LabelSettings(profile="gases"), basis)
    assert plain.states.tolist() == [[State.DETECTED, State.ABSENT], [State.ABSENT, State.DETECTED]]
    assert profiled.states.tolist() == [[State.UNDETECTABLE, State.ABSENT], [State.ABSENT, State.DETECTED]]
    assert torch.all(profiled.chi2 <= plain.chi2 * (1 + 1e-6))
    assert torch.equal(profiled.observation.values, plain.observation.values)  # the same draw either way
    with pytest.raises(ValueError, match="labels.profile=gases needs the nuisance basis"):
        observe_rows(raw, observer, torch.Generator().manual_seed(3), LabelSettings(profile="gases"))
