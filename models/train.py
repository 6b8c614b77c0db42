"""The training loop shared by every stage (jscc, teacher, consistency, ...).

A run directory holds::

    options.json         the run's options (written at start, updated on resume)
    state.safetensors    model + EMA + optimizer + step + RNG (resume with --resume)
    last.safetensors     EMA weights, model checkpoint format (see checkpoint.py)
    best.safetensors     EMA weights with the best key metric so far
    log.csv              step, time, epoch, lr, loss, images/s every ``log_every`` steps
    eval.csv             step and the stage's evaluation metrics every ``eval_every`` steps

Seeded: the same options give the same run. Resuming restores weights, EMA, optimizer, step,
the generator state, the data order and position (and the consistency stage's target
network), so a run stopped with ``stop_at`` (or a signal) and resumed with the same options
matches the uninterrupted run. The lr schedule follows ``steps``: resuming with a larger
``steps`` continues on a different schedule (see ``rewarm``). SIGTERM/SIGINT save the state
before exiting. Stage specifics (model, loss, evaluation) live in ``stages.py``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_model, load_training_state, save_model, save_training_state
from .options import TrainOptions
from .runtime import channels_last

__all__ = ["TrainOptions", "train", "lr_at", "ema_update", "CollapseGuard"]


def lr_at(step: int, opts: TrainOptions) -> float:
    """Linear warm-up then cosine decay to ``lr * lr_min_frac`` at ``opts.steps``."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    t = min(1.0, (step - opts.warmup) / max(1, opts.steps - opts.warmup))
    return opts.lr * (opts.lr_min_frac + (1 - opts.lr_min_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """EMA with a warm-up (``min(decay, (1+step)/(10+step))``) so early averages are not stale."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - d)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


class CollapseGuard:
    """Catches a run whose loss jumps to a plateau far above where it was (a collapse).

    The loss is smoothed (EMA over ~``1 / alpha`` steps). Every ``every`` steps, while the
    smoothed loss is within 1.5x of its best, an in-memory snapshot of model, EMA and
    optimizer is taken. When the smoothed loss exceeds ``factor`` x its best, or a loss is
    not finite, :meth:`check` returns True: the caller restores the snapshot and halves the
    learning rate (``lr_scale``). ``factor = 0`` turns the guard off (a non-finite loss then
    raises). The first ``warmup`` steps only feed the smoother.
    """

    def __init__(self, factor: float, every: int, warmup: int, alpha: float = 0.02):
        self.factor, self.every, self.warmup, self.alpha = factor, every, warmup, alpha
        self.smooth: float | None = None
        self.best = math.inf
        self.snapshot: dict[str, Any] | None = None
        self.lr_scale = 1.0
        self.rollbacks = 0

    def check(self, loss: float, step: int) -> bool:
        """Feed one step's loss; True when the run must roll back."""
        if not math.isfinite(loss):
            if not self.factor or self.snapshot is None:
                raise RuntimeError(f"loss became {loss} at step {step}; lower --lr")
            return True
        self.smooth = loss if self.smooth is None else (1 - self.alpha) * self.smooth + self.alpha * loss
        if step < self.warmup or not self.factor:
            return False
        self.best = min(self.best, self.smooth)
        return self.snapshot is not None and self.smooth > self.factor * self.best

    def want_snapshot(self, step: int) -> bool:
        return (bool(self.factor) and step >= self.warmup and step % self.every == 0
                and self.smooth is not None and self.smooth <= 1.5 * self.best)

    def take(self, step: int, model, ema, opt) -> None:
        self.snapshot = {"step": step, "model": copy.deepcopy(model.state_dict()),
                         "ema": copy.deepcopy(ema.state_dict()), "opt": copy.deepcopy(opt.state_dict())}

    def restore(self, model, ema, opt) -> int:
        """Load the snapshot, halve ``lr_scale``; returns the snapshot's step."""
        snap = self.snapshot
        model.load_state_dict(snap["model"])
        ema.load_state_dict(snap["ema"])
        opt.load_state_dict(copy.deepcopy(snap["opt"]))
        self.lr_scale *= 0.5
        self.rollbacks += 1
        self.smooth = self.best
        return snap["step"]


class _Log:
    def __init__(self, path: Path, fields: list[str], resume: bool):
        new = not (resume and path.exists())
        self.f = open(path, "a" if not new else "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=fields, extrasaction="ignore")
        if new:
            self.w.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self.w.writerow(row)
        self.f.flush()


def train(opts: TrainOptions) -> dict[str, Any]:
    """Run (or resume) a training stage; returns the last evaluation metrics."""
    from .stages import build_stage

    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, flush=True))

    g = torch.Generator().manual_seed(opts.seed)
    stage = build_stage(opts, g)
    model = stage.model
    device = torch.device("cuda" if opts.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if opts.device == "auto" else opts.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: this torch sees no CUDA device (use --device cpu or auto)")
    for a in ("model", "jscc", "teacher", "target"):
        if getattr(stage, a, None) is not None:
            getattr(stage, a).to(device)
    if device.type == "cpu":
        channels_last(model, *(getattr(stage, a, None) for a in ("jscc", "teacher", "target")))
    if opts.init and not opts.resume:  # warm start from shipped weights (a new run: fresh optimizer and schedule)
        init_model, _, _ = load_model(opts.init, kind=stage.kind, expect_config=stage.config)
        model.load_state_dict(init_model.state_dict())
        say(f"initialised from {opts.init}")
    ema = copy.deepcopy(model).requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)

    step, best = 0, -math.inf
    guard = CollapseGuard(opts.guard, opts.guard_every, opts.warmup)
    state_path = out / "state.safetensors"
    if opts.resume:
        if not state_path.exists():
            raise FileNotFoundError(f"--resume: no training state at {state_path}")
        step, info, rng = load_training_state(state_path, stage.kind, stage.config, model, ema, opt)
        best = info.get("best", -math.inf)
        guard.lr_scale = float(info.get("guard_lr_scale", 1.0))
        guard.rollbacks = int(info.get("guard_rollbacks", 0))
        guard.warmup = step + min(opts.warmup, 200)  # let the smoother settle after a restart
        if rng is not None:
            g.set_state(rng)
        _restore_stage(stage, info)
        say(f"resumed {state_path} at step {step} (best {stage.key_metric} {best:.3f})")
    start_step = step
    (out / "options.json").write_text(json.dumps(dataclasses.asdict(opts), indent=2) + "\n")
    n_params = sum(p.numel() for p in params)
    say(f"stage {opts.stage}: {n_params / 1e6:.3f} M trainable params, config {stage.config}")

    log = _Log(out / "log.csv", ["step", "time_s", "epoch", "lr", "loss", "img_per_s"], opts.resume)
    eval_log = None

    def save_state() -> None:
        order, pos, epoch = stage.sampler.state()
        extra = {"sampler/order": order}
        if getattr(stage, "target", None) is not None:  # consistency: the stop-gradient target network
            extra.update({f"target/{k}": v for k, v in stage.target.state_dict().items()})
        save_training_state(state_path, stage.kind, stage.config, model, ema, opt, step,
                            {"best": best, "stage": opts.stage, "sampler_pos": pos, "sampler_epoch": epoch,
                             "guard_lr_scale": guard.lr_scale, "guard_rollbacks": guard.rollbacks},
                            g.get_state(), extra)
        save_model(out / "last.safetensors", stage.kind, stage.export(ema), stage.config,
                   {"step": step, "stage": opts.stage, **getattr(stage, "pairing", {})})

    def evaluate() -> dict[str, float]:
        nonlocal best, eval_log
        t = time.time()
        metrics = stage.evaluate(ema)
        if eval_log is None:
            eval_log = _Log(out / "eval.csv", ["step"] + list(metrics), opts.resume)
        eval_log.write({"step": step, **{k: f"{v:.4f}" for k, v in metrics.items()}})
        key = metrics[stage.key_metric]
        if key > best:
            best = key
            save_model(out / "best.safetensors", stage.kind, stage.export(ema), stage.config,
                       {"step": step, "stage": opts.stage, "metrics": metrics, **getattr(stage, "pairing", {})})
        say(f"eval @ {step}: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            + f" ({time.time() - t:.0f} s, best {stage.key_metric} {best:.3f})")
        return metrics

    stop = {"sig": None}

    def on_signal(signum, _frame):  # finish the current step, then save and exit
        stop["sig"] = signum
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
        if _main_thread() else {}

    t0 = t_ckpt = t_log = time.time()
    evaluated_at = -1
    loss_sum, loss_n, img_n = 0.0, 0, 0
    metrics: dict[str, float] = {}
    try:
        model.train()
        end = min(opts.steps, opts.stop_at) if opts.stop_at else opts.steps
        while step < end and stop["sig"] is None:
            lr = lr_at(step, opts) * guard.lr_scale
            if opts.resume and opts.rewarm:
                lr *= min(1.0, (step - start_step + 1) / opts.rewarm)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = stage.loss(g, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema_update(ema, model, step, opts.ema_decay)
            loss_v = loss.item()
            if guard.check(loss_v, step):
                seen = guard.smooth if math.isfinite(loss_v) else loss_v
                at = guard.restore(model, ema, opt)
                say(f"collapse guard: smoothed loss {seen:.5f} "
                    f"against best {guard.best:.5f} at step {step}: rolled back to the weights of step {at}, "
                    f"lr scale now {guard.lr_scale:g}")
                log.write({"step": step, "time_s": f"{time.time() - t0:.1f}", "epoch": f"{stage.epoch:.3f}",
                           "lr": f"{lr:.3g}", "loss": "rollback", "img_per_s": ""})
                continue
            if guard.want_snapshot(step):
                guard.take(step, model, ema, opt)
            loss_sum, loss_n, img_n = loss_sum + loss_v, loss_n + 1, img_n + opts.batch
            now = time.time()
            if step % opts.log_every == 0 or step == opts.steps:
                rate = img_n / max(now - t_log, 1e-9)
                eta = (opts.steps - step) * opts.batch / max(rate, 1e-9)
                row = {"step": step, "time_s": f"{now - t0:.1f}", "epoch": f"{stage.epoch:.3f}",
                       "lr": f"{lr:.3g}", "loss": f"{loss_sum / loss_n:.6f}", "img_per_s": f"{rate:.1f}"}
                log.write(row)
                say(f"[{opts.stage}] step {step}/{opts.steps} ({100 * step / opts.steps:.1f}%) "
                    f"loss {loss_sum / loss_n:.5f} lr {lr:.2e} {rate:.0f} img/s eta {eta / 60:.0f} min")
                loss_sum, loss_n, img_n, t_log = 0.0, 0, 0, now
            if step % opts.eval_every == 0 or step == opts.steps:
                evaluated_at = step
                model.eval()
                metrics = evaluate()
                model.train()
                t_log = time.time()  # images/s counts training only
            if now - t_ckpt > opts.ckpt_minutes * 60:
                save_state()
                t_ckpt = time.time()
            if opts.max_minutes and now - t0 > opts.max_minutes * 60:
                say(f"--max-minutes {opts.max_minutes} reached at step {step}")
                if evaluated_at != step:  # best.safetensors always reflects the weights a run ends with
                    model.eval()
                    metrics = evaluate()
                break
        save_state()
        if stop["sig"] is not None:
            say(f"signal {stop['sig']}: state saved at step {step}; resume with --resume")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return metrics


def _restore_stage(stage, info: dict[str, Any]) -> None:
    """Data order/position and the consistency target from a training state (older states lack them)."""
    tensors = info.get("tensors", {})
    if "sampler/order" in tensors:
        stage.sampler.set_state(tensors["sampler/order"], info["sampler_pos"], info["sampler_epoch"])
    target = {k[len("target/"):]: v for k, v in tensors.items() if k.startswith("target/")}
    if target and getattr(stage, "target", None) is not None:
        stage.target.load_state_dict(target)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `semcom train ...`")
