"""``semcom bench memory``: peak resident memory of a large photo and of a long numpy PHY run.

Each case runs in its own subprocess; its peak resident set (``VmHWM``, the process's own
high-water mark: ``peak_rss_mb``) is printed next to the target (``TARGET_MB``, 1 GB):

* ``image``: a synthetic ``--size`` photo (default 4000x3000, written as PNG by a helper process
  first) is loaded, encoded by the shipped JSCC codec at ``--ratio``, sent through AWGN at
  ``--snr``, decoded by each of ``--decoders`` and scored (PSNR/SSIM): the per-image work of
  ``semcom loopback --image`` without the GNU Radio PHY. Images larger than
  ``semcom.models.tiling.JSCC_TILING.whole`` (the diffusion decoders: ``UNET_TILING.whole``) go
  through the codec in overlapping tiles.
* ``phy``: ``semcom loopback --phy --engine numpy --streams FRAMES`` (one 3072-symbol stream per
  frame, default 2000 frames), which streams the frames through channel and receiver in blocks.
* ``loopback`` (only when ``--only`` names it): the whole ``semcom loopback --image PNG --decoder
  DECODERS`` through GNU Radio.

About 1-2 minutes on one loaded core with the defaults (``--decoders jscc,cm1`` adds the
consistency decoder: a few minutes more at 4000x3000).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_memory_parser", "run_memory", "measure_command", "peak_rss_mb", "TARGET_MB"]

TARGET_MB = 1000.0  # 1 GB (10^9 bytes)


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (10^6 bytes): ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``VmHWM`` belongs to the process image: ``ru_maxrss`` would also count the parent's pages a
    forked child held before ``exec``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def measure_command(argv: list[str], timeout: float = 1800.0, env: dict | None = None) -> dict[str, Any]:
    """Run ``python -m semcom.bench_memory --peak-file F ARGV`` (``ARGV``: ``cli ...`` = a ``semcom``
    command, or ``image ...``); ``{"peak_mb", "seconds", "rc", "stdout", "stderr"}``, ``peak_mb`` the
    child's own peak RSS (``peak_rss_mb``, MB), None if it did not get to write it."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="semcom-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        cmd = [sys.executable, "-m", "semcom.bench_memory", "--peak-file", str(peak_file), *argv]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            rc, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = 124, str(e.stdout or ""), f"timed out after {timeout:.0f} s"
        peak = float(peak_file.read_text()) if peak_file.is_file() else None
    return {"peak_mb": peak, "seconds": time.monotonic() - t0, "rc": rc, "stdout": out, "stderr": err}


def _image_child(args: argparse.Namespace) -> int:
    """The measured image work (runs in the child): load, encode, AWGN, decode, metrics; prints JSON."""
    from semcom.blocks.phy.snr import complex_awgn, noise_variance
    from semcom.imagelink import (CodecRuntime, checkpoint_ratio, extra_checkpoints, find_checkpoint,
                                  image_metrics, load_image)

    img = load_image(args.image)
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    jscc = find_checkpoint(args.ratio)
    cm, teacher = extra_checkpoints(checkpoint_ratio(jscc) or args.ratio, decoders)
    codec = CodecRuntime(jscc, cm, teacher, threads=args.threads)
    t0 = time.perf_counter()
    z = codec.encode(img, args.snr)
    n0 = noise_variance(args.snr)
    y = z + complex_awgn(z.size, n0, np.random.default_rng(0))
    nv = np.full(z.size, n0, np.float32)
    rows = [{"step": "encode", "seconds": time.perf_counter() - t0, "symbols": int(z.size)}]
    del z
    for d in decoders:
        t0 = time.perf_counter()
        out = codec.decode(y, nv, args.snr, img.shape[:2], codec.check_decoder(d), seed=0)
        rows.append({"step": d, "seconds": time.perf_counter() - t0, **image_metrics(out, img)})
        del out
    print(json.dumps({"rows": rows}))
    return 0


