"""The training loop on tiny configs: loss really drops, seeded, resumable, CLI wired."""

import csv
import math

import torch

from semcom.cli import main
from semcom.models.checkpoint import load_model
from semcom.models.options import TrainOptions
from semcom.models.train import lr_at, train


def _opts(tmp_path, **kw):
    base = dict(stage="jscc", out=str(tmp_path / "run"), preset="tiny", synthetic=32, batch=16, steps=120,
                lr=3e-3, warmup=10, eval_every=120, eval_images=16, log_every=20, quiet=True, seed=0)
    base.update(kw)
    return TrainOptions(**base)


def _losses(run_dir):
    with open(run_dir / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_overfit_lowers_loss_and_ships_checkpoint(tmp_path):
    metrics = train(_opts(tmp_path))
    losses = _losses(tmp_path / "run")
    assert losses[-1] < 0.5 * losses[0], losses
    assert metrics["psnr_awgn_20"] > metrics["psnr_awgn_0"]  # measured 22.8 vs 20.4 dB
    model, cfg, info = load_model(tmp_path / "run" / "best.safetensors", kind="jscc")
    assert info["step"] == 120 and cfg.ratio == "1/6"


def test_seeded_and_resumable(tmp_path):
    train(_opts(tmp_path / "a", steps=20, eval_every=20))
    train(_opts(tmp_path / "b", steps=20, eval_every=20))
    assert _losses(tmp_path / "a" / "run") == _losses(tmp_path / "b" / "run")
    # stopped at 20 of 40 steps, then resumed == one uninterrupted 40-step run
    kw = dict(steps=40, eval_every=20, log_every=10)
    train(_opts(tmp_path / "s", stop_at=20, **kw))
    _, _, info = load_model(tmp_path / "s" / "run" / "last.safetensors")
    assert info["step"] == 20
    train(_opts(tmp_path / "s", resume=True, **kw))
    train(_opts(tmp_path / "u", **kw))
    resumed, straight = _losses(tmp_path / "s" / "run"), _losses(tmp_path / "u" / "run")
    assert len(resumed) == 4 and resumed == straight, (resumed, straight)
    m_s, _, info = load_model(tmp_path / "s" / "run" / "last.safetensors")
    m_u, _, _ = load_model(tmp_path / "u" / "run" / "last.safetensors")
    assert info["step"] == 40
    for (name, p_s), p_u in zip(m_s.state_dict().items(), m_u.state_dict().values()):
        assert torch.equal(p_s, p_u), name


def test_lr_schedule():
    o = TrainOptions(stage="jscc", out="x", steps=100, warmup=10, lr=1.0, lr_min_frac=0.1)
    assert lr_at(0, o) == 0.1 and lr_at(10, o) == 1.0 and abs(lr_at(100, o) - 0.1) < 1e-9


def test_cli(tmp_path, capsys):
    rc = main(["train", "jscc", "--preset", "tiny", "--synthetic", "16", "--batch", "8", "--steps", "4",
               "--eval-every", "4", "--eval-images", "8", "--out", str(tmp_path / "cli")])
    assert rc == 0 and (tmp_path / "cli" / "options.json").exists()
    rc = main(["train", "jscc", "--out", str(tmp_path / "cli"), "--data", str(tmp_path / "missing")])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_diffusion_stages_wired(tmp_path):
    jscc = tmp_path / "run" / "best.safetensors"
    train(_opts(tmp_path, steps=10, eval_every=10))
    teacher_metrics = train(_opts(tmp_path, stage="teacher", out=str(tmp_path / "t"), steps=6, eval_every=6,
                                  jscc=str(jscc)))
    assert set(teacher_metrics) >= {"neg_eval_loss", "psnr_teacher_10", "psnr_jscc_10"}
    assert all(math.isfinite(v) for v in teacher_metrics.values()), teacher_metrics
    cm_metrics = train(_opts(tmp_path, stage="consistency", out=str(tmp_path / "c"), steps=6, eval_every=6,
                             log_every=3, jscc=str(jscc), teacher=str(tmp_path / "t" / "best.safetensors")))
    assert set(cm_metrics) >= {"psnr_cm1_10", "psnr_cm2_10"}
    assert all(math.isfinite(v) for v in cm_metrics.values()), cm_metrics
    # resume restores the consistency target network too: stopped at 3 + resumed == straight 6 steps
    cm = dict(stage="consistency", steps=6, eval_every=6, log_every=3, jscc=str(jscc),
              teacher=str(tmp_path / "t" / "best.safetensors"))
    train(_opts(tmp_path, out=str(tmp_path / "c2"), stop_at=3, **cm))
    train(_opts(tmp_path, out=str(tmp_path / "c2"), resume=True, **cm))
    assert len(_losses(tmp_path / "c")) == 2 and _losses(tmp_path / "c2") == _losses(tmp_path / "c")
    model, cfg, _ = load_model(tmp_path / "c" / "last.safetensors", kind="consistency")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, torch.tensor([cfg.sigma_min]), x, torch.zeros(1)), x)


def test_diffusion_stage_needs_checkpoints(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="--jscc"):
        train(_opts(tmp_path, stage="teacher"))


def test_classifier_stage_learns_synthetic_labels(tmp_path):
    metrics = train(_opts(tmp_path, stage="classifier", out=str(tmp_path / "k"), synthetic=64, steps=60,
                          eval_every=60, eval_images=64))
    assert metrics["accuracy"] > 0.6  # 3 balanced-ish classes: chance is ~0.33
    model, _, _ = load_model(tmp_path / "k" / "best.safetensors", kind="classifier")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_rewarm_on_resume(tmp_path):
    train(_opts(tmp_path, steps=10, eval_every=10, warmup=2))
    opts = _opts(tmp_path, steps=20, eval_every=20, warmup=2, resume=True, rewarm=100, log_every=1)
    train(opts)
    with open(tmp_path / "run" / "log.csv") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) > 10]
    # step s (1-based) ran at lr_at(s - 1) scaled by (s - 10) / 100
    for r in rows:
        s = int(r["step"])
        assert float(r["lr"]) == float(f"{lr_at(s - 1, opts) * (s - 10) / 100:.3g}")
