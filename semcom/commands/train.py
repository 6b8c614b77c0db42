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

# --help text of every TrainOptions field the loop below turns into a flag (" (default X)" is appended
# unless the default is the empty string, which each text explains)
HELP = {
    "eval_data": "image folder(s) to evaluate on, comma-separated (default: CIFAR-10 test, or the training folders)",
    "crop": "random crop side in pixels for image folders (0: 64); CIFAR-10 uses whole images",
    "channels": "JSCC widths per level instead of the preset's, e.g. 32,64,128 (architecture studies; default: "
                "the preset's)",
    "blocks": "residual blocks per level instead of the preset's (0: preset)",
    "gdn": "GDN layers: 1 on, 0 off, -1 the preset's choice",
    "amp": "fp32 or bf16 (CPU autocast; pays off only with avx512_bf16/AMX)",
    "guard": "collapse guard: roll back when the smoothed loss exceeds this many times its best (0: off)",
    "guard_every": "steps between the collapse guard's in-memory snapshots",
    "steps": "optimizer steps in all (the cosine learning-rate schedule ends here)",
    "batch": "images per step",
    "lr": "peak learning rate (AdamW)",
    "warmup": "steps of linear learning-rate warm-up before the cosine decay",
    "lr_min_frac": "the cosine decays to lr x this at the last step",
    "weight_decay": "AdamW weight decay",
    "ema_decay": "decay of the exponential moving average of the weights (the EMA weights are exported)",
    "seed": "seed of the initialisation, batches and channel draws",
    "threads": "torch CPU threads",
    "device": "cpu, cuda or auto (cuda when available); random numbers stay on the CPU",
    "ckpt_minutes": "minutes between checkpoints of the training state (OUT/state.safetensors)",
    "eval_every": "steps between evaluations (OUT/eval.csv)",
    "eval_images": "images per evaluation",
    "log_every": "steps between log lines (OUT/log.csv)",
    "synthetic": "train and evaluate on this many synthetic images instead of --data (tests, smoke runs; 0: off)",
    "crop_pad": "random-translation padding in pixels (reflect pad, then crop back; 0: off)",
    "p_fading": "probability that a training image goes through multipath fading instead of AWGN",
    "p_erasure": "probability that a training image loses frames (each frame then lost with probability 0.25)",
    "init": "warm start: the weights of this checkpoint (same kind and configuration), not its optimizer state "
            "(default: none)",
    "rewarm": "with --resume: ramp the learning rate up again over this many steps (when --steps grows)",
    "max_minutes": "stop (after saving) once this many minutes of wall time are spent; 0: no limit",
    "stop_at": "stop (after saving) at this step, to --resume later; 0: run to --steps",
}


def add_parser(parser: argparse.ArgumentParser) -> None:
    from semcom.models.options import TrainOptions  # torch-free: `semcom --help` stays fast

    defaults = TrainOptions(stage="jscc", out="")
    parser.add_argument("stage", choices=STAGES, help="what to train")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, logs, options.json)")
    parser.add_argument("--data", default=defaults.data, help="CIFAR-10 folder with train.npz/test.npz "
                        "(default: ../shared/data/cifar10)")
    parser.add_argument("--ratio", default=defaults.ratio, help="bandwidth ratio k/n, e.g. 1/6 or 1/24")
    parser.add_argument("--preset", default=defaults.preset, choices=("cpu", "gpu", "tiny"),
                        help=f"network size: cpu (trains on a shared 2-core machine), gpu (wider and deeper), "
                             f"tiny (tests) (default {defaults.preset})")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    parser.add_argument("--jscc", default="", help="frozen JSCC checkpoint (teacher / consistency)")
    parser.add_argument("--teacher", default="", help="teacher checkpoint (consistency distillation)")
    for f in dataclasses.fields(TrainOptions):
        if f.name in {"stage", "out", "data", "ratio", "preset", "resume", "jscc", "teacher", "quiet"}:
            continue
        flag = "--" + f.name.replace("_", "-")
        val = getattr(defaults, f.name)
        what = HELP.get(f.name, f.name.replace("_", " "))
        parser.add_argument(flag, type=type(val), default=val, help=what if val == "" else f"{what} (default {val})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semcom.models.options import TrainOptions
    from semcom.models.train import train

    names = {f.name for f in dataclasses.fields(TrainOptions)}
    opts = TrainOptions(**{k: v for k, v in vars(args).items() if k in names})
    train(opts)
    return 0
