"""``semcom bench``: benchmarks that print tables and write JSON.

``semcom bench phy [--quick] [--json out.json] [--plot out.png] [--only loss,detection,noise,throughput]``
(see ``semcom.bench_phy`` for what is measured). Full mode takes about 3 min on 2 cores
(300 frames per loss cell, 2000 per detection point, 1e7 noise samples; 185 s in
``docs/bench_phy.json``); ``--quick`` about 15 s with fewer frames (too few to show the 99.9 %
detection target).
``semcom bench compare --data PATH --snr 0:2:20 --ratio 1/6,1/24 --json out.json --plot out.png``:
semcom vs the classical baseline on the same number of channel symbols (``semcom.bench_compare``).
``semcom bench codec [--ratio 1/24 --sizes 32x32,768x512 --decoders jscc,cm1,cm2,teacher]``: decode
latency of each semantic decoder at batch 1 (``semcom.bench_codec``).
``semcom bench train [--models jscc,teacher --settings fp32,fp32-cl,bf16-cl --compile]``: training
images/s and pixels/s per preset and setting, and the fp32-vs-bf16 loss check (``semcom.bench_train``).
``semcom bench peer --minutes 20``: semcom's JSCC and the original DeepJSCC trained side by side at
equal wall time, one thread each, PSNR at 10 dB on CIFAR-10 (``semcom.bench_peer``).
``semcom bench memory [--size 4000x3000 --frames 2000 --decoders jscc,cm1 --only image,phy,loopback]``:
peak resident memory of a large photo through the codec and of a long numpy PHY run, each in its own
process, against the 1 GB target (``semcom.bench_memory``).
``semcom bench sweep [--points 48 --payloads 2 --workers 1,2]``: one campaign on 1 and on N local
Dask workers side by side: speed-up and the engine's overhead per point (``semcom.bench_sweep``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from semcom.config import add_config_arguments, config_from_args

__all__ = ["add_parser", "run"]

PARTS = ("loss", "detection", "noise", "throughput")


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {','.join(PARTS)}; got {text!r}")
    return parts


def _run_phy(args: argparse.Namespace) -> int:
    from semcom import bench_phy
    from semcom.blocks.phy.sigmf_io import jsonable

    cfg = config_from_args(args)
    bc = bench_phy.BenchConfig.quick() if args.quick else bench_phy.BenchConfig.full()
    if args.no_gnuradio:
        bc.gnuradio = False
    if args.seed is not None:
        bc.seed = args.seed
    mode = "quick" if args.quick else "full"
    print(f"semcom bench phy ({mode}): {cfg.frame}", flush=True)

    def progress(msg: str) -> None:
        if not args.silent:
            print("  " + msg, file=sys.stderr, flush=True)

    res = bench_phy.run_bench(bc, cfg.frame, parts=args.only, progress=progress)
    res["mode"] = mode
    res["command"] = "semcom " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("semcom") else None
    print(bench_phy.format_tables(res))
    if args.json:
        Path(args.json).write_text(json.dumps(jsonable(res), indent=2) + "\n")
        print(f"JSON: {args.json}")
    if args.plot:
        try:
            bench_phy.plot(res, args.plot)
            print(f"plot: {args.plot}")
        except ImportError as e:
            print(f"no plot ({e})", file=sys.stderr)
    return 0


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")

    def _help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=_help)
    p = sub.add_parser("phy", help="PHY: implementation loss vs genie, detection/header error rate, false "
                                   "frames, throughput", description="Measure and print the PHY benchmark tables: implementation "
                       "loss against a genie receiver, frame detection and header error rates, false "
                       "frames on noise, throughput (see semcom/bench_phy.py). Full mode: about 3 min on "
                       "2 cores; --quick: about 15 s.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", metavar="OUT.json", default=None, help="write all results as JSON")
    p.add_argument("--plot", metavar="OUT.png", default=None, help="also draw the figures (matplotlib)")
    p.add_argument("--quick", action="store_true", help="small run (about 15 s)")
    p.add_argument("--only", type=_parts, default=PARTS, metavar="PARTS",
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    p.add_argument("--no-gnuradio", action="store_true", help="skip the GNU Radio throughput measurement")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    add_config_arguments(p)
    p.set_defaults(func=_run_phy)

    from semcom.bench_compare import add_compare_parser  # light import: torch/gnuradio load on use
    add_compare_parser(sub)
    from semcom.bench_codec import add_codec_parser
    add_codec_parser(sub)
    from semcom.bench_train import add_train_parser
    add_train_parser(sub)
    from semcom.bench_peer import add_peer_parser
    add_peer_parser(sub)
    from semcom.bench_memory import add_memory_parser
    add_memory_parser(sub)
    from semcom.bench_sweep import add_sweep_parser
    add_sweep_parser(sub)


def run(args: argparse.Namespace) -> int:
    return int(args.func(args) or 0)
