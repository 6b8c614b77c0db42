"""``semcom bench codec``: decode latency of each semantic decoder at batch 1 on this machine.

Per image size and decoder: the image is encoded once, sent through AWGN at ``--snr``, and the
received symbols are decoded ``--repeats`` times (after 3 untimed warm-up runs) with batch 1,
as a live receiver decodes one image at a time. Reported: median / 10th / 90th percentile
milliseconds, network evaluations (the JSCC decoder pass counts as one) and, where a target is
set (``TARGETS_MS``), the target and the ratio ``target / measured`` (>= 1 means met). The thread count is that
of torch (``--threads``, default: all cores).

Target: the 1-evaluation consistency decoder, 32x32, <= 10 ms. A consistency decoder may carry
its knobs (``cm2:g=1:k=1``: guided, see ``models/decoders.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_codec_parser", "run_codec", "measure", "format_table", "TARGETS_MS"]

TARGETS_MS = {("cm1", 32, 32): 10.0}


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            w, h = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--sizes takes WxH[,WxH...], got {part!r}") from None
        if w <= 0 or h <= 0:
            raise argparse.ArgumentTypeError(f"--sizes: {part!r} must be positive")
        out.append((h, w))
    return out


def measure(codec, sizes: list[tuple[int, int]], decoders: list[str], snr_db: float = 10.0, repeats: int = 20,
            warmup: int = 3, seed: int = 0, max_seconds: float = 60.0) -> list[dict[str, Any]]:
    """One row per (size, decoder); ``codec`` is a ``semcom.models.decoders.SemanticCodec``.

    A (size, decoder) cell stops early once ``max_seconds`` of timed decoding is spent (at least
    3 timed runs), so slow decoders on large images stay bounded.
    """
    import torch

    from semcom.models.channel import Channel
    from semcom.models.config import ChannelConfig

    rows = []
    ch = Channel(ChannelConfig())
    for h, w in sizes:
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(1, 3, h, w, generator=g)
        s = torch.full((1,), float(snr_db))
        with torch.inference_mode():
            y, nv = ch(codec.encode(x, s), s, g, fading=False)
        for dec in decoders:
            times = []
            with torch.inference_mode():
                for i in range(warmup + repeats):
                    t0 = time.perf_counter()
                    codec.decode(y, nv, s, (h, w), dec, torch.Generator().manual_seed(i))
                    dt = time.perf_counter() - t0
                    if i >= warmup:
                        times.append(dt)
                        if len(times) >= 3 and sum(times) > max_seconds:
                            break
            ms = 1e3 * np.asarray(times)
            target = TARGETS_MS.get((dec, h, w))
            med = float(np.median(ms))
            rows.append({"height": h, "width": w, "decoder": dec, "nfe": codec.nfe(dec), "runs": len(times),
                         "median_ms": med, "p10_ms": float(np.percentile(ms, 10)),
                         "p90_ms": float(np.percentile(ms, 90)), "target_ms": target,
                         "target_ratio": target / med if target else None})
    return rows


# Targets relative to the JSCC decoder measured in the same run (machines differ threefold in absolute
# speed): (decoder, height, width) -> the largest allowed median / JSCC median.
RELATIVE_TARGETS = {("cm1", 32, 32): 2.0, ("cm2:g=1:k=1", 512, 768): 5.0}


def format_table(rows: list[dict[str, Any]], threads: int) -> str:
    lines = [f"decode latency, batch 1, {threads} torch thread(s) (ratio = target / measured, >= 1 met; "
             "x jscc = median / the JSCC decoder's at that size):",
             f"  {'size':>9} {'decoder':>12} {'NFE':>4} {'median':>9} {'p10-p90':>17} {'target':>8} {'ratio':>6} "
             f"{'x jscc':>7} {'x target':>8}"]
    base = {(r["height"], r["width"]): r["median_ms"] for r in rows if r["decoder"] == "jscc"}
    for r in rows:
        tgt = f"{r['target_ms']:.0f}ms" if r["target_ms"] else "-"
        ratio = f"{r['target_ratio']:.2f}" if r["target_ratio"] else "-"
        b = base.get((r["height"], r["width"]))
        rel = f"{r['median_ms'] / b:.2f}" if b else "-"
        rt = RELATIVE_TARGETS.get((r["decoder"], r["height"], r["width"]))
        rel_t = (f"<={rt:g} {'met' if b and r['median_ms'] / b <= rt else 'NOT met'}" if rt else "-")
        r["x_jscc"] = r["median_ms"] / b if b else None
        lines.append(f"  {r['width']:>4}x{r['height']:<4} {r['decoder']:>12} {r['nfe']:>4} {r['median_ms']:>7.1f}ms "
                     f"{r['p10_ms']:>7.1f}-{r['p90_ms']:<7.1f}ms {tgt:>8} {ratio:>6} {rel:>7} {rel_t:>8}")
    return "\n".join(lines)


def add_codec_parser(sub) -> None:
    p = sub.add_parser("codec", help="decode latency of each semantic decoder at batch 1 (against the latency target)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", default="1/24", help="bandwidth ratio of the shipped checkpoints (default 1/24)")
    p.add_argument("--jscc", default="", help="JSCC checkpoint (default: the shipped one for --ratio)")
    p.add_argument("--consistency", default="", help="consistency checkpoint (default: shipped for --ratio)")
    p.add_argument("--teacher", default="", help="teacher checkpoint (default: shipped for --ratio)")
    p.add_argument("--decoders", default="jscc,cm1,cm2,teacher",
                   help="comma-separated (those without a checkpoint are skipped with a note)")
    p.add_argument("--sizes", type=_sizes, default=_sizes("32x32,768x512"), help="WxH list (default 32x32,768x512)")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--teacher-steps", type=int, default=10, help="Heun steps of the teacher (2*steps-1 evaluations)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--json", metavar="OUT.json", default=None)
    p.set_defaults(func=run_codec)


def run_codec(args: argparse.Namespace) -> int:
    import os

    import torch

    from semcom.imagelink import checkpoint_ratio, find_checkpoint, find_extra_checkpoint
    from semcom.models.decoders import SemanticCodec, parse_decoder

    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    jscc = find_checkpoint(args.ratio, args.jscc or None)
    ratio = checkpoint_ratio(jscc) or args.ratio  # the diffusion models must pair with the JSCC checkpoint's ratio
    cm = args.consistency or find_extra_checkpoint("consistency", ratio) or ""
    teacher = args.teacher or find_extra_checkpoint("teacher", ratio) or ""
    codec = SemanticCodec.from_checkpoints(str(jscc), str(teacher), str(cm), args.teacher_steps)
    decoders = []
    for d in (d.strip() for d in args.decoders.split(",") if d.strip()):
        kind, _ = parse_decoder(d)
        if (kind == "cm" and codec.consistency is None) or (kind == "teacher" and codec.teacher is None):
            print(f"skipping {d}: no {'consistency' if kind == 'cm' else 'teacher'} checkpoint for ratio {ratio}")
            continue
        decoders.append(d)
    print(f"semcom bench codec: {jscc}" + (f", {cm}" if cm else "") + (f", {teacher}" if teacher else ""))
    rows = measure(codec, args.sizes, decoders, args.snr, args.repeats)
    print(format_table(rows, threads))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "ratio": str(ratio), "jscc": str(jscc),
                                               "consistency": str(cm), "teacher": str(teacher), "rows": rows},
                                              indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0
