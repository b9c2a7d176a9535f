"""Dataset generation: balanced labels, determinism, resumption, provenance, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.config import ROOT, tiny_generate_config
from robert.errors import UserError
from robert.simulate.generate import composition_labels, generate_planet
from robert.simulate.shards import list_shards, read_shard


@pytest.fixture(scope="module")
def tiny_dataset(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets")
    cfg = tiny_generate_config(tiny_cache, out)
    return cfg, generate_planet(cfg, "gj1214b", ROOT, log=lambda m: None, progress=False)


def test_single_gas_shards_are_balanced_and_carry_their_metadata(tiny_dataset):
    _, planet_dir = tiny_dataset
    shards = [read_shard(p) for p in list_shards(planet_dir)]
    labels = np.concatenate([s.labels for s in shards])
    assert labels.shape == (24, 3) and np.all(labels.sum(1) == 1)
    assert labels.sum(0).tolist() == [8, 8, 8]  # classes balanced
    first = shards[0]
    assert first.molecules == ["H2O", "CO", "CO2"] and first.planet == "gj1214b"
    assert first.provenance["H2O.xsec.h5"].startswith("line-list: HITRAN2012")
    assert "H2-H2.cia" in first.provenance
    assert first.eclipse_depth.dtype == np.float32 and first.eclipse_depth.shape[1] == 901
    assert np.all(np.isfinite(first.eclipse_depth)) and np.all(first.eclipse_depth > 0)
    present = first.labels.astype(bool)
    assert np.all(first.detectability[present] > 0) and np.all(np.isnan(first.detectability[~present]))
    assert not first.params["isothermal"].any()  # the default prior: Guillot profiles only
    for name in ("vmr_H2O", "gamma", "kappa_ir_cm2_g", "internal_temperature_K", "isothermal"):
        assert name in first.params
    np.testing.assert_array_equal(first.params["vmr_CO"] > 0, present[:, 1])


def test_same_seed_same_bytes_and_a_killed_run_resumes(tiny_dataset, tmp_path):
    cfg, planet_dir = tiny_dataset
    again = generate_planet(dict(cfg, dataset=dict(cfg["dataset"], out_dir=str(tmp_path))), "gj1214b", ROOT,
                            log=lambda m: None, progress=False)
    originals = [p.read_bytes() for p in list_shards(planet_dir)]
    assert [p.read_bytes() for p in list_shards(again)] == originals
    # a killed run: one shard missing, a half-written temporary file left behind
    list_shards(again)[1].unlink()
    (again / ".shard-00001.h5.partial.tmp").write_bytes(b"half")
    generate_planet(dict(cfg, dataset=dict(cfg["dataset"], out_dir=str(tmp_path))), "gj1214b", ROOT,
                    log=lambda m: None, progress=False)
    assert [p.read_bytes() for p in list_shards(again)] == originals


def test_no_gas_is_detectable_in_an_isothermal_atmosphere(tiny_cache, tmp_path):
    cfg = tiny_generate_config(tiny_cache, tmp_path, "simulate.temperature.isothermal_fraction=1.0",
                               "dataset.spectra_per_planet=6")
    shard = read_shard(list_shards(generate_planet(cfg, "gj1214b", ROOT, log=lambda m: None, progress=False))[0])
    assert shard.params["isothermal"].all()
    present = shard.labels.astype(bool)
    assert np.all(shard.detectability[present] < 1e-6)  # a blackbody, whatever the gas


def test_mixture_labels_hold_one_to_four_gases():
    import torch

    labels = composition_labels({"kind": "mixture", "min_gases": 1, "max_gases": 4}, 2000, 10, 0,
                                torch.Generator().manual_seed(1))
    sizes = labels.sum(1)
    assert sizes.min() == 1 and sizes.max() == 4
    assert set(torch.unique(sizes).tolist()) == {1.0, 2.0, 3.0, 4.0}
    assert torch.all((labels.mean(0) - 0.25).abs() < 0.04)  # every gas equally likely


@pytest.mark.parametrize(("overrides", "message"), [
    (["dataset.spectra_per_planet=0"], "dataset.spectra_per_planet must be a positive integer"),
    (["dataset.shard_size=-5"], "dataset.shard_size must be a positive integer"),
    (["dataset.molecules=[H2O,TiO]"], "molecule(s) TiO have no opacity in the cache"),
    (["composition=mixture", "composition.max_gases=7"], "composition.min_gases/max_gases must satisfy"),
    (["simulate.mixing_ratio.log10_range=[-2,-8]"], "simulate.mixing_ratio.log10_range is inverted"),
])
def test_bad_generate_config_is_a_clear_error(tiny_cache, tmp_path, overrides, message):
    cfg = tiny_generate_config(tiny_cache, tmp_path, *overrides)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate_planet(cfg, "gj1214b", ROOT, log=lambda m: None, progress=False)
