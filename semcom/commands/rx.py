"""``semcom rx``: receive frames on a radio, report them and decode the images they carry.

    semcom rx --config hw_configs/pluto.yaml --duration 0.5 --decode --reference photo.jpg --out runs/img
    semcom rx --config hw_configs/usrp_b210.yaml --duration 10 --decode --gui
    semcom rx --config hw_configs/pluto.yaml --duration 0.5 --out runs/cap1 --expect-random 4
    semcom rx --config hw_configs/pluto.yaml --dry-run

Back ends (``--backend``): ``burst`` (PlutoSDR default: pyadi-iio captures ``--duration``
seconds after discarding ``radio.rx_settle_s`` for the AGC, then the numpy receiver decodes;
against ``semcom tx`` in burst mode capture at least the ``rx_duration_min_s`` its plan prints,
two periods of the cyclic buffer) or ``gnuradio`` (USRP default: radio source ->
skiphead(settle) -> ``semcom_ofdm_rx`` for ``--duration`` seconds). The summary (JSON on
stdout) holds the frames, the receiver's SNR estimate per frame and on average (what the
decoder is fed with, together with the per-symbol noise variance), the CFO, receiver statistics
and overflows (gr-uhd: ``rx_time`` re-tags; PlutoSDR: ``null``, libiio/gr-iio give no
indication). ``--expect-random N`` (same ``--symbols``/``--seed`` as ``semcom tx``) adds frame
loss and the post-equalisation SNR measured against the known symbols.

Images (``--decode``, implied by ``--reference``/``--consistency``/``--teacher``/``--decoder``):
frames are put back into images by stream id (``semcom tx --image`` or the
``semcom_semantic_encoder`` GRC block), lost chunks erased, duplicates (cyclic buffer,
repeats) dropped, and decoded with ``--decoder`` (``jscc``, ``cm1``, ``cm2``..., ``teacher``,
``consistency`` = ``cm<--nfe>``; comma-separated for several; ``auto`` = jscc plus consistency
when its checkpoint exists) using the receiver's SNR estimate and per-symbol noise variance.
``--decoder``/``--nfe``/``--consistency``/``--teacher``/``--ratio`` default to the config's
``model`` section (``--set model.decoder=cm2`` is the same as ``--decoder cm2``). The checkpoint
follows the bandwidth ratio each stream announces (shipped/trained ``jscc-<ratio>``;
``model.ratio`` for a stream whose descriptor was lost) unless ``--ratio`` or
``--set model.checkpoint=PATH`` fixes it; frames whose codec id is not the checkpoint's are
refused with a message saying so.
Per image: PNG ``BASE_stream<id>_<decoder>.png`` and, in the report (``images``), the SNR
estimate, frames and missing chunks, decode time, latency (last frame received -> image
decoded; burst mode: from the end of the capture) and, with ``--reference IMAGE`` (file, folder
or list in the order ``semcom tx --image`` sent them), PSNR/SSIM. ``--decode`` without ``--out``
writes to ``out/rx/rx*``.

``--out BASE`` writes ``BASE.json`` (summary), ``BASE.npz`` (received symbols and noise
variance) and, in both modes, the SigMF IQ recording ``BASE.sigmf-meta`` / ``BASE.sigmf-data``
(cf32, sample rate, frequency, hardware, radio section, one annotation per detected frame;
GNU Radio mode streams it to disk while receiving; ``--no-record`` skips it). An unwritable
path is refused before the device is opened; a disk that fills up stops the recording, keeps
the samples written and their metadata, and the run ends with a message and exit status 1.
No frame within the capture: a message saying what to check, exit status 1.

``--gui`` shows the live dashboard (``semcom.radio.gui``: spectrum, constellation of the latest
frame, SNR per frame, PSNR per image, original | reconstruction, status); it closes when the
run ends (``--gui-png`` saves a screenshot first). In burst mode it fills once the capture is
decoded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from semcom.blocks.phy.sigmf_io import jsonable
from semcom.config import add_knob_arguments

from .tx import add_radio_arguments, guarded, print_dry_run, resolve_radio

__all__ = ["add_parser", "run"]

DEFAULT_OUT = "out/rx/rx"  # --decode without --out


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--duration", type=float, default=1.0, help="seconds to receive (default 1)")
    parser.add_argument("--out", metavar="BASE", default=None,
                        help="write BASE.json, BASE.npz, the SigMF IQ recording and (--decode) the images")
    parser.add_argument("--no-record", action="store_true", help="with --out: no SigMF IQ recording")
    parser.add_argument("--gui", action="store_true",
                        help="live dashboard: spectrum, constellation, SNR per frame, decoded images (pyqtgraph)")
    parser.add_argument("--gui-png", metavar="FILE", default=None, help="with --gui: save a screenshot at the end")
    parser.add_argument("--expect-random", metavar="N", type=int, default=None,
                        help="the transmitter sent `--random N`: measure frame loss and SNR against it")
    img = parser.add_argument_group("images (--decode)")
    img.add_argument("--decode", action="store_true", help="decode the image streams received (semantic decoder)")
    img.add_argument("--decoder", default=None,
                     help="comma-separated: jscc, cm1, cm2, ..., consistency (= cm<NFE>), teacher, or auto "
                          "(default: model.decoder of the config)")
    img.add_argument("--nfe", type=int, default=None,
                     help="network evaluations of `consistency`, 1..16 (default: model.nfe of the config)")
    add_knob_arguments(img)
    img.add_argument("--consistency", metavar="PATH", default=None,
                     help="consistency-model checkpoint (default: model.consistency, else a shipped/trained one "
                          "for the ratio)")
    img.add_argument("--teacher", metavar="PATH", default=None,
                     help="diffusion teacher checkpoint (default: model.teacher, else a shipped/trained one)")
    img.add_argument("--ratio", default=None,
                     help="decode with the checkpoint of this bandwidth ratio only (default: the ratio each "
                          "stream announces; model.ratio when its descriptor is lost)")
    img.add_argument("--reference", metavar="PATH", default=None,
                     help="the images sent (file, folder or list, in `semcom tx --image` order): PSNR/SSIM")
    add_radio_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return guarded("rx", _run, args)


def _image_receiver(cfg, args, png_base: str | None):
    """``ImageReceiver`` for ``--decode`` (checkpoints and references loaded now: errors before any device)."""
    from semcom.imagelink import image_paths, load_image
    from semcom.radio.images import CodecSet, ImageReceiver

    codecs = CodecSet(cfg, ratio=args.ratio)  # decoders, NFE and checkpoints from cfg.model (flags applied)
    refs = [(load_image(p), str(p)) for p in image_paths(args.reference)] if args.reference else None
    return ImageReceiver(codecs, cfg.frame.max_payload_symbols, cfg.link.stream_timeout_s, refs,
                         cfg.link.stream_id, png_base)


def _run(args: argparse.Namespace) -> int:
    cfg, kind, backend = resolve_radio(args, "rx")
    if not args.duration > 0:
        raise ValueError(f"--duration must be > 0, got {args.duration}")
    decode = bool(args.decode or args.reference or args.consistency or args.teacher or args.decoder or args.ratio)
    out = args.out or (DEFAULT_OUT if decode else None)
    r = cfg.radio
    n = int(round(args.duration * r.sample_rate))
    plan = {"device": r.device, "uri": r.uri, "backend": backend, "duration_s": args.duration, "samples": n,
            "settle_discard_samples": int(round(r.rx_settle_s * r.sample_rate)), "rx_agc": r.rx_agc,
            "rx_gain_db": r.rx_gain_db if r.rx_agc == "manual" else None, "out": out,
            "iq_recording": bool(out) and not args.no_record}
    images = _image_receiver(cfg, args, out) if decode else None
    if images is not None:
        plan["decode"] = {"decoders": images.decoders, "checkpoint": images.codecs.default.checkpoint,
                          "ratio": "fixed" if images.codecs.fixed else f"as announced (default {cfg.model.ratio})",
                          "references": [name for _, name in images.references]}
    if args.dry_run:
        return print_dry_run(cfg, plan)
    if out:
        parent = Path(out).parent
        if out == DEFAULT_OUT:
            parent.mkdir(parents=True, exist_ok=True)
        if not parent.is_dir():
            raise ValueError(f"--out {out}: directory {parent} does not exist")
    recorder = None
    if out and not args.no_record:
        from semcom.radio.link import IqRecorder

        recorder = IqRecorder(out, cfg, hw=f"{r.device} {r.uri or ''}".strip(), extra={"backend": backend})

    def receive(monitor=None) -> dict:
        if backend == "burst":
            return _rx_burst(cfg, n, args, out, monitor, images, recorder)
        return _rx_gnuradio(cfg, args, out, monitor, images, recorder)

    try:
        if args.gui:
            from semcom.radio.gui import RxMonitor

            summary = RxMonitor(f"semcom rx: {r.device} {r.center_freq / 1e6:g} MHz").run(receive, png=args.gui_png)
        else:
            summary = receive()
    finally:
        if recorder is not None:
            recorder.abandon()  # only acts when the run failed before closing it
    summary = {**plan, **summary}
    if images is not None:
        summary["images"] = images.report()
    return _report(summary, out, args)


def _report(summary: dict, out: str | None, args) -> int:
    """Write BASE.json, print the summary and the problems; the exit status."""
    text = json.dumps(jsonable(summary), indent=1) + "\n"
    status = 0
    if out:
        try:
            Path(f"{out}.json").write_text(text)
        except OSError as e:
            print(f"semcom rx: cannot write {out}.json: {e.strerror or e}", file=sys.stderr)
            status = 1
    print(json.dumps(jsonable(summary)))
    rec = summary.get("recording") or {}
    if rec.get("error"):
        print(f"semcom rx: IQ recording stopped: {rec['error']}; the {rec['samples']} samples written and their "
              f"metadata are kept ({rec['sigmf']}, {rec['annotations']} frames annotated)", file=sys.stderr)
        status = 1
    if not summary["frames"]:
        st = summary.get("receiver", {})
        print(f"semcom rx: no frames received in {args.duration:g} s (detections {st.get('detections', 0)}, "
              f"sync failures {st.get('sync_fail', 0)}, header CRC failures {st.get('header_crc_fail', 0)}). "
              f"Check that the transmitter runs, radio.center_freq and the gains, and the frame section "
              f"(both ends need the same config).", file=sys.stderr)
        return 1
    imgs = summary.get("images")
    if imgs is not None:
        for e in imgs["refused"]:
            print(f"semcom rx: cannot decode {e['error']}", file=sys.stderr)
        if not imgs["images"]:
            if not imgs["refused"]:
                print(f"semcom rx: no image stream among {summary['frames']} frames (counters {imgs['counters']}); "
                      f"is the transmitter sending images (`semcom tx --image`)?", file=sys.stderr)
            status = 1
    return status


def _expected(cfg, args):
    if args.expect_random is None:
        return None
    from semcom.radio.link import build_waveform, random_payloads

    return build_waveform(cfg, random_payloads(args.expect_random, args.symbols, args.seed))


def _show_images(monitor, results: list[dict], images) -> None:
    if monitor is not None:
        for res in results:
            ref = images.reference(res["stream_id"])
            monitor.push_image(res, ref[0] if ref is not None else None)


def _rx_burst(cfg, n: int, args, out, monitor=None, images=None, recorder=None) -> dict:
    from semcom.commands.phy import save_npz, stats_json
    from semcom.radio.link import decode_iq, evaluate
    from semcom.radio.pluto_burst import PlutoBurst

    with PlutoBurst(cfg) as radio:
        iq, info = radio.capture(n)
    t_rx = time.monotonic()
    dec = decode_iq(cfg, iq)
    if monitor is not None:
        monitor.set_status(overflows="unknown (pyadi-iio)")
        monitor.push_spectrum(iq)
        monitor.push(list(zip(dec.frames, dec.payloads)))
    out_d = stats_json(dec, cfg.frame)
    out_d["frames_detail"] = [{k: v for k, v in f.items() if k != "noise_var_carrier"} for f in dec.frames]
    out_d["overflows"] = info["overflows"]
    out_d["overflow_note"] = "pyadi-iio/libiio give no overflow indication; one capture is whole buffers"
    out_d["rx_power_dbfs"] = float(10 * np.log10(np.mean(np.abs(iq) ** 2) + 1e-30))
    tx = _expected(cfg, args)
    if tx is not None:
        out_d["link"] = evaluate(tx, dec)
    if out:
        save_npz(f"{out}.npz", dec)
    if recorder is not None:
        recorder.write(iq)
        out_d["recording"] = recorder.close(dec.frames)
    if images is not None:
        for rec, y, nv in zip(dec.frames, dec.payloads, dec.noise_vars):
            images.add(rec, y, nv, now=t_rx)
        _show_images(monitor, images.finish(), images)
    return out_d


def _rx_gnuradio(cfg, args, out, monitor=None, images=None, recorder=None) -> dict:
    from semcom.blocks.gr.radio import RadioRx
    from semcom.radio.link import CollectedFrames, evaluate, recorder_block

    tb = RadioRx(cfg)
    if recorder is not None:  # after the settle skip: frame starts are offsets into the recording
        rec_sink = recorder_block(recorder)
        tb.connect(tb.skip, rec_sink)
    if monitor is not None:
        monitor.attach(tb)
    seen = 0

    def take() -> None:
        nonlocal seen
        new = tb.collector.count - seen
        if new <= 0:
            return
        items = tb.collector.frames()[-new:]
        seen = tb.collector.count
        if monitor is not None:
            monitor.push(items)
            monitor.set_status(overflows=tb.overflows())
        if images is not None:
            for meta, payload in items:
                images.add(meta, payload, meta.get("noise_var", np.zeros(np.size(payload), np.float32)))

    tb.start()
    try:
        end = time.monotonic() + args.duration + cfg.radio.rx_settle_s
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            take()
            if images is not None:  # decoded here while the flowgraph keeps receiving
                _show_images(monitor, images.poll(), images)
    finally:
        tb.stop()
        tb.wait()
    take()
    frames = tb.collector.frames()
    got = CollectedFrames.from_items(frames)
    snr = [float(f.get("snr_db", np.nan)) for f in got.frames]
    out_d = {"frames": len(frames), "snr_db": {"mean": float(np.mean(snr)) if snr else None},
             "frames_detail": got.frames,
             "receiver": tb.rx.stats(), "overflows": tb.overflows(),
             "overflow_note": None if tb.overflows() is not None else "gr-iio gives no overflow indication"}
    tx = _expected(cfg, args)
    if tx is not None:
        out_d["link"] = evaluate(tx, got)
    if out:
        np.savez(f"{out}.npz", **{f"frame{i}_payload": p for i, (_, p) in enumerate(frames)},
                 **{f"frame{i}_noise_var": np.asarray(m.get("noise_var", []), np.float32)
                    for i, (m, _) in enumerate(frames)})
    if recorder is not None:
        out_d["recording"] = recorder.close(got.frames)
    if images is not None:
        _show_images(monitor, images.finish(), images)
    return out_d
