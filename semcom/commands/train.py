"""``semcom train STAGE``: train one stage of the semantic codec (see models/train.py).

Examples::

    semcom train jscc --ratio 1/6 --preset cpu --out runs/jscc-1_6
    semcom train jscc --ratio 1/6 --preset cpu --out runs/jscc-1_6 --resume
    semcom train teacher --jscc models/checkpoints/jscc-1_6.safetensors --out runs/teacher-1_6
"""

from __future__ import annotations

import argparse
import dataclasses

STAGES = ("jscc", "teacher", "consistency", "classifier")


def add_parser(parser: argparse.ArgumentParser) -> None:
    from semcom.models.options import TrainOptions  # torch-free: `semcom --help` stays fast

    defaults = TrainOptions(stage="jscc", out="")
    parser.add_argument("stage", choices=STAGES, help="what to train")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, logs, options.json)")
    parser.add_argument("--data", default=defaults.data, help="CIFAR-10 folder with train.npz/test.npz "
                        "(default: ../shared/data/cifar10)")
    parser.add_argument("--ratio", default=defaults.ratio, help="bandwidth ratio k/n, e.g. 1/6 or 1/24")
    parser.add_argument("--preset", default=defaults.preset, choices=("cpu", "gpu", "tiny"))
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    parser.add_argument("--jscc", default="", help="frozen JSCC checkpoint (teacher / consistency)")
    parser.add_argument("--teacher", default="", help="teacher checkpoint (consistency distillation)")
    for f in dataclasses.fields(TrainOptions):
        if f.name in {"stage", "out", "data", "ratio", "preset", "resume", "jscc", "teacher", "quiet"}:
            continue
        flag = "--" + f.name.replace("_", "-")
        val = getattr(defaults, f.name)
        parser.add_argument(flag, type=type(val), default=val, help=f"(default {val})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semcom.models.options import TrainOptions
    from semcom.models.train import train

    names = {f.name for f in dataclasses.fields(TrainOptions)}
    opts = TrainOptions(**{k: v for k, v in vars(args).items() if k in names})
    train(opts)
    return 0
