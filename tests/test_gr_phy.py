"""GNU Radio PHY hier blocks against the numpy reference (semcom.blocks.phy).

Every flowgraph runs with ``tb.start()`` + bounded polling + ``stop()/wait()`` (a broken
flowgraph hangs instead of exiting).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")
import pmt  # noqa: E402
from conftest import run_flowgraph, stop_flowgraph  # noqa: E402
from gnuradio import blocks  # noqa: E402

from semcom.blocks.gr.ofdm_tx import semcom_ofdm_tx  # noqa: E402
from semcom.blocks.gr.pdu_utils import make_pdu, parse_pdu  # noqa: E402
from semcom.blocks.phy.frame import FrameSpec  # noqa: E402
from semcom.blocks.phy.tx import FrameTransmitter  # noqa: E402

pytestmark = pytest.mark.gnuradio
REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0


def _symbols(rng: np.random.Generator, n: int) -> np.ndarray:
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _gr_tx(spec: FrameSpec, pdus: list, n_expected: int):
    """Run semcom_ofdm_tx on messages (PMTs, or ``(meta, data)`` made into PDUs) sent to its ``in`` port.

    Returns (IQ complex64, stream tags, the hier block).
    """
    tb = gr.top_block()
    tx = semcom_ofdm_tx(spec)
    snk = blocks.vector_sink_c()
    tb.connect(tx, snk)

    def feed() -> None:
        for msg in pdus:
            tx.source.to_basic_block()._post(pmt.intern("in"), make_pdu(*msg) if isinstance(msg, tuple) else msg)
    run_flowgraph(tb, lambda: len(snk.data()) >= n_expected, TIMEOUT, feed)  # callers check the IQ length
    return np.asarray(snk.data(), dtype=np.complex64), snk.tags(), tx


# ---------------------------------------------------------------------- TX == numpy
@pytest.mark.parametrize("fft_len", [64, 256])
def test_tx_matches_numpy_reference(fft_len):
    """GR TX IQ == FrameTransmitter IQ (< 1e-5 rel.), chunked payloads and frame counter included."""
    spec = FrameSpec(fft_len=fft_len, max_payload_symbols=700)
    rng = np.random.default_rng(fft_len)
    payloads = [_symbols(rng, n) for n in (100, 1500, 0, spec.n_data)]  # 1500 -> 3 chunks
    ref_tx = FrameTransmitter(spec)
    ref = []
    for i, p in enumerate(payloads):
        ref += ref_tx.modulate_stream(p, stream_id=i + 1, codec_id=3)
    ref_iq = np.concatenate([f.iq for f in ref])
    iq, tags, _ = _gr_tx(spec, [({"stream_id": i + 1, "codec_id": 3}, p) for i, p in enumerate(payloads)], ref_iq.size)
    assert iq.size == ref_iq.size
    err = np.linalg.norm(iq - ref_iq) / np.linalg.norm(ref_iq)
    assert err < 1e-6, f"relative error {err:.2e}"  # measured ~8e-8
    # one packet_len tag per burst, at its first sample, with its length

    lens = sorted((t.offset, pmt.to_python(t.value)) for t in tags if pmt.symbol_to_string(t.key) == "packet_len")
    starts = np.concatenate([[0], np.cumsum([f.iq.size for f in ref])[:-1]])
    assert [o for o, _ in lens] == list(starts)
    assert [n for _, n in lens] == [f.iq.size for f in ref]
    sob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_sob")
    eob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_eob")
    assert sob == list(starts) and eob == list(starts + np.array([f.iq.size for f in ref]) - 1)
    counters = sorted((t.offset, pmt.to_python(t.value)) for t in tags if pmt.symbol_to_string(t.key) == "frame_counter")
    assert [c for _, c in counters] == [f.header.frame_counter for f in ref] == list(range(len(ref)))


@pytest.mark.parametrize("guard_len", [0, 1])
def test_tx_short_guards(guard_len):
    """guard_len 0 (no guard stream at all) and 1 (only the tx_eob zero) still match numpy."""
    spec = FrameSpec(guard_len=guard_len)
    payloads = [_symbols(np.random.default_rng(guard_len), n) for n in (60, 7)]
    ref_tx = FrameTransmitter(spec)
    ref_iq = np.concatenate([f.iq for p in payloads for f in ref_tx.modulate_stream(p)])
    iq, tags, _ = _gr_tx(spec, [({}, p) for p in payloads], ref_iq.size)
    assert iq.size == ref_iq.size
    assert np.linalg.norm(iq - ref_iq) / np.linalg.norm(ref_iq) < 1e-5
    assert sum(pmt.symbol_to_string(t.key) == "tx_eob" for t in tags) == (2 if guard_len else 0)


def test_tx_digital_and_explicit_chunk_fields():
    """Digital payload (bits) and PDUs that carry chunk_index/chunk_count use modulate_frame semantics."""
    spec = FrameSpec(payload_modulation="16qam")
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, 4 * 300, dtype=np.uint8)
    sym = _symbols(rng, 200)
    ref_tx = FrameTransmitter(spec)
    ref = [ref_tx.modulate_frame(bits, kind="digital", stream_id=9, chunk_index=2, chunk_count=5, flags=4),
           ref_tx.modulate_frame(sym, kind="analog", stream_id=9, chunk_index=3, chunk_count=5)]
    ref_iq = np.concatenate([f.iq for f in ref])
    iq, _, _ = _gr_tx(spec, [({"kind": "digital", "stream_id": 9, "chunk_index": 2, "chunk_count": 5, "flags": 4}, bits),
                          ({"stream_id": 9, "chunk_index": 3, "chunk_count": 5}, sym)], ref_iq.size)
    assert iq.size == ref_iq.size
    assert np.linalg.norm(iq - ref_iq) / np.linalg.norm(ref_iq) < 1e-5


def test_tx_bad_pdu_is_dropped_not_fatal():
    """A PDU with the wrong vector type or a too-long explicit chunk is logged and dropped."""
    spec = FrameSpec(max_payload_symbols=100)
    good = _symbols(np.random.default_rng(1), 50)
    ref = FrameTransmitter(spec).modulate_stream(good)
    bad = [({"kind": "analog"}, np.ones(4, np.uint8)),
           ({"chunk_index": 0, "chunk_count": 1}, _symbols(np.random.default_rng(2), 101)),
           pmt.intern("not a pdu")]
    iq, _, tx = _gr_tx(spec, bad + [({}, good)], ref[0].iq.size)
    assert tx.source.n_errors == 3
    assert iq.size == ref[0].iq.size
    assert np.allclose(iq, ref[0].iq, atol=1e-5)  # the good PDU's frame carries frame counter 0


@pytest.mark.parametrize("data", [np.arange(4).astype(np.complex64) * (1 - 2j), np.zeros(0, np.complex64),
                                  np.arange(5, dtype=np.float32) / 3, np.array([0, 1, 255], np.uint8),
                                  np.arange(3) - 1, np.arange(3) / 7.0])
def test_pdu_roundtrip(data):
    """make_pdu/parse_pdu (fast serialized construction) are exact inverses; PMT types as documented."""
    meta = {"a": 1, "b": 2.5, "s": "x", "nv": np.arange(3, dtype=np.float32), "d": {"k": 2}}
    m, d = parse_pdu(make_pdu(meta, data))
    assert d.dtype == {"c": np.complex64, "f": data.dtype, "u": np.uint8, "i": np.int64}[data.dtype.kind]
    assert np.array_equal(d, data)
    assert m["a"] == 1 and m["b"] == 2.5 and m["s"] == "x" and m["d"] == {"k": 2}
    assert m["nv"].dtype == np.float32 and np.array_equal(m["nv"], meta["nv"])
    v = pmt.cdr(make_pdu(None, data))
    assert pmt.length(v) == data.size
    if data.dtype == np.complex64:
        assert pmt.is_c32vector(v) and np.array_equal(np.asarray(pmt.c32vector_elements(v), np.complex64), data)


# ---------------------------------------------------------------------- RX == numpy
def _gr_rx(spec: FrameSpec, iq: np.ndarray, n_expected: int, stats_interval: float = 1.0):
    """Feed ``iq`` through semcom_ofdm_rx; returns (received [(meta, payload)], rx block, stats PDUs)."""
    from semcom.blocks.gr.ofdm_rx import BUFFER_ITEMS, semcom_ofdm_rx
    from semcom.blocks.gr.topblocks import FrameCollector, run_to_end

    tb = gr.top_block()
    src = blocks.vector_source_c(iq.astype(np.complex64), False)
    src.set_min_output_buffer(BUFFER_ITEMS)
    rx = semcom_ofdm_rx(spec, stats_interval=stats_interval)
    col = FrameCollector()
    hdr = FrameCollector()
    dbg = blocks.message_debug()
    tb.connect(src, rx)
    tb.msg_connect(rx, "out", col, "in")
    tb.msg_connect(rx, "header_syms", hdr, "in")
    tb.msg_connect(rx, "stats", dbg, "store")
    assert run_to_end(tb, TIMEOUT), "flowgraph did not finish"
    stats = [pmt.to_python(dbg.get_message(i)) for i in range(dbg.num_messages())]
    assert hdr.count == col.count  # one header-symbol PDU per frame
    assert all(h.size == spec.n_header_symbols * spec.n_data for _, h in hdr.frames())
    return col.frames(), rx, stats


def _impaired_stream(spec: FrameSpec, sizes, channel: dict, seed: int = 0):
    from semcom.blocks.gr.topblocks import demo_payload
    from semcom.blocks.phy.channel import simulate

    tx = FrameTransmitter(spec)
    frames = []
    for i, n in enumerate(sizes):
        frames += tx.modulate_stream(demo_payload(i, n, seed), stream_id=i, codec_id=2)
    iq = np.concatenate([np.zeros(200, np.complex64)] + [f.iq for f in frames] + [np.zeros(300, np.complex64)])
    return frames, simulate(iq, dict(channel, fft_len=spec.fft_len)).astype(np.complex64)


@pytest.mark.parametrize("fft_len,profile,cfo", [(64, "flat", 0.37), (256, "outdoor", -1.6)])
def test_rx_matches_numpy_streaming_receiver(fft_len, profile, cfo):
    """Same frames as phy.rx.receive: headers, start, payload (< -25 dB apart), SNR within 0.5 dB."""
    from semcom.blocks.phy.rx import receive

    spec = FrameSpec(fft_len=fft_len, max_payload_symbols=900)
    sent, iq = _impaired_stream(spec, (300, 2000, 5), dict(snr_db=30.0, cfo=cfo, timing_offset=137.4,
                                                          profile=profile, fading="none", seed=fft_len))
    ref, _ = receive(iq, spec)
    assert len(ref) == len(sent)
    got, rx, stats = _gr_rx(spec, iq, len(ref), stats_interval=0.0)
    assert len(got) == len(ref)
    for (meta, payload), r in zip(got, ref):
        for k, v in r.header.as_dict().items():
            assert meta[k] == v, k
        assert meta["start"] == r.start
        assert abs(meta["snr_db"] - r.snr_db) < 0.5
        assert abs(meta["cfo"] - cfo) < 0.02
        assert meta["noise_var"].dtype == np.float32 and meta["noise_var"].shape == payload.shape
        err = np.sum(np.abs(payload - r.payload) ** 2) / np.sum(np.abs(r.payload) ** 2)
        assert 10 * np.log10(err + 1e-30) < -60  # same demodulator: measured -115 to -140 dB
    st = rx.stats()
    # the sync's trigger stream may end a few samples early at the end of a finite stream
    assert st["frames_ok"] == len(ref) and iq.size - spec.fft_len <= st["samples"] <= iq.size
    assert stats and "frames_ok" in stats[-1]  # stats messages (interval 0: every work call)


def test_rx_low_snr_fading_same_frames_as_numpy():
    """6 dB, Rayleigh block fading: the GR RX finds the same frames as the numpy receiver (+-1)."""
    from semcom.blocks.phy.rx import receive

    spec = FrameSpec()
    _, iq = _impaired_stream(spec, [400] * 20, dict(snr_db=6.0, cfo=0.3, timing_offset=50, profile="outdoor",
                                                    fading="rayleigh", block_len=2000, seed=6))
    ref, _ = receive(iq, spec)
    got, _, _ = _gr_rx(spec, iq, len(ref))
    ref_ids = {r.header.frame_counter: r for r in ref}
    got_ids = {m["frame_counter"]: (m, p) for m, p in got}
    assert 5 <= len(ref) < 20  # the case is hard enough to lose some frames
    assert len(set(ref_ids) ^ set(got_ids)) <= 1
    for k in set(ref_ids) & set(got_ids):
        r, (m, p) = ref_ids[k], got_ids[k]
        err = np.sum(np.abs(p - r.payload) ** 2) / np.sum(np.abs(r.payload) ** 2)
        assert 10 * np.log10(err + 1e-30) < -40 and abs(m["snr_db"] - r.snr_db) < 0.2  # C++ vs numpy fractional CFO


def test_rx_noise_only_gives_no_frames_and_bounded_memory():
    """Noise (and a strong tone) only: no frame, and the sample buffer stays bounded."""
    from semcom.blocks.gr.ofdm_rx import BUFFER_ITEMS, FrameDemodSink
    from semcom.blocks.phy.snr import complex_awgn

    spec = FrameSpec()
    rng = np.random.default_rng(3)
    n = 600_000
    iq = complex_awgn(n, 0.1, rng)
    iq[n // 2:] += np.exp(2j * np.pi * 0.1 * np.arange(n - n // 2))  # then a strong tone (metric ~0.8)
    got, rx, _ = _gr_rx(spec, iq, 0)
    assert got == []
    st = rx.stats()
    assert st["frames_ok"] == 0 and n - spec.fft_len <= st["samples"] <= n
    # ring: 4 maximal frames, grown at most to hold the kept samples plus twice one input buffer
    assert st["buffered_samples"] <= rx.sink._buf.size <= 4 * (rx.sink._span_max + rx.sink._pre) + 4 * BUFFER_ITEMS
    assert isinstance(rx.sink, FrameDemodSink)


def test_gr_tx_to_gr_rx_loopback():
    """GR TX -> (GR channel: 25 dB, CFO, delay) -> GR RX delivers every frame of a chunked stream."""
    from semcom.blocks.gr.topblocks import PhyLoopback, demo_payload

    spec = FrameSpec(max_payload_symbols=1000)
    payloads = [demo_payload(i, n) for i, n in enumerate((2500, 40, 1000))]  # 3 + 1 + 1 frames
    tb = PhyLoopback(spec, channel=dict(snr_db=25.0, cfo=-0.8, timing_offset=55, seed=1))
    tb.start()
    try:
        for i, p in enumerate(payloads):
            tb.send(p, stream_id=i, codec_id=4)
        ok = tb.wait_frames(5, TIMEOUT)
    finally:
        stop_flowgraph(tb)
    assert ok, f"received {tb.collector.count} of 5 frames; stats {tb.rx.stats()}"
    got = tb.collector.frames()
    assert [m["frame_counter"] for m, _ in got] == list(range(5))
    assert [(m["stream_id"], m["chunk_index"], m["chunk_count"]) for m, _ in got] == \
        [(0, 0, 3), (0, 1, 3), (0, 2, 3), (1, 0, 1), (2, 0, 1)]
    from semcom.blocks.phy.chunking import Reassembler

    ra = Reassembler(spec.max_payload_symbols)
    done = [s for m, p in got if (s := ra.add(m["stream_id"], m["chunk_index"], m["chunk_count"], p, m["noise_var"]))]
    assert len(done) == 3
    for s in done:
        ref = payloads[s.stream_id]
        err = np.mean(np.abs(s.symbols - ref) ** 2) / np.mean(np.abs(ref) ** 2)
        assert 10 * np.log10(err) < -20  # 25 dB channel
        assert np.all(s.noise_var > 0) and np.all(np.isfinite(s.noise_var))


# ---------------------------------------------------------------------- GRC
_GRC = """\
options:
  parameters:
    author: semcom
    category: Custom
    generate_options: no_gui
    hier_block_src_path: '.:'
    id: semcom_phy_loop
    max_nouts: '0'
    output_language: python
    run: 'True'
    run_options: run
    title: semcom PHY loop (test)
  states: {coordinate: [8, 8], rotation: 0, state: enabled}
