"""``semcom bench peer``: semcom's JSCC against the original DeepJSCC at equal compute.

The reference is written here, as a benchmark model, not as a shipped codec: DeepJSCC
(Bourtsoulatze, Kurka, Gunduz 2019), encoder of five 5x5 convolutions with 16-32-32-32-c
channels, PReLU, strides 2, 2, 1, 1, 1; the decoder mirrors it with transposed convolutions and
a sigmoid; per-image power normalisation; c = 16 real channels per 4x4 patch at k/n = 1/6.

Both models train **at the same time on the same machine, one thread each** (two processes),
for ``--minutes`` of wall time each, on the same data (CIFAR-10 train, flips), the same channel
(AWGN, SNR uniform in 0-20 dB per image, Es/N0 per complex symbol), the same batch (64),
Adam(W) at 1e-3 with the same warm-up, and the same precision (``--amp``). semcom's model is
the shipped architecture (``--preset``; the rate-adaptive preset run at a single ratio) with
its training machinery's collapse guard; the reference gets the same guard so that neither
loses its run to a spike. Printed: parameters, images/s, epochs and PSNR at AWGN 10 dB (and
0 / 20 dB) on the first ``--eval-images`` CIFAR-10 test images, side by side, with the
difference. Target: semcom at least 1 dB ahead at 1/6.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_peer_parser", "DeepJSCC", "train_one", "run_peer"]

TARGET_DB = 1.0


def _deepjscc_cls():
    import torch
    from torch import nn

    from semcom.models.definitions import complex_to_real, normalize_power, real_to_complex

    class DeepJSCC(nn.Module):
        """The 2019 DeepJSCC: images ``[B, 3, H, W]`` (H, W multiples of 4) <-> ``[B, c*H*W/32]`` complex symbols."""

        def __init__(self, c: int = 16):
            super().__init__()
            P = nn.PReLU
            self.c = c
            self.enc = nn.Sequential(
                nn.Conv2d(3, 16, 5, 2, 2), P(), nn.Conv2d(16, 32, 5, 2, 2), P(), nn.Conv2d(32, 32, 5, 1, 2), P(),
                nn.Conv2d(32, 32, 5, 1, 2), P(), nn.Conv2d(32, c, 5, 1, 2), P())
            self.dec = nn.Sequential(
                nn.ConvTranspose2d(c, 32, 5, 1, 2), P(), nn.ConvTranspose2d(32, 32, 5, 1, 2), P(),
                nn.ConvTranspose2d(32, 32, 5, 1, 2), P(), nn.ConvTranspose2d(32, 16, 5, 2, 2, output_padding=1), P(),
                nn.ConvTranspose2d(16, 3, 5, 2, 2, output_padding=1), nn.Sigmoid())

        def forward(self, img, channel, snr_db, generator=None, ratio=None, **kw):
            z = self.enc(img * 2 - 1)  # [B, c, H/4, W/4]
            shape = z.shape
            x = normalize_power(real_to_complex(z.flatten(1)))
            y, nv = channel(x, snr_db, generator=generator)
            return self.dec(complex_to_real(y).reshape(shape))
    return DeepJSCC


def DeepJSCC(c: int = 16):  # noqa: N802 - a factory named as the model
    """Build the reference model (torch imported on use)."""
    return _deepjscc_cls()(c)


def _build(which: str, preset: str):
    from semcom.models.config import jscc_preset
    from semcom.models.jscc import JSCC

    if which == "deepjscc":
        return DeepJSCC(16)
    return JSCC(jscc_preset(preset, "1/6", base_ratio="1/6"))


def train_one(which: str, data: str, minutes: float, batch: int, lr: float, amp: str, preset: str,
              eval_images: int, seed: int = 0, synthetic: int = 0) -> dict[str, Any]:
    """Train ``which`` (``deepjscc`` or ``semcom``) for ``minutes`` on one thread; returns its figures."""
    import torch

    from semcom.models.channel import Channel
    from semcom.models.config import ChannelConfig
    from semcom.models.data import BatchSampler, load_cifar10, synthetic_images
    from semcom.models.stages import autocast, jscc_psnr
    from semcom.models.train import CollapseGuard, lr_at
    from semcom.models.options import TrainOptions

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    if synthetic:
        x = synthetic_images(synthetic, seed=seed)
        xt = x[:eval_images]
    else:
        x, _ = load_cifar10(data, "train")
        xt, _ = load_cifar10(data, "test", limit=eval_images)
    sampler = BatchSampler(x, min(batch, len(x)), g)
    model = _build(which, preset).to(memory_format=torch.channels_last)
    params = [p for p in model.parameters()]
    opt = torch.optim.AdamW(params, lr=lr)
    channel = Channel(ChannelConfig(p_fading=0.0, p_erasure_image=0.0))
    sched = TrainOptions(stage="jscc", out="", steps=10 ** 7, lr=lr, warmup=200)
    guard = CollapseGuard(4.0, 200, 200)
    t0 = time.time()
    step, n_img, losses = 0, 0, []
    while time.time() - t0 < minutes * 60:
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, sched) * guard.lr_scale
        xb, _ = sampler.next()
        xb = xb.contiguous(memory_format=torch.channels_last)
        snr = channel.sample_snr(len(xb), g)
        with autocast(amp):
            out = model(xb, channel, snr, g)
        loss = (out.float() - xb).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        n_img += len(xb)
        v = float(loss.detach())
        if guard.check(v, step):
            guard.restore(model, model, opt)
            continue
        if guard.want_snapshot(step):
            guard.take(step, model, model, opt)
        losses.append(v)
    train_s = time.time() - t0
    model.eval()
    psnr = {f"psnr_awgn_{s:g}": jscc_psnr(model, xt, s, channel_cfg=ChannelConfig(p_fading=0.0))
            for s in (0.0, 10.0, 20.0)}
    return {"model": which, "params": sum(p.numel() for p in params), "steps": step, "images": n_img,
            "train_s": train_s, "images_per_s": n_img / max(train_s, 1e-9), "epochs": n_img / len(x),
            "rollbacks": guard.rollbacks, "final_loss": sum(losses[-50:]) / max(1, len(losses[-50:])), **psnr}


def _worker(which: str, kw: dict[str, Any], q) -> None:
    try:
        q.put(train_one(which, **kw))
    except Exception as e:  # noqa: BLE001 - reported by the parent with the model's name
        q.put({"model": which, "error": f"{type(e).__name__}: {e}"})


def run_peer(data: str, minutes: float, batch: int = 64, lr: float = 1e-3, amp: str = "bf16", preset: str = "cpu",
             eval_images: int = 2000, synthetic: int = 0) -> dict[str, Any]:
    """Both trainings side by side in two processes (one thread each); returns both results."""
    kw = dict(data=data, minutes=minutes, batch=batch, lr=lr, amp=amp, preset=preset, eval_images=eval_images,
              synthetic=synthetic)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(w, kw, q), daemon=True) for w in ("semcom", "deepjscc")]
    for p in procs:
        p.start()
    out = {}
    deadline = time.time() + minutes * 60 + 900  # training plus a generous evaluation allowance
    while len(out) < 2 and time.time() < deadline:
        try:
            r = q.get(timeout=5)
        except Exception:  # noqa: BLE001 - queue.Empty: check the workers are alive
            if not any(p.is_alive() for p in procs) and q.empty():
                break
            continue
        out[r["model"]] = r
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
    missing = {"semcom", "deepjscc"} - set(out)
    if missing:
        raise RuntimeError(f"bench peer: no result from {', '.join(sorted(missing))} (worker died)")
    errors = [f"{r['model']}: {r['error']}" for r in out.values() if "error" in r]
    if errors:
        raise RuntimeError("bench peer: " + "; ".join(errors))
    diff = out["semcom"]["psnr_awgn_10"] - out["deepjscc"]["psnr_awgn_10"]
    return {"minutes": minutes, "batch": batch, "lr": lr, "amp": amp, "preset": preset, "eval_images": eval_images,
            "semcom": out["semcom"], "deepjscc": out["deepjscc"], "diff_db_10": diff, "target_db": TARGET_DB,
            "target_met": diff >= TARGET_DB}


def format_table(res: dict[str, Any]) -> str:
    s, d = res["semcom"], res["deepjscc"]
    rows = [("parameters", f"{s['params'] / 1e3:.0f} k", f"{d['params'] / 1e3:.0f} k"),
            ("images/s (1 thread)", f"{s['images_per_s']:.0f}", f"{d['images_per_s']:.0f}"),
            ("epochs", f"{s['epochs']:.2f}", f"{d['epochs']:.2f}"),
            ("guard rollbacks", str(s["rollbacks"]), str(d["rollbacks"])),
            ("PSNR AWGN 0 dB", f"{s['psnr_awgn_0']:.2f}", f"{d['psnr_awgn_0']:.2f}"),
            ("PSNR AWGN 10 dB", f"{s['psnr_awgn_10']:.2f}", f"{d['psnr_awgn_10']:.2f}"),
            ("PSNR AWGN 20 dB", f"{s['psnr_awgn_20']:.2f}", f"{d['psnr_awgn_20']:.2f}")]
    lines = [f"equal compute: {res['minutes']:g} min each, one thread each, side by side; batch {res['batch']}, "
             f"lr {res['lr']:g}, {res['amp']}; CIFAR-10 test, first {res['eval_images']} images, k/n = 1/6",
             "| | semcom | DeepJSCC (2019) |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"semcom - DeepJSCC at 10 dB: {res['diff_db_10']:+.2f} dB (target >= +{res['target_db']:g} dB: "
                 f"{'MET' if res['target_met'] else 'NOT met'})")
    return "\n".join(lines)


def add_peer_parser(sub) -> None:
    from semcom.models.options import DEFAULT_CIFAR10

    p = sub.add_parser("peer", help="semcom's JSCC vs the original DeepJSCC, equal wall time side by side",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_CIFAR10), help="CIFAR-10 folder (train.npz/test.npz)")
    p.add_argument("--minutes", type=float, default=20.0, help="training wall time of each model")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--amp", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--preset", default="cpu", choices=("cpu", "gpu", "tiny"))
    p.add_argument("--eval-images", type=int, default=2000)
    p.add_argument("--synthetic", type=int, default=0, help="train/evaluate on this many synthetic images (tests)")
    p.add_argument("--json", metavar="OUT.json", default=None)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    print(f"bench peer: training semcom ({args.preset}) and DeepJSCC for {args.minutes:g} min each, side by side ...",
          file=sys.stderr, flush=True)
    res = run_peer(args.data, args.minutes, args.batch, args.lr, args.amp, args.preset, args.eval_images,
                   args.synthetic)
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0 if math.isfinite(res["diff_db_10"]) else 1
