"""``semcom loopback``: the whole link in GNU Radio through the channel simulator, with a summary.

Image demo (default)::

    semcom loopback                       # bundled sample image, shipped models, SNR 10 dB
    semcom loopback --image photo.jpg --snr 5 --channel indoor --decoder jscc --out results/

Each image goes ``semcom_semantic_encoder -> semcom_ofdm_tx -> semcom_channel -> semcom_ofdm_rx
-> semcom_semantic_decoder`` in one flowgraph (``semcom.loopback_image``). The summary gives per
image and decoder the PSNR/SSIM against the original, the receiver's SNR estimate, frames and
missing chunks, decode time and end-to-end latency (encode start -> decoded image). ``--out DIR``
writes the originals and reconstructions as PNG, ``loopback.png`` (original | each decoder,
metrics in the captions) and ``loopback.json``. The sample image is matplotlib's
``grace_hopper.jpg`` (512x600) when installed, else a generated scene; nothing is downloaded.
The checkpoint: ``--set model.checkpoint=PATH``, else ``models/checkpoints/jscc-<ratio>``, else a
local training run ``runs/jscc-<ratio>*/best.safetensors``. ``--ratio``, ``--decoder``, ``--nfe``,
``--consistency`` and ``--teacher`` default to the config's ``model`` section (a flag wins over
``--set model.ratio=1/24``, which wins over the file); the consistency/teacher checkpoints looked
up automatically are those paired with the JSCC checkpoint's own ratio. When nothing names a
ratio or checkpoint (no ``--config``, ``--ratio`` or ``--set model.ratio/checkpoint``) and the
decoder is ``auto``, the demo runs at the default ratio if a consistency model is shipped for it,
else at the first shipped ratio that has one (``demo_ratio``), so that the figure shows the
consistency decoder next to the JSCC decoder.

PHY demo (``--phy``, also implied by ``--engine numpy``): random unit-power analog payloads
(by default 3 streams of 3072 symbols) go through the OFDM transmitter, the channel and the
receiver; the summary compares what came out with what went in (frames, streams complete,
missing chunks, SNR estimate vs configured, post-equalisation payload SNR, CFO estimate,
receiver statistics). ``--engine gnuradio`` runs the GNU Radio loopback flowgraph
(``semcom.blocks.gr.topblocks``); ``--engine numpy`` the numpy reference chain.
``--out DIR`` writes ``DIR/loopback.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from semcom.blocks.phy.sigmf_io import jsonable
from semcom.blocks.phy.snr import measured_snr_db
from semcom.config import (RANDOM_STREAM_SYMBOLS, Config, add_config_arguments, add_knob_arguments, config_from_args,
                           model_from_args, with_model)

__all__ = ["add_parser", "run", "random_streams", "run_numpy_loopback", "run_gnuradio_loopback", "summarize"]


def random_streams(n_streams: int, n_symbols: int, seed: int) -> list[np.ndarray]:
    """``n_streams`` arrays of ``n_symbols`` CN(0, 1) symbols (unit average power); complex64."""
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal(n_symbols) + 1j * rng.standard_normal(n_symbols)) / np.sqrt(2)).astype(np.complex64)
            for _ in range(n_streams)]


def run_numpy_loopback(cfg: Config, streams: list[np.ndarray]) -> dict[str, Any]:
    """Numpy chain, streamed: ``FrameTransmitter`` -> ``ChannelSimulator`` -> ``StreamingReceiver``.

    Frames are modulated one at a time and pushed through the channel and the receiver (in
    blocks of ``link.rx_chunk_samples``) as they are made, so memory stays at a few frames
    whatever their number. Every stage is chunking-invariant, so the samples and the frames
    received are those of one pass over the whole waveform (``transmit_streams`` laid end to end,
    ``simulate``, ``decode_chunks``). Received payloads are compared with the sent ones on arrival
    (``payload_snr_db`` in their record) and not kept.

    Returns ``{"sent": [(header, None)], "received": [(frame record, None)], "stats": ...,
    "streams": [...], "seconds": ...}`` for ``summarize``.
    """
    from semcom.blocks.phy.channel import ChannelSimulator
    from semcom.blocks.phy.tx import FrameTransmitter, normalize_power
    from semcom.commands.phy import PhyCliError, decode_chunks

    spec = cfg.frame
    t0 = time.perf_counter()
    tx = FrameTransmitter(spec)
    sim = ChannelSimulator(cfg.channel)
    sent: list = []
    papr: list[float] = []
    truth: dict[int, tuple[np.ndarray, float]] = {}  # stream id -> (stream as given, normalisation)
    n_out = [0]

    def waveform():
        yield np.zeros(spec.guard_len, np.complex64)  # transmit_streams' lead-in
        for i, payload in enumerate(streams):
            sid = (cfg.link.stream_id + i) & 0xFFFF
            x = np.asarray(payload).ravel()
            if not np.all(np.isfinite(x)):
                raise PhyCliError(f"stream {i}: payload contains NaN or Inf")
            x, scale = normalize_power(x)
            truth[sid] = (payload, scale)
            for part, kw in tx.stream_chunks(x, kind="analog", stream_id=sid, codec_id=cfg.model.codec_id):
                f = tx.modulate_frame(part, **kw)
                sent.append((f.header, None))
                papr.append(float(f.papr_db))
                yield f.iq
            del x
        yield np.zeros(spec.symbol_len * 4, np.complex64)

    def blocks():  # channel output cut into receiver blocks of exactly rx_chunk_samples
        chunk, buf, have = cfg.link.rx_chunk_samples, [], 0
        for y in _through(sim, waveform()):
            n_out[0] += y.size
            buf.append(y)
            have += y.size
            while have >= chunk:
                cat = np.concatenate(buf)
                yield cat[:chunk]
                buf, have = [cat[chunk:]], have - chunk
        if have:
            yield np.concatenate(buf)

    def on_frame(rec: dict, fr) -> None:
        t = truth.get(rec["stream_id"])
        if t is None:
            return
        a = rec["chunk_index"] * spec.max_payload_symbols
        ref = np.asarray(t[0]).ravel()[a:a + np.size(fr.payload)]
        if ref.size and ref.size == np.size(fr.payload):
            ref = (ref.astype(np.complex64) * t[1]).astype(np.complex64)  # normalize_power's values
            rec["payload_snr_db"] = measured_snr_db(ref, np.asarray(fr.payload, np.complex64))

    res = decode_chunks(blocks(), spec, on_frame=on_frame)
    return {"engine": "numpy", "sent": sent, "received": [(r, None) for r in res.frames], "stats": res.stats,
            "streams": [{"stream_id": s.stream_id, "complete": s.complete, "missing": list(s.missing)}
                        for s in res.streams],
            "n_samples": n_out[0], "seconds": time.perf_counter() - t0, "papr_db": papr}


def _through(sim, pieces):
    """``sim.apply`` over ``pieces``, then ``sim.flush()``: ``simulate`` of their concatenation, piece by piece."""
    for p in pieces:
        yield sim.apply(p)
    yield sim.flush()


def _engine(requested: str) -> str:
    if requested == "numpy":
        return "numpy"
    try:
        from semcom.blocks.gr import topblocks  # noqa: F401
    except ImportError as e:
        if requested == "gnuradio":
            raise ValueError(f"--engine gnuradio: the GNU Radio flowgraph is unavailable ({e})") from None
        print(f"note: GNU Radio loopback unavailable ({e}); running the numpy reference chain instead",
              file=sys.stderr)
        return "numpy"
    return "gnuradio"


def run_gnuradio_loopback(cfg: Config, streams: list[np.ndarray], timeout: float = 30.0) -> dict[str, Any]:
    """GNU Radio chain: ``semcom_ofdm_tx`` -> ``semcom_channel`` -> ``semcom_ofdm_rx`` (``PhyLoopback``).

    Each stream is normalised to unit power and sent as one PDU (the TX cuts it into frames);
    the truth per frame is rebuilt with the numpy ``FrameTransmitter`` (same chunking, same
    frame counters). Same return layout as ``run_numpy_loopback``.
    """
    from semcom.blocks.gr.topblocks import PhyLoopback
    from semcom.blocks.phy.header import HeaderFields
    from semcom.blocks.phy.tx import FrameTransmitter, normalize_power
    from semcom.commands.phy import StreamAssembler

    spec = cfg.frame
    truth_tx = FrameTransmitter(spec)
    sent, payloads = [], []
    for i, x in enumerate(streams):
        sid = (cfg.link.stream_id + i) & 0xFFFF
        x, _ = normalize_power(x)
        payloads.append((x, sid))
        for part, kw in truth_tx.stream_chunks(x, stream_id=sid, codec_id=cfg.model.codec_id):
            h, _, sym = truth_tx.frame_symbols(part, **kw)
            sent.append((h, sym))
    t0 = time.perf_counter()
    tb = PhyLoopback(spec, channel=cfg.channel)
    tb.start()
    try:
        for x, sid in payloads:
            tb.send(x, stream_id=sid, codec_id=cfg.model.codec_id)
        # done when every frame arrived, or shortly after the RX has seen every sample (lost frames)
        total = sum(spec.frame_len(h.n_payload) for h, _ in sent)
        deadline, seen_all = time.monotonic() + timeout, None
        while tb.collector.count < len(sent) and time.monotonic() < deadline:
            if seen_all is None and int(tb.rx.stats().get("samples", 0)) >= total:
                seen_all = time.monotonic()
            if seen_all is not None and time.monotonic() - seen_all > 1.0:
                break
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
    seconds = time.perf_counter() - t0
    asm = StreamAssembler(spec)
    received = []
    names = list(HeaderFields().as_dict())
    for meta, payload in tb.collector.frames():
        h = HeaderFields(**{k: int(meta[k]) for k in names if k in meta})
        nv = np.asarray(meta.get("noise_var", np.zeros(payload.size)), dtype=np.float32)
        rec = dict(h.as_dict(), start=int(meta.get("start", -1)), snr_db=float(meta.get("snr_db", np.nan)),
                   cfo=float(meta.get("cfo", np.nan)))
        received.append((rec, np.asarray(payload, np.complex64)))
        asm.add(h, payload, nv)
    stats = tb.rx.stats()
    return {"engine": "gnuradio", "sent": sent, "received": received, "stats": stats,
            "streams": [{"stream_id": s.stream_id, "complete": s.complete, "missing": list(s.missing)}
                        for s in asm.finish()],
            "n_samples": int(stats.get("samples", 0)) or None, "seconds": seconds, "papr_db": []}


def summarize(cfg: Config, run: dict[str, Any]) -> dict[str, Any]:
    """Compare received frames with the sent ones (matched by frame counter)."""
    sent = {h.frame_counter: (h, p) for h, p in run["sent"]}
    snr_est, snr_pay, cfo_est, matched, bad = [], [], [], 0, 0
    for rec, payload in run["received"]:
        s = sent.get(rec["frame_counter"])
        if s is None or s[0].stream_id != rec["stream_id"] or s[0].chunk_index != rec["chunk_index"]:
            bad += 1
            continue
        matched += 1
        snr_est.append(rec["snr_db"])
        cfo_est.append(rec["cfo"])
        if "payload_snr_db" in rec:  # measured on arrival (numpy engine: payloads are not kept)
            snr_pay.append(rec["payload_snr_db"])
        elif payload is not None and payload.size == s[1].size and s[1].size:
            snr_pay.append(measured_snr_db(s[1], payload))
    ch = cfg.channel

    def stat(v: list[float]) -> dict | None:
        a = np.asarray(v, dtype=np.float64)
        a = a[np.isfinite(a)]
        if a.size == 0:
            return None
        return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}

    return {
        "engine": run["engine"],
        "channel": ch.to_dict(),
        "frame_spec": str(cfg.frame),
        "frames_sent": len(run["sent"]),
        "frames_received": len(run["received"]),
        "frames_matched": matched,
        "frames_unmatched": bad,
        "streams": run["streams"],
        "streams_sent": len({h.stream_id for h, _ in run["sent"]}),
        "snr_configured_db": ch.snr_db,
        "snr_estimate_db": stat(snr_est),
        "payload_snr_db": stat(snr_pay),
        "cfo_configured": ch.cfo,
        "cfo_estimate": stat(cfo_est),
        "papr_db": stat(run.get("papr_db") or []),
        "receiver_stats": run["stats"],
        "samples": run.get("n_samples"),
        "seconds": run["seconds"],
    }


def _fmt(s: dict | None, unit: str = "") -> str:
    if not s:
        return "n/a"
    return f"{s['mean']:.2f}{unit} (min {s['min']:.2f}, max {s['max']:.2f})"


def print_summary(r: dict[str, Any]) -> None:
    ch = r["channel"]
    print(f"semcom loopback ({r['engine']}): {r['frame_spec']}")
    print(f"  channel: SNR {ch['snr_db']} dB, profile {ch['profile']}, fading {ch['fading']}, CFO {ch['cfo']} "
          f"subcarriers, timing offset {ch['timing_offset']} samples, SRO {ch['sro_ppm']} ppm")
    print(f"  frames sent {r['frames_sent']}, received {r['frames_received']} "
          f"(matched {r['frames_matched']}, unmatched {r['frames_unmatched']})")
    complete = sum(1 for s in r["streams"] if s["complete"])
    missing = {s["stream_id"]: s["missing"] for s in r["streams"] if s["missing"]}
    print(f"  streams complete {complete}/{r['streams_sent']}" + (f", missing chunks {missing}" if missing else ""))
    print(f"  SNR estimate      {_fmt(r['snr_estimate_db'], ' dB')}   configured {ch['snr_db']} dB")
    print(f"  payload SNR (post-equalisation vs transmitted) {_fmt(r['payload_snr_db'], ' dB')}")
    print(f"  CFO estimate      {_fmt(r['cfo_estimate'])} subcarriers   configured {ch['cfo']}")
    if r.get("papr_db"):
        print(f"  PAPR              {_fmt(r['papr_db'], ' dB')}")
    print(f"  receiver stats    {json.dumps(jsonable(r['receiver_stats']))}")
    rate = f" ({r['samples']} samples)" if r.get("samples") else ""
    print(f"  {r['seconds']:.2f} s wall clock{rate}")


def _channel_overrides(args: argparse.Namespace) -> list[str]:
    """``--snr``/``--channel``/``--fading``/``--cfo`` as config overrides (a flag not given keeps the config:
    ``--channel indoor`` is ``--set channel.profile=indoor``, Rayleigh unless the config's fading says otherwise)."""
    extra = [f"channel.snr_db={args.snr!r}"] if args.snr is not None else []
    if args.channel is not None:
        extra.append(f"channel.profile={args.channel}")
    if args.fading is not None:
        extra.append(f"channel.fading={args.fading}")
    if args.cfo is not None:
        extra.append(f"channel.cfo={args.cfo!r}")
    return extra


def _run_phy(args: argparse.Namespace) -> int:
    cfg = config_from_args(args, _channel_overrides(args))
    args.streams = 3 if args.streams is None else args.streams
    args.symbols = RANDOM_STREAM_SYMBOLS if args.symbols is None else args.symbols
    if args.streams < 1 or args.symbols < 1:
        raise ValueError("--streams and --symbols must be >= 1")
    streams = random_streams(args.streams, args.symbols, args.seed)
    engine = _engine(args.engine)
    if engine == "gnuradio":
        from semcom.loopback_image import silence_gr_logging

        silence_gr_logging()
    run = run_gnuradio_loopback(cfg, streams) if engine == "gnuradio" else run_numpy_loopback(cfg, streams)
    report = summarize(cfg, run)
    print_summary(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "loopback.json").write_text(json.dumps(jsonable(report), indent=2) + "\n")
        print(f"  report: {out / 'loopback.json'}")
    ok = report["frames_matched"] == report["frames_sent"] and report["frames_unmatched"] == 0
    if args.strict and not ok:
        print("  --strict: not every frame arrived intact", file=sys.stderr)
    return 0 if ok or not args.strict else 1


def demo_ratio(cfg: Config, args: argparse.Namespace) -> str | None:
    """The ratio the image demo switches to, or None to keep ``cfg.model.ratio`` (see the module docstring)."""
    from semcom.imagelink import find_extra_checkpoint

    named = (getattr(args, "config", None) or getattr(args, "ratio", None) is not None
             or any(o.split("=", 1)[0].strip() in ("model.ratio", "model.checkpoint")
                    for o in getattr(args, "overrides", None) or []))
    if named or cfg.model.decoder != "auto" or cfg.model.checkpoint or cfg.model.consistency:
        return None
    if find_extra_checkpoint("consistency", cfg.model.ratio) is not None:
        return None
    return next((r for r in ("1/6", "1/24", "1/12", "1/3") if find_extra_checkpoint("consistency", r) is not None),
                None)


def _run_images(args: argparse.Namespace) -> int:
    from semcom.imagelink import image_paths, load_image, sample_image

    if args.streams is not None or args.symbols is not None or args.strict:
        raise ValueError("--streams/--symbols/--strict belong to the PHY demo: add --phy")
    if args.gui:
        from semcom.loopback_gui import check_display

        check_display()  # one line now, not a Qt abort after the models are loaded
    cfg = model_from_args(config_from_args(args, _channel_overrides(args)), args)
    switch = demo_ratio(cfg, args)
    if switch is not None:
        print(f"  (no consistency model is shipped for ratio {cfg.model.ratio}: the demo runs at {switch}; "
              f"--ratio {cfg.model.ratio} keeps it)")
        cfg = with_model(cfg, ratio=switch)
    if args.image:
        images = [(load_image(p), str(p)) for p in image_paths(args.image)]
    elif args.bench:
        images = []  # the benchmark makes its own synthetic images
    else:
        images = [sample_image()]
    try:
        from semcom.loopback_image import print_image_summary, run_image_loopback, save_outputs, silence_gr_logging
    except ImportError as e:
        raise ValueError(f"the image loopback needs GNU Radio ({e}); `semcom loopback --phy --engine numpy` "
                         "runs the PHY alone") from None
    silence_gr_logging()
    from semcom.blocks.gr.semantic_encoder import build_codec
    from semcom.imagelink import decoder_names

    snr = cfg.channel.snr_db if cfg.channel.snr_db is not None else 20.0
    hint = args.snr_hint if args.snr_hint is not None else snr
    # the diffusion checkpoints follow the JSCC checkpoint's own ratio (model.checkpoint may be 1/24)
    codec = build_codec(cfg, decoders=cfg.model.decoder)
    has_cm = codec.codec.consistency is not None
    decoders = ",".join(codec.check_decoder(d)  # fail before the flowgraph starts
                        for d in decoder_names(cfg.model.decoder, cfg.model.nfe, has_cm, cfg.model.knob_suffix))
    note = "consistency decoder:\nno checkpoint shipped yet" if cfg.model.decoder == "auto" and not has_cm else ""
    if args.bench:
        import json as _json

        from semcom.blocks.phy.sigmf_io import jsonable
        from semcom.loopback_image import benchmark, format_benchmark

        b = benchmark(cfg, codec, decoders=decoders, nfe=cfg.model.nfe, repeats=args.bench_repeats)
        print(format_benchmark(b))
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "latency.json").write_text(_json.dumps(jsonable(b), indent=2) + "\n")
            print(f"  report: {Path(args.out) / 'latency.json'}")
        return 0
    print(f"loopback: {len(images)} image(s) [{', '.join(f'{i.shape[1]}x{i.shape[0]}' for i, _ in images)}], "
          f"{codec.describe()}", flush=True)
    if args.gui:
        from semcom.loopback_gui import run_gui

        return run_gui(cfg, images, codec, hint, decoders, cfg.model.nfe, args)
    report = run_image_loopback(cfg, images, codec, hint, decoders=decoders, nfe=cfg.model.nfe,
                                timeout=args.timeout)
    print_image_summary(report)
    if args.out:
        files = save_outputs(report, Path(args.out), note)
        print(f"  figure: {files['figure']}\n  report: {files['report']}")
    want = report["images_sent"] * len(report["codec"]["decoders"])
    return 0 if len(report["results"]) >= want else 1


