"""The benchmarks time whole trainings (benchmarks/record.py): never a resume of an earlier, killed run."""

from __future__ import annotations

import sys
from pathlib import Path

from robert.training import train as training

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import record  # noqa: E402  (benchmarks/record.py)


def test_a_timed_training_starts_afresh_where_a_killed_run_left_its_checkpoint(tmp_path, monkeypatch):
    cfg = {"seed": 3, "model": {"kind": "dbn"}, "train": {"checkpoint_dir": str(tmp_path / "checkpoints")}}
    killed = training.checkpoint_dir_of(cfg, tmp_path)
    assert killed.parent == tmp_path / "checkpoints"
    killed.mkdir(parents=True)
    (killed / "last.ckpt").write_bytes(b"a killed run's last epoch")
    other = tmp_path / "checkpoints" / "another-config"
    other.mkdir()
    resumable = []
    monkeypatch.setattr(training, "train", lambda c, root: resumable.append((killed / "last.ckpt").exists()) or "run")
    result, seconds = record.timed_training(cfg, tmp_path)
    assert result == "run" and resumable == [False] and seconds >= 0
    assert other.is_dir()  # another config's checkpoints stay
