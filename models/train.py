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

Several processes (``torchrun --nproc_per_node N -m semcom.cli train ...``, ``WORLD_SIZE`` > 1):
data-parallel training with DDP, gloo on CPU, nccl on GPU (``_Distributed``). ``batch`` stays the
global batch: every rank draws it from the same data generator and trains on its ``1/N`` shard;
the channel and diffusion noise of a rank comes from a generator seeded by (seed, step, rank);
DDP averages the gradients, so the ranks hold the same weights (checked at the end) and take the
same schedule. The logged loss is the global batch's. Rank 0 alone prints, evaluates, writes the
logs, ``options.json``, the EMA checkpoints and the training state; every rank reads the state on
``--resume`` (a shared folder across machines). The loss trajectory follows a single process with
the same options within the noise of the channel draws (``tests/test_train_ddp.py``); a single
process runs exactly as without this code.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import datetime
import json
import math
import os
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


class _NoLog:
    def write(self, row: dict[str, Any]) -> None:
        pass


class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DDP that lets the stage code read its module's own attributes (``sigma_min``, ``cfg`` ...)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":  # not set yet (inside DDP's own __init__)
                raise
            return getattr(self.module, name)


class _Shard:
    """A sampler whose ``next()`` gives rank ``rank``'s ``1/world`` slice of the global batch (every
    rank draws the same global batch); ``state``, ``epoch`` ... are the wrapped sampler's."""

    def __init__(self, inner, rank: int, world: int):
        self.__dict__.update(inner=inner, rank=rank, world=world)

    def next(self):
        x, y = self.inner.next()
        if len(x) % self.world:
            raise ValueError(f"--batch: a global batch of {len(x)} images does not split into {self.world} equal "
                             f"shards; use a multiple of the process count")
        b = len(x) // self.world
        cut = slice(self.rank * b, (self.rank + 1) * b)
        return x[cut], (None if y is None else y[cut])

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.inner, name, value)


class _Distributed:
    """One rank of a ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``): the process group (gloo on
    CPU, nccl on ``cuda:LOCAL_RANK``), the per-rank noise generator and the few collectives the loop needs."""

    def __init__(self, device: torch.device):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.owned = not dist.is_initialized()
        if self.owned:  # evaluation runs on rank 0 only: the others wait for it in the next all-reduce
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=1))
        self.g = torch.Generator()

    @staticmethod
    def from_env(device: torch.device, batch: int) -> "_Distributed | None":
        """This rank when ``WORLD_SIZE`` > 1 (None alone); ``batch`` (global) must split into equal shards."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and batch % world:  # checked before joining the group: no rank waits for a failed one
            raise ValueError(f"--batch {batch}: the global batch must split into {world} equal shards "
                             f"(a multiple of --nproc_per_node)")
        return _Distributed(device) if world > 1 else None

    def noise(self, seed: int, step: int) -> torch.Generator:
        """The generator of this rank's channel/diffusion draws at ``step`` (a function of seed, step and rank,
        so a resumed run draws what the uninterrupted one did)."""
        return self.g.manual_seed(((seed * 1_000_003 + step) * 65_537 + self.rank) % (1 << 63))

    def agree(self, loss: float, stop: bool, over: bool) -> tuple[float, bool, bool]:
        """``(global batch loss, any rank signalled, any rank over --max-minutes)``: the same on every rank."""
        t = torch.tensor([loss, float(stop), float(over)], dtype=torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return t[0].item() / self.world, t[1].item() > 0, t[2].item() > 0

    def same_weights(self, model: torch.nn.Module) -> bool:
        """True when every rank holds the same parameters (per-tensor sums compared across ranks)."""
        v = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(self.device)
        lo, hi = v.clone(), v.clone()
        self.dist.all_reduce(lo, op=self.dist.ReduceOp.MIN)
        self.dist.all_reduce(hi, op=self.dist.ReduceOp.MAX)
        return torch.equal(lo, hi)

    def from_rank0(self, obj: Any) -> Any:
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Destroy the process group this rank created (after the others got here), once DDP is freed: a
        group destroyed only at interpreter exit can abort the process (gloo's threads)."""
        if self.owned and self.dist.is_initialized():
            import gc

            gc.collect()
            self.dist.barrier()
            self.dist.destroy_process_group()


def train(opts: TrainOptions) -> dict[str, Any]:
    """Run (or resume) a training stage; returns the last evaluation metrics.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank calls this and trains its shard of each global
    batch (module docstring); the metrics are rank 0's, returned on every rank."""
    from .stages import build_stage

    torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, flush=True))

    g = torch.Generator().manual_seed(opts.seed)
    stage = build_stage(opts, g)
    device = torch.device("cuda" if opts.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if opts.device == "auto" else opts.device))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: this torch sees no CUDA device (use --device cpu or auto)")
    ddp = _Distributed.from_env(device, opts.batch)
    if ddp is not None:
        try:
            return _train_ranks(opts, ddp, stage, g)
        finally:
            ddp.close()
    return _train(opts, stage, g, device, say, out)


