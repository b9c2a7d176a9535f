"""Dataset generation (shard format 2): balanced labels, every injected gas's fingerprint and only those,
determinism, resumption, the fingerprint rule of a regime (dataset.acceptance), clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.config import ROOT, tiny_generate_config
from robert.errors import UserError
from robert.physics.model import forward_model_from_config
from robert.simulate.generate import Acceptance, composition_labels, generate_planet, simulate_rows
from robert.simulate.shards import FORMAT_VERSION, list_shards, read_shard


def generate(cfg: dict, planet: str = "gj1214b"):
    return generate_planet(cfg, planet, ROOT, log=lambda m: None, progress=False)


def read_all(planet_dir) -> list:
    return [read_shard(p) for p in list_shards(planet_dir)]


def feature_snr(shard, snr: float) -> np.ndarray:
    """(P,) each stored fingerprint's S/N over the whole grid under white noise sigma = mean depth / snr."""
    return snr * np.sqrt((shard.delta_depth.astype(np.float64) ** 2).sum(1))


@pytest.fixture(scope="module")
def tiny_dataset(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets")
    cfg = tiny_generate_config(tiny_cache, out)
    return cfg, generate(cfg)


def test_single_gas_shards_are_balanced_and_carry_their_metadata(tiny_dataset):
    _, planet_dir = tiny_dataset
    shards = read_all(planet_dir)
    labels = np.concatenate([s.labels for s in shards])
    assert labels.shape == (24, 3) and np.all(labels.sum(1) == 1)
    assert labels.sum(0).tolist() == [8, 8, 8]  # classes balanced
    first = shards[0]
    assert first.molecules == ["H2O", "CO", "CO2"] and first.planet == "gj1214b"
    assert first.provenance["H2O.xsec.h5"].startswith("line-list: HITRAN2012")
    assert "H2-H2.cia" in first.provenance
    assert first.eclipse_depth.dtype == np.float32 and first.eclipse_depth.shape[1] == 901
    assert np.all(np.isfinite(first.eclipse_depth)) and np.all(first.eclipse_depth > 0)
    assert not first.params["isothermal"].any()  # the default prior: Guillot profiles only
    for name in ("vmr_H2O", "gamma", "kappa_ir_cm2_g", "internal_temperature_K", "isothermal"):
        assert name in first.params
    np.testing.assert_array_equal(first.params["vmr_CO"] > 0, first.labels[:, 1].astype(bool))
    assert json.loads(first.extra_attrs["acceptance"]) is None  # no fingerprint rule in the default set


def test_every_injected_gas_has_its_fingerprint_and_no_other_gas_has_one(tiny_dataset):
    for shard in read_all(tiny_dataset[1]):
        rows, molecules = np.nonzero(shard.labels)
        np.testing.assert_array_equal(shard.delta_pair, np.stack([rows, molecules], 1))  # by row, then molecule
        assert shard.delta_depth.dtype == np.float16 and shard.delta_depth.shape == (len(rows), 901)
        # a gas leaves a trace: its fingerprint is non-zero, finite, and mostly absorption in these Guillot
        # atmospheres (D_with - D_without, relative to the mean depth)
        assert np.all(np.isfinite(shard.delta_depth)) and np.all(np.abs(shard.delta_depth).max(1) > 1e-3)


def test_mixtures_hold_one_to_max_gases_each_with_its_fingerprint(tiny_cache, tmp_path):
    cfg = tiny_generate_config(tiny_cache, tmp_path, "composition=mixture", "composition.max_gases=2",
                               "dataset.spectra_per_planet=16", "dataset.shard_size=16")
    shard = read_all(generate(cfg))[0]
    sizes = shard.labels.sum(1)
    assert set(sizes.tolist()) == {1, 2}  # 1..max_gases, both drawn
    rows, molecules = np.nonzero(shard.labels)
    np.testing.assert_array_equal(shard.delta_pair, np.stack([rows, molecules], 1))
    assert (tmp_path / "mixture" / "gj1214b").is_dir() and shard.composition == "mixture"


def test_mixture_labels_hold_one_to_four_gases():
    labels = composition_labels({"kind": "mixture", "min_gases": 1, "max_gases": 4}, 2000, 10, 0,
                                torch.Generator().manual_seed(1))
    sizes = labels.sum(1)
    assert set(torch.unique(sizes).tolist()) == {1.0, 2.0, 3.0, 4.0}
    assert torch.all((labels.mean(0) - 0.25).abs() < 0.04)  # every gas equally likely (mean size 2.5 of 10)


def test_same_seed_same_bytes_and_a_killed_run_resumes(tiny_dataset, tmp_path):
    cfg, planet_dir = tiny_dataset
    again = generate(dict(cfg, dataset=dict(cfg["dataset"], out_dir=str(tmp_path))))
    originals = [p.read_bytes() for p in list_shards(planet_dir)]
    assert [p.read_bytes() for p in list_shards(again)] == originals
    # a killed run: one shard missing, a half-written temporary file left behind
    list_shards(again)[1].unlink()
    (again / ".shard-00001.h5.partial.tmp").write_bytes(b"half")
    generate(dict(cfg, dataset=dict(cfg["dataset"], out_dir=str(tmp_path))))
    assert [p.read_bytes() for p in list_shards(again)] == originals


def test_an_isothermal_atmosphere_leaves_no_fingerprint(tiny_cache, tmp_path):
    cfg = tiny_generate_config(tiny_cache, tmp_path, "simulate.temperature.isothermal_fraction=1.0",
                               "dataset.spectra_per_planet=6")
    shard = read_all(generate(cfg))[0]
    assert shard.params["isothermal"].all() and len(shard.delta_pair) == 6
    # a blackbody whatever the gas: removing it changes nothing (float16 flushes below 6e-8)
    assert np.abs(shard.delta_depth.astype(np.float64)).max() < 1e-6


def test_the_fingerprint_rule_keeps_only_spectra_whose_gases_reach_it(tiny_dataset, tiny_cache, tmp_path):
    _, planet_dir = tiny_dataset
    snr = 20.0
    unruled = np.concatenate([feature_snr(s, snr) for s in read_all(planet_dir)])
    threshold = float(np.quantile(unruled, 0.3))  # a third of the freely drawn gases fall short of it
    rule = f"dataset.acceptance={{min_feature_snr:{threshold},snr:{snr}}}"
    shards = read_all(generate(tiny_generate_config(tiny_cache, tmp_path, rule, "dataset.spectra_per_planet=12",
                                                    "dataset.shard_size=12")))
    ruled = np.concatenate([feature_snr(s, snr) for s in shards])
    # float16 storage moves a fingerprint's norm by < 0.1 %
    assert len(ruled) == 12 and ruled.min() >= threshold * 0.999, (threshold, np.sort(ruled)[:3])
    labels = np.concatenate([s.labels for s in shards])
    assert labels.sum(0).tolist() == [4, 4, 4] and np.all(labels.sum(1) == 1)  # redrawn, not dropped
    assert json.loads(shards[0].extra_attrs["acceptance"]) == {"min_feature_snr": threshold, "snr": snr}
    for shard in shards:
        rows, molecules = np.nonzero(shard.labels)
        np.testing.assert_array_equal(shard.delta_pair, np.stack([rows, molecules], 1))
        # the parameters stored are those of the spectrum kept: its gas is at its stored abundance
        vmr = np.stack([shard.params[f"vmr_{m}"] for m in shard.molecules], 1)
        np.testing.assert_array_equal(vmr > 0, shard.labels.astype(bool))


def test_an_unreachable_fingerprint_rule_is_one_line_naming_the_field(tiny_dataset, tiny_cache):
    cfg, _ = tiny_dataset
    model = forward_model_from_config(cfg, cfg["dataset"]["molecules"], tiny_cache)
    labels = torch.eye(3, dtype=torch.float64)[[0, 2]]
    # the generator's own loop, with 3 draws per spectrum instead of 50 (the time of the test)
    with pytest.raises(UserError, match=r"^dataset\.acceptance: 2 of 2 spectra still show a gas below feature S/N "
                                        r"1e\+09 \(white noise, SNR 20\) after 3 draws each; lower "
                                        r"dataset\.acceptance\.min_feature_snr") as caught:
        simulate_rows(model, model.settings, model.planet, labels, Acceptance(1e9, 20.0, max_rounds=3),
                      torch.Generator().manual_seed(0))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("overrides", "message"), [
    (["dataset.spectra_per_planet=0"], "dataset.spectra_per_planet must be a positive integer"),
    (["dataset.shard_size=-5"], "dataset.shard_size must be a positive integer"),
    (["dataset.molecules=[H2O,TiO]"], "molecule(s) TiO have no opacity in the cache"),
    (["composition=mixture", "composition.max_gases=7"], "composition.min_gases/max_gases must satisfy"),
    (["simulate.mixing_ratio.log10_range=[-2,-8]"], "simulate.mixing_ratio.log10_range is inverted"),
    (["dataset.acceptance={min_feature_snr:-3,snr:20}"],
     "dataset.acceptance.min_feature_snr must be a positive number; got -3"),
    (["dataset.acceptance={min_feature_snr:30}"], "dataset.acceptance.snr must be a positive number; got None"),
])
def test_bad_generate_config_is_a_clear_error(tiny_cache, tmp_path, overrides, message):
    cfg = tiny_generate_config(tiny_cache, tmp_path, *overrides)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        generate(cfg)
    assert "\n" not in str(caught.value)
    assert FORMAT_VERSION == 2 and not any(tmp_path.rglob("shard-*.h5"))
