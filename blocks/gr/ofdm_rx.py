"""``semcom_ofdm_rx``: complex samples -> one PDU per received frame, the PHY of ``phy.rx`` in GNU Radio.

Flowgraph::

    in -> digital.ofdm_sync_sc_cfb (C++, per sample: Schmidl & Cox metric, plateau trigger,
          |                          held fractional-CFO angle)
          +--(samples, angle, trigger)--> FrameDemodSink (Python, per work call / per trigger)
                                          -> FrameDemodulator (front, finish) on a numpy slice
                                          -> msg 'out' (frames), 'header_syms', 'stats'

Where Python runs: ``FrameDemodSink.work`` copies each buffer into a bounded numpy ring
(one ``memcpy``) and finds triggers with ``np.flatnonzero``; there is no per-sample Python. Per
trigger (same two steps as ``phy.rx.StreamingReceiver``): once preamble + header are buffered
``FrameDemodulator.front`` decodes the header (integer CFO, fine timing, delay-domain denoised
channel estimate, pilot phase tracking, soft Viterbi, CRC), and once the frame's last OFDM
symbol is in, ``FrameDemodulator.finish`` equalises the payload (channel re-estimated with the
header as extra training, noise variance per symbol, no decision feedback) - together exactly
``FrameDemodulator.demodulate``, vectorised numpy on a slice of the ring.
A trigger inside a delivered frame is ignored; one inside a plateau longer than two OFDM symbols
(tone, DC offset) is rejected by a vectorised metric check before any demodulation.

Cost (``topblocks.measure_rx_throughput``, 2 cores shared with a training job, load 5-7): the
Python block needs ~2.4 ms of CPU per back-to-back maximal frame at fft_len 64 (5700 samples:
2.5 MS/s per core; 4.3-4.5 MS/s per core for 12288-symbol frames at fft_len 64/256, 7.9 at
fft_len 1024 with 24576 symbols), about 80 % of it ``front`` + ``finish``. Wall-clock rates in
that state were 1.3-2.3 MS/s with frames and 2-8 MS/s with noise only, where the Python block is
nearly idle (0.05 us/sample): the C++ sync chain and the shared CPU set the rest. A worker thread
for the demodulation was not added: it can only overlap with the sync chain when a core is idle,
and small-array numpy work holds the GIL.

Why not the stock gr-digital receiver after the sync:

* The CFO mixer of GNU Radio's ``ofdm_rx`` (``frequency_modulator_fc`` + delay + multiply) is not
  used: it re-tunes on *every* trigger, and a false trigger inside a frame (observed on sparse
  last OFDM symbols before a guard) changes the correction in the middle of that frame. The
  held fractional CFO at the trigger is handed to ``demodulate`` instead, which mixes the
  frame's slice once (vectorised).
* ``header_payload_demux`` + ``packet_headerparser_b`` expect gr-digital's header formats; our
  header is 128 bits, K=7 convolutionally coded and interleaved with a custom layout, and the
  demux drops frames larger than half its buffer and can swallow back-to-back triggers
  (GNU Radio PR #5092).
* ``ofdm_chanest_vcvc`` + ``ofdm_frame_equalizer_vcvc``: ``simpledfe`` is decision-directed (it
  slices every carrier to a constellation, ruining analog symbols) and ``static`` does not track
  phase; neither gives per-symbol noise variance. Our estimator denoises in the delay domain and
  reports ``noise_var`` per payload symbol, which the semantic decoder needs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np
import pmt
from gnuradio import digital, gr

from ..phy.frame import FrameSpec
from ..phy.sync import find_regions, sc_metric
from ..phy.sync import metric as sc_metric_value
from .ofdm_tx import spec_from_config
from .pdu_utils import make_pdu, meta_to_pmt

__all__ = ["FrameDemodSink", "semcom_ofdm_rx", "frame_to_pdu", "BUFFER_ITEMS"]

BUFFER_ITEMS = 1 << 16  # output buffer (items) in front of the Python block


def frame_to_pdu(frame) -> "pmt.pmt_t":
    """``RxFrame`` -> ``pmt.cons(meta, c32vector payload)``.

    ``meta`` holds every ``RxFrame.meta()`` field (header fields, snr_db, cfo, start, ...) plus
    ``noise_var`` (f32vector [n], per payload symbol) and, for digital payloads, ``bits`` (u8vector).
    """
    meta = dict(frame.meta())
    meta["noise_var"] = np.asarray(frame.noise_var, dtype=np.float32)
    bits = getattr(frame, "bits", None)
    if bits is not None:
        meta["bits"] = np.asarray(bits, dtype=np.uint8)
    return make_pdu(meta, np.asarray(frame.payload, dtype=np.complex64))


class FrameDemodSink(gr.sync_block):
    """Buffers samples (bounded) and demodulates a frame at every Schmidl & Cox trigger.

    Inputs (sample aligned): 0 complex64 samples, 1 float32 held S&C angle (``pi`` times the
    fractional CFO in subcarrier spacings), 2 uint8 trigger (1 at the plateau middle, i.e.
    ``fft_len - 1 + cp_len/2`` samples after the frame start).

    Message outputs: ``out`` frames (see ``frame_to_pdu``), ``header_syms`` (PDU with the
    equalised header symbols, meta ``frame_counter``/``snr_db``), ``stats`` (``stats_dict()``
    every ``stats_interval`` seconds, checked at each work call; 0 = every work call).

    Memory is bounded: the ring holds about ``4 * frame_len(max_payload_symbols)`` samples
    (more only if one input buffer is larger), and at most ``max_pending`` triggers wait (older
    ones are dropped and counted in ``dropped_triggers``/``stats.dropped_overflow``).

    Counters (``phy.rx.RxStats``): ``samples``, ``detections`` (triggers examined outside
    delivered frames), ``sync_fail``, ``header_crc_fail``, ``spec_mismatch``, ``bad_length``,
    ``truncated``, ``frames_ok``; plus ``frames_out``, ``dropped_triggers``, ``long_plateaus``
    (triggers rejected as tone/DC plateaus) and ``buffered_samples``.
    """

    def __init__(self, spec: FrameSpec, stats_interval: float = 1.0, max_pending: int = 256):
        gr.sync_block.__init__(self, name="semcom_frame_demod", in_sig=[np.complex64, np.float32, np.uint8],
                               out_sig=None)
        from ..phy.rx import FrameDemodulator, RxStats  # numpy receiver

        self.spec = spec
        self.demod = FrameDemodulator(spec)
        self._new_stats = RxStats
        self.stats = RxStats()
        self.stats_interval = float(stats_interval)
        self.max_pending = int(max_pending)
        # trigger index - coarse frame start: the plateau middle of the window *ending* at the trigger
        self._trig_to_start = spec.fft_len - 1 + spec.cp_len // 2
        self._pre = self.demod.pre  # samples the demodulator wants before a coarse start
        self._span_max = self.demod.span(spec.max_payload_symbols)  # sizes the ring
        cap = max(4 * (self._span_max + self._pre), BUFFER_ITEMS)
        self._buf = np.zeros(cap, dtype=np.complex64)
        self._buf_start = 0  # absolute index of _buf[0]
        self._buf_len = 0
        self._pending: deque[list] = deque()  # [coarse start, cfo_frac, decoded front or None]
        self._busy_until = -(1 << 62)  # absolute index: triggers before it fall inside a delivered frame
        self._last_stats = time.monotonic()
        self._lock = threading.Lock()
        self.frames_out = 0
        self.dropped_triggers = 0
        self.long_plateaus = 0
        for port in ("out", "header_syms", "stats"):
            self.message_port_register_out(pmt.intern(port))

    # ------------------------------------------------------------------ ring buffer
    @property
    def _end(self) -> int:
        return self._buf_start + self._buf_len

    def _append(self, x: np.ndarray) -> None:
        keep_from = self._end - self._trig_to_start - self._pre
        if self._pending:
            keep_from = min(keep_from, self._pending[0][0] - self._pre)
        drop = min(max(0, keep_from - self._buf_start), self._buf_len)
        if self._buf_len + x.size > self._buf.size and drop:  # compact only when needed
            self._buf[:self._buf_len - drop] = self._buf[drop:self._buf_len]
            self._buf_start += drop
            self._buf_len -= drop
        if self._buf_len + x.size > self._buf.size:  # one input buffer larger than the ring: grow once
            grown = np.zeros(self._buf_len + 2 * x.size, dtype=np.complex64)
            grown[:self._buf_len] = self._buf[:self._buf_len]
            self._buf = grown
        self._buf[self._buf_len:self._buf_len + x.size] = x
        self._buf_len += x.size

    def _local(self, a: int, b: int) -> np.ndarray:
        """Absolute samples [a, b) as a view when buffered whole, else a zero-padded copy."""
        if a >= self._buf_start and b <= self._end:
            return self._buf[a - self._buf_start:b - self._buf_start]
        out = np.zeros(b - a, dtype=np.complex64)
        lo, hi = max(a, self._buf_start), min(b, self._end)
        if hi > lo:
            out[lo - a:hi - a] = self._buf[lo - self._buf_start:hi - self._buf_start]
        return out

    # ------------------------------------------------------------------ work
    def work(self, input_items, output_items):
        x, ang, trig = input_items
        n_in = len(x)
        with self._lock:
            base = self._end
            hits = np.flatnonzero(trig)
            self._append(x)
            self.stats.samples += n_in
            for i in hits:
                if len(self._pending) >= self.max_pending:
                    self._pending.popleft()
                    self.dropped_triggers += 1
                    self.stats.dropped_overflow += 1
                self._pending.append([base + int(i) - self._trig_to_start, float(ang[i]) / np.pi, None])
            self._process(final=False)
        now = time.monotonic()
        if now - self._last_stats >= self.stats_interval:
            self._last_stats = now
            self._publish_stats()
        return n_in

    def _process(self, final: bool) -> None:
        """Decode pending triggers in order: header once it is buffered, the payload once all of it is.

        The same two steps as ``phy.rx.StreamingReceiver`` (``FrameDemodulator.front`` then
        ``finish`` with the decoded header reused): ``n_payload`` from the header tells when the
        frame is complete, so a frame is delivered as soon as its last OFDM symbol is in, never
        waiting for the samples of a maximal frame.
        """
        dm, end = self.demod, self._end
        while self._pending:
            cand = self._pending[0]
            c, cfo, front = cand
            if c < self._busy_until:
                self._pending.popleft()
                continue
            if front is None:
                if end < c + dm.span() and not final:
                    return
                self.stats.detections += 1
                if self._long_plateau(c):
                    self._pending.popleft()
                    self.stats.sync_fail += 1
                    self.long_plateaus += 1
                    continue
                x = self._local(c - self._pre, min(c + dm.span(), end))
                cand[2] = front = dm.front(x, self._pre, cfo, self.stats, self.spec.max_payload_symbols)
                if front is None:
                    self._pending.popleft()
                    continue
            stop = c + dm.span(front.header.n_payload)  # conservative: the frame ends before this
            if end < stop and not final:
                return
            self._pending.popleft()
            scratch = self._new_stats()
            frame = dm.finish(self._local(c - self._pre, min(stop, end)), self._pre, front, scratch)
            if frame is None:
                self.stats.truncated += scratch.truncated
                continue
            self.stats.frames_ok += 1
            frame.start = int(frame.start) + c - self._pre  # absolute sample index of the frame
            self._busy_until = frame.start + dm.body_len(int(frame.header.n_payload)) - self.spec.cp_len
            self._deliver(frame)

    def _long_plateau(self, c: int) -> bool:
        """True when the S&C metric stays above threshold for more than two OFDM symbols around ``c``.

        A frame's preamble gives a plateau about one CP long; a tone, DC offset or periodic
        interferer near the threshold gives long runs that ``ofdm_sync_sc_cfb`` splits into a
        trigger every few dozen samples. Same rule as ``phy.rx.StreamingReceiver`` (runs longer
        than ``2 * symbol_len`` are not frames); costs one vectorised metric over ~5 symbols.
        """
        spec = self.spec
        n, w = spec.fft_len, 2 * spec.symbol_len
        x = self._local(c - w, c + w + n)
        p, r = sc_metric(x, n)
        centre = w + spec.cp_len // 2  # expected plateau middle, as a window-start index into x
        for first, last, _ in find_regions(sc_metric_value(p, r) > spec.sc_threshold, n // 2):
            if first - n // 2 <= centre <= last + n // 2:
                return last - first > w
        return False

    def _deliver(self, frame) -> None:
        self.frames_out += 1
        self.message_port_pub(pmt.intern("out"), frame_to_pdu(frame))
        hs = getattr(frame, "header_symbols", None)
        if hs is not None:
            meta = {"frame_counter": int(frame.header.frame_counter), "snr_db": float(frame.snr_db)}
            self.message_port_pub(pmt.intern("header_syms"), make_pdu(meta, np.asarray(hs, np.complex64)))

    def stats_dict(self) -> dict[str, Any]:
        """Receiver counters: ``RxStats.as_dict()`` plus frames delivered and triggers dropped."""
        d = dict(self.stats.as_dict())
        d["frames_out"] = self.frames_out
        d["dropped_triggers"] = self.dropped_triggers
        d["long_plateaus"] = self.long_plateaus
        d["buffered_samples"] = self._buf_len
        return d

    def _publish_stats(self) -> None:
        self.message_port_pub(pmt.intern("stats"), meta_to_pmt(self.stats_dict()))

    def flush(self) -> None:
        """End of stream: decode what the buffered samples allow; frames cut short count as truncated."""
        with self._lock:
            self._process(final=True)


class semcom_ofdm_rx(gr.hier_block2):
    """Complex samples in -> message port ``out`` with one PDU per frame (see ``frame_to_pdu``).

    Parameters
    ----------
    spec : FrameSpec | dict | str | None
        Frame description (or ``frame:`` mapping / YAML config path; None = defaults).
    stats_interval : float
        Seconds between ``stats`` messages (0: at every work call).

    Ports: stream input 0 complex64; message outputs ``out``, ``header_syms``, ``stats``.
    ``stats()`` returns the counters. Frames are delivered as soon as their last OFDM symbol
    (plus ~1.5 CP) has arrived, so a burst source needs no trailing padding; ``flush()`` treats
    the input as ended (frames still incomplete count as ``truncated``); call it while the
    flowgraph runs, since messages published after ``stop()`` are not delivered.

    For full speed give the upstream block ``set_min_output_buffer(BUFFER_ITEMS)`` (GRC:
    ``minoutbuf``): the Python block reads the hier input directly, in chunks of that buffer.
    """

    def __init__(self, spec: FrameSpec | dict | str | None = None, stats_interval: float = 1.0):
        gr.hier_block2.__init__(self, "semcom_ofdm_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        spec = spec_from_config(spec)
        self.spec = spec
        for port in ("out", "header_syms", "stats"):
            self.message_port_register_hier_out(port)
        # Our SC preamble occupies the even carriers, so its two halves are identical.
        self.sync = digital.ofdm_sync_sc_cfb(spec.fft_len, spec.cp_len, True, spec.sc_threshold)
        self.sink = FrameDemodSink(spec, stats_interval)
        # Big buffers let the Python block run on big chunks. The upstream block's buffer matters
        # most (the Python block reads the hier input directly): give it set_min_output_buffer(
        # BUFFER_ITEMS) / GRC minoutbuf (the flowgraphs in topblocks.py do). An internal
        # blocks.copy with a big buffer was tried instead; the extra thread made it slower on 2 cores.
        self.sync.set_min_output_buffer(BUFFER_ITEMS)
        self.connect(self, self.sync)
        self.connect(self, (self.sink, 0))
        self.connect((self.sync, 0), (self.sink, 1))
        self.connect((self.sync, 1), (self.sink, 2))
        for port in ("out", "header_syms", "stats"):
            self.msg_connect(self.sink, port, self, port)

    def stats(self) -> dict[str, Any]:
        """Receiver counters (``RxStats.as_dict()`` + ``frames_out``, ``dropped_triggers``)."""
        return self.sink.stats_dict()

    def flush(self) -> None:
        """Treat the input as ended: decode what the buffered samples allow (see the class docstring)."""
        self.sink.flush()
