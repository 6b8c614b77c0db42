"""The image loopback in GNU Radio: ``semcom_semantic_encoder -> semcom_ofdm_tx -> semcom_channel ->
semcom_ofdm_rx -> semcom_semantic_decoder`` in one process, plus the report, figure and summary
``semcom loopback`` prints.

``run_image_loopback(cfg, images, ...)`` sends each image (uint8 ``[H, W, 3]``), waits until every
decoder has produced every image (or the deadline passes) and returns a JSON-able report:
per image and decoder PSNR, SSIM, latency, SNR estimate, missing chunks; frames sent/received;
receiver and decoder counters. ``save_outputs`` writes PNGs, ``loopback.json`` and the
side-by-side figure (original | each decoder, metrics in the captions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ImageLoopback", "run_image_loopback", "save_outputs", "print_image_summary", "silence_gr_logging",
           "benchmark", "format_benchmark"]


def silence_gr_logging() -> None:
    """GNU Radio's default logger to warnings (hides the 'set_min_output_buffer' info lines)."""
    from gnuradio import gr

    try:
        gr.logging().set_default_level(gr.log_levels.warn)
    except AttributeError:  # older bindings
        pass


def _make_top_block(cfg, codec, snr_hint: float, decoders: str, nfe: int, out_dir: str, max_backlog: int = 4,
                    keep: int = 16):
    from gnuradio import gr

    from semcom.blocks.gr.ofdm_rx import BUFFER_ITEMS, semcom_ofdm_rx
    from semcom.blocks.gr.ofdm_tx import semcom_ofdm_tx
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
    from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder
    from semcom.blocks.gr.topblocks import make_channel

    class ImageLoopback(gr.top_block):
        """encoder -> ofdm_tx -> channel -> ofdm_rx -> decoder, one codec shared by both ends."""

        def __init__(self):
            gr.top_block.__init__(self, "semcom_image_loopback")
            self.encoder = semcom_semantic_encoder(cfg, snr_db=snr_hint, codec=codec)
            self.tx = semcom_ofdm_tx(cfg.frame)
            self.channel = make_channel(cfg.channel, cfg.frame)
            self.rx = semcom_ofdm_rx(cfg.frame)
            self.decoder = semcom_semantic_decoder(cfg, decoders=decoders, nfe=nfe, out_dir=out_dir, codec=codec,
                                                   max_backlog=max_backlog, keep=keep)
            up = self.tx
            if self.channel is not None:
                self.channel.set_min_output_buffer(BUFFER_ITEMS)
                self.connect(self.tx, self.channel)
                up = self.channel
            self.connect(up, self.rx)
            self.msg_connect(self.encoder, "out", self.tx, "in")
            self.msg_connect(self.rx, "out", self.decoder, "in")

    return ImageLoopback()


ImageLoopback = _make_top_block  # the factory (GNU Radio classes are built lazily so this module imports without it)


