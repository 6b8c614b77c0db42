"""``semcom eval``: evaluate decoders on CIFAR-10 or a folder of PNG/JPEG images.

Example::

    semcom eval --jscc models/checkpoints/jscc-1_6.safetensors --snr 0,5,10,15,20 \\
        --decoder jscc --channel awgn,fading --images 1000 --json out.json --plot out.png

``--data`` is a folder holding ``test.npz`` (CIFAR-10 format, see ../shared/data/README.md)
or any folder of images (any size; evaluated one image at a time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from semcom.models.knobs import DecodeKnobs


def add_parser(parser: argparse.ArgumentParser) -> None:
    from semcom.models.options import DEFAULT_CIFAR10

    parser.add_argument("--data", default=str(DEFAULT_CIFAR10),
                        help="CIFAR-10 folder (test.npz) or a folder of PNG/JPEG images")
    parser.add_argument("--jscc", required=True, help="JSCC checkpoint (encoder + MSE decoder)")
    parser.add_argument("--teacher", default="", help="teacher checkpoint (decoder 'teacher')")
    parser.add_argument("--consistency", default="", help="consistency checkpoint (decoders cm1, cm2, ...)")
    parser.add_argument("--classifier", default="", help="classifier checkpoint (accuracy, feature FD)")
    parser.add_argument("--snr", default="0,5,10,15,20", help="comma-separated Es/N0 values in dB")
    parser.add_argument("--decoder", default="jscc", help="comma-separated: jscc, teacher, cm1, cm2, cm4; a "
                        "consistency decoder may carry its knobs, e.g. cm2:g=1:k=2:s=0.5")
    parser.add_argument("--channel", default="awgn", help="comma-separated: awgn, fading")
    parser.add_argument("--images", type=int, default=1000, help="number of test images (CIFAR: first N "
                        "of a fixed shuffle)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--teacher-steps", type=int, default=10, help="Heun steps (2*steps-1 evaluations)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    knob = DecodeKnobs()
    parser.add_argument("--guidance", type=float, default=knob.guidance, help="consistency decoders: posterior "
                        f"guidance strength 0-1 (default {knob.guidance:g}, the setting measured on photos; 0: "
                        "unguided; a decoder's own :g=... wins)")
    parser.add_argument("--guidance-steps", type=int, default=knob.guidance_steps,
                        help=f"gradient steps per jump, 0-3 (default {knob.guidance_steps})")
    parser.add_argument("--start-sigma", type=float, default=knob.start_sigma, help="SDEdit start level of the "
                        f"consistency decoders (default {knob.start_sigma:g}; 0 = sigma_max, pure noise)")
    parser.add_argument("--perceptual", choices=("auto", "on", "off"), default="auto",
                        help="NIQE and log-spectrum distance (auto: on for image folders holding an image of at least 96x96)")
    parser.add_argument("--figure", default="", help="also draw the first --figure-images images at the first "
                        "SNR and channel: original | each decoder, with PSNR / NIQE / spectrum distance (PNG)")
    parser.add_argument("--figure-images", type=int, default=3)
    parser.add_argument("--json", default="", help="write the rows as JSON here")
    parser.add_argument("--plot", default="", help="write a PNG plot here")
    parser.set_defaults(func=run)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{what}: expected comma-separated numbers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    import torch

    from semcom.models.checkpoint import load_model
    from semcom.models.data import load_cifar10, load_image_folder
    from semcom.models.decoders import SemanticCodec, parse_decoder_spec
    from semcom.models.evaluate import evaluate, figure, format_table, plot_rows

    torch.set_num_threads(args.threads)
    snrs = _floats(args.snr, "snr")
    decoders = [d.strip() for d in args.decoder.split(",") if d.strip()]
    knobs = DecodeKnobs(args.guidance, args.guidance_steps if args.guidance > 0 else 0, args.start_sigma)
    for d in decoders:
        parse_decoder_spec(d, knobs)
    channels = [c.strip() for c in args.channel.split(",") if c.strip()]
    codec = SemanticCodec.from_checkpoints(args.jscc, args.teacher, args.consistency, args.teacher_steps)
    classifier = load_model(args.classifier, kind="classifier")[0] if args.classifier else None

    data = Path(args.data)
    labels = None
    if (data / "test.npz").is_file():
        x, labels = load_cifar10(data, "test", limit=args.images)
        images = x.float() / 255.0
        source = f"CIFAR-10 test ({len(images)} images) from {data}"
    else:
        images = load_image_folder(data, limit=args.images)
        source = f"{len(images)} images from {data}"
    print(f"evaluating on {source}", file=sys.stderr, flush=True)
    # auto: on for photo folders with at least one image large enough for NIQE's 96x96 patches
    perceptual = args.perceptual == "on" or (args.perceptual == "auto" and labels is None
                                             and any(min(im.shape[-2:]) >= 96 for im in images))
    rows = evaluate(codec, images, snrs, decoders, channels, labels, classifier, batch=args.batch,
                    seed=args.seed, knobs=knobs, perceptual=perceptual, progress=lambda r: print(
                        f"  {r['channel']} {r['snr_db']:g} dB {r['decoder']}: PSNR {r['psnr']:.2f}"
                        + (f" NIQE {r['niqe']:.2f}" if "niqe" in r else ""), file=sys.stderr, flush=True))
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "jscc": args.jscc, "teacher": args.teacher,
                                               "consistency": args.consistency, "classifier": args.classifier,
                                               "rows": rows}, indent=2) + "\n")
    if args.plot:
        plot_rows(rows, args.plot)
    if args.figure:
        figure(codec, [images[i] for i in range(min(args.figure_images, len(images)))], snrs[0], decoders,
               args.figure, channels[0], args.seed, knobs)
        print(f"figure: {args.figure}")
    return 0
