"""``semcom bench train``: training throughput of the presets per precision/layout/compiler setting.

For each model (``--models``: the rate-adaptive JSCC ``jscc``, the fixed-ratio legacy JSCC
``jscc-fixed`` and the diffusion ``teacher`` UNet, all of ``--preset``) and each setting

* ``fp32``      float32, contiguous (NCHW) tensors;
* ``fp32-cl``   float32, channels-last;
* ``bf16-cl``   bfloat16 autocast, channels-last (pays where ``lscpu`` shows avx512_bf16 or amx);
* ``compile``   ``torch.compile`` (inductor) of the bf16 channels-last networks, the complex-valued
  channel left eager (``--compile``; the compile time is the warm-up column, not counted);

one full optimizer step (forward through the training channel, MSE/EDM loss, backward, AdamW)
is timed on ``--batch`` random ``--crop`` x ``--crop`` images for ``--seconds`` after two
warm-up steps. Printed: images/s, megapixels/s and the ratio to ``fp32`` measured in the same
run.

``--curve N`` (default 300; 0 skips) also trains the JSCC preset from the same seed for N steps
in fp32 and in bf16 on the same batches and prints the mean loss of the last third of each
with its standard error: bf16 is "within noise" when the two means differ by less than two
combined standard errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["add_train_parser", "run_train_bench", "measure_setting", "loss_curve", "SETTINGS"]

SETTINGS = ("fp32", "fp32-cl", "bf16-cl", "compile")


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return " ".join(sorted({f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2") if f in text}))


def _step_fn(model_name: str, preset: str, batch: int, crop: int, setting: str, seed: int = 0
             ) -> tuple[Callable[[], float], Any]:
    """A closure running one optimizer step of ``model_name`` in ``setting``; returns (step, model)."""
    import torch

    from semcom.models.channel import Channel
    from semcom.models.config import jscc_preset, unet_preset
    from semcom.models.edm import EDMDenoiser, edm_loss
    from semcom.models.jscc import JSCC
    from semcom.models.stages import autocast
    from semcom.models.unet import UNet

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    cl = setting != "fp32"
    amp = "bf16" if setting in ("bf16-cl", "compile") else "fp32"
    fmt = torch.channels_last if cl else torch.contiguous_format
    x = torch.rand(batch, 3, crop, crop).contiguous(memory_format=fmt)
    if model_name in ("jscc", "jscc-fixed"):
        cfg = (jscc_preset(preset, "1/6", base_ratio="1/6") if model_name == "jscc"
               else jscc_preset(preset, "1/6"))
        model = JSCC(cfg).to(memory_format=fmt)
        channel = Channel()
        fwd = model
        if setting == "compile":  # the networks only: the complex-valued channel stays eager
            model.encoder = torch.compile(model.encoder)
            model.decoder = torch.compile(model.decoder)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def loss_fn() -> torch.Tensor:
            snr = channel.sample_snr(batch, g)
            return (fwd(x, channel, snr, g).float() - x).square().mean()
    elif model_name == "teacher":
        ucfg = unet_preset(preset)
        model = EDMDenoiser(UNet(ucfg), ucfg.sigma_data).to(memory_format=fmt)
        fwd = model
        if setting == "compile":
            model.net = torch.compile(model.net)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        cond = (x * 2 - 1).contiguous(memory_format=fmt)
        snr = torch.full((batch,), 10.0)

        def loss_fn() -> torch.Tensor:
            return edm_loss(fwd, (torch.rand_like(x) - 0.5) * 0.4, cond, snr, g).float()
    else:
        raise ValueError(f"--models: unknown {model_name!r} (jscc, jscc-fixed, teacher)")

    def step() -> float:
        with autocast(amp):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step, model


def measure_setting(model_name: str, preset: str, batch: int, crop: int, setting: str, seconds: float
                    ) -> dict[str, Any]:
    """Time optimizer steps of one model and setting; returns images/s, Mpx/s and compile time."""
    t0 = time.perf_counter()
    step, model = _step_fn(model_name, preset, batch, crop, setting)
    step()
    step()  # warm-up (and, for "compile", the compilation)
    warm_s = time.perf_counter() - t0
    n, t = 0, time.perf_counter()
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t
        if dt >= seconds and n >= 2:
            break
    ips = n * batch / dt
    return {"model": model_name, "setting": setting, "images_per_s": ips, "mpix_per_s": ips * crop * crop / 1e6,
            "steps": n, "warmup_s": warm_s, "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def loss_curve(preset: str, batch: int, crop: int, steps: int, amp: str, seed: int = 0) -> list[float]:
    """Per-step training loss of the rate-adaptive JSCC preset on fixed smooth synthetic crops."""
    import torch

    from semcom.models.channel import Channel
    from semcom.models.config import jscc_preset
    from semcom.models.data import synthetic_images
    from semcom.models.jscc import JSCC
    from semcom.models.stages import autocast

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = JSCC(jscc_preset(preset, "1/6", base_ratio="1/6")).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    data = synthetic_images(max(4 * batch, 64), crop, crop, seed=seed).float() / 255.0
    channel = Channel()
    out = []
    for i in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=g)
        x = data[idx].contiguous(memory_format=torch.channels_last)
        snr = channel.sample_snr(batch, g)
        with autocast(amp):
            y = model(x, channel, snr, g)
        loss = (y.float() - x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        out.append(float(loss.detach()))
    return out


def _tail_stats(losses: list[float]) -> tuple[float, float]:
    tail = losses[-max(3, len(losses) // 3):]
    m = sum(tail) / len(tail)
    var = sum((v - m) ** 2 for v in tail) / max(1, len(tail) - 1)
    return m, math.sqrt(var / len(tail))


def format_table(res: dict[str, Any]) -> str:
    lines = [f"training throughput, preset {res['preset']}, batch {res['batch']}, crop {res['crop']}x{res['crop']}, "
             f"{res['threads']} thread(s); CPU flags: {res['cpu_flags'] or 'n/a'}",
             "| model | params | setting | images/s | Mpx/s | vs fp32 | warm-up s |", "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        base = next((b for b in res["rows"] if b["model"] == r["model"] and b["setting"] == "fp32"), None)
        rel = f"{r['images_per_s'] / base['images_per_s']:.2f}x" if base else "-"
        lines.append(f"| {r['model']} | {r['params_m']:.2f} M | {r['setting']} | {r['images_per_s']:.1f} | "
                     f"{r['mpix_per_s']:.3f} | {rel} | {r['warmup_s']:.1f} |")
    for r in res.get("skipped", []):
        lines.append(f"| {r['model']} | - | {r['setting']} | skipped: {r['reason']} | | | |")
    c = res.get("curve")
    if c:
        lines.append("")
        lines.append(f"loss curve, {c['steps']} steps, same seed and batches (mean of the last third +- standard error):")
        lines.append(f"  fp32 {c['fp32_mean']:.5f} +- {c['fp32_se']:.5f}   bf16 {c['bf16_mean']:.5f} +- {c['bf16_se']:.5f}"
                     f"   difference {c['diff']:+.5f} = {c['diff_in_se']:.1f} combined SE -> "
                     f"{'within noise' if c['within_noise'] else 'NOT within noise'}")
    return "\n".join(lines)


def run_train_bench(models: list[str], settings: list[str], preset: str = "cpu", batch: int = 32, crop: int = 64,
                    seconds: float = 10.0, curve: int = 300, threads: int = 0,
                    progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    res: dict[str, Any] = {"preset": preset, "batch": batch, "crop": crop, "threads": threads,
                           "cpu_flags": _cpu_flags(), "torch": torch.__version__, "rows": [], "skipped": []}
    for m in models:
        for s in settings:
            if s not in SETTINGS:
                raise ValueError(f"--settings: unknown {s!r} ({', '.join(SETTINGS)})")
            progress(f"{m} {s} ...")
            try:
                res["rows"].append(measure_setting(m, preset, batch, crop, s, seconds))
            except Exception as e:  # noqa: BLE001 - torch.compile needs a working C++ toolchain
                if s != "compile":
                    raise
                res["skipped"].append({"model": m, "setting": s, "reason": f"{type(e).__name__}: {str(e)[:120]}"})
    if curve:
        progress(f"loss curves ({curve} steps, fp32 and bf16) ...")
        a, b = loss_curve(preset, batch, crop, curve, "fp32"), loss_curve(preset, batch, crop, curve, "bf16")
        (ma, sa), (mb, sb) = _tail_stats(a), _tail_stats(b)
        se = math.sqrt(sa * sa + sb * sb) or 1e-12
        res["curve"] = {"steps": curve, "fp32_mean": ma, "fp32_se": sa, "bf16_mean": mb, "bf16_se": sb,
                        "diff": mb - ma, "diff_in_se": abs(mb - ma) / se, "within_noise": abs(mb - ma) < 2 * se,
                        "fp32": a, "bf16": b}
    return res


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="training images/s per preset in fp32, bf16, channels-last, torch.compile",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="jscc,jscc-fixed,teacher", help="comma-separated: jscc, jscc-fixed, teacher")
    p.add_argument("--settings", default="fp32,fp32-cl,bf16-cl", help=f"comma-separated subset of {','.join(SETTINGS)}")
    p.add_argument("--compile", action="store_true", help="add the torch.compile setting")
    p.add_argument("--preset", default="cpu", choices=("cpu", "gpu", "tiny"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per model and setting")
    p.add_argument("--curve", type=int, default=300, help="steps of the fp32-vs-bf16 loss check (0: skip)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--json", metavar="OUT.json", default=None)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import sys

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if args.compile and "compile" not in settings:
        settings.append("compile")
    for name, v in (("--batch", args.batch), ("--crop", args.crop)):
        if v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")
    res = run_train_bench([m.strip() for m in args.models.split(",") if m.strip()], settings, args.preset,
                          args.batch, args.crop, args.seconds, args.curve, args.threads,
                          progress=lambda s: print("  " + s, file=sys.stderr, flush=True))
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0
