"""The real input files: obtained from pinned archives, verified, restored, described."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from helpers.config import ROOT, compose_config
from robert.errors import UserError
from robert.inputs import fetch


@pytest.fixture()
def inputs(tmp_path):
    """The configured inputs, writing into a temporary data dir but reusing the download cache."""
    cfg = compose_config("fetch_data")["inputs"]
    cfg["data_dir"] = str(tmp_path / "data")
    cfg["download_cache"] = str(ROOT / cfg["download_cache"])
    return cfg


def test_every_data_file_matches_its_pinned_sha256(data_dir):
    cfg = compose_config("fetch_data")["inputs"]
    for name, spec in cfg["files"].items():
        assert fetch.sha256_file(data_dir / name) == spec["sha256"], name


def test_manifest_records_origin_citation_and_licence(data_dir):
    manifest = yaml.safe_load((data_dir / "MANIFEST.yaml").read_text())
    cfg = compose_config("fetch_data")["inputs"]
    assert set(manifest) == set(cfg["files"])
    for name, entry in manifest.items():
        for key in ("origin", "path_in_archive", "sha256", "citation", "licence"):
            assert entry[key], f"{name}: {key}"
        assert "==" in entry["origin"]  # a pinned package version
    assert "hot bands" in manifest["H2O_hitran2012.par"]["caveat"]


def test_second_fetch_downloads_nothing_and_corruption_is_restored(inputs, tmp_path, monkeypatch):
    first = fetch.fetch_inputs(inputs, ROOT, log=lambda m: None)
    assert set(first.values()) == {"extracted"}
    manifest_bytes = (tmp_path / "data" / "MANIFEST.yaml").read_bytes()
    assert manifest_bytes == (ROOT / "data" / "MANIFEST.yaml").read_bytes()  # deterministic

    def no_download(*args, **kwargs):
        raise AssertionError("a second fetch must not download")

    monkeypatch.setattr(subprocess, "run", no_download)
    assert set(fetch.fetch_inputs(inputs, ROOT, log=lambda m: None).values()) == {"ok"}

    target = tmp_path / "data" / "tips_2021.csv"
    target.write_text("corrupted")
    (tmp_path / "data" / "CO_hitemp_2-0_sample.par").unlink()
    messages: list[str] = []
    again = fetch.fetch_inputs(inputs, ROOT, log=messages.append)
    assert again["tips_2021.csv"] == "restored" and again["CO_hitemp_2-0_sample.par"] == "extracted"
    assert any("fails its sha256 check" in m for m in messages)
    assert fetch.sha256_file(target) == inputs["files"]["tips_2021.csv"]["sha256"]


def test_sha256_mismatch_is_a_clear_error(inputs):
    inputs["files"] = {"CO_hitemp_2-0_sample.par": dict(inputs["files"]["CO_hitemp_2-0_sample.par"],
                                                        sha256="0" * 64)}
    with pytest.raises(UserError, match="sha256 mismatch for CO_hitemp_2-0_sample.par"):
        fetch.fetch_inputs(inputs, ROOT, log=lambda m: None)


def test_corrupted_archive_in_the_cache_is_downloaded_again(inputs, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    spec = inputs["archives"]["exojax"]
    (cache / spec["filename"]).write_bytes(b"not a wheel")
    calls = []

    def fake_pip(cmd, **kwargs):  # stands in for the registry: copy the genuine archive
        calls.append(cmd)
        shutil.copy(ROOT / inputs["download_cache"] / spec["filename"], cmd[cmd.index("-d") + 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    path = fetch.ensure_archive("exojax", spec, cache, log=lambda m: None)
    assert len(calls) == 1 and spec["requirement"] in calls[0]
    assert fetch.sha256_file(path) == spec["sha256"]


def test_tips_unpickler_refuses_anything_but_numpy():
    import pickle

    payload = pickle.dumps({"temp": [1.0], "x": subprocess.Popen})
    with pytest.raises(UserError, match="refusing to unpickle subprocess.Popen"):
        fetch.tips_pickle_to_csv(payload)


def test_missing_input_names_the_fix(inputs):
    with pytest.raises(UserError, match="run `make data`"):
        fetch.require_input(inputs, ROOT, "H2O_hitran2012.par")
