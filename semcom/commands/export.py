"""``semcom export SRC --ratios 1/6,1/12,1/24,1/48 --out DIR``: one checkpoint per ratio from a
rate-adaptive run.

A rate-adaptive JSCC (``semcom train jscc --ratio 1/6,1/12,...``) is one network for every
ratio; the link, the blocks and the checkpoint finder use one file per ratio,
``DIR/jscc-<n>_<d>.safetensors`` (the same weights, the config's ratio set). A teacher or
consistency model trained on several ratios is written as ``DIR/<kind>-<n>_<d>.safetensors``
with its pairing ratio set. Each file carries its content hash; the source's is recorded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="rate-adaptive checkpoint (e.g. runs/jscc-ra-cpu/best.safetensors)")
    parser.add_argument("--ratios", required=True, help="comma-separated ratios, e.g. 1/6,1/12,1/24,1/48")
    parser.add_argument("--out", required=True, help="folder for the per-ratio files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semcom.imagelink import ratio_tag
    from semcom.models.checkpoint import export_ratio, read_metadata

    kind = read_metadata(args.source)["kind"]
    out = Path(args.out)
    for r in [r.strip() for r in args.ratios.split(",") if r.strip()]:
        dst = export_ratio(args.source, r, out / f"{kind}-{ratio_tag(r)}.safetensors")
        print(f"{dst}  ({kind}, ratio {r})")
    return 0