def _run(args: argparse.Namespace) -> int:
    if args.phy or args.engine == "numpy":
        return _run_phy(args)
    return _run_images(args)


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--snr", type=_finite_db, default=None,
                        help="Es/N0 per payload symbol in dB (default: channel.snr_db of --config, else 10)")
    parser.add_argument("--channel", choices=("flat", "indoor", "outdoor"), default=None,
                        help="multipath profile, same as --set channel.profile=NAME (default: channel.profile of "
                             "the config, else flat); indoor/outdoor fade (Rayleigh) unless --fading or "
                             "channel.fading says otherwise")
    parser.add_argument("--fading", choices=("auto", "none", "rayleigh", "rician"), default=None,
                        help="fading of the profile's paths (default: channel.fading of the config, else auto: "
                             "rayleigh for indoor/outdoor, none for flat)")
    parser.add_argument("--cfo", type=float, default=None, help="carrier frequency offset in subcarrier spacings")
    img = parser.add_argument_group("image demo (default)")
    img.add_argument("--image", action="append", metavar="PATH",
                     help="image file or folder (repeatable; default: the bundled sample image)")
    img.add_argument("--decoder", default=None,
                     help="comma-separated decoders: jscc, consistency (cm<NFE>), cm1, cm2, ..., teacher, or auto "
                          "(jscc, plus consistency when a checkpoint is given or shipped); default: model.decoder")
    img.add_argument("--consistency", metavar="PATH", default=None,
                     help="consistency-model checkpoint (default: model.consistency, else "
                          "models/checkpoints/consistency-<ratio>* if shipped)")
    img.add_argument("--teacher", metavar="PATH", default=None,
                     help="diffusion teacher checkpoint (decoder teacher; default: model.teacher, else a shipped one)")
    img.add_argument("--nfe", type=int, default=None,
                     help="network evaluations of the consistency decoder, 1..16 (default: model.nfe)")
    add_knob_arguments(img)
    img.add_argument("--ratio", default=None,
                     help="bandwidth ratio of the shipped checkpoint (1/6, 1/24; default: model.ratio)")
    img.add_argument("--snr-hint", type=float, default=None, help="SNR given to the encoder (default: --snr)")
    img.add_argument("--timeout", type=float, default=180.0, help="give up waiting for decoded images after this")
    img.add_argument("--gui", action="store_true",
                     help="live pyqtgraph dashboard (spectrum, constellation, SNR/PSNR history, original | "
                          "reconstruction); images go out every 0.5 s; with --out also DIR/dashboard.png. "
                          "Needs a display: without one use xvfb-run or QT_QPA_PLATFORM=offscreen. "
                          "SIGINT/SIGTERM stop it and write the report (exit status 130/143)")
    img.add_argument("--gui-hold", type=float, default=-1.0, metavar="S",
                     help="close the dashboard S seconds after the last image (default: when the window is closed)")
    img.add_argument("--bench", action="store_true",
                     help="latency benchmark instead: synthetic 32x32, 128x128 and 768x512 images one at a time "
                          "(encode / decode / end-to-end), then 20 32x32 images back to back (images/s, receiver "
                          "MS/s); with --out also DIR/latency.json")
    img.add_argument("--bench-repeats", type=int, default=5, help="images per size in --bench (default 5)")
    phy = parser.add_argument_group("PHY demo (--phy)")
    phy.add_argument("--phy", action="store_true", help="random analog payloads instead of images (PHY only)")
    phy.add_argument("--streams", type=int, default=None, help="payload streams to send (default 3)")
    phy.add_argument("--symbols", type=int, default=None, help="analog symbols per stream (default 3072)")
    phy.add_argument("--seed", type=int, default=0, help="payload seed")
    phy.add_argument("--engine", choices=("auto", "gnuradio", "numpy"), default="auto",
                     help="GNU Radio flowgraph (auto: when available) or the numpy reference chain (implies --phy)")
    phy.add_argument("--strict", action="store_true", help="exit 1 unless every frame arrives intact")
    parser.add_argument("--out", metavar="DIR", default="out/loopback",
                        help="write results to DIR (images: PNGs, loopback.png, loopback.json; PHY: loopback.json; "
                             "default out/loopback; '' writes nothing)")
    add_config_arguments(parser)
    parser.set_defaults(func=_run)


def _finite_db(text: str) -> float:
    """argparse type: a finite number of dB (``nan``/``inf`` are refused here, naming the option)."""
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of dB, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def run(args: argparse.Namespace) -> int:
    return int(_run(args) or 0)