def _write_image(path: Path, height: int, width: int) -> None:
    """The synthetic photo as PNG, made in a helper process (its memory is not the codec's)."""
    code = ("import sys; from semcom.imagelink import save_png, synthetic_image; "
            f"save_png(synthetic_image({height}, {width}, seed=0), sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size takes WxH, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"--size: {text!r}: each side must be >= 8")
    return h, w


CASES = ("image", "phy", "loopback")


def _cases(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if not parts or any(p not in CASES for p in parts):
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {','.join(CASES)}; got {text!r}")
    return parts


def _met(r: dict) -> bool:
    return r["rc"] == 0 and r["peak_mb"] is not None and r["peak_mb"] < TARGET_MB


def _line(name: str, r: dict) -> str:
    ok = "met" if _met(r) else ("FAILED" if r["rc"] else "NOT met")
    peak = f"{r['peak_mb']:>7.0f} MB" if r["peak_mb"] is not None else "      ? MB"
    return f"  {name:<34} peak RSS {peak}   target < {TARGET_MB:.0f} MB: {ok:<7} ({r['seconds']:.0f} s)"


def run_memory(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    res: dict[str, Any] = {"target_mb": TARGET_MB, "cases": {}}
    lines = [f"semcom bench memory: peak resident memory per case, each in its own process "
             f"(VmHWM; target < {TARGET_MB:.0f} MB)"]
    print(lines[0], flush=True)
    failed = False
    with tempfile.TemporaryDirectory(prefix="semcom-mem-") as tmp:
        h, w = args.size
        cases: list[tuple[str, list[str]]] = []
        if "image" in args.only or "loopback" in args.only:
            png = Path(tmp) / f"synthetic_{w}x{h}.png"
            _write_image(png, h, w)
        if "image" in args.only:
            cases.append((f"image {w}x{h} [{args.decoders}]",
                          ["image", str(png), "--ratio", args.ratio, "--decoders", args.decoders, "--snr",
                           str(args.snr), "--threads", str(args.threads)]))
        if "phy" in args.only:
            cases.append((f"numpy PHY, {args.frames} frames",
                          ["cli", "loopback", "--phy", "--engine", "numpy", "--streams", str(args.frames),
                           "--snr", str(args.snr), "--out", ""]))
        if "loopback" in args.only:
            cases.append((f"GNU Radio loopback {w}x{h} [{args.decoders}]",
                          ["cli", "loopback", "--image", str(png), "--ratio", args.ratio, "--decoder",
                           args.decoders, "--snr", str(args.snr), "--out", "", "--timeout", "1800"]))
        for name, cmd in cases:
            r = measure_command(cmd, env=env)
            shown = ["semcom", *cmd[1:]] if cmd[0] == "cli" else ["python", "-m", "semcom.bench_memory", *cmd]
            row = {"command": " ".join(shown), "peak_mb": r["peak_mb"], "seconds": r["seconds"], "rc": r["rc"],
                   "met": _met(r)}
            if r["rc"]:
                failed = True
                print(r["stderr"][-2000:], file=sys.stderr)
            if cmd[0] == "image" and r["rc"] == 0:
                row["detail"] = json.loads(r["stdout"].strip().splitlines()[-1])["rows"]
            res["cases"][name] = row
            lines.append(_line(name, r))
            print(lines[-1], flush=True)
            for d in row.get("detail", []):
                extra = f", PSNR {d['psnr']:.2f} dB" if "psnr" in d else ""
                print(f"      {d['step']:<12} {d['seconds']:.1f} s{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 1 if failed else 0


def add_memory_parser(sub) -> None:
    p = sub.add_parser("memory", help="peak resident memory: a 4000x3000 photo through the codec, 2000 frames "
                                      "of the numpy PHY (1 GB target)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=_size, default=(3000, 4000), help="image WxH (default 4000x3000)")
    p.add_argument("--ratio", default="1/24", help="bandwidth ratio of the shipped codec (default 1/24, the demo's)")
    p.add_argument("--decoders", default="jscc", help="comma-separated decoders for the image (default jscc; "
                                                      "jscc,cm1 adds the consistency decoder)")
    p.add_argument("--frames", type=int, default=2000, help="frames of the numpy PHY case (default 2000)")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--only", type=_cases, default=("image", "phy"),
                   help="comma-separated cases: image, phy, loopback (the whole GNU Radio image loopback); "
                        "default image,phy")
    p.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of the children (default 1)")
    p.add_argument("--json", metavar="OUT.json", default=None)
    p.set_defaults(func=run_memory)


def _main(argv: list[str] | None = None) -> int:
    """Child of ``semcom bench memory``: ``--peak-file F cli ARGS`` (a ``semcom`` command) or
    ``--peak-file F image PNG [...]`` (the measured image work); writes ``peak_rss_mb()`` to F at the end."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[0] != "--peak-file" or argv[2] not in ("cli", "image"):
        raise SystemExit("usage: python -m semcom.bench_memory --peak-file F (cli ARGS... | image PNG [options])")
    peak_file, what, rest = argv[1], argv[2], argv[3:]
    try:
        if what == "cli":
            from semcom.cli import main

            return int(main(rest) or 0)
        ap = argparse.ArgumentParser(prog="semcom.bench_memory image")
        ap.add_argument("image")
        ap.add_argument("--ratio", default="1/24")
        ap.add_argument("--decoders", default="jscc")
        ap.add_argument("--snr", type=float, default=10.0)
        ap.add_argument("--threads", type=int, default=1)
        return _image_child(ap.parse_args(rest))
    finally:
        Path(peak_file).write_text(f"{peak_rss_mb():.3f}\n")


if __name__ == "__main__":
    sys.exit(_main())
