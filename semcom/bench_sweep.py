"""``semcom bench sweep``: the same campaign on 1 and on N local workers, side by side.

    semcom bench sweep [--points 48] [--payloads 2] [--payload images|random] [--workers 1,2] [--json OUT.json]

The campaign (``sweep_campaign``): the built-in config's simulator link, ``channel.snr_db`` swept over
``--points`` values from 0 to 20 dB, ``--payloads`` payloads per point: seeded synthetic 96x128 images
through the shipped JSCC (``model.decoder=jscc``; ``--set`` adds overrides, e.g. ``model.ratio=1/24``)
and the classifier, or ``--symbols`` random symbols. Each worker count runs it from scratch into its
own folder (``semcom campaign --workers N``: 1 = in this process, in order, torch on all cores;
N > 1 = a local Dask pool of N processes, ``cpu_count // N`` threads each).

Per worker count (``measure``): ``wall_s`` (the whole run, pool start-up included), ``startup_s``
(starting the pool; 0 in process), ``run_s`` (first job to last row), ``points_per_s`` (points /
wall), ``speedup`` (the first column's wall / this wall), ``compute_s`` (seconds inside the jobs:
sending, receiving, encoding, decoding, scoring; all workers added), ``overhead_ms_per_point``
(``(workers x run_s - compute_s) / points``: worker time not spent on the jobs: scheduling,
serialisation, result transfer, the driver's row writes, idle workers at the tail; a job's time
includes a worker's one model load), ``shutdown_s`` (closing the pool), ``model_loads``
(once per worker) and ``same_rows`` (every row equal to the first column's, timing columns aside;
``max_psnr_diff_db`` shows float differences between thread counts).

The full benchmark (48 points x 2 images on 1 and 2 workers) needs the whole machine: run it idle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

__all__ = ["add_sweep_parser", "run_sweep", "measure", "sweep_campaign", "format_table"]

TIMING = ("latency_s", "decode_s", "time_utc")  # wall-clock columns: differ between any two runs


def _workers(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"--workers takes worker counts >= 1, e.g. 1,2; got {text!r}")
    return out


def sweep_campaign(folder: Path, points: int, payloads: int, payload: str = "images", symbols: int = 3072,
                   sets: list[str] | None = None) -> Path:
    """Write the benchmark's campaign file into ``folder``: ``channel.snr_db`` at ``points`` values in
    [0, 20] dB, ``payloads`` per point, synthetic images (``payload="images"``, JSCC only) or ``symbols``
    random symbols. Returns its path."""
    if points < 1 or payloads < 1:
        raise ValueError(f"--points and --payloads must be >= 1, got {points} and {payloads}")
    snrs = [round(float(v), 4) for v in np.linspace(0.0, 20.0, points)]
    pl = {"kind": "images", "seed": 0} if payload == "images" else {"kind": "random", "symbols": symbols, "seed": 0}
    d = {"sweep": {"channel.snr_db": snrs}, "payloads_per_point": payloads, "payload": pl,
         "set": (["model.decoder=jscc"] if payload == "images" else []) + list(sets or [])}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _rows(out: Path) -> list[dict]:
    from semcom.campaign import read_rows

    key = lambda r: (int(r["point"]), int(r["payload"]), r["decoder"])  # noqa: E731
    return [{k: v for k, v in r.items() if k not in TIMING} for r in sorted(read_rows(out), key=key)]


def measure(path: Path, out: Path, workers: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the campaign ``path`` from scratch into ``out`` on ``workers`` (see the module docstring)."""
    from semcom.campaign import load_campaign, run_campaign

    if out.exists():
        shutil.rmtree(out)
    camp = load_campaign(path)
    stats: dict[str, Any] = {}
    t0 = time.perf_counter()
    res = run_campaign(camp, out, workers=workers, log=log, stats=stats)
    wall = time.perf_counter() - t0
    n = len(camp.points())
    startup = stats.get("startup_s", 0.0)
    run_s = stats.get("run_s", wall)
    used = stats.get("workers", 1)
    return {"workers": workers, "points": n, "payloads": n * camp.payloads_per_point, "rows": res["rows_written"],
            "wall_s": wall, "startup_s": startup, "shutdown_s": stats.get("shutdown_s", 0.0), "run_s": run_s,
            "points_per_s": n / wall,
            "compute_s": stats.get("compute_s", 0.0),
            "overhead_ms_per_point": 1e3 * (used * run_s - stats.get("compute_s", 0.0)) / n,
            "model_loads": stats.get("model_loads")}


