"""How fast a link the GNU Radio image receiver keeps up with: ``semcom loopback --bench``'s keep-up figure.

The transmit side is prepared offline (numpy transmitter, AWGN at the configured SNR), so the
whole machine serves the receiver: ``vector_source -> semcom_ofdm_rx -> semcom_semantic_decoder``
runs free (no throttle) over ``n_images`` images sent back to back, the worst case for a live
link. Two clocks from the start of the flowgraph:

* ``t_rx``: until the PHY receiver has consumed every sample (sync + demodulation);
* ``t_done``: until every image is decoded by every decoder (the decoder works in its own
  thread, in parallel with the PHY, so ``t_done >= t_rx``).

A link at sample rate ``R`` carrying images back to back delivers ``N`` samples in ``N / R``
seconds; the receiver keeps up (no growing backlog) while ``R <= N / t_done``: that is the
**keep-up sample rate** reported, next to the PHY-only rate ``N / t_rx`` and images/s. The
decoder queue holds every image during the measurement (no drops), and its peak backlog is
reported. At the configured link sample rate the figure is also a ratio (``x`` times real time).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["prepare_iq", "measure_keepup", "format_keepup"]


def prepare_iq(cfg, codec, images: list[np.ndarray], snr_db: float, seed: int = 0) -> tuple[np.ndarray, int]:
    """Encode ``images`` (uint8 ``[H, W, 3]``) -> (received IQ complex64 ``[N]``, frames).

    The frames of every image (descriptor + payload chunks, as ``semcom_semantic_encoder`` sends
    them) back to back, then complex AWGN of ``N0 = 10^(-snr_db/10)`` per sample (Es/N0 per
    payload symbol, ``blocks/phy/snr.py``). Registers each image as the reference of its stream.
    """
    from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder
    from semcom.blocks.phy.snr import add_awgn
    from semcom.blocks.phy.tx import FrameTransmitter

    enc = semcom_semantic_encoder(cfg, snr_db=snr_db, codec=codec)
    tx = FrameTransmitter(cfg.frame)
    parts = [np.zeros(cfg.frame.guard_len, np.complex64)]
    for i, img in enumerate(images):
        _, pdus = enc.encode(img, f"keepup#{i}")
        for meta, data in pdus:
            kw = dict(kind="analog", stream_id=int(meta["stream_id"]), codec_id=int(meta["codec_id"]),
                      flags=int(meta.get("flags", 0)))
            if "chunk_index" in meta:
                frames = [tx.modulate_frame(data, chunk_index=int(meta["chunk_index"]),
                                            chunk_count=int(meta["chunk_count"]), **kw)]
            else:
                frames = tx.modulate_stream(data, **kw)
            parts.extend(f.iq for f in frames)
    iq = np.concatenate(parts).astype(np.complex64)
    return add_awgn(iq, snr_db, np.random.default_rng(seed)).astype(np.complex64), len(parts) - 1


def _iq_then_zeros(iq: np.ndarray):
    """A source that plays ``iq`` once as fast as the receiver takes it, then trickles zeros
    (512 every 5 ms, ~0.1 MS/s): unlike ``vector_source`` it never ends, so the flowgraph (and
    with it the decoder's worker thread) stays up until every image is decoded, and unlike a
    free-running zero source it does not keep the Python blocks (and the GIL) busy meanwhile."""
    import time as _time

    from gnuradio import gr

    class IqThenZeros(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, name="semcom_iq_then_zeros", in_sig=None, out_sig=[np.complex64])
            self.pos = 0

        def work(self, input_items, output_items):
            out = output_items[0]
            n = min(len(out), iq.size - self.pos)
            if n > 0:
                out[:n] = iq[self.pos:self.pos + n]
                self.pos += n
                return n
            _time.sleep(0.005)
            m = min(len(out), 512)
            out[:m] = 0
            return m

    return IqThenZeros()


def measure_keepup(cfg, codec, decoders: str = "jscc", nfe: int = 1, n_images: int = 30,
                   size: tuple[int, int] = (32, 32), snr_db: float = 10.0, timeout: float = 300.0) -> dict[str, Any]:
    """Run the receive chain free over ``n_images`` back-to-back images; see the module docstring."""
    from gnuradio import gr

    from semcom.blocks.gr.ofdm_rx import semcom_ofdm_rx
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
    from semcom.imagelink import synthetic_image

    imgs = [synthetic_image(size[0], size[1], seed=1000 + i) for i in range(n_images)]
    iq, n_frames = prepare_iq(cfg, codec, imgs, snr_db)
    tb = gr.top_block("semcom_rx_keepup")
    src = _iq_then_zeros(iq)
    rx = semcom_ofdm_rx(cfg.frame)
    dec = semcom_semantic_decoder(cfg, decoders=decoders, nfe=nfe, codec=codec, max_backlog=n_images + 1,
                                  keep=n_images * (decoders.count(",") + 1) + 1)
    tb.connect(src, rx)
    tb.msg_connect(rx, "out", dec, "in")
    want = n_images * len(dec.decoders)
    t_rx = t_done = None
    peak = 0
    t0 = time.perf_counter()
    tb.start()
    try:
        while time.perf_counter() - t0 < timeout:
            now = time.perf_counter() - t0
            if t_rx is None and rx.stats().get("samples", 0) >= iq.size:
                t_rx = now
            peak = max(peak, dec.backlog())
            if len(dec.results) >= want:
                t_done = now
                break
            time.sleep(0.002)
    finally:
        tb.stop()
        tb.wait()
    res = list(dec.results)
    n = iq.size
    rate = cfg.radio.sample_rate
    out: dict[str, Any] = {
        "images": n_images, "size": list(size), "decoders": dec.decoders, "snr_db": snr_db,
        "samples": int(n), "frames": n_frames, "decoded": len(res), "complete": t_done is not None,
        "t_rx_s": t_rx, "t_done_s": t_done, "peak_backlog": peak, "link_sample_rate": rate,
        "psnr_db": float(np.mean([r["psnr"] for r in res if r.get("psnr") is not None])) if res else None,
        "decoder_stats": dec.stats(),
    }
    out["phy_samples_per_s"] = n / t_rx if t_rx else None
    out["keepup_samples_per_s"] = n / t_done if t_done else None
    out["images_per_s"] = n_images / t_done if t_done else None
    out["keepup_ratio"] = out["keepup_samples_per_s"] / rate if t_done else None
    return out


def format_keepup(k: dict[str, Any]) -> str:
    """One paragraph for the benchmark printout."""
    h, w = k["size"]
    if not k["complete"]:
        return (f"  receiver keep-up ({'+'.join(k['decoders'])}): only {k['decoded']} of "
                f"{k['images'] * len(k['decoders'])} images decoded before the timeout")
    return (f"  receiver keep-up ({'+'.join(k['decoders'])}, {k['images']} {w}x{h} images back to back, "
            f"{k['frames']} frames, {k['samples']} samples, SNR {k['snr_db']:g} dB): PHY "
            f"{k['phy_samples_per_s'] / 1e6:.2f} MS/s, with decoding {k['keepup_samples_per_s'] / 1e6:.2f} MS/s = "
            f"{k['images_per_s']:.1f} images/s = {k['keepup_ratio']:.2f}x the {k['link_sample_rate'] / 1e6:g} MS/s "
            f"link; peak decoder backlog {k['peak_backlog']}, mean PSNR {k['psnr_db']:.2f} dB")
