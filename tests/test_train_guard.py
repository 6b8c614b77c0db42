"""The collapse guard: a run whose loss jumps to a plateau rolls back and lowers its lr."""

import csv
import math

import pytest
import torch

from semcom.models import stages as stages_mod
from semcom.models.options import TrainOptions
from semcom.models.train import CollapseGuard, train


def _opts(tmp_path, **kw):
    base = dict(stage="jscc", out=str(tmp_path / "run"), preset="tiny", synthetic=32, batch=16, steps=160,
                lr=3e-3, warmup=10, eval_every=160, eval_images=16, log_every=1, quiet=True, seed=0,
                guard_every=10)
    base.update(kw)
    return TrainOptions(**base)


def _rows(run_dir):
    with open(run_dir / "log.csv") as f:
        return list(csv.DictReader(f))


def _sabotage(monkeypatch, at_step):
    """Once, at ``at_step``, wreck the decoder head so the output saturates to a constant image."""
    real = stages_mod.build_stage

    def build(opts, g):
        stage = real(opts, g)
        loss = stage.loss

        def sabotaged(gen, step):
            if step == at_step:
                with torch.no_grad():
                    stage.model.decoder.head.bias.fill_(40.0)  # sigmoid(40) = 1: a white image,
                    stage.model.decoder.head.weight.zero_()    # and no gradient to get out of it
            return loss(gen, step)
        stage.loss = sabotaged
        return stage
    monkeypatch.setattr(stages_mod, "build_stage", build)


def test_guard_rolls_back_a_collapse(tmp_path, monkeypatch):
    _sabotage(monkeypatch, at_step=80)
    train(_opts(tmp_path))
    rows = _rows(tmp_path / "run")
    marks = [r for r in rows if r["loss"] == "rollback"]
    assert len(marks) == 1, marks
    losses = [float(r["loss"]) for r in rows if r["loss"] != "rollback"]
    before = sum(losses[60:79]) / 19
    after = sum(losses[-20:]) / 20
    assert after < 1.5 * before, (before, after)  # back to where it was, not the constant image's MSE
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[-1] < 0.6 * lrs[int(marks[0]["step"]) - 2]  # the lr was halved (on top of the cosine)


def test_without_guard_the_collapse_stays(tmp_path, monkeypatch):
    _sabotage(monkeypatch, at_step=80)
    train(_opts(tmp_path, guard=0.0))
    losses = [float(r["loss"]) for r in _rows(tmp_path / "run")]
    before = sum(losses[60:79]) / 19
    assert sum(losses[-20:]) / 20 > 3 * before  # what the guard is for


def test_guard_unit_behaviour():
    g = CollapseGuard(factor=4.0, every=10, warmup=5)
    for step in range(1, 50):
        assert not g.check(0.01, step)
        if g.want_snapshot(step):
            g.take(step, torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), 0.1))
    assert g.snapshot is not None and g.snapshot["step"] == 40
    assert g.check(math.nan, 50)                       # a non-finite loss rolls back at once
    assert not g.check(0.02, 51)                       # noise is not a collapse
    hits = [g.check(0.5, s) for s in range(52, 200)]   # a plateau 50x above the best is
    assert any(hits)
    with pytest.raises(RuntimeError, match="loss became nan"):
        CollapseGuard(factor=0.0, every=10, warmup=5).check(math.nan, 3)
