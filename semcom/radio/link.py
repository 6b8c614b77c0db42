"""What ``semcom tx``/``rx`` and campaigns move over a radio: PHY payloads in, frames out.

Payloads are *streams* of analog complex symbols (complex64, normalised to unit power by the
transmitter) or digital bits (uint8 0/1); a stream is cut into frames by the numpy transmitter.
Random test payloads and ``.npy`` files come from ``payload_streams``; images are *sends*
(``(symbols, meta)`` pairs: a descriptor frame and the payload of each image, built by
``semcom.radio.images``), modulated by ``waveform_of`` (numpy, burst mode) or handed to the GNU
Radio transmitter as they are (``GnuRadioLink.send``, ``RadioTx.send(data, **meta)``).

IQ recordings: ``save_capture`` writes a capture held in memory (campaigns); ``IqRecorder``
streams one to disk while it is received (``semcom rx``, both back ends; ``recorder_block``
puts it in a flowgraph) and, on a full disk or a failing write, stops writing, keeps the
samples already on disk and still writes their metadata.

``evaluate(tx, decoded)`` matches received frames to sent ones by (stream id, chunk index),
which both the numpy and the GNU Radio transmitters assign alike (frame counters differ: the
GR transmitter keeps counting across payloads); a cyclic burst is captured twice, so
duplicates are dropped. It gives frame loss, the receiver's SNR estimate and the
post-equalisation SNR measured against the sent symbols.
"""

from __future__ import annotations

import errno
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semcom.blocks.phy.sigmf_io import RecordingError, jsonable, sigmf_paths, write_recording
from semcom.blocks.phy.snr import db
from semcom.config import RANDOM_STREAM_SYMBOLS

__all__ = ["payload_streams", "build_waveform", "waveform_of", "decode_iq", "evaluate", "burst_exchange",
           "random_payloads", "save_capture", "frame_annotations", "IqRecorder", "recorder_block", "CollectedFrames",
           "GnuRadioLink"]


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


def waveform_of(cfg, sends: list[tuple[np.ndarray, dict]]):
    """``TxResult`` of *sends* (numpy transmitter, guard first): each ``(data, meta)`` is what
    ``RadioTx.send(data, **meta)`` takes. ``meta``: ``stream_id``, ``codec_id``, ``kind``, ``flags`` and,
    for a single frame, ``chunk_index``/``chunk_count``; without them the data is cut into frames
    (``modulate_stream``). Analog data is normalised to unit power per send, as the GNU Radio path does."""
    from semcom.blocks.phy.tx import FrameTransmitter, normalize_power
    from semcom.commands.phy import TxResult

    spec = cfg.frame
    ftx = FrameTransmitter(spec)
    frames = []
    for data, meta in sends:
        kw = {k: meta[k] for k in ("stream_id", "codec_id", "flags") if k in meta}
        kw["kind"] = meta.get("kind", "analog")
        if kw["kind"] == "analog":
            data = normalize_power(data)[0]
        if "chunk_index" in meta:
            frames.append(ftx.modulate_frame(data, chunk_index=int(meta["chunk_index"]),
                                             chunk_count=int(meta.get("chunk_count", 1)), **kw))
        else:
            frames.extend(ftx.modulate_stream(data, **kw))
    starts = spec.guard_len + np.cumsum([0] + [f.iq.size for f in frames])[:len(frames)]
    return TxResult(np.concatenate([np.zeros(spec.guard_len, np.complex64)] + [f.iq for f in frames]),
                    [], [f.header for f in frames], [f.payload for f in frames], [int(a) for a in starts],
                    papr_db=[float(f.papr_db) for f in frames])


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


def frame_annotations(frames, spec, n_samples: int) -> list[tuple[int, int, dict]]:
    """SigMF annotations ``(start, length, metadata)`` of received frames (dicts with ``start``, header
    fields, ``snr_db``) that lie whole inside ``n_samples`` recorded samples."""
    ann = []
    for rec in frames:
        start = int(rec.get("start", -1))
        length = spec.frame_len(int(rec["n_payload"]))
        if 0 <= start and start + length <= n_samples:
            ann.append((start, length, {"core:label": f"frame {rec['frame_counter']}", "snr_db": rec.get("snr_db"),
                                        "header": {k: rec[k] for k in ("frame_counter", "stream_id", "chunk_index",
                                                                       "chunk_count", "n_payload", "codec_id", "flags")
                                                   if k in rec}}))
    return ann


