"""Python top blocks around ``semcom_ofdm_tx`` / ``semcom_ofdm_rx``, and throughput helpers.

* ``PhyLoopback``: payload PDUs -> TX -> channel -> RX -> collected frames (one process).
* ``ZmqTx`` / ``ZmqRx``: the two halves of a two-process link over gr-zeromq (TX binds a PUSH
  socket, RX connects a PULL socket); ``ZmqRx`` may put the channel simulator in front of the RX.
* ``measure_tx_throughput`` / ``measure_rx_throughput``: samples/s of the GR chains.

Command line (two processes)::

    python -m semcom.blocks.gr.topblocks zmq-tx --address tcp://127.0.0.1:5555 --frames 4
    python -m semcom.blocks.gr.topblocks zmq-rx --address tcp://127.0.0.1:5555 --frames 4 --timeout 30

``zmq-tx`` sends ``--frames`` payloads of random unit-power symbols (seeded), keeps the socket
open ``--linger`` seconds and exits; ``zmq-rx`` prints one JSON line per received frame (header
fields, snr_db, payload checksum) and exits once ``--frames`` frames arrived or after
``--timeout`` seconds (exit status 0 only when all arrived).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq

from ..phy.frame import FrameSpec
from .ofdm_rx import BUFFER_ITEMS, semcom_ofdm_rx
from .ofdm_tx import semcom_ofdm_tx, spec_from_config
from .pdu_utils import parse_pdu

__all__ = ["FrameCollector", "PhyLoopback", "ZmqTx", "ZmqRx", "ZmqAddressError", "make_channel", "demo_payload",
           "run_to_end", "measure_tx_throughput", "measure_rx_throughput", "main"]


def make_channel(channel: Any, spec: FrameSpec):
    """A GR block applying ``channel`` (ChannelConfig / dict / None) or None for a direct connection.

    Uses ``semcom.blocks.gr.channel.semcom_channel`` (the numpy ``ChannelSimulator`` in GR).
    """
    if channel is None:
        return None
    from .channel import semcom_channel

    if isinstance(channel, dict):
        channel = dict(channel)
        channel.setdefault("fft_len", spec.fft_len)
    return semcom_channel(channel)


class FrameCollector(gr.basic_block):
    """Message sink keeping the last ``maxlen`` PDUs as ``(meta dict, payload ndarray)``; thread safe.

    ``count`` is the total received (not bounded); ``frames()`` returns a copy of what is kept.
    """

    def __init__(self, maxlen: int = 10000, keep_payload: bool = True):
        gr.basic_block.__init__(self, name="semcom_frame_collector", in_sig=None, out_sig=None)
        self._lock = threading.Lock()
        self._frames: deque = deque(maxlen=maxlen)
        self.keep_payload = keep_payload
        self.count = 0
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def _handle(self, msg) -> None:
        if self.keep_payload:
            item = parse_pdu(msg)
        else:
            item = ({}, None)
        with self._lock:
            self._frames.append(item)
            self.count += 1

    def frames(self) -> list[tuple[dict, np.ndarray]]:
        with self._lock:
            return list(self._frames)

    def since(self, n: int) -> tuple[int, int, list[tuple[dict, np.ndarray]]]:
        """Frames number ``n`` .. ``count - 1`` (in arrival order) for a reader that has taken ``n`` so far.

        Returns ``(count, lost, items)``: ``lost`` of those frames were already pushed out of the
        last ``maxlen`` kept (the reader fell behind), ``items`` the rest. Pass ``count`` next time.
        """
        with self._lock:
            new = max(0, self.count - int(n))
            kept = min(new, len(self._frames))
            items = list(itertools.islice(self._frames, len(self._frames) - kept, None))
            return self.count, new - kept, items


def _connect_rx(tb: gr.top_block, upstream, spec: FrameSpec, channel: Any, stats_interval: float = 1.0):
    """Wire ``upstream -> (channel) -> semcom_ofdm_rx -> FrameCollector`` in ``tb``; returns (rx, channel, collector)."""
    rx = semcom_ofdm_rx(spec, stats_interval=stats_interval)
    chan = make_channel(channel, spec)
    if chan is not None:
        chan.set_min_output_buffer(BUFFER_ITEMS)  # big chunks for the RX's Python block
    collector = FrameCollector()
    tb.connect(*([upstream] + ([chan] if chan is not None else []) + [rx]))
    tb.msg_connect(rx, "out", collector, "in")
    return rx, chan, collector


def run_to_end(tb: gr.top_block, timeout: float) -> bool:
    """Start a finite flowgraph and wait for it in a thread; stop it after ``timeout`` s.

    Returns True when it ended by itself (a broken flowgraph hangs instead of exiting).
    """
    tb.start()
    waiter = threading.Thread(target=tb.wait, daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        tb.stop()
        waiter.join(5.0)
        return False
    return True


def _wait(cond, timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(poll)
    return bool(cond())


class PhyLoopback(gr.top_block):
    """TX -> (channel) -> RX in one flowgraph; ``send`` payloads, ``wait_frames``, read ``collector``.

    The RX decodes a frame once its last sample (plus a few) has arrived, so no flushing is
    needed after the last burst.
    """

    def __init__(self, spec: FrameSpec | dict | str | None = None, channel: Any = None, stats_interval: float = 1.0):
        gr.top_block.__init__(self, "semcom_phy_loopback")
        self.spec = spec_from_config(spec)
        self.tx = semcom_ofdm_tx(self.spec)
        self.rx, self.channel, self.collector = _connect_rx(self, self.tx, self.spec, channel, stats_interval)

    def send(self, data: np.ndarray, **meta: Any) -> None:
        self.tx.send(data, **meta)

    def wait_frames(self, n: int, timeout: float) -> bool:
        """Block until ``n`` frames were received or ``timeout`` seconds passed."""
        return _wait(lambda: self.collector.count >= n, timeout)


# ZMQ high-water mark of both ends, in messages (one per push_sink work() call, up to a few frames):
# bounds the samples in flight, which are lost unseen by the transmitter when the receiver dies.
ZMQ_HWM = 8


class ZmqAddressError(ValueError):
    """A ZMQ endpoint that cannot be bound / connected (the message names the address and port)."""


def _zmq_block(make, address: str, verb: str):
    """``make()`` a gr-zeromq block; its bare ``RuntimeError`` becomes a ``ZmqAddressError`` naming ``address``."""
    try:
        return make()
    except RuntimeError as e:
        port = address.rsplit(":", 1)[-1] if address.count(":") >= 2 else "?"
        if "in use" in str(e).lower():
            raise ZmqAddressError(f"cannot {verb} {address}: port {port} is already in use (another "
                                  f"'semcom phy zmq-tx' or program holds it): stop it or choose another "
                                  f"address (--address tcp://127.0.0.1:PORT)") from None
        raise ZmqAddressError(f"cannot {verb} ZMQ endpoint {address!r}: {e}") from None


class ZmqTx(gr.top_block):
    """TX half of the two-process link: ``semcom_ofdm_tx`` -> ``zeromq.push_sink`` (binds ``address``).

    ``max_queued_frames``: frames waiting in the transmitter before ``send`` blocks (back-pressure;
    each frame holds its payload symbols, about 8 bytes per symbol). Raises ``ZmqAddressError``
    when ``address`` cannot be bound (port in use, bad endpoint).
    """

    def __init__(self, spec: FrameSpec | dict | str | None, address: str, max_queued_frames: int | None = None):
        gr.top_block.__init__(self, "semcom_zmq_tx")
        self.spec = spec_from_config(spec)
        self.tx = semcom_ofdm_tx(self.spec)
        if max_queued_frames is not None:
            self.tx.source.max_queued_frames = int(max_queued_frames)
        self.sink = _zmq_block(lambda: zeromq.push_sink(gr.sizeof_gr_complex, 1, address, 100, False, ZMQ_HWM),
                               address, "bind")
        self.connect(self.tx, self.sink)

    def send(self, data: np.ndarray, timeout: float | None = 0.0, **meta: Any) -> None:
        """Queue one payload; waits at most ``timeout`` s for room (see ``semcom_ofdm_tx.send``)."""
        self.tx.send(data, timeout=timeout, **meta)

    def samples_sent(self) -> int:
        """Samples handed to the ZMQ socket so far; whether they arrived only the receiver knows."""
        return int(self.sink.nitems_read(0))


class ZmqRx(gr.top_block):
    """RX half: ``zeromq.pull_source`` (connects to ``address``) -> (channel) -> ``semcom_ofdm_rx``.

    ``pull_source`` never ends by itself: poll ``collector.count`` with a deadline, then
    ``stop()`` and ``wait()``.
    """

    def __init__(self, spec: FrameSpec | dict | str | None, address: str, channel: Any = None):
        gr.top_block.__init__(self, "semcom_zmq_rx")
        self.spec = spec_from_config(spec)
        self.source = _zmq_block(
            lambda: zeromq.pull_source(gr.sizeof_gr_complex, 1, address, 100, False, ZMQ_HWM), address, "connect to")
        self.source.set_min_output_buffer(BUFFER_ITEMS)
        self.rx, self.channel, self.collector = _connect_rx(self, self.source, self.spec, channel)


def demo_payload(index: int, n: int, seed: int = 0) -> np.ndarray:
    """Deterministic unit-power complex64 payload [n] number ``index`` (both processes can rebuild it)."""
    rng = np.random.default_rng([seed, index])
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


# ---------------------------------------------------------------------- throughput
def measure_tx_throughput(spec: FrameSpec | dict | str | None = None, seconds: float = 2.0,
                          n_payload: int | None = None, timeout: float = 60.0) -> dict[str, float]:
    """Samples/s of ``semcom_ofdm_tx`` (PDU building + C++ OFDM chain) into a null sink.

    Posts enough PDUs of ``n_payload`` symbols (default ``max_payload_symbols``) for about
    ``seconds`` at 10 MS/s, runs until all samples are out and returns
    ``{"samples_per_s", "samples", "frames", "seconds"}``.
    """
    spec = spec_from_config(spec)
    n_payload = spec.max_payload_symbols if n_payload is None else int(n_payload)
    frame_len = spec.frame_len(n_payload)
    n_frames = max(4, int(seconds * 10e6 / frame_len))
    payload = demo_payload(0, n_payload)
    tb = gr.top_block()
    tx = semcom_ofdm_tx(spec)
    snk = blocks.null_sink(gr.sizeof_gr_complex)
    tb.connect(tx, snk)
    total = n_frames * frame_len
    tb.start()
    try:
        t0 = time.perf_counter()
        i = 0
        while i < n_frames:  # the TX queue applies back-pressure (max_queued_frames): retry when full
            try:
                tx.send(payload, stream_id=i & 0xFFFF)
                i += 1
            except ValueError:
                if time.perf_counter() - t0 > timeout:
                    raise
                time.sleep(0.002)
        ok = _wait(lambda: snk.nitems_read(0) >= total, timeout, poll=0.005)
        dt = time.perf_counter() - t0
    finally:
        tb.stop()
        tb.wait()
    if not ok:
        raise RuntimeError(f"TX throughput run produced {snk.nitems_read(0)} of {total} samples within {timeout} s")
    return {"samples_per_s": total / dt, "samples": total, "frames": n_frames, "seconds": dt}


def measure_rx_throughput(spec: FrameSpec | dict | str | None = None, n_samples: int = 4_000_000,
                          noise_only: bool = False, snr_db: float = 30.0, timeout: float = 120.0) -> dict[str, float]:
    """Samples/s of ``semcom_ofdm_rx`` on a prepared IQ buffer (vector_source, no repeat).

    The buffer holds back-to-back max-size frames from the numpy transmitter plus complex AWGN at
    ``snr_db`` (or noise only). Returns ``{"samples_per_s", "samples", "frames_sent",
    "frames_received", "seconds"}``; the time covers the whole flowgraph run.
    """
    from ..phy.snr import complex_awgn, noise_variance
    from ..phy.tx import FrameTransmitter

    spec = spec_from_config(spec)
    rng = np.random.default_rng(1)
    n0 = noise_variance(snr_db)
    if noise_only:
        iq = complex_awgn(n_samples, n0, rng)
        n_sent = 0
    else:
        txr = FrameTransmitter(spec)
        frames = txr.modulate_stream(demo_payload(0, 8 * spec.max_payload_symbols))
        burst = np.concatenate([f.iq for f in frames])
        reps = max(1, n_samples // burst.size)
        iq = np.tile(burst, reps)
        iq = (iq + complex_awgn(iq.size, n0, rng)).astype(np.complex64)
        n_sent = reps * len(frames)
    tb = gr.top_block()
    src = blocks.vector_source_c(iq, False)
    src.set_min_output_buffer(BUFFER_ITEMS)
    rx = semcom_ofdm_rx(spec)
    col = FrameCollector(maxlen=16, keep_payload=False)
    tb.connect(src, rx)
    tb.msg_connect(rx, "out", col, "in")
    t0 = time.perf_counter()
    if not run_to_end(tb, timeout):
        raise RuntimeError(f"RX throughput run consumed {rx.sink.nitems_read(0)} of {iq.size} samples within {timeout} s")
    dt = time.perf_counter() - t0
    return {"samples_per_s": iq.size / dt, "samples": int(iq.size), "frames_sent": n_sent,
            "frames_received": col.count, "seconds": dt}


# ---------------------------------------------------------------------- command line
def _run_zmq_tx(args) -> int:
    spec = spec_from_config(args.config)
    tb = ZmqTx(spec, args.address)
    n = spec.frame_len(args.n_payload)
    tb.start()
    try:
        time.sleep(args.connect_wait)  # give the PULL side time to connect (PUSH drops nothing, but be safe)
        for i in range(args.frames):
            tb.send(demo_payload(i, args.n_payload, args.seed), stream_id=i, codec_id=1,
                    chunk_index=0, chunk_count=1)
        ok = _wait(lambda: tb.samples_sent() >= args.frames * n, args.timeout)
        time.sleep(args.linger)
    finally:
        tb.stop()
        tb.wait()
    print(json.dumps({"frames": args.frames, "samples": tb.samples_sent(), "ok": ok}), flush=True)
    return 0 if ok else 1


def _run_zmq_rx(args) -> int:
    spec = spec_from_config(args.config)
    channel = json.loads(args.channel) if args.channel else None
    tb = ZmqRx(spec, args.address, channel)
    tb.start()
    seen = 0
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline and seen < args.frames:
            frames = tb.collector.frames()
            for meta, payload in frames[seen:]:
                ref = demo_payload(int(meta["stream_id"]), payload.size, args.seed)
                err = float(np.mean(np.abs(payload - ref) ** 2) / np.mean(np.abs(ref) ** 2)) if payload.size else 0.0
                out = {k: meta[k] for k in ("stream_id", "frame_counter", "n_payload", "chunk_index", "chunk_count")
                       if k in meta}
                out.update(snr_db=float(meta.get("snr_db", float("nan"))), rel_err_db=10 * np.log10(max(err, 1e-30)))
                print(json.dumps(out), flush=True)
            seen = len(frames)
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
    print(json.dumps({"received": seen, "stats": tb.rx.stats()}, default=float), flush=True)
    return 0 if seen >= args.frames else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semcom.blocks.gr.topblocks", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("zmq-tx", "zmq-rx"):
        s = sub.add_parser(name)
        s.add_argument("--address", default="tcp://127.0.0.1:5555")
        s.add_argument("--config", default=None, help="YAML config (frame: section); default FrameSpec()")
        s.add_argument("--frames", type=int, default=4)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--timeout", type=float, default=30.0)
    sub.choices["zmq-tx"].add_argument("--n-payload", type=int, default=500)
    sub.choices["zmq-tx"].add_argument("--connect-wait", type=float, default=0.3)
    sub.choices["zmq-tx"].add_argument("--linger", type=float, default=1.0)
    sub.choices["zmq-rx"].add_argument("--channel", default=None, help="channel config as JSON (ChannelConfig fields)")
    tp = sub.add_parser("throughput")
    tp.add_argument("--config", default=None)
    tp.add_argument("--samples", type=int, default=4_000_000)
    args = p.parse_args(argv)
    if args.cmd == "zmq-tx":
        return _run_zmq_tx(args)
    if args.cmd == "zmq-rx":
        return _run_zmq_rx(args)
    res = {"tx": measure_tx_throughput(args.config),
           "rx": measure_rx_throughput(args.config, args.samples),
           "rx_noise": measure_rx_throughput(args.config, args.samples, noise_only=True)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
