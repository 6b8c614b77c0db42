"""Data-parallel training: ``torchrun --nproc_per_node 2 -m semcom.cli train ...`` (DDP, gloo on CPU) on the
tiny preset follows the single-process loss trajectory, writes everything once (rank 0) and resumes exactly."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semcom.models.checkpoint import load_model
from semcom.models.options import TrainOptions
from semcom.models.train import train

ROOT = Path(__file__).resolve().parent.parent
# the single-process and 2-process runs share batch, schedule and seed; they differ in the channel noise draws
# (per rank and step under DDP), so each logged loss (mean of 2 steps) agrees within this relative tolerance
# (measured: 0.5 % over these 8 steps, 8 % by step 24)
LOSS_RTOL = 0.10
ARGS = dict(preset="tiny", synthetic=32, batch=16, steps=8, lr=3e-3, warmup=2, eval_every=8, eval_images=16,
            log_every=2, threads=1, seed=0)


def torchrun(out: Path, **over) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m semcom.cli train jscc`` with ``ARGS`` (and ``over``)."""
    flags = []
    for k, v in {**ARGS, **over}.items():
        flags += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "semcom.cli",
           "train", "jscc", "--out", str(out), *flags]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


def log_rows(run: Path) -> list[dict]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_two_processes_follow_one_and_resume_exactly(tmp_path):
    r = torchrun(tmp_path / "ddp")
    train(TrainOptions(stage="jscc", out=str(tmp_path / "one"), quiet=True, **ARGS))
    ddp, one = log_rows(tmp_path / "ddp"), log_rows(tmp_path / "one")
    assert [x["step"] for x in ddp] == [x["step"] for x in one] == ["2", "4", "6", "8"]  # written once (rank 0)
    assert [x["lr"] for x in ddp] == [x["lr"] for x in one]  # the same schedule
    for a, b in zip(ddp, one):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=LOSS_RTOL), (ddp, one)
    assert float(ddp[-1]["loss"]) < float(ddp[0]["loss"])
    assert r.stdout.count("eval @ 8") == 1 and r.stdout.count("stage jscc") == 1  # rank 0 prints
    with open(tmp_path / "ddp" / "eval.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    _, _, info = load_model(tmp_path / "ddp" / "best.safetensors", kind="jscc")
    assert info["step"] == 8
    # stopped at 4, resumed: the same trajectory and weights as the uninterrupted 2-process run
    torchrun(tmp_path / "s", stop_at=4)
    torchrun(tmp_path / "s", resume=True)
    assert [x["loss"] for x in log_rows(tmp_path / "s")] == [x["loss"] for x in ddp]
    m_s, _, _ = load_model(tmp_path / "s" / "last.safetensors")
    m_d, _, _ = load_model(tmp_path / "ddp" / "last.safetensors")
    for (name, a), b in zip(m_s.state_dict().items(), m_d.state_dict().values()):
        assert torch.equal(a, b), name


def test_global_batch_must_split_into_equal_shards(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="--batch 15: the global batch must split into 2 equal shards"):
        train(TrainOptions(stage="jscc", out=str(tmp_path / "x"), quiet=True, **{**ARGS, "batch": 15}))
