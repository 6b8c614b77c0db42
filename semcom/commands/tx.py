"""``semcom tx``: transmit images or PHY payloads on a radio.

    semcom tx --config hw_configs/pluto.yaml --image photo.jpg [--ratio 1/6] [--snr-hint 10]
    semcom tx --config hw_configs/usrp_b210.yaml --image pics/ --repeat 3
    semcom tx --config hw_configs/pluto.yaml --image photo.jpg --dry-run
    semcom tx --config hw_configs/pluto.yaml --random 4 [--symbols 3072] [--duration 10]
    semcom tx --config hw_configs/usrp_b210.yaml --payload symbols.npy --set radio.tx_gain_db=50

Payloads: ``--image PATH`` (a PNG/JPEG/... file, a folder of them or a comma-separated list; any
size): each image is encoded by the semantic (JSCC) encoder and sent as one stream, a
descriptor frame (size, ratio, codec id) then its analog symbols, stream ids from
``link.stream_id`` in the order given (the order ``semcom rx --decode --reference`` expects).
The checkpoint: ``--set model.checkpoint=PATH``, else the shipped/trained one for ``--ratio``
(default: ``model.ratio`` of the config; ``--set model.ratio=1/24`` is the same as ``--ratio 1/24``). ``--random N`` streams of unit-power random symbols (seed ``--seed``; ``semcom rx
--expect-random N`` rebuilds them to measure the SNR) or ``--payload X.npy`` (complex
symbols [n] or [k, n]; 0/1 integers are sent as digital bits).

Back ends (``--backend``): ``burst`` (PlutoSDR default: pyadi-iio, the frames go into the
cyclic TX buffer and repeat for ``--duration`` seconds; no underflow possible) or
``gnuradio`` (USRP default: ``semcom_ofdm_tx`` -> gr-uhd/gr-iio sink, frames sent
``--repeat`` times, underflows counted from gr-uhd's async messages). Either way the TX gain
ramps up to ``radio.tx_gain_db`` over ``radio.tx_ramp_s``. ``radio.device: fake_pluto`` /
``fake_uhd`` use the test doubles of ``semcom.radio.fakes`` (the fake air is a directory,
``SEMCOM_FAKE_AIR``), so ``semcom rx`` in another process receives the frames.

``--dry-run`` validates (config, images, checkpoint), prints the resolved config and the plan
(images, sizes, symbols, frames, samples, air time, checkpoint) and touches no device.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import yaml

from semcom.blocks.phy.sigmf_io import jsonable
from semcom.config import RANDOM_STREAM_SYMBOLS, add_config_arguments, config_from_args, model_from_args

__all__ = ["add_parser", "run", "require_radio", "add_radio_arguments", "resolve_radio", "print_dry_run",
           "guarded"]


def require_radio(cfg, command: str) -> str:
    """The device kind (pluto/uhd) or a ValueError naming ``radio.device``."""
    from semcom.radio.limits import hardware_kind

    kind = hardware_kind(cfg.radio.device)
    if kind is None:
        raise ValueError(f"radio.device is {cfg.radio.device!r}: `semcom {command}` drives radios (pluto, uhd, "
                         f"fake_pluto, fake_uhd); for simulation use `semcom loopback` or `semcom phy`")
    return kind


def add_radio_arguments(parser: argparse.ArgumentParser) -> None:
    """``--symbols``, ``--seed`` (random payloads), ``--backend``, ``--dry-run``, ``--config`` and ``--set``
    (shared by ``semcom tx`` and ``semcom rx``, so both ends rebuild the same random payloads)."""
    parser.add_argument("--symbols", type=int, default=RANDOM_STREAM_SYMBOLS,
                        help=f"symbols per random stream (default {RANDOM_STREAM_SYMBOLS})")
    parser.add_argument("--seed", type=int, default=0, help="random payload seed (default 0)")
    parser.add_argument("--backend", choices=("auto", "burst", "gnuradio"), default="auto",
                        help="auto: burst for a PlutoSDR, gnuradio for a USRP")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; touch no device")
    add_config_arguments(parser)


def resolve_radio(args: argparse.Namespace, command: str):
    """``(cfg, kind, backend)`` from the arguments (the model flags given, e.g. ``--ratio``, in ``cfg.model``);
    ValueError for a non-radio device or a bad backend."""
    cfg = model_from_args(config_from_args(args), args)
    kind = require_radio(cfg, command)
    backend = args.backend if args.backend != "auto" else ("burst" if kind == "pluto" else "gnuradio")
    if backend == "burst" and kind != "pluto":
        raise ValueError("--backend burst needs a PlutoSDR (radio.device pluto or fake_pluto)")
    return cfg, kind, backend


def print_dry_run(cfg, plan: dict) -> int:
    print("# resolved config")
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip())
    print("# plan (dry run: no device touched)")
    print(json.dumps(plan, indent=1))
    return 0


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--image", metavar="PATH", help="image file, folder or comma-separated list (semantic encoder)")
    src.add_argument("--payload", metavar="X.npy", help="symbols [n] or [k, n] (complex) or bits (0/1 integers)")
    src.add_argument("--random", metavar="N", type=int, help="N random unit-power payload streams")
    img = parser.add_argument_group("images (--image)")
    img.add_argument("--ratio", default=None,
                     help="bandwidth ratio of the shipped/trained JSCC checkpoint (1/6, 1/24; default: "
                          "model.ratio, or the ratio of model.checkpoint when one is set)")
    img.add_argument("--snr-hint", type=float, default=10.0,
                     help="SNR (dB, Es/N0) the encoder is told (default 10; the receiver decodes with its own "
                          "estimate)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="burst mode: seconds the cyclic buffer plays (default 10; 0 = until Ctrl-C)")
    parser.add_argument("--repeat", type=int, default=1, help="gnuradio mode: times the payloads are sent")
    add_radio_arguments(parser)
    parser.set_defaults(func=run)


def guarded(command: str, body, args: argparse.Namespace) -> int:
    """``body(args)``; a ``RadioError`` (device problem) becomes one clear line and exit status 1."""
    from semcom.radio import RadioError

    try:
        return body(args)
    except RadioError as e:
        print(f"semcom {command}: device error: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    return guarded("tx", _run, args)


def _image_payload(cfg, args, dry_run: bool):
    """``(sends, plan fields)`` for ``--image``: the images encoded (rows only on a dry run)."""
    import math

    from semcom.imagelink import image_paths, load_image
    from semcom.radio.images import encode_images, image_plan, load_codec

    if not math.isfinite(args.snr_hint):
        raise ValueError(f"--snr-hint must be finite, got {args.snr_hint}")
    images = [(load_image(p), str(p)) for p in image_paths(args.image)]
    codec = load_codec(cfg, args.ratio)
    first = cfg.link.stream_id
    if dry_run:
        sends, rows = [], image_plan(cfg, codec, images, first)
    else:
        sends, rows = encode_images(cfg, codec, images, args.snr_hint, first)
    return sends, {"images": rows, "checkpoint": codec.checkpoint, "ratio": str(codec.ratio),
                   "codec_id": codec.codec_id, "snr_hint_db": args.snr_hint}


def _run(args: argparse.Namespace) -> int:
    from semcom.radio.limits import limits_for
    from semcom.radio.link import build_waveform, payload_streams, waveform_of
    from semcom.radio.pluto_burst import ramp_steps

    cfg, kind, backend = resolve_radio(args, "tx")
    if args.payload is None and args.random is None and args.image is None:
        raise ValueError("give --image PATH, --payload X.npy or --random N")
    if args.repeat < 1 or args.duration < 0:
        raise ValueError("--repeat must be >= 1 and --duration >= 0")
    r = cfg.radio
    if args.image is not None:
        sends, extra = _image_payload(cfg, args, args.dry_run)
        pkind = "images"
        n_frames = sum(row["frames"] for row in extra["images"])
        n_samples = cfg.frame.guard_len + sum(row["samples"] for row in extra["images"])
        tx = None if args.dry_run else waveform_of(cfg, sends)
    else:
        streams, pkind = payload_streams(args.payload, args.random, args.symbols, args.seed)
        sends = [(x, {"stream_id": (cfg.link.stream_id + i) & 0xFFFF, "codec_id": cfg.model.codec_id, "kind": pkind})
                 for i, x in enumerate(streams)]
        extra = {"streams": len(streams)}
        tx = build_waveform(cfg, streams, pkind)
        n_frames, n_samples = len(tx.headers), int(tx.iq.size)
    lim = limits_for(r.device, r.model, r.daughterboard)
    airtime = n_samples / r.sample_rate
    plan = {"device": r.device, "uri": r.uri, "backend": backend, "kind": pkind, **extra,
            "frames": n_frames, "samples": n_samples, "airtime_s": airtime, "center_freq": r.center_freq,
            "sample_rate": r.sample_rate, "tx_gain_ramp_db": ramp_steps(r.tx_gain_db, r.tx_ramp_steps, lim.tx_gain[0]),
            "tx_ramp_s": r.tx_ramp_s,
            "mode": (f"cyclic buffer for {args.duration:g} s" if backend == "burst" and args.duration
                     else "cyclic buffer until Ctrl-C" if backend == "burst" else f"send {args.repeat} time(s)")}
    if backend == "burst":  # a capture of two periods holds every frame whole wherever it starts
        plan["rx_duration_min_s"] = 2 * airtime
    if args.dry_run:
        return print_dry_run(cfg, plan)
    if backend == "burst":
        res = _tx_burst(cfg, tx, args.duration)
    else:
        res = _tx_gnuradio(cfg, tx, sends, args.repeat)
    print(json.dumps(jsonable({**plan, **res})))
    return 0


def _tx_burst(cfg, tx, duration: float) -> dict:
    from semcom.radio.pluto_burst import PlutoBurst

    with PlutoBurst(cfg) as radio:
        info = radio.start_tx(tx.iq)
        print(f"semcom tx: cyclic buffer of {tx.iq.size} samples playing "
              f"({'Ctrl-C to stop' if not duration else f'{duration:g} s'})", file=sys.stderr, flush=True)
        try:
            if duration:
                time.sleep(duration)
            else:
                while True:
                    time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            radio.stop_tx()
    return {"tx_scale": info["scale"], "gains_db": info["gains_db"], "underflows": 0,
            "underflow_note": "cyclic buffer: the FPGA replays it, no host underflow possible"}


def _tx_gnuradio(cfg, tx, sends, repeat: int) -> dict:
    """``sends`` (``(data, meta)``) ``repeat`` times through ``RadioTx``; waits until the sink took them."""
    from semcom.blocks.gr.radio import RadioTx
    from semcom.blocks.phy.tx import normalize_power

    tb = RadioTx(cfg)
    total = 0
    tb.start()
    try:
        tb.ramp()
        for _ in range(repeat):
            for x, meta in sends:
                tb.send(normalize_power(x)[0] if meta.get("kind", "analog") != "digital" else x, **meta)
        total = repeat * (tx.iq.size - cfg.frame.guard_len)
        deadline = time.monotonic() + 10.0 + 2 * total / cfg.radio.sample_rate
        while tb.sink.nitems_read(0) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)  # let the last burst leave the device before stopping
    finally:
        tb.stop()
        tb.wait()
    return {"samples_sent": int(tb.sink.nitems_read(0)), "gains_db": tb.gains, "underflows": tb.underflows(),
            "underflow_note": None if tb.underflows() is not None else "gr-iio reports no underflows"}