def run_sweep(points: int = 48, payloads: int = 2, payload: str = "images", workers: list[int] = (1, 2),
              symbols: int = 3072, sets: list[str] | None = None, out: str | Path | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """``{"campaign": {...}, "runs": [measure(...) per worker count, with speedup, same_rows,
    max_psnr_diff_db]}``; the runs go under ``out`` (default: a temporary folder, removed)."""
    tmp = Path(out) if out else Path(tempfile.mkdtemp(prefix="semcom-sweep-"))
    try:
        path = sweep_campaign(tmp, points, payloads, payload, symbols, sets)
        runs, ref = [], None
        for w in workers:
            log(f"bench sweep: {points} points x {payloads} payloads ({payload}) on {w} worker(s)")
            r = measure(path, tmp / f"w{w}", w, log)
            rows = _rows(tmp / f"w{w}")
            ref = rows if ref is None else ref
            r["speedup"] = runs[0]["wall_s"] / r["wall_s"] if runs else 1.0
            r["same_rows"] = rows == ref
            diffs = [abs(float(a["psnr_db"]) - float(b["psnr_db"])) for a, b in zip(rows, ref)
                     if a.get("psnr_db") and b.get("psnr_db")]
            r["max_psnr_diff_db"] = max(diffs) if diffs else None
            runs.append(r)
        return {"campaign": {"points": points, "payloads_per_point": payloads, "payload": payload,
                             "symbols": symbols if payload == "random" else None, "set": list(sets or [])},
                "runs": runs}
    finally:
        if not out:
            shutil.rmtree(tmp, ignore_errors=True)


def format_table(res: dict[str, Any]) -> str:
    """The runs side by side: one column per worker count, one line per measure."""
    runs = res["runs"]
    c = res["campaign"]
    lines = [f"campaign: {c['points']} points x {c['payloads_per_point']} payloads ({c['payload']}; "
             f"channel.snr_db 0..20 dB, simulator link)"]
    rows = [("workers", lambda r: f"{r['workers']}"), ("wall s", lambda r: f"{r['wall_s']:.2f}"),
            ("pool start-up s", lambda r: f"{r['startup_s']:.2f}"), ("run s", lambda r: f"{r['run_s']:.2f}"),
            ("pool shut-down s", lambda r: f"{r['shutdown_s']:.2f}"),
            ("points/s", lambda r: f"{r['points_per_s']:.2f}"), ("speed-up", lambda r: f"{r['speedup']:.2f}x"),
            ("compute s (all workers)", lambda r: f"{r['compute_s']:.2f}"),
            ("engine overhead ms/point", lambda r: f"{r['overhead_ms_per_point']:.1f}"),
            ("model loads", lambda r: "-" if r["model_loads"] is None else str(r["model_loads"])),
            ("same rows as first", lambda r: "yes" if r["same_rows"] else
             ("no" if r["max_psnr_diff_db"] is None else f"PSNR within {r['max_psnr_diff_db']:.1e} dB"))]
    w = max(len(name) for name, _ in rows)
    for name, f in rows:
        lines.append(f"{name:<{w}}  " + "  ".join(f"{f(r):>12s}" for r in runs))
    return "\n".join(lines)


def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="a campaign on 1 and on N local workers (Dask): speed-up and engine overhead",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=48, help="sweep points (channel.snr_db values; default 48)")
    p.add_argument("--payloads", type=int, default=2, help="payloads per point (default 2)")
    p.add_argument("--payload", choices=("images", "random"), default="images",
                   help="synthetic images through the shipped JSCC, or random symbols (default images)")
    p.add_argument("--symbols", type=int, default=3072, help="symbols per random payload (default 3072)")
    p.add_argument("--workers", type=_workers, default=[1, 2], help="worker counts to compare (default 1,2)")
    p.add_argument("--set", dest="sets", metavar="SECTION.KEY=VALUE", action="append", default=[],
                   help="extra campaign override (repeatable), e.g. model.ratio=1/24")
    p.add_argument("--out", metavar="DIR", default=None, help="keep the runs in DIR (default: a temporary folder)")
    p.add_argument("--json", metavar="OUT.json", default=None, help="write the measures as JSON")
    p.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from semcom.campaign import CampaignError

    log = (lambda s: None) if args.silent else (lambda s: print("  " + s, file=sys.stderr, flush=True))
    try:
        res = run_sweep(args.points, args.payloads, args.payload, args.workers, args.symbols, args.sets, args.out, log)
    except (CampaignError, ValueError) as e:
        print(f"semcom bench sweep: error: {e}", file=sys.stderr)
        return 1
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0