def run_image_loopback(cfg, images: list[tuple[np.ndarray, str]], codec, snr_hint: float, decoders: str = "jscc",
                       nfe: int = 1, out_dir: str = "", timeout: float = 120.0, interval: float = 0.0,
                       on_result=None, setup=None, sequential: bool = False, max_backlog: int = 4,
                       stop=None) -> dict[str, Any]:
    """Send ``images`` through the GNU Radio loopback; returns the report (see module docstring).

    ``interval``: seconds between images (0: back to back); ``sequential``: send the next image only
    once the previous one is decoded (latency without queueing). ``on_result(res)`` is called from this
    thread for every decoded image (the GUI uses it); ``setup(tb)`` is called before the flowgraph
    starts (to connect extra taps: ``tb.tx``, ``tb.channel``, ``tb.rx``, ``tb.decoder``). ``stop``: a
    ``threading.Event``; once set, no further image is sent, waiting ends and the report covers
    what was sent and decoded so far (``report["stopped"]`` is True).
    """
    from semcom.imagelink import REFERENCES

    REFERENCES.clear()
    keep = max(16, len(images) * (decoders.count(",") + 1))  # every result of this run stays readable
    tb = _make_top_block(cfg, codec, snr_hint, decoders, nfe, out_dir, max_backlog, keep)
    n_dec = len(tb.decoder.decoders)
    t0 = time.monotonic()
    sent: list[int] = []
    if setup is not None:
        setup(tb)
    tb.start()
    try:
        stopped = stop.is_set if stop is not None else (lambda: False)
        for img, name in images:
            if stopped():
                break
            sent.append(tb.encoder.send_image(img, name=name))
            if sequential:
                t_end = time.monotonic() + timeout
                while len(tb.decoder.results) < len(sent) * n_dec and time.monotonic() < t_end and not stopped():
                    time.sleep(0.001)
            if interval:
                if stop is not None:
                    stop.wait(interval)  # returns early once stopped
                else:
                    time.sleep(interval)
        want = len(sent) * n_dec
        deadline = t0 + timeout
        seen, quiet_since, last_samples = 0, None, -1
        while time.monotonic() < deadline and not stopped():
            res = list(tb.decoder.results)
            if on_result is not None:
                for r in res[seen:]:
                    on_result(r)
            seen = len(res)
            if seen >= want:
                break
            # lost streams: stop once the receiver has been idle and the decoder empty for its stream timeout
            samples = int(tb.rx.stats().get("samples", 0))
            if samples != last_samples or not tb.decoder.idle():
                quiet_since, last_samples = time.monotonic(), samples
            elif time.monotonic() - quiet_since > tb.decoder.timeout + 1.0:
                break
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
    seconds = time.monotonic() - t0
    results = list(tb.decoder.results)
    rx = tb.rx.stats()
    return {
        "engine": "gnuradio",
        "codec": {"checkpoint": codec.checkpoint, "ratio": str(codec.ratio), "codec_id": codec.codec_id,
                  "decoders": tb.decoder.decoders},
        "channel": cfg.channel.to_dict(),
        "frame_spec": str(cfg.frame),
        "snr_hint_db": snr_hint,
        "images_sent": len(sent),
        "frames_sent": tb.tx.frames_sent,
        "frames_received": int(rx.get("frames_out", 0)),
        "encode_s": list(tb.encoder.encode_seconds),
        "results": [{k: v for k, v in r.items() if k != "image"} for r in results],
        "receiver_stats": rx,
        "decoder_stats": tb.decoder.stats(),
        "seconds": seconds,
        "stopped": bool(stop is not None and stop.is_set()),
        "_images": {(r["stream_id"], r["decoder"]): r["image"] for r in results},
        "_originals": {sid: img for sid, (img, _) in zip(sent, images)},
    }


def _caption(r: dict) -> str:
    parts = [r["decoder"]]
    if "psnr" in r:
        parts.append(f"PSNR {r['psnr']:.2f} dB")
    if "ssim" in r:
        parts.append(f"SSIM {r['ssim']:.3f}")
    parts.append(f"SNR est {r['snr_db']:.1f} dB")
    if r["missing_chunks"]:
        parts.append(f"missing {len(r['missing_chunks'])}/{r['chunk_count']}")
    return "\n".join([parts[0], ", ".join(parts[1:3]), ", ".join(parts[3:])])


def _preview(img: np.ndarray, side: int = 1024) -> np.ndarray:
    """``img`` box-filtered down by an integer factor to at most about ``side`` pixels per side (the
    figure's panels are ~320 px wide; matplotlib would resample a full-size photo in float)."""
    f = max(img.shape[:2]) // side
    if f < 2:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(img, np.uint8)).reduce(f))


