"""``semcom_ofdm_tx``: PDUs of payload symbols/bits -> OFDM bursts, the PHY of ``phy.tx`` in GNU Radio.

Flowgraph (everything after the first block is gr-digital / gr-fft C++)::

    msg 'in' / send() -> FrameSource (Python: header coding + chunking per frame, numpy copy
                         into the output buffer, 'packet_len' + header-field tags)
             -> digital.ofdm_carrier_allocator_cvc (data carriers, 127 pilot sets = the polarity
                sequence, sync words = SC preamble + n_training training symbols, natural order)
             -> fft.fft_vcc (inverse, no shift)
             -> digital.ofdm_cyclic_prefixer (cp_len)
             -> blocks.tagged_stream_mux with pdu_to_tagged_stream sources that carry, per
                frame, a PDU of guard_len - 1 zeros and a 1-zero PDU tagged tx_eob (the guard)
             -> complex output, one tagged burst per frame

``digital.burst_shaper_cc`` would add the guard too, but it emits the post-padding only when
the next burst arrives, so the last frame's guard stayed stuck in the flowgraph.

The numpy reference uses the unitary IDFT; ``fft_vcc`` computes the plain sum, so every value
entering the allocator (symbols, pilots, sync words) is pre-scaled by ``1/sqrt(fft_len)`` and no
extra multiply block runs per sample. The output equals ``FrameTransmitter.modulate_stream`` /
``modulate_frame`` IQ to float32 rounding (``tests/test_gr_phy.py``), frame counter included.

Burst tags for gr-uhd's ``usrp_sink``: ``packet_len`` (the whole burst incl. the guard) and
``tx_sob`` on the first sample, ``tx_eob`` on the last (the last guard zero; with ``guard_len ==
0`` there is no ``tx_eob``: use the sink's length tag ``packet_len``). Every header field
(``frame_counter``, ``stream_id``, ...) is also a tag on the first sample.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
import pmt
from gnuradio import blocks, digital, fft, gr, pdu

from ..phy.frame import FrameSpec
from ..phy.tx import FrameTransmitter
from .pdu_utils import PduError, make_pdu, parse_pdu

__all__ = ["FrameSource", "TxQueueFull", "semcom_ofdm_tx", "spec_from_config", "tx_buffer_items"]

LEN_TAG = "packet_len"
_LEN_KEY = pmt.intern(LEN_TAG)
_SOB_KEY = pmt.intern("tx_sob")
_FRAME_KEYS = ("stream_id", "codec_id", "flags", "kind", "modulation")


def spec_from_config(spec: FrameSpec | dict | str | None) -> FrameSpec:
    """A ``FrameSpec`` from a FrameSpec, a ``frame:`` mapping, a YAML config path, or None/"" (defaults).

    A path is read with ``semcom.config.load_config`` (the whole file is validated; errors name
    the file and field) and its ``frame`` section is used.
    """
    if spec is None or spec == "":
        return FrameSpec()
    if isinstance(spec, FrameSpec):
        return spec
    if isinstance(spec, dict):
        return FrameSpec.from_dict(spec)
    if isinstance(spec, str):
        from semcom.config import load_config

        return load_config(spec).frame
    raise TypeError(f"spec must be a FrameSpec, dict, YAML path or None, got {type(spec).__name__}")


def tx_buffer_items(spec: FrameSpec) -> tuple[int, int]:
    """Minimum output buffer sizes (OFDM symbols, samples) that hold the largest frame twice."""
    n_sym = spec.n_preamble_symbols + spec.n_header_symbols + spec.n_payload_ofdm_symbols(spec.max_payload_symbols)
    return 2 * n_sym, 2 * spec.frame_len(spec.max_payload_symbols)


class TxQueueFull(ValueError):
    """``FrameSource.enqueue``: the frame queue stayed full for the whole timeout (nothing drained it)."""


class FrameSource(gr.sync_block):
    """Payloads (messages on ``in`` or ``enqueue``) -> tagged stream of per-frame data-carrier symbols.

    Input PDU on ``in``: ``pmt.cons(meta, data)``; ``data`` c32vector analog symbols or u8vector
    bits (digital). Meta keys (all optional): ``kind`` ("analog"/"digital", default from the
    vector type), ``modulation``, ``stream_id``, ``codec_id``, ``flags``, ``chunk_index``,
    ``chunk_count``.

    * Without ``chunk_index``/``chunk_count``: ``FrameTransmitter.modulate_stream`` semantics
      (payload cut into ``max_payload_symbols`` chunks, flag bit 0 on the last chunk).
    * With them: ``modulate_frame`` semantics (one frame, the fields as given; must fit).

    Output 0: complex64 stream; per frame the coded header symbols then the payload symbols,
    scaled by ``1/sqrt(fft_len)``, tagged on the first item with ``packet_len`` (symbols),
    ``tx_sob`` and every header field. Per frame the guard goes out as PDUs: ``guard_len - 1``
    zeros on message port ``guard`` and one zero tagged ``tx_eob`` on ``eob`` (none of them
    when ``guard_len`` is 0, no ``guard`` PDU when it is 1). A bad PDU is dropped with a logged error
    (counted in ``n_errors``) instead of stopping the flowgraph.

    Why a Python source rather than a PDU into ``pdu_to_tagged_stream``: building a c32vector
    PMT from numpy costs about 0.2 us per symbol in the bindings (0.6 ms per 3072-symbol frame),
    more than the whole C++ chain; ``work`` copies numpy arrays straight into the buffer.
    """

    def __init__(self, spec: FrameSpec, max_queued_frames: int = 4096):
        gr.sync_block.__init__(self, name="semcom_frame_source", in_sig=None, out_sig=[np.complex64])
        self.spec = spec
        self.tx = FrameTransmitter(spec)
        self._scale = np.float32(1.0 / np.sqrt(spec.fft_len))
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when work() takes a frame off the queue
        self._queue: deque[tuple[dict, np.ndarray]] = deque()
        self._cur: np.ndarray | None = None
        self._pos = 0
        self.max_queued_frames = int(max_queued_frames)
        self.n_frames = 0
        self.n_errors = 0
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_in(pmt.intern("wake"))
        self.message_port_register_out(pmt.intern("guard"))
        self.message_port_register_out(pmt.intern("eob"))
        g = spec.guard_len
        self._guard = make_pdu({}, np.zeros(g - 1, np.complex64)) if g > 1 else None
        self._eob = make_pdu({"tx_eob": True}, np.zeros(1, np.complex64)) if g > 0 else None
        self.set_msg_handler(pmt.intern("in"), self._handle)
        self.set_msg_handler(pmt.intern("wake"), self._wake)

    def frames_for(self, meta: dict[str, Any], data: np.ndarray) -> list[tuple[dict, np.ndarray]]:
        """(tags, scaled symbols complex64 [n]) for every frame of one payload. Advances the counter."""
        data = np.asarray(data)
        kind = meta.get("kind") or ("analog" if np.iscomplexobj(data) else "digital")
        if kind == "analog" and not np.iscomplexobj(data):
            raise PduError(f"analog payload needs complex symbols (c32vector), got {data.dtype}")
        if kind == "digital" and data.dtype != np.uint8:
            raise PduError(f"digital payload needs uint8 bits (u8vector), got {data.dtype}")
        kw = {k: meta[k] for k in _FRAME_KEYS if meta.get(k) is not None}
        kw["kind"] = kind
        for k in ("stream_id", "codec_id", "flags"):
            if k in kw:
                kw[k] = int(kw[k])
        if "chunk_index" in meta or "chunk_count" in meta:
            chunks = [(data, dict(kw, chunk_index=int(meta.get("chunk_index", 0)),
                                  chunk_count=int(meta.get("chunk_count", 1))))]
        else:
            chunks = self.tx.stream_chunks(data, **kw)
        out = []
        for part, fkw in chunks:
            h, symbols, _ = self.tx.frame_symbols(part, **fkw)
            out.append((h.as_dict(), symbols * self._scale))
        return out

    def enqueue(self, data: np.ndarray, meta: dict[str, Any] | None = None, timeout: float | None = 0.0) -> int:
        """Build the frames of one payload in the caller's thread and queue them; returns their number.

        Back-pressure: while ``max_queued_frames`` frames or more wait, block until the flowgraph
        takes one (the downstream consumer keeps up) for at most ``timeout`` seconds (None: no
        limit; 0, the default: do not wait). Raises ``TxQueueFull`` (a ``ValueError``) when the
        queue is still full then, ``ValueError`` naming the problem for a bad payload.
        """
        with self._lock:
            if len(self._queue) >= self.max_queued_frames and (timeout is None or timeout > 0):
                self._room.wait_for(lambda: len(self._queue) < self.max_queued_frames, timeout)
            if len(self._queue) >= self.max_queued_frames:
                waited = f" for {timeout:g} s" if timeout else ""
                raise TxQueueFull(f"semcom_ofdm_tx: {len(self._queue)} frames already queued (max_queued_frames) "
                                  f"and none left the transmitter{waited}: the consumer downstream is stalled "
                                  f"or not connected")
            frames = self.frames_for(dict(meta or {}), data)
            self._queue.extend(frames)
        self.to_basic_block()._post(pmt.intern("wake"), pmt.PMT_T)  # wakes the scheduler thread
        return len(frames)

    def queued_frames(self) -> int:
        with self._lock:
            return len(self._queue) + (self._cur is not None)

    def _wake(self, msg) -> None:
        """Handler of the internal ``wake`` port: its only job is to wake the scheduler thread."""

    def _handle(self, msg) -> None:
        try:
            meta, data = parse_pdu(msg)
            with self._lock:  # the frame counter is shared with enqueue()
                self._queue.extend(self.frames_for(meta, data))
        except (ValueError, TypeError) as e:  # PduError, HeaderError, FrameSpec limits
            self.n_errors += 1
            gr.log.error(f"semcom_ofdm_tx: dropped PDU: {e}")

    def work(self, input_items, output_items):
        out = output_items[0]
        n_out, done = len(out), 0
        while done < n_out:
            if self._cur is None:
                with self._lock:
                    if not self._queue:
                        break
                    tags, self._cur = self._queue.popleft()
                    self._room.notify_all()
                self._pos = 0
                off = self.nitems_written(0) + done
                self.add_item_tag(0, off, _LEN_KEY, pmt.from_long(self._cur.size))
                self.add_item_tag(0, off, _SOB_KEY, pmt.PMT_T)
                for k, v in tags.items():
                    self.add_item_tag(0, off, pmt.intern(k), pmt.from_long(v))
                if self._guard is not None:
                    self.message_port_pub(pmt.intern("guard"), self._guard)
                if self._eob is not None:
                    self.message_port_pub(pmt.intern("eob"), self._eob)
                self.n_frames += 1
            n = min(n_out - done, self._cur.size - self._pos)
            out[done:done + n] = self._cur[self._pos:self._pos + n]
            done += n
            self._pos += n
            if self._pos >= self._cur.size:
                self._cur = None
        return done


class semcom_ofdm_tx(gr.hier_block2):
    """PDUs in (message port ``in``) -> complex OFDM bursts out, identical to ``FrameTransmitter``.

    Parameters
    ----------
    spec : FrameSpec | dict | str | None
        The frame description (or a ``frame:`` mapping / YAML config path; None = defaults).

    Ports: message input ``in`` (see ``FrameSource``); stream output 0, complex64 samples,
    each burst ``spec.frame_len(n)`` samples (guard zeros included) tagged ``packet_len`` and
    ``tx_sob`` on its first sample and ``tx_eob`` on its last (see the module docstring). Bursts
    follow each other without gaps; output stops while no payload is queued.
    """

    def __init__(self, spec: FrameSpec | dict | str | None = None):
        gr.hier_block2.__init__(self, "semcom_ofdm_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        spec = spec_from_config(spec)
        self.spec = spec
        n = spec.fft_len
        scale = 1.0 / np.sqrt(n)
        self.message_port_register_hier_in("in")
        self.source = FrameSource(spec)
        pol = spec.pilot_polarity(127)
        pilot_sets = [list(spec.pilot_carriers)] * 127
        pilot_syms = [[complex(p * v * scale) for v in spec.pilot_values] for p in pol]
        syncs = [spec.sc_symbol_freq()] + [spec.training_freq()] * spec.n_training
        sync_words = [[complex(v) for v in s * scale] for s in syncs]
        self.allocator = digital.ofdm_carrier_allocator_cvc(
            n, [list(spec.data_carriers)], pilot_sets, pilot_syms, sync_words, LEN_TAG, False)
        self.ifft = fft.fft_vcc(n, False, [], False, 1)
        self.cp = digital.ofdm_cyclic_prefixer(n, n + spec.cp_len, 0, LEN_TAG)
        n_sym, n_samp = tx_buffer_items(spec)
        # tagged-stream blocks need a whole frame in their output buffer (GNURADIO_NOTES "Buffers")
        self.source.set_min_output_buffer(max(n_sym * spec.n_data, 8192))
        self.allocator.set_min_output_buffer(n_sym)
        self.ifft.set_min_output_buffer(n_sym)
        self.cp.set_min_output_buffer(n_samp)
        self.msg_connect(self, "in", self.source, "in")
        self.connect(self.source, self.allocator, self.ifft, self.cp)
        guard_ports = [port for port, size in (("guard", spec.guard_len - 1), ("eob", 1)) if size > 0 and spec.guard_len]
        if guard_ports:
            self.mux = blocks.tagged_stream_mux(gr.sizeof_gr_complex, LEN_TAG, 0)
            self.mux.set_min_output_buffer(n_samp)
            self.connect(self.cp, (self.mux, 0))
            self.guard_streams = []
            for i, port in enumerate(guard_ports):
                stream = pdu.pdu_to_tagged_stream(gr.types.complex_t, LEN_TAG)
                stream.set_min_output_buffer(max(2 * spec.guard_len, 8192))
                self.msg_connect(self.source, port, stream, "pdus")
                self.connect(stream, (self.mux, i + 1))
                self.guard_streams.append(stream)
            self.connect(self.mux, self)
        else:
            self.connect(self.cp, self)

    def send(self, data: np.ndarray, timeout: float | None = 0.0, **meta: Any) -> None:
        """Queue one payload (same as a PDU on port ``in``, without the PMT conversion); see ``FrameSource``.

        ``timeout``: seconds to wait for room while ``source.max_queued_frames`` frames are queued
        (None: no limit; 0: raise ``TxQueueFull`` at once). Raises ``ValueError`` naming the problem
        for a bad payload.
        """
        self.source.enqueue(data, meta, timeout=timeout)

    @property
    def frames_sent(self) -> int:
        """Frames built so far (PDUs handed to the stream part)."""
        return self.source.n_frames