def _recording_info(cfg, extra: dict | None) -> dict:
    return jsonable({"radio": dict(vars(cfg.radio)), **(extra or {})})


def save_capture(base: str | Path, iq: np.ndarray, cfg, dec, hw: str, extra: dict | None = None):
    """SigMF recording of a capture with one annotation per decoded frame (start, length,
    header fields, SNR estimate). Returns ``(meta_path, data_path)``; ``OSError`` (e.g. ENOSPC)
    propagates after the partial data file is removed."""
    return write_recording(base, iq, cfg.radio.sample_rate, center_freq=cfg.radio.center_freq,
                           annotations=frame_annotations(dec.frames, cfg.frame, iq.size), frame_spec=cfg.frame,
                           hw=hw, description="semcom over-the-air capture", extra_global=_recording_info(cfg, extra))


class IqRecorder:
    """A SigMF ``cf32_le`` recording written while it is received.

    ``write(block)`` appends complex samples to ``BASE.sigmf-data`` (any thread; a GNU Radio sink
    calls it from ``work``); ``close(frames)`` writes ``BASE.sigmf-meta`` (sample rate, centre
    frequency, hardware, frame description, radio section, one annotation per received frame that
    lies whole in the recording). Opening checks the path at once: a missing directory or an
    unwritable file raises ``RecordingError`` naming it, before any device is touched.

    A failing write (full disk, I/O error) does not stop the receiver: recording stops, the whole
    samples already on disk are kept and ``close`` still writes their metadata (on a full disk
    it frees the last ``META_ROOM`` bytes of samples for it); ``error`` then says what happened
    and ``dropped`` counts the samples not recorded.
    """

    META_ROOM = 1 << 20  # bytes of samples given up when even the metadata does not fit

    def __init__(self, base: str | Path, cfg, hw: str, extra: dict | None = None):
        self.meta_path, self.data_path = sigmf_paths(base)
        self.cfg = cfg
        self.hw = hw
        self.extra = extra
        self.samples = 0
        self.offered = 0
        self.annotations = 0
        self.error: str | None = None
        if not self.meta_path.parent.is_dir():
            raise RecordingError(f"{self.meta_path}: directory {self.meta_path.parent} does not exist")
        try:
            existed = self.meta_path.exists()
            with open(self.meta_path, "a"):  # writable? (checked now, written at the end)
                pass
            if not existed:
                self.meta_path.unlink()
            self._fh = open(self.data_path, "wb")
        except OSError as e:
            raise RecordingError(f"{self.data_path}: cannot write the IQ recording: {e.strerror or e}") from None

    def write(self, block: np.ndarray) -> None:
        """Append complex samples (stored as complex64); after a failed write they are only counted."""
        x = np.asarray(block)
        self.offered += x.size
        if self._fh is None:
            return
        try:
            self._fh.write(x.astype("<c8", copy=False).tobytes())
            self.samples += x.size
        except OSError as e:
            self._fail(e)

    @property
    def dropped(self) -> int:
        """Samples handed over but not in the recording."""
        return self.offered - self.samples

    def _fail(self, e: OSError) -> None:
        self.error = f"{self.data_path}: {e.strerror or e}"
        try:
            self._fh.close()
        except OSError:
            pass
        self._fh = None

    def abandon(self) -> None:
        """The run failed before it received anything: remove the empty data file (else ``close()``)."""
        if self._fh is not None and self.samples == 0:
            self._fh.close()
            self._fh = None
            self.data_path.unlink(missing_ok=True)
        elif self._fh is not None:
            self.close()

    def close(self, frames=()) -> dict:
        """Finish the recording; returns ``{"sigmf", "samples", "annotations", "dropped", "error"}``."""
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError as e:
                self._fail(e)
            self._fh = None
        # a failed write may leave part of a sample: keep whole ones only
        if not self.data_path.exists():
            raise RecordingError(f"{self.data_path}: the IQ recording disappeared while it was written")
        n = self.data_path.stat().st_size // 8
        self.samples = n
        os.truncate(self.data_path, 8 * n)
        for attempt in range(2):
            try:
                self._write_meta(frames)
                break
            except OSError as e:
                if attempt or e.errno != errno.ENOSPC or n == 0:
                    raise RecordingError(f"{self.meta_path}: cannot write the SigMF metadata: {e.strerror or e} "
                                         f"({n} samples kept in {self.data_path.name})") from None
                cut = min(n, self.META_ROOM // 8)  # make room for the metadata
                n -= cut
                self.samples = n
                os.truncate(self.data_path, 8 * n)
                self.error = (self.error or "") + f"; the last {cut} samples were given up for the metadata"
        return {"sigmf": str(self.meta_path), "samples": self.samples, "annotations": self.annotations,
                "dropped": self.dropped, "error": self.error}

    def _write_meta(self, frames) -> None:
        from semcom.blocks.phy.sigmf_io import _write_meta  # the writer write_recording uses
        from sigmf import SigMFFile

        ann = frame_annotations(frames, self.cfg.frame, self.samples)
        self.annotations = len(ann)
        extra = dict(self.extra or {})
        if self.error:
            extra["recording_error"] = self.error
            extra["samples_not_recorded"] = self.dropped
        _write_meta(self.meta_path, self.data_path, self.samples, self.cfg.radio.sample_rate,
                    self.cfg.radio.center_freq, ann, self.cfg.frame, _recording_info(self.cfg, extra),
                    "semcom over-the-air capture", self.hw, SigMFFile)


def recorder_block(recorder: IqRecorder):
    """A GNU Radio sink (complex64 in) feeding ``recorder.write``; GNU Radio imported here only."""
    from gnuradio import gr  # noqa: PLC0415

    class IqRecorderSink(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, name="semcom_iq_recorder", in_sig=[np.complex64], out_sig=None)

        def work(self, input_items, output_items):
            recorder.write(input_items[0])
            return len(input_items[0])

    return IqRecorderSink()


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
    the streams and waits for their frames; ``send(sends)`` + ``collect(n_frames, timeout)`` do the
    same for *sends* (images). ``recorder``: an ``IqRecorder`` fed with what the receiver
    decodes (after the AGC settle, so frame starts are recording offsets). Use as a context
    manager (starts and stops both)."""

    def __init__(self, cfg, air=None, recorder: IqRecorder | None = None):
        from semcom.blocks.gr.radio import RadioRx, RadioTx  # noqa: PLC0415 (GNU Radio only here)

        if air is None and cfg.radio.device.startswith("fake_"):
            from .fakes import fake_air_for  # noqa: PLC0415

            air = fake_air_for(cfg)
        self.cfg = cfg
        self.rx = RadioRx(cfg, air)
        self.tx = RadioTx(cfg, air)
        self.recorder_sink = recorder_block(recorder) if recorder is not None else None
        if self.recorder_sink is not None:
            self.rx.connect(self.rx.skip, self.recorder_sink)
        self._before = 0

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

    def send(self, sends: list[tuple[np.ndarray, dict]]) -> None:
        """Queue ``(data, meta)`` sends on the transmitter (analog data normalised); ``collect`` counts from here."""
        from semcom.blocks.phy.tx import normalize_power  # noqa: PLC0415

        self._before = self.rx.collector.count
        for data, meta in sends:
            self.tx.send(normalize_power(data)[0] if meta.get("kind", "analog") == "analog" else data, **meta)

    def collect(self, n_frames: int, timeout: float) -> CollectedFrames:
        """Frames received since the last ``send``: until ``n_frames`` arrived or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.rx.collector.count - self._before < n_frames and time.monotonic() < deadline:
            time.sleep(0.005)
        new = self.rx.collector.count - self._before
        return CollectedFrames.from_items(self.rx.collector.frames()[-new:] if new else [])

    def exchange(self, streams: list[np.ndarray], n_frames: int, timeout: float,
                 first_stream_id: int | None = None) -> CollectedFrames:
        """Send ``streams`` (analog, normalised here; ids as ``build_waveform``) and collect until
        ``n_frames`` new frames or ``timeout`` seconds."""
        first = self.cfg.link.stream_id if first_stream_id is None else int(first_stream_id)
        self.send([(x, {"stream_id": (first + i) & 0xFFFF, "codec_id": self.cfg.model.codec_id})
                   for i, x in enumerate(streams)])
        return self.collect(n_frames, timeout)