def save_figure(report: dict, path: Path, missing_note: str = "") -> Path:
    """Side by side per image: original | each decoder (captions: PSNR, SSIM, SNR estimate, missing chunks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decs = report["codec"]["decoders"]
    sids = list(report["_originals"])
    cols = 1 + len(decs) + (1 if missing_note else 0)
    fig, axes = plt.subplots(len(sids), cols, figsize=(3.2 * cols, 3.4 * len(sids)), squeeze=False)
    for row, sid in enumerate(sids):
        orig = report["_originals"][sid]
        axes[row][0].imshow(_preview(orig))
        axes[row][0].set_title(f"original {orig.shape[1]}x{orig.shape[0]}", fontsize=9)
        for j, d in enumerate(decs):
            ax = axes[row][1 + j]
            img = report["_images"].get((sid, d))
            r = next((r for r in report["results"] if r["stream_id"] == sid and r["decoder"] == d), None)
            if img is not None:
                ax.imshow(_preview(img))
                ax.set_title(_caption(r), fontsize=8)
            else:
                ax.set_title(f"{d}: not received", fontsize=9)
        if missing_note:
            axes[row][-1].text(0.5, 0.5, missing_note, ha="center", va="center", wrap=True, fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_outputs(report: dict, out: Path, missing_note: str = "") -> dict[str, str]:
    """PNGs of originals and reconstructions, ``loopback.json``, ``loopback.png`` (the figure)."""
    from semcom.blocks.phy.sigmf_io import jsonable
    from semcom.imagelink import save_png

    files = {}
    for sid, img in report["_originals"].items():
        save_png(img, out / f"stream{sid}_original.png")
    for (sid, d), img in report["_images"].items():
        save_png(img, out / f"stream{sid}_{d}.png")
    files["figure"] = str(save_figure(report, out / "loopback.png", missing_note))
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    (out / "loopback.json").write_text(json.dumps(jsonable(public), indent=2) + "\n")
    files["report"] = str(out / "loopback.json")
    return files


def print_image_summary(r: dict) -> None:
    ch = r["channel"]
    c = r["codec"]
    print(f"semcom loopback (images through GNU Radio): {r['frame_spec']}")
    print(f"  codec: JSCC ratio {c['ratio']} ({c['checkpoint']}), codec id {c['codec_id']}, decoders "
          f"{', '.join(c['decoders'])}")
    print(f"  channel: SNR {ch['snr_db']} dB, profile {ch['profile']}, fading {ch['fading']}, CFO {ch['cfo']}; "
          f"encoder SNR hint {r['snr_hint_db']} dB")
    print(f"  images sent {r['images_sent']}, frames sent {r['frames_sent']}, received {r['frames_received']}")
    for res in r["results"]:
        m = f"PSNR {res['psnr']:.2f} dB, SSIM {res.get('ssim', float('nan')):.3f}" if "psnr" in res else "no reference"
        lat = f", latency {res['latency_s'] * 1e3:.0f} ms" if "latency_s" in res else ""
        miss = f", missing chunks {res['missing_chunks']}" if res["missing_chunks"] else ""
        print(f"  stream {res['stream_id']} {res['width']}x{res['height']} [{res['decoder']}]: {m}, "
              f"SNR estimate {res['snr_db']:.2f} dB, {res['chunk_count']} frames{miss}, "
              f"decode {res['decode_s'] * 1e3:.0f} ms{lat}")
    want = r["images_sent"] * len(c["decoders"])
    if len(r["results"]) < want:
        print(f"  only {len(r['results'])} of {want} decoded images arrived; decoder counters "
              f"{json.dumps(r['decoder_stats'])}")
    enc = r["encode_s"]
    if enc:
        print(f"  encode {np.mean(enc) * 1e3:.0f} ms/image; {r['seconds']:.2f} s wall clock")


def benchmark(cfg, codec, sizes=((32, 32), (128, 128), (512, 768)), repeats: int = 5, decoders: str = "jscc",
              nfe: int = 1, burst: int = 20, timeout: float = 300.0,
              keepup: tuple[tuple[int, int, int], ...] = ((32, 32, 100), (256, 256, 8))) -> dict[str, Any]:
    """End-to-end latency and throughput through the GNU Radio loopback.

    Per image size (``(H, W)``): ``repeats`` images sent one at a time (each after the previous
    one is decoded): encode, decode and end-to-end latency (encode start -> decoded image; the
    rest is TX + channel + RX + reassembly + queueing; decoders run one after the other, so a
    second decoder's latency includes the first's), median/min/max. Then ``burst``
    32x32 images back to back: images/s and the receiver's sample rate during the run (samples
    it consumed / wall-clock seconds; the rate it kept up with, a lower bound of what it can do).
    Last, per ``(H, W, n)`` of ``keepup``, the receiver alone over ``n`` images prepared offline
    (``semcom.rx_keepup``): the link sample rate it keeps up with.
    """
    from semcom.rx_keepup import measure_keepup

    from semcom.imagelink import synthetic_image

    rows = []
    for h, w in sizes:
        imgs = [(synthetic_image(h, w, seed=i), f"{w}x{h}#{i}") for i in range(repeats)]
        rep = run_image_loopback(cfg, imgs, codec, cfg.channel.snr_db or 20.0, decoders, nfe, timeout=timeout,
                                 sequential=True)
        for dec in rep["codec"]["decoders"]:
            res = [r for r in rep["results"] if r["decoder"] == dec]
            lat = np.array([r["latency_s"] for r in res if "latency_s" in r])
            dsec = np.array([r["decode_s"] for r in res])
            rows.append({"height": h, "width": w, "decoder": dec, "images": len(res),
                         "frames_per_image": res[0]["chunk_count"] + 1 if res else None,
                         "encode_ms": 1e3 * float(np.median(rep["encode_s"])),
                         "decode_ms": 1e3 * float(np.median(dsec)) if dsec.size else None,
                         "latency_ms": 1e3 * float(np.median(lat)) if lat.size else None,
                         "latency_min_ms": 1e3 * float(lat.min()) if lat.size else None,
                         "latency_max_ms": 1e3 * float(lat.max()) if lat.size else None,
                         "psnr_db": float(np.mean([r["psnr"] for r in res])) if res else None})
    imgs = [(synthetic_image(32, 32, seed=i), f"burst#{i}") for i in range(burst)]
    rep = run_image_loopback(cfg, imgs, codec, cfg.channel.snr_db or 20.0, decoders, nfe, timeout=timeout,
                             max_backlog=burst + 1)  # every image decoded: throughput, not drops
    lat = [r["latency_s"] for r in rep["results"] if "latency_s" in r]
    span = max(lat) if lat else float("nan")  # first encode start -> last decoded (first image sent at t~0)
    n_done = len(rep["results"]) // max(1, len(rep["codec"]["decoders"]))  # images with every decoder's output
    thr = {"images": burst, "decoded": n_done, "seconds": span, "decoders": rep["codec"]["decoders"],
           "images_per_s": n_done / span if lat else None,
           "rx_samples": int(rep["receiver_stats"].get("samples", 0)),
           "rx_samples_per_s": rep["receiver_stats"].get("samples", 0) / span if lat else None,
           "dropped_backlog": rep["decoder_stats"]["dropped_backlog"]}
    keep = [measure_keepup(cfg, codec, decoders, nfe, n_images=n, size=(h, w), snr_db=cfg.channel.snr_db or 20.0,
                           timeout=timeout) for h, w, n in keepup]
    return {"rows": rows, "throughput_32x32": thr, "keepup": keep, "frame_spec": str(cfg.frame),
            "codec": rep["codec"], "snr_db": cfg.channel.snr_db}


def format_benchmark(b: dict) -> str:
    lines = [f"end-to-end latency through the GNU Radio loopback ({b['codec']['checkpoint']}, ratio "
             f"{b['codec']['ratio']}, SNR {b['snr_db']} dB), images sent one at a time, median (min-max):",
             f"  {'size':>9} {'decoder':>8} {'frames':>6} {'encode':>9} {'decode':>9} {'end-to-end':>22} {'PSNR':>7}"]
    for r in b["rows"]:
        lines.append(f"  {r['width']:>4}x{r['height']:<4} {r['decoder']:>8} {r['frames_per_image']:>6} "
                     f"{r['encode_ms']:>7.1f}ms {r['decode_ms']:>7.1f}ms {r['latency_ms']:>7.1f}ms "
                     f"({r['latency_min_ms']:.0f}-{r['latency_max_ms']:.0f}) {r['psnr_db']:>6.2f}")
    t = b["throughput_32x32"]
    lines.append(f"  back to back ({'+'.join(t['decoders'])}): {t['decoded']}/{t['images']} 32x32 images in "
                 f"{t['seconds']:.2f} s = "
                 f"{t['images_per_s']:.1f} images/s; receiver consumed {t['rx_samples_per_s'] / 1e6:.2f} MS/s "
                 f"({t['rx_samples']} samples), decoder backlog drops {t['dropped_backlog']}")
    from semcom.rx_keepup import format_keepup

    lines += [format_keepup(k) for k in b.get("keepup", [])]
    return "\n".join(lines)
