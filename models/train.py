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

from .checkpoint import load_training_state, save_model, save_training_state
from .options import TrainOptions
from .runtime import channels_last

__all__ = ["TrainOptions", "train", "lr_at", "ema_update"]


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
    channels_last(model, *(getattr(stage, a, None) for a in ("jscc", "teacher", "target")))
    ema = copy.deepcopy(model).requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)

    step, best = 0, -math.inf
    state_path = out / "state.safetensors"
    if opts.resume:
        if not state_path.exists():
            raise FileNotFoundError(f"--resume: no training state at {state_path}")
        step, info, rng = load_training_state(state_path, stage.kind, stage.config, model, ema, opt)
        best = info.get("best", -math.inf)
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
                            {"best": best, "stage": opts.stage, "sampler_pos": pos, "sampler_epoch": epoch},
                            g.get_state(), extra)
        save_model(out / "last.safetensors", stage.kind, stage.export(ema), stage.config,
                   {"step": step, "stage": opts.stage})

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
                       {"step": step, "stage": opts.stage, "metrics": metrics})
        say(f"eval @ {step}: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items())
            + f" ({time.time() - t:.0f} s, best {stage.key_metric} {best:.3f})")
        return metrics

    stop = {"sig": None}

    def on_signal(signum, _frame):  # finish the current step, then save and exit
        stop["sig"] = signum
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)} \
        if _main_thread() else {}

    t0 = t_ckpt = t_log = time.time()
    loss_sum, loss_n, img_n = 0.0, 0, 0
    metrics: dict[str, float] = {}
    try:
        model.train()
        end = min(opts.steps, opts.stop_at) if opts.stop_at else opts.steps
        while step < end and stop["sig"] is None:
            lr = lr_at(step, opts)
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
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"loss became {loss.item()} at step {step}; lower --lr")
            loss_sum, loss_n, img_n = loss_sum + loss.item(), loss_n + 1, img_n + opts.batch
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
                model.eval()
                metrics = evaluate()
                model.train()
            if now - t_ckpt > opts.ckpt_minutes * 60:
                save_state()
                t_ckpt = time.time()
            if opts.max_minutes and now - t0 > opts.max_minutes * 60:
                say(f"--max-minutes {opts.max_minutes} reached at step {step}")
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