def _train_ranks(opts: TrainOptions, ddp: _Distributed, stage, g: torch.Generator) -> dict[str, Any]:
    """``_train`` on one rank of a data-parallel job (``train``)."""
    stage.sampler = _Shard(stage.sampler, ddp.rank, ddp.world)
    say = (lambda *a: None) if opts.quiet or ddp.rank else (lambda *a: print(*a, flush=True))
    metrics = _train(opts, stage, g, ddp.device, say, Path(opts.out), ddp)
    return ddp.from_rank0(metrics)


def _train(opts: TrainOptions, stage, g: torch.Generator, device: torch.device, say, out: Path,
           ddp: _Distributed | None = None) -> dict[str, Any]:
    """The loop of ``train`` (``ddp``: this process's rank in a data-parallel job, None alone)."""
    main = ddp is None or ddp.rank == 0
    model = stage.model
    for a in ("model", "jscc", "teacher", "target"):
        if getattr(stage, a, None) is not None:
            getattr(stage, a).to(device)
    if device.type == "cpu":
        channels_last(model, *(getattr(stage, a, None) for a in ("jscc", "teacher", "target")))
    if opts.init and not opts.resume:  # warm start from shipped weights (a new run: fresh optimizer and schedule)
        init_model, _, _ = load_model(opts.init, kind=stage.kind, expect_config=stage.config)
        model.load_state_dict(init_model.state_dict())
        if getattr(stage, "target", None) is not None:  # consistency: the target network starts where the student does
            stage.target.load_state_dict(init_model.state_dict())
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
    if main:
        (out / "options.json").write_text(json.dumps(dataclasses.asdict(opts), indent=2) + "\n")
    n_params = sum(p.numel() for p in params)
    say(f"stage {opts.stage}: {n_params / 1e6:.3f} M trainable params, config {stage.config}")

    log = _Log(out / "log.csv", ["step", "time_s", "epoch", "lr", "loss", "img_per_s"], opts.resume) if main \
        else _NoLog()
    eval_log = None

    def save_state() -> None:
        if not main:  # rank 0 writes for all (the ranks hold the same weights)
            return
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

    net = model  # what the stage's loss calls: the model, or its DDP wrapper
    if ddp is not None:
        net = stage.model = _DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    halt = False  # the ranks' common decision to stop (data-parallel runs)
    t0 = t_ckpt = t_log = time.time()
    evaluated_at = -1
    loss_sum, loss_n, img_n = 0.0, 0, 0
    metrics: dict[str, float] = {}
    try:
        net.train()
        end = min(opts.steps, opts.stop_at) if opts.stop_at else opts.steps
        while step < end and (stop["sig"] is None if ddp is None else not halt):
            lr = lr_at(step, opts) * guard.lr_scale
            if opts.resume and opts.rewarm:
                lr *= min(1.0, (step - start_step + 1) / opts.rewarm)
            for group in opt.param_groups:
                group["lr"] = lr
            loss = stage.loss(g if ddp is None else ddp.noise(opts.seed, step), step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            ema_update(ema, model, step, opts.ema_decay)
            loss_v = loss.item()
            if ddp is not None:  # the global batch's loss, and one decision to stop, on every rank
                over = bool(opts.max_minutes) and time.time() - t0 > opts.max_minutes * 60
                loss_v, halt, over = ddp.agree(loss_v, stop["sig"] is not None, over)
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
            if (step % opts.eval_every == 0 or step == opts.steps) and main:
                evaluated_at = step
                net.eval()
                metrics = evaluate()
                net.train()
                t_log = time.time()  # images/s counts training only
            if now - t_ckpt > opts.ckpt_minutes * 60:
                save_state()
                t_ckpt = time.time()
            if (opts.max_minutes and now - t0 > opts.max_minutes * 60) if ddp is None else over:
                say(f"--max-minutes {opts.max_minutes} reached at step {step}")
                if evaluated_at != step and main:  # best.safetensors always reflects the weights a run ends with
                    net.eval()
                    metrics = evaluate()
                break
        if ddp is not None and not ddp.same_weights(model):
            raise RuntimeError(f"data-parallel ranks hold different weights at step {step} (nondeterministic "
                               f"gradients?); state not saved")
        save_state()
        if stop["sig"] is not None or halt:
            say(f"signal {stop['sig'] or '(on another rank)'}: state saved at step {step}; resume with --resume")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if ddp is not None:  # the DDP wrapper holds the process group: gone before the group is destroyed
            stage.model = model
            del net
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