blocks:
- name: strobe
  id: blocks_message_strobe
  parameters: {msg: 'pmt.cons(pmt.make_dict(), pmt.init_c32vector(100, [0.7+0.7j] * 100))', period: '100'}
  states: {coordinate: [8, 100], rotation: 0, state: enabled}
- name: tx
  id: semcom_ofdm_tx
  parameters: {config: '', fft_len: '64', cp_len: '16', n_training: '2', header_modulation: '"bpsk"',
    payload_kind: '"analog"', payload_modulation: '"qpsk"', max_payload_symbols: '3072', guard_len: '160',
    sc_threshold: '0.5'}
  states: {coordinate: [200, 100], rotation: 0, state: enabled}
- name: rx
  id: semcom_ofdm_rx
  parameters: {config: '', fft_len: '64', cp_len: '16', n_training: '2', header_modulation: '"bpsk"',
    payload_kind: '"analog"', payload_modulation: '"qpsk"', max_payload_symbols: '3072', guard_len: '160',
    sc_threshold: '0.5', stats_interval: '1.0'}
  states: {coordinate: [400, 100], rotation: 0, state: enabled}
- name: dbg
  id: blocks_message_debug
  parameters: {en_uvec: 'True'}
  states: {coordinate: [600, 100], rotation: 0, state: enabled}
