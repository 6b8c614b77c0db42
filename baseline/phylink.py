"""One payload through the OFDM PHY and a channel, in numpy or in GNU Radio (both sides of
``semcom bench compare`` use it on the multipath channels).

``exchange(payload, channel, kind=..., modulation=..., engine=...)``: an analog payload
(complex64 symbols: semcom's air-order latent) or a digital one (uint8 bits: the baseline's coded
bits, sent as ``modulation`` QAM) -> ``FrameTransmitter.modulate_stream`` frames -> the channel
(``ChannelConfig`` fields: profile, fading, ``snr_db`` Es/N0 per payload symbol, seed) -> the
receiver -> chunks put back by index (``chunking.Reassembler``) -> ``Received``: the equalised
payload symbols and their noise variance, symbol 0 with variance inf where a frame was lost.

* ``engine="numpy"``: ``FrameTransmitter`` -> ``ChannelSimulator`` -> ``rx.receive`` on the whole buffer.
* ``engine="gnuradio"``: the GNU Radio blocks ``semcom_ofdm_tx -> channel -> semcom_ofdm_rx`` in one
  flowgraph kept running for the whole process (``_GrLink``; ``close_gnuradio`` stops it, also at
  exit); a payload is done once every frame arrived, or once the receiver has consumed every
  sample sent and stayed quiet for ``QUIET_S``, or after ``timeout`` s.

Both engines apply the same ``ChannelSimulator(ChannelConfig)``: the multipath taps are drawn from
the seed alone (before any sample), so one seed is one channel realisation in both engines and for
both sides of the comparison, and the noise samples are the same too. What differs between the
engines: the receiver implementation (GNU Radio's C++ sync chain against the numpy reference) and
the headers (the flowgraph's frame counter runs on and each payload gets a fresh stream id, while
numpy starts at 0 with ``stream_id``): the decoded header is extra training for the channel
estimate, so the equalised symbols differ by about 1 % of the noise power (bit-identical for a
first payload). Every frame is delayed by half a guard of silence (``timing_offset = guard_len //
2``: the channel blocks of the flowgraph are 1:1, so a longer delay would hold back the end of the
last frame, which has no more samples behind it than its guard) and the numpy buffer gets
``TAIL_SYMBOLS`` OFDM symbols of silence after the last frame.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Received", "exchange", "llr_of", "close_gnuradio", "ENGINES", "TAIL_SYMBOLS", "QUIET_S"]

ENGINES = ("numpy", "gnuradio")
TAIL_SYMBOLS = 4  # OFDM symbols of silence after the last frame (numpy)
QUIET_S = 0.3  # GNU Radio: receiver idle this long after the last sample -> the missing frames are lost


@dataclass
class Received:
    """A payload after the PHY: ``symbols`` complex64 [n] (equalised; 0 where lost), ``noise_var``
    float32 [n] (per symbol, inf where lost), ``frames_sent``/``frames_ok``, ``snr_est_db`` (mean
    of the receiver's per-frame Es/N0 estimates, None when no frame arrived)."""

    symbols: np.ndarray
    noise_var: np.ndarray
    frames_sent: int
    frames_ok: int
    snr_est_db: float | None


def llr_of(rx: Received, modulation: str) -> np.ndarray:
    """Max-log LLRs float64 [n * bps] of a digital payload (positive = bit 0; 0 where lost)."""
    from semcom.blocks.phy.modulation import demodulate_llr

    nv = np.asarray(rx.noise_var, np.float64)
    lost = ~np.isfinite(nv)
    llr = demodulate_llr(rx.symbols, modulation, np.where(lost, 1.0, nv))
    bps = llr.size // max(1, rx.symbols.size)
    llr[np.repeat(lost, bps)] = 0.0
    return llr


def _config(channel: dict, spec) -> "object":
    from semcom.blocks.phy.channel import ChannelConfig

    d = {"timing_offset": float(spec.guard_len // 2), "fft_len": spec.fft_len, **channel}
    return ChannelConfig.from_dict(d)


def _frames_numpy(iqs: list[np.ndarray], cfg, spec) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    from semcom.blocks.phy.channel import simulate
    from semcom.blocks.phy.rx import receive

    tail = np.zeros(TAIL_SYMBOLS * spec.symbol_len, np.complex64)
    got, _ = receive(simulate(np.concatenate(iqs + [tail]), cfg), spec)
    return [({**f.header.as_dict(), "kind": f.kind, "modulation": f.modulation, "snr_db": f.snr_db},
             f.payload, f.noise_var) for f in got]


class _GrLink:
    """One flowgraph kept for the whole process: ``semcom_ofdm_tx -> channel -> semcom_ofdm_rx ->
    FrameCollector``, the channel a Python block running a ``ChannelSimulator`` that is replaced for
    every payload (a new realisation, SNR and noise seed) once the receiver has consumed every sample
    of the previous one (guard included), so both engines put the same channel and the same noise
    samples on a payload; the GNU Radio TX and RX blocks are what this engine checks.

    One flowgraph rather than one per payload: GNU Radio 3.10 keeps the shared-memory buffers of a
    stopped flowgraph with Python blocks until the process exits (about 40 System V segments per
    ``PhyLoopback``; the kernel's limit is 4096), so a flowgraph per image runs out after ~100 images.
    """

    def __init__(self, spec):
        from gnuradio import gr

        from semcom.blocks.gr.ofdm_rx import BUFFER_ITEMS, semcom_ofdm_rx
        from semcom.blocks.gr.ofdm_tx import semcom_ofdm_tx
        from semcom.blocks.gr.topblocks import FrameCollector

        try:
            gr.logging().set_default_level(gr.log_levels.warn)  # no 'set_min_output_buffer' info lines
        except AttributeError:
            pass

        class _Channel(gr.sync_block):
            def __init__(self):
                gr.sync_block.__init__(self, name="phylink_channel", in_sig=[np.complex64], out_sig=[np.complex64])
                self.sim = None
                self.n_in = 0  # samples through the channel so far

            def work(self, input_items, output_items):
                x = input_items[0]
                output_items[0][:] = x if self.sim is None else self.sim.apply(x)
                self.n_in += len(x)
                return len(x)

        self.tb = gr.top_block("phylink")
        self.tx = semcom_ofdm_tx(spec)
        self.channel = _Channel()
        self.channel.set_min_output_buffer(BUFFER_ITEMS)  # big chunks for the RX's Python block
        self.rx = semcom_ofdm_rx(spec)
        self.collector = FrameCollector()
        self.tb.connect(self.tx, self.channel, self.rx)
        self.tb.msg_connect(self.rx, "out", self.collector, "in")
        self.tb.start()
        self.next_id = 1

    def frames(self, payload: np.ndarray, meta: dict, n_frames: int, n_samples: int, cfg,
               timeout: float) -> list[tuple[dict, np.ndarray, np.ndarray]]:
        from semcom.blocks.phy.channel import ChannelSimulator

        self.channel.sim = ChannelSimulator(cfg)  # the previous payload's samples have all gone through
        start_frames, start_in = self.collector.count, self.channel.n_in
        start_samples = int(self.rx.stats().get("samples", 0))
        self.tx.send(payload, **meta)
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if self.collector.count - start_frames >= n_frames and self.channel.n_in - start_in >= n_samples:
                break  # every frame, and every sample through the channel (the guard too)
            # the receiver's count runs ahead of the channel by its sync chain's delay line
            seen = int(self.rx.stats().get("samples", 0)) - start_samples
            if seen != last:
                last, since = seen, time.monotonic()
            elif seen >= n_samples and time.monotonic() - since > QUIET_S:
                break  # every sample went through and nothing more comes: the rest is lost
            time.sleep(0.002)
        new = self.collector.count - start_frames
        got = self.collector.frames()[-new:] if new else []
        return [(m, np.asarray(p, np.complex64), np.asarray(m["noise_var"], np.float32)) for m, p in got]

    def close(self) -> None:
        self.tb.stop()
        self.tb.wait()


_GR_LINKS: dict = {}


def close_gnuradio() -> None:
    """Stop the flowgraphs the ``gnuradio`` engine keeps (called at exit too)."""
    while _GR_LINKS:
        _GR_LINKS.popitem()[1].close()


atexit.register(close_gnuradio)


def _gr_link(spec) -> _GrLink:
    if spec not in _GR_LINKS:
        _GR_LINKS[spec] = _GrLink(spec)
    return _GR_LINKS[spec]


def exchange(payload: np.ndarray, channel: dict, *, kind: str = "analog", modulation: str | None = None,
             engine: str = "numpy", spec=None, stream_id: int = 1, timeout: float = 60.0) -> Received:
    """Send ``payload`` (complex64 [n] analog symbols, or uint8 [n_bits] bits with ``modulation``)
    through the PHY and ``channel`` (``ChannelConfig`` fields; ``timing_offset`` and ``fft_len`` default
    to the lead-in and the spec); see the module docstring. Raises ValueError for a bad engine/kind."""
    from semcom.blocks.phy.chunking import Reassembler
    from semcom.blocks.phy.frame import FrameSpec
    from semcom.blocks.phy.modulation import bits_per_symbol
    from semcom.blocks.phy.tx import FrameTransmitter

    if engine not in ENGINES:
        raise ValueError(f"engine: unknown {engine!r}; valid: {ENGINES}")
    if kind not in ("analog", "digital"):
        raise ValueError(f"kind: must be 'analog' or 'digital', got {kind!r}")
    spec = spec or FrameSpec()
    cfg = _config(channel, spec)
    if kind == "digital":
        payload = np.asarray(payload, np.uint8).ravel()
        n_sym = -(-payload.size // bits_per_symbol(modulation))
    else:
        payload = np.asarray(payload, np.complex64).ravel()
        n_sym = payload.size
    if engine == "gnuradio":  # a fresh stream id per payload on the shared flowgraph
        link = _gr_link(spec)
        stream_id, link.next_id = link.next_id, link.next_id % 0xFFFF + 1
    meta = {"kind": kind, "stream_id": int(stream_id), **({"modulation": modulation} if kind == "digital" else {})}
    frames = FrameTransmitter(spec).modulate_stream(payload, **meta)
    iqs = [f.iq for f in frames]
    if engine == "numpy":
        got = _frames_numpy(iqs, cfg, spec)
    else:
        got = link.frames(payload, meta, len(frames), sum(x.size for x in iqs), cfg, timeout)
    asm = Reassembler(spec.max_payload_symbols)
    done, snrs = None, []
    for m, y, nv in got:
        if (int(m["stream_id"]) != stream_id or m.get("kind") != kind
                or (kind == "digital" and m.get("modulation") != modulation)):
            continue
        snrs.append(float(m["snr_db"]))
        done = asm.add(stream_id, int(m["chunk_index"]), int(m["chunk_count"]), y, nv) or done
    if done is None:
        done = next(iter(asm.flush(stream_id, total_symbols=n_sym)), None)
    if done is None:
        sym, nv = np.zeros(n_sym, np.complex64), np.full(n_sym, np.inf, np.float32)
    else:
        sym, nv = done.symbols[:n_sym], done.noise_var[:n_sym]
    return Received(sym, nv, len(frames), len(snrs), float(np.mean(snrs)) if snrs else None)
