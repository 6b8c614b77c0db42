"""``semcom rx``: receive frames on a radio and report them.

    semcom rx --config hw_configs/pluto.yaml --duration 0.5 --out runs/cap1 --expect-random 4
    semcom rx --config hw_configs/usrp_b210.yaml --duration 5
    semcom rx --config hw_configs/pluto.yaml --dry-run

Back ends (``--backend``): ``burst`` (PlutoSDR default: pyadi-iio captures ``--duration``
seconds after discarding ``radio.rx_settle_s`` for the AGC, then the numpy receiver decodes)
or ``gnuradio`` (USRP default: radio source -> skiphead(settle) -> ``semcom_ofdm_rx`` for
``--duration`` seconds). The summary (JSON on stdout) holds the frames, the receiver's SNR
estimate per frame and on average (what the decoder is fed with, together with the
per-symbol noise variance in the ``.npz``), the CFO, receiver statistics and overflows
(gr-uhd: ``rx_time`` re-tags; PlutoSDR: ``null``, libiio/gr-iio give no indication).
``--expect-random N`` (same ``--symbols``/``--seed`` as ``semcom tx``) adds frame loss and the
post-equalisation SNR measured against the known symbols.

``--out BASE`` writes ``BASE.json`` (summary), ``BASE.npz`` (reassembled streams: symbols,
noise variance, masks; layout of ``semcom phy rx``) and, in burst mode, ``BASE.sigmf-meta`` /
``BASE.sigmf-data`` (the raw capture, one annotation per decoded frame).
No frame within the capture: a message saying what to check, exit status 1.

``--gui`` shows a live view (``semcom.radio.gui``: constellation of the latest frame's
equalised symbols, SNR per frame, status); it closes when the run ends (``--gui-png`` saves
a screenshot first). In burst mode the view fills once the capture is decoded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from semcom.blocks.phy.sigmf_io import jsonable

from .tx import add_radio_arguments, guarded, print_dry_run, resolve_radio

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--duration", type=float, default=1.0, help="seconds to receive (default 1)")
    parser.add_argument("--out", metavar="BASE", default=None, help="write BASE.json, BASE.npz (and SigMF in burst mode)")
    parser.add_argument("--gui", action="store_true",
                        help="live view: constellation of the latest frame, SNR per frame, status (pyqtgraph)")
    parser.add_argument("--gui-png", metavar="FILE", default=None, help="with --gui: save a screenshot at the end")
    parser.add_argument("--expect-random", metavar="N", type=int, default=None,
                        help="the transmitter sent `--random N`: measure frame loss and SNR against it")
    add_radio_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return guarded("rx", _run, args)


def _run(args: argparse.Namespace) -> int:
    cfg, kind, backend = resolve_radio(args, "rx")
    if not args.duration > 0:
        raise ValueError(f"--duration must be > 0, got {args.duration}")
    r = cfg.radio
    n = int(round(args.duration * r.sample_rate))
    plan = {"device": r.device, "uri": r.uri, "backend": backend, "duration_s": args.duration, "samples": n,
            "settle_discard_samples": int(round(r.rx_settle_s * r.sample_rate)), "rx_agc": r.rx_agc,
            "rx_gain_db": r.rx_gain_db if r.rx_agc == "manual" else None, "out": args.out}
    if args.dry_run:
        return print_dry_run(cfg, plan)
    if args.out:
        parent = Path(args.out).parent
        if not parent.is_dir():
            raise ValueError(f"--out {args.out}: directory {parent} does not exist")
    def receive(monitor=None) -> dict:
        return _rx_burst(cfg, n, args, monitor) if backend == "burst" else _rx_gnuradio(cfg, args, monitor)

    if args.gui:
        from semcom.radio.gui import RxMonitor

        summary = RxMonitor(f"semcom rx: {r.device} {r.center_freq / 1e6:g} MHz").run(receive, png=args.gui_png)
    else:
        summary = receive()
    summary = {**plan, **summary}
    if args.out:
        Path(f"{args.out}.json").write_text(json.dumps(jsonable(summary), indent=1) + "\n")
    print(json.dumps(jsonable(summary)))
    if not summary["frames"]:
        st = summary.get("receiver", {})
        print(f"semcom rx: no frames received in {args.duration:g} s (detections {st.get('detections', 0)}, "
              f"sync failures {st.get('sync_fail', 0)}, header CRC failures {st.get('header_crc_fail', 0)}). "
              f"Check that the transmitter runs, radio.center_freq and the gains, and the frame section "
              f"(both ends need the same config).", file=sys.stderr)
        return 1
    return 0


def _expected(cfg, args):
    if args.expect_random is None:
        return None
    from semcom.radio.link import build_waveform, random_payloads

    return build_waveform(cfg, random_payloads(args.expect_random, args.symbols, args.seed))


def _rx_burst(cfg, n: int, args, monitor=None) -> dict:
    from semcom.commands.phy import save_npz, stats_json
    from semcom.radio.link import decode_iq, evaluate, save_capture
    from semcom.radio.pluto_burst import PlutoBurst

    with PlutoBurst(cfg) as radio:
        iq, info = radio.capture(n)
    dec = decode_iq(cfg, iq)
    if monitor is not None:
        monitor.set_status(overflows="unknown (pyadi-iio)")
        monitor.push(list(zip(dec.frames, dec.payloads)))
    out = stats_json(dec, cfg.frame)
    out["frames_detail"] = [{k: v for k, v in f.items() if k != "noise_var_carrier"} for f in dec.frames]
    out["overflows"] = info["overflows"]
    out["overflow_note"] = "pyadi-iio/libiio give no overflow indication; one capture is whole buffers"
    out["rx_power_dbfs"] = float(10 * np.log10(np.mean(np.abs(iq) ** 2) + 1e-30))
    tx = _expected(cfg, args)
    if tx is not None:
        out["link"] = evaluate(tx, dec)
    if args.out:
        save_npz(f"{args.out}.npz", dec)
        save_capture(args.out, iq, cfg, dec, hw=f"{cfg.radio.device} {cfg.radio.uri or ''}".strip())
        out["sigmf"] = f"{args.out}.sigmf-meta"
    return out


def _rx_gnuradio(cfg, args, monitor=None) -> dict:
    import time

    from semcom.blocks.gr.radio import RadioRx
    from semcom.radio.link import CollectedFrames, evaluate

    tb = RadioRx(cfg)
    tb.start()
    try:
        end = time.monotonic() + args.duration + cfg.radio.rx_settle_s
        shown = 0
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            if monitor is not None and tb.collector.count > shown:
                new = tb.collector.count - shown
                monitor.push(tb.collector.frames()[-new:])
                shown = tb.collector.count
                monitor.set_status(overflows=tb.overflows())
    finally:
        tb.stop()
        tb.wait()
    frames = tb.collector.frames()
    got = CollectedFrames.from_items(frames)
    snr = [float(f.get("snr_db", np.nan)) for f in got.frames]
    out = {"frames": len(frames), "snr_db": {"mean": float(np.mean(snr)) if snr else None},
           "frames_detail": got.frames,
           "receiver": tb.rx.stats(), "overflows": tb.overflows(),
           "overflow_note": None if tb.overflows() is not None else "gr-iio gives no overflow indication"}
    tx = _expected(cfg, args)
    if tx is not None:
        out["link"] = evaluate(tx, got)
    if args.out:
        np.savez(f"{args.out}.npz", **{f"frame{i}_payload": p for i, (_, p) in enumerate(frames)},
                 **{f"frame{i}_noise_var": np.asarray(m.get("noise_var", []), np.float32)
                    for i, (m, _) in enumerate(frames)})
    return out