connections:
- [strobe, strobe, tx, in]
- [tx, '0', rx, '0']
- [rx, out, dbg, store]
metadata:
  file_format: 1
"""


@pytest.mark.parametrize("config", ["", pytest.param("hw_configs/loopback.yaml", marks=pytest.mark.slow)])
def test_grc_flowgraph_with_semcom_ofdm_blocks_compiles(tmp_path, config):
    """grcc compiles a .grc using semcom_ofdm_tx/rx; the generated top block runs and delivers frames."""
    grc = tmp_path / "semcom_phy_loop.grc"
    grc.write_text(_GRC.replace("config: ''", f"config: '{REPO / config if config else ''}'"))
    env = dict(os.environ, HOME=str(tmp_path), GRC_BLOCKS_PATH=str(REPO / "blocks" / "grc"))
    res = subprocess.run(["grcc", "-o", str(tmp_path), str(grc)], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "semcom_phy_loop.py"
    assert out.exists()
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import semcom_phy_loop as m
        import time
        tb = m.semcom_phy_loop()
        print(type(tb.tx).__name__, type(tb.rx).__name__)
        tb.start()
        deadline = time.monotonic() + 20
        while tb.dbg.num_messages() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tb.stop()
        tb.wait()
        print("frames", tb.dbg.num_messages())
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "semcom_ofdm_tx semcom_ofdm_rx" in res.stdout
    assert int(res.stdout.split("frames")[-1]) >= 2  # the strobe's PDUs came out of the RX
