"""What ``semcom tx``/``rx`` and campaigns move over a radio: PHY payloads in, frames out.

Payloads are *streams* of analog complex symbols (complex64, normalised to unit power by the
transmitter) or digital bits (uint8 0/1); a stream is cut into frames by the numpy transmitter.
Today the streams are random test payloads or ``.npy`` files; the semantic encoder (images)
plugs in here later by producing the same streams (``payload_streams`` is the only entry).

``evaluate(tx, decoded)`` matches received frames to sent ones by (stream id, chunk index),
which both the numpy and the GNU Radio transmitters assign alike (frame counters differ: the
GR transmitter keeps counting across payloads); a cyclic burst is captured twice, so
duplicates are dropped. It gives frame loss, the receiver's SNR estimate and the
post-equalisation SNR measured against the sent symbols.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semcom.blocks.phy.sigmf_io import jsonable, write_recording
from semcom.blocks.phy.snr import db
from semcom.config import RANDOM_STREAM_SYMBOLS

__all__ = ["payload_streams", "build_waveform", "decode_iq", "evaluate", "burst_exchange", "random_payloads",
           "save_capture", "CollectedFrames", "GnuRadioLink"]


def random_payloads(n_streams: int, n_symbols: int, seed: int) -> list[np.ndarray]:
    """``n_streams`` arrays of ``n_symbols`` CN(0, 1) symbols (complex64); stream ``i`` uses seed ``[seed, i]``
    so a receiver can rebuild any one of them."""
    out = []
    for i in range(int(n_streams)):
        rng = np.random.default_rng([int(seed), i])
        out.append(((rng.standard_normal(n_symbols) + 1j * rng.standard_normal(n_symbols)) / math.sqrt(2))
                   .astype(np.complex64))
    return out


def payload_streams(npy: str | None = None, n_random: int | None = None, n_symbols: int = RANDOM_STREAM_SYMBOLS,
                    seed: int = 0) -> tuple[list[np.ndarray], str]:
    """``(streams, kind)`` from a ``.npy`` file or ``n_random`` random streams.

    ``.npy``: complex [n] (one stream) or [k, n] (k streams) -> analog; integer/bool 0/1 values
    -> digital bits. Errors name the file.
    """
    if (npy is None) == (n_random is None):
        raise ValueError("give exactly one of --payload FILE.npy and --random N")
    if n_random is not None:
        if n_random < 1 or n_symbols < 1:
            raise ValueError(f"--random and --symbols must be >= 1, got {n_random} and {n_symbols}")
        return random_payloads(n_random, n_symbols, seed), "analog"
    p = Path(npy)
    try:
        a = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: cannot read payload .npy: {e}") from None
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"{p}: payload must be a non-empty 1-D or 2-D array, got shape {a.shape}")
    rows = [a] if a.ndim == 1 else list(a)
    if np.iscomplexobj(a) or a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{p}: payload contains NaN or Inf")
        return [np.asarray(r, np.complex64) for r in rows], "analog"
    if a.dtype.kind in "biu" and np.all((a == 0) | (a == 1)):
        return [np.asarray(r, np.uint8) for r in rows], "digital"
    raise ValueError(f"{p}: payload must be complex/float symbols or 0/1 bits, got dtype {a.dtype}")


def build_waveform(cfg, streams: list[np.ndarray], kind: str = "analog", first_stream_id: int | None = None):
    """``TxResult`` (``semcom.commands.phy``): frames of every stream back to back, guard first.
    Stream ``i`` gets id ``first_stream_id + i`` (default ``link.stream_id``)."""
    from semcom.commands.phy import transmit_streams

    first = cfg.link.stream_id if first_stream_id is None else int(first_stream_id)
    return transmit_streams(cfg.frame, streams, kind=kind, first_stream_id=first & 0xFFFF,
                            codec_id=cfg.model.codec_id)


def decode_iq(cfg, iq: np.ndarray):
    """Numpy receiver over ``iq`` in ``link.rx_chunk_samples`` blocks -> ``DecodeResult`` with payloads."""
    from semcom.commands.phy import decode_chunks

    n = cfg.link.rx_chunk_samples
    return decode_chunks((iq[a:a + n] for a in range(0, iq.size, n)), cfg.frame, keep_payloads=True)


def evaluate(tx, dec) -> dict[str, Any]:
    """Frame loss, SNR estimate and measured post-equalisation SNR of a decode against what was sent
    (frames matched by stream id and chunk index; ``dec`` holds one payload's frames).

    Returns ``frames_sent``, ``frames_received`` (distinct sent frames decoded with the right
    length), ``frame_loss`` (0..1), ``snr_est_db`` (mean receiver estimate over those frames),
    ``snr_meas_db`` (pooled: total symbol energy / total error energy), ``duplicates``.
    """
    sent = {(h.stream_id, h.chunk_index): p for h, p in zip(tx.headers, tx.payloads)}
    seen: set[tuple[int, int]] = set()
    est, sig, err, dup = [], 0.0, 0.0, 0
    for rec, payload in zip(dec.frames, dec.payloads):
        fc = (int(rec["stream_id"]), int(rec["chunk_index"]))
        if fc in seen:
            dup += 1
            continue
        ref = sent.get(fc)
        if ref is None or ref.size != payload.size:
            continue
        seen.add(fc)
        est.append(float(rec["snr_db"]))
        sig += float(np.sum(np.abs(ref.astype(np.complex128)) ** 2))
        err += float(np.sum(np.abs(payload.astype(np.complex128) - ref) ** 2))
    n_sent = len(sent)
    meas = None
    if seen and err > 0:
        meas = float(db(sig / err))
    elif seen:
        meas = float("inf")
    return {"frames_sent": n_sent, "frames_received": len(seen),
            "frame_loss": (1.0 - len(seen) / n_sent) if n_sent else None,
            "snr_est_db": float(np.mean(est)) if est else None, "snr_meas_db": meas, "duplicates": dup}


def burst_exchange(radio, tx, repeats: int = 2) -> tuple[np.ndarray, dict[str, Any]]:
    """Cyclic TX of ``tx.iq`` on a ``PlutoBurst`` and a capture of ``repeats`` periods.

    Two periods contain every frame whole at least once wherever the capture starts.
    Returns ``(iq complex64, info)`` with the TX/RX details and ``latency_s`` (TX start to
    capture end).
    """
    t0 = time.perf_counter()
    txi = radio.start_tx(tx.iq)
    try:
        iq, rxi = radio.capture(repeats * tx.iq.size)
    finally:
        radio.stop_tx()
    return iq, {"tx": txi, "rx": rxi, "latency_s": time.perf_counter() - t0}


def save_capture(base: str | Path, iq: np.ndarray, cfg, dec, hw: str, extra: dict | None = None):
    """SigMF recording of a capture with one annotation per decoded frame (start, length,
    header fields, SNR estimate). Returns ``(meta_path, data_path)``; ``OSError`` (e.g. ENOSPC)
    propagates after the partial data file is removed."""
    ann = []
    for rec in dec.frames:
        start = int(rec["start"])
        length = cfg.frame.frame_len(int(rec["n_payload"]))
        if 0 <= start and start + length <= iq.size:
            ann.append((start, length, {"core:label": f"frame {rec['frame_counter']}",
                                        "snr_db": rec["snr_db"], "header": {k: rec[k] for k in
                                                                           ("frame_counter", "stream_id",
                                                                            "chunk_index", "chunk_count",
                                                                            "n_payload") if k in rec}}))
    return write_recording(base, iq, cfg.radio.sample_rate, center_freq=cfg.radio.center_freq, annotations=ann,
                           frame_spec=cfg.frame, hw=hw, description="semcom over-the-air capture",
                           extra_global=jsonable({"radio": dict(vars(cfg.radio)), **(extra or {})}))


@dataclass
class CollectedFrames:
    """Frames from the GNU Radio receiver (``FrameCollector`` items) in the layout ``evaluate`` reads:
    ``frames`` dicts (header fields, ``snr_db``, ...) and ``payloads`` complex64 arrays."""

    frames: list[dict] = field(default_factory=list)
    payloads: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def from_items(cls, items) -> "CollectedFrames":
        return cls([{k: v for k, v in m.items() if np.isscalar(v)} for m, _ in items],
                   [np.asarray(p, np.complex64) for _, p in items])


class GnuRadioLink:
    """TX and RX flowgraphs on one radio (``RadioTx`` + ``RadioRx``; gr-uhd, gr-iio or the fakes,
    which then share one in-process ``FakeAir``). ``exchange(streams, n_frames, timeout)`` sends
    the streams and waits for their frames; use as a context manager (starts and stops both)."""

    def __init__(self, cfg, air=None):
        from semcom.blocks.gr.radio import RadioRx, RadioTx  # noqa: PLC0415 (GNU Radio only here)

        if air is None and cfg.radio.device.startswith("fake_"):
            from .fakes import fake_air_for  # noqa: PLC0415

            air = fake_air_for(cfg)
        self.cfg = cfg
        self.rx = RadioRx(cfg, air)
        self.tx = RadioTx(cfg, air)

    def __enter__(self) -> "GnuRadioLink":
        self.rx.start()
        deadline = time.monotonic() + 5.0 + 2 * self.cfg.radio.rx_settle_s
        while not self.rx.settled() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.tx.start()
        self.tx.ramp()
        return self

    def __exit__(self, *exc) -> None:
        for tb in (self.tx, self.rx):
            tb.stop()
            tb.wait()

    def exchange(self, streams: list[np.ndarray], n_frames: int, timeout: float,
                 first_stream_id: int | None = None) -> CollectedFrames:
        """Send ``streams`` (analog, normalised here; ids as ``build_waveform``) and collect until
        ``n_frames`` new frames or ``timeout`` seconds."""
        from semcom.blocks.phy.tx import normalize_power  # noqa: PLC0415

        first = self.cfg.link.stream_id if first_stream_id is None else int(first_stream_id)
        before = self.rx.collector.count
        for i, x in enumerate(streams):
            self.tx.send(normalize_power(x)[0], stream_id=(first + i) & 0xFFFF, codec_id=self.cfg.model.codec_id)
        deadline = time.monotonic() + timeout
        while self.rx.collector.count - before < n_frames and time.monotonic() < deadline:
            time.sleep(0.005)
        new = self.rx.collector.count - before
        return CollectedFrames.from_items(self.rx.collector.frames()[-new:] if new else [])
