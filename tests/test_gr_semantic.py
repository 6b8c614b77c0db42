"""Semantic encoder/decoder blocks: descriptor coding, image input errors, the image loopback through
GNU Radio, and bad input at the decoder (unknown codec, wrong ratio, duplicated / out-of-order /
missing chunks, garbage PDUs) as counted drops, never a crash."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from semcom.imagelink import (DESCRIPTOR_SYMBOLS, Descriptor, ImageError, decode_descriptor, encode_descriptor,
                              image_paths, load_image, synthetic_image)


# ---------------------------------------------------------------------- no GNU Radio, no torch
def test_descriptor_round_trip_at_0_db():
    d = Descriptor(codec_id=77, height=512, width=768, ratio=Fraction(1, 24), snr_hint_db=-3.25,
                   n_symbols=49152, interleave_seed=1234)
    s = encode_descriptor(d)
    assert s.shape == (DESCRIPTOR_SYMBOLS,) and s.dtype == np.complex64
    assert np.allclose(np.abs(s), 1.0)
    rng = np.random.default_rng(0)
    n0 = 1.0  # 0 dB
    ok = 0
    for _ in range(10):
        y = s + np.sqrt(n0 / 2) * (rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size))
        ok += decode_descriptor(y.astype(np.complex64), n0) == d
    assert ok >= 9
    # garbage fails the CRC instead of producing a wrong descriptor
    junk = (rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size)).astype(np.complex64)
    assert decode_descriptor(junk, 1.0) is None
    assert decode_descriptor(s[:-1], 1.0) is None


def test_image_errors(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(ImageError, match="bad.png: not a readable image"):
        load_image(bad)
    from semcom.imagelink import save_png

    save_png(np.zeros((4, 40, 3), np.uint8), tmp_path / "thin.png")
    with pytest.raises(ImageError, match="too small"):
        load_image(tmp_path / "thin.png")
    save_png(synthetic_image(16, 24), tmp_path / "d" / "a.png")
    img = load_image(tmp_path / "d" / "a.png")
    assert img.shape == (16, 24, 3) and img.dtype == np.uint8
    assert image_paths(str(tmp_path / "d")) == [tmp_path / "d" / "a.png"]
    with pytest.raises(ImageError, match="no image files"):
        (tmp_path / "empty").mkdir()
        image_paths(str(tmp_path / "empty"))


def test_block_modules_import_without_torch_or_qt():
    """GRC imports the block modules in a subprocess to read docs: torch/Qt/matplotlib must stay lazy."""
    import subprocess
    import sys

    pytest.importorskip("gnuradio")
    code = ("import sys\n"
            "from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder\n"
            "from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder\n"
            "import semcom.imagelink, semcom.loopback_image, semcom.loopback_gui, semcom.commands.loopback\n"
            "print(sorted(m for m in ('torch', 'PyQt5', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# ---------------------------------------------------------------------- GNU Radio + torch
gr = pytest.importorskip("gnuradio.gr")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def codec():
    from semcom.blocks.gr.semantic_encoder import build_codec

    try:
        return build_codec("", ratio="1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))


def _cfg(snr: float):
    import dataclasses

    from semcom.config import Config

    c = Config()
    return dataclasses.replace(c, channel=c.channel.replace(snr_db=snr))


@pytest.mark.gnuradio
def test_image_loopback_through_gnuradio(codec, tmp_path):
    from semcom.imagelink import REFERENCES, image_metrics
    from semcom.loopback_image import run_image_loopback, save_outputs

    small = synthetic_image(32, 32, seed=1)
    wide = synthetic_image(72, 200, seed=2)  # not square, several frames
    rep = run_image_loopback(_cfg(15.0), [(small, "small"), (wide, "wide")], codec, 15.0, timeout=60)
    assert rep["images_sent"] == 2 and len(rep["results"]) == 2
    assert rep["frames_received"] == rep["frames_sent"] == 2 + 1 + 3  # descriptors + 1 + ceil(10800/3072)
    by_sid = {r["stream_id"]: r for r in rep["results"]}
    for sid, ref in zip(sorted(by_sid), (small, wide)):
        r = by_sid[sid]
        assert (r["height"], r["width"]) == ref.shape[:2] and not r["missing_chunks"]
        assert abs(r["snr_db"] - 15) < 1.5
        assert r["latency_s"] > 0 and r["decode_s"] > 0
        img = rep["_images"][(sid, "jscc")]
        assert r["psnr"] == pytest.approx(image_metrics(img, ref)["psnr"])
        assert r["psnr"] > 22  # measured ~24-27 dB with the 1/6 CPU checkpoint at 15 dB
    files = save_outputs(rep, tmp_path)
    assert (tmp_path / "loopback.png").stat().st_size > 1000 and files["report"].endswith("loopback.json")
    REFERENCES.clear()


def _frames(enc, img, chunk=3072, snr=20.0, codec_id=None, seed=0):
    """The (meta, symbols) frames semcom_ofdm_rx would deliver for ``img`` sent by ``enc`` (AWGN at ``snr``)."""
    from semcom.blocks.phy.chunking import split_chunks

    sid, pdus = enc.encode(img)
    rng = np.random.default_rng(seed)
    n0 = 10 ** (-snr / 10)
    out = []
    for meta, x in pdus:
        spans = [(0, x.size)] if "chunk_index" in meta else split_chunks(x.size, chunk)
        for i, (a, b) in enumerate(spans):
            y = x[a:b] + np.sqrt(n0 / 2) * (rng.standard_normal(b - a) + 1j * rng.standard_normal(b - a))
            m = dict(meta, chunk_index=meta.get("chunk_index", i), chunk_count=meta.get("chunk_count", len(spans)),
                     flags=meta.get("flags", 0), payload_kind=0, snr_db=snr, noise_var=np.full(b - a, n0, np.float32))
            if codec_id is not None:
                m["codec_id"] = codec_id
            out.append((m, y.astype(np.complex64)))
    return sid, out


class _Harness:
    """A running flowgraph holding only the decoder; frames posted as ``semcom_ofdm_rx`` would."""

    def __init__(self, codec, timeout=0.3):
        from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
        from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder

        self.tb = gr.top_block()
        self.enc = semcom_semantic_encoder(codec=codec, snr_db=20.0)
        self.dec = semcom_semantic_decoder(codec=codec, timeout=timeout)
        self.tb.msg_connect(self.enc, "out", self.dec, "in")  # unused; gives both blocks a thread
        self.tb.start()
        self.counter = 0

    def frames(self, img, **kw):
        return _frames(self.enc, img, **kw)

    def post(self, meta, y):
        import pmt

        from semcom.blocks.gr.pdu_utils import make_pdu

        self.dec.to_basic_block()._post(pmt.intern("in"), make_pdu(meta, y))

    def wait(self, cond, timeout=20.0):
        t = time.monotonic() + timeout
        while time.monotonic() < t and not cond():
            time.sleep(0.02)
        return cond()

    def close(self):
        self.tb.stop()
        self.tb.wait()


@pytest.mark.gnuradio
def test_decoder_bad_input_is_counted_not_fatal(codec):
    import pmt

    h = _Harness(codec)
    try:
        img = synthetic_image(48, 160, seed=3)  # 1/6: 3840 symbols -> chunks of 3072 + 768
        # 1. out of order + duplicated chunks: decoded once, duplicates counted
        sid, fr = h.frames(img)
        assert len(fr) == 3
        for m, y in [fr[0], fr[2], fr[1], fr[2], fr[0]]:
            h.post(m, y)
        assert h.wait(lambda: h.dec.stats()["images_out"] == 1)
        st = h.dec.stats()
        assert st["duplicates"] == 2 and st["streams_complete"] == 1
        assert h.dec.results[-1]["stream_id"] == sid and h.dec.results[-1]["psnr"] > 22
        # 2. unknown codec id: every frame dropped and counted
        _, fr = h.frames(img, codec_id=(codec.codec_id % 255) + 1)
        for m, y in fr:
            h.post(m, y)
        assert h.wait(lambda: h.dec.stats()["unknown_codec"] == 3)
        # 3. a descriptor announcing another bandwidth ratio: the stream is dropped
        d = Descriptor(codec.codec_id, 48, 160, Fraction(1, 24), 20.0, 960, 1234)
        h.post({"stream_id": 900, "codec_id": codec.codec_id, "chunk_index": 0, "chunk_count": 1, "flags": 2,
                "payload_kind": 0, "snr_db": 20.0, "noise_var": np.full(DESCRIPTOR_SYMBOLS, 0.01, np.float32)},
               encode_descriptor(d))
        assert h.wait(lambda: h.dec.stats()["wrong_ratio"] == 1)
        # 4. a lost chunk: decoded after the timeout with the chunk as erasures
        sid, fr = h.frames(img)
        h.post(*fr[0])
        h.post(*fr[1])  # the last chunk (768 symbols) never arrives; the descriptor sizes the stream
        assert h.wait(lambda: h.dec.stats()["images_out"] == 2)
        r = h.dec.results[-1]
        assert r["stream_id"] == sid and r["missing_chunks"] == [1] and r["image"].shape == img.shape
        assert h.dec.stats()["streams_timed_out"] == 1
        # 5. garbage: not a PDU, digital payload, mismatched noise_var
        h.dec.to_basic_block()._post(pmt.intern("in"), pmt.intern("hello"))
        h.post({"stream_id": 5, "codec_id": codec.codec_id, "payload_kind": 2}, np.zeros(8, np.complex64))
        h.post({"stream_id": 6, "codec_id": codec.codec_id, "noise_var": np.zeros(3, np.float32)},
               np.zeros(8, np.complex64))
        assert h.wait(lambda: (h.dec.stats()["bad_pdu"], h.dec.stats()["not_analog"]) == (2, 1))
        assert h.dec.stats()["decode_errors"] == 0
    finally:
        h.close()


@pytest.mark.gnuradio
def test_decoder_needs_the_checkpoint_it_is_asked_for(codec):
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder

    with pytest.raises(ValueError, match="no consistency checkpoint"):
        semcom_semantic_decoder(codec=codec, decoders="jscc,consistency")
    with pytest.raises(ValueError, match="unknown 'vae'"):
        semcom_semantic_decoder(codec=codec, decoders="vae")


@pytest.mark.gnuradio
def test_encoder_bad_input_is_counted(codec, tmp_path):
    import pmt

    from semcom.blocks.gr.pdu_utils import make_pdu
    from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder

    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError, match="not found"):
        semcom_semantic_encoder(codec=codec, images=str(tmp_path / "missing.png"))
    tb = gr.top_block()
    enc = semcom_semantic_encoder(codec=codec)
    from semcom.blocks.gr.topblocks import FrameCollector

    col = FrameCollector()
    tb.msg_connect(enc, "out", col, "in")
    tb.start()
    try:
        port = pmt.intern("in")
        enc.to_basic_block()._post(port, pmt.intern(str(tmp_path / "corrupt.jpg")))
        enc.to_basic_block()._post(port, make_pdu({"height": 4, "width": 4}, np.zeros(48, np.uint8)))
        enc.to_basic_block()._post(port, make_pdu({"height": 16, "width": 16}, np.zeros(7, np.uint8)))
        img = synthetic_image(16, 16)
        enc.to_basic_block()._post(port, make_pdu({"height": 16, "width": 16}, img.ravel()))
        t = time.monotonic() + 20
        while time.monotonic() < t and col.count < 2:
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
    assert enc.n_errors == 3 and enc.n_images == 1
    (m0, d0), (m1, d1) = col.frames()
    assert m0["flags"] == 2 and d0.size == DESCRIPTOR_SYMBOLS
    assert d1.size == codec.num_symbols(16, 16) and m1["codec_id"] == codec.codec_id


@pytest.mark.gnuradio
def test_dashboard_offscreen_shows_decoded_image(codec, tmp_path, monkeypatch):
    pytest.importorskip("pyqtgraph")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from semcom.imagelink import REFERENCES
    from semcom.loopback_gui import LoopbackDashboard
    from semcom.loopback_image import run_image_loopback

    dash = LoopbackDashboard()
    img = synthetic_image(32, 48, seed=5)

    def worker(d):
        def on_result(res):
            d.on_result(res, REFERENCES.get(res["stream_id"])[0])

        return run_image_loopback(_cfg(12.0), [(img, "x")], codec, 12.0, timeout=60, on_result=on_result,
                                  setup=d.setup)

    png = tmp_path / "dash.png"
    rep = dash.run(worker, png=str(png), hold=0.0)
    assert len(rep["results"]) == 1
    assert [r["stream_id"] for r in dash.shown] == [rep["results"][0]["stream_id"]]
    shown = dash.displayed
    assert shown is not None and shown.shape == img.shape
    assert np.array_equal(shown, rep["_images"][(rep["results"][0]["stream_id"], "jscc")])
    assert dash._recon.image is not None and dash._recon.image.shape == img.shape  # on the image item
    assert dash.n_frames == rep["frames_received"] >= 2  # descriptor + payload frames reached the taps
    assert png.stat().st_size > 5000


@pytest.mark.gnuradio
def test_latency_benchmark_tiny(codec):
    from semcom.loopback_image import benchmark, format_benchmark

    b = benchmark(_cfg(20.0), codec, sizes=((32, 32),), repeats=2, burst=3, timeout=60, keepup=((32, 32, 4),))
    (row,) = b["rows"]
    assert row["images"] == 2 and row["frames_per_image"] == 2  # descriptor + one payload frame
    assert 0 < row["encode_ms"] < row["latency_ms"] and 0 < row["decode_ms"] < row["latency_ms"]
    assert row["latency_min_ms"] <= row["latency_ms"] <= row["latency_max_ms"]
    t = b["throughput_32x32"]
    assert t["decoded"] == 3 and t["images_per_s"] > 0 and t["rx_samples"] > 0
    (k,) = b["keepup"]  # the receiver alone over 4 images prepared offline (descriptor + payload frame each)
    assert k["complete"] and k["decoded"] == 4 and k["frames"] == 8 and k["decoder_stats"]["dropped_backlog"] == 0
    assert k["phy_samples_per_s"] >= k["keepup_samples_per_s"] > 0 and k["keepup_ratio"] > 0
    assert k["psnr_db"] > 20.0  # the shipped 1/6 model at 20 dB: real images came out
    assert "images/s" in format_benchmark(b) and "keep-up" in format_benchmark(b)


@pytest.mark.gnuradio
def test_consistency_decoder_runs_when_a_checkpoint_is_given(tmp_path):
    """The cmN path end to end with a tiny untrained consistency model (shape/plumbing, not quality)."""
    from semcom.blocks.gr.pdu_utils import make_pdu
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
    from semcom.blocks.gr.semantic_encoder import build_codec, semcom_semantic_encoder
    from semcom.imagelink import find_checkpoint
    from semcom.models.checkpoint import save_model
    from semcom.models.config import unet_preset
    from semcom.models.consistency import ConsistencyFunction
    from semcom.models.unet import UNet

    try:
        find_checkpoint("1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    cfg = unet_preset("tiny")
    save_model(tmp_path / "cm.safetensors", "consistency", ConsistencyFunction(UNet(cfg), cfg.sigma_data,
                                                                             cfg.sigma_min), cfg)
    codec = build_codec("", ratio="1/6", consistency=str(tmp_path / "cm.safetensors"))
    dec = semcom_semantic_decoder(codec=codec, decoders="jscc,consistency", nfe=2)
    assert dec.decoders == ["jscc", "cm2"]
    img = synthetic_image(32, 32, seed=6)
    _, fr = _frames(semcom_semantic_encoder(codec=codec), img)
    for m, y in fr:  # the message handler without a flowgraph: reassembly queues one job
        dec._handle(make_pdu(m, y))
    res = dec.decode_job(dec._jobs.get_nowait())
    assert [r["decoder"] for r in res] == ["jscc", "cm2"]
    for r in res:
        assert r["image"].shape == (32, 32, 3) and r["image"].dtype == np.uint8 and "psnr" in r


@pytest.mark.slow
@pytest.mark.gnuradio
def test_large_image_many_frames(codec):
    from semcom.loopback_image import run_image_loopback

    img = synthetic_image(512, 768, seed=8)
    rep = run_image_loopback(_cfg(10.0), [(img, "768x512")], codec, 10.0, timeout=120)
    (r,) = rep["results"]
    assert (r["height"], r["width"]) == (512, 768) and r["chunk_count"] == 64 and not r["missing_chunks"]
    assert rep["frames_received"] == 65 and r["psnr"] > 22


@pytest.mark.gnuradio
def test_frames_of_another_ratio_are_dropped(codec):
    """A 1/24 transmitter against the 1/6 decoder: other codec id -> unknown_codec; the same id forced
    (a misconfigured model.codec_id) -> the descriptor's ratio check drops the stream (wrong_ratio)."""
    import pmt

    from semcom.blocks.gr.pdu_utils import make_pdu
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
    from semcom.blocks.gr.semantic_encoder import build_codec, semcom_semantic_encoder

    try:
        other = build_codec("", ratio="1/24")
        forced = build_codec("", ratio="1/24", codec_id=codec.codec_id)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert other.codec_id != codec.codec_id and forced.codec_id == codec.codec_id
    dec = semcom_semantic_decoder(codec=codec, timeout=0.05)
    img = synthetic_image(32, 32, seed=9)
    for tx_codec in (other, forced):
        _, fr = _frames(semcom_semantic_encoder(codec=tx_codec), img)
        for m, y in fr:
            dec._handle(make_pdu(m, y))
    dec.check_timeouts(now=time.monotonic() + 1.0)
    st = dec.stats()
    assert st["unknown_codec"] == 2 and st["wrong_ratio"] == 2  # descriptor + payload frame
    assert st["streams_complete"] == 0 and dec._jobs.qsize() == 0  # nothing reached the decoder
    dec._handle(pmt.PMT_NIL)
    assert dec.stats()["bad_pdu"] == 1


@pytest.mark.gnuradio
def test_decoder_keeps_consuming_frames_while_decoding(codec):
    """Inference runs in the worker: frames keep being taken in while an image decodes; backlog is reported."""

    class SlowCodec:
        def __init__(self, inner):
            self.inner = inner
            self.release = threading.Event()

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def decode(self, *a, **kw):
            self.release.wait(10.0)
            return self.inner.decode(*a, **kw)

    slow = SlowCodec(codec)
    h = _Harness(slow)
    try:
        _, fr1 = h.frames(synthetic_image(32, 32, seed=10))
        _, fr2 = h.frames(synthetic_image(32, 32, seed=11))
        for m, y in fr1:
            h.post(m, y)
        assert h.wait(lambda: h.dec.busy, 10)  # image 1 is decoding (held)
        for m, y in fr2:
            h.post(m, y)
        assert h.wait(lambda: h.dec.stats()["frames"] == len(fr1) + len(fr2), 5)  # taken in meanwhile
        assert h.wait(lambda: h.dec.backlog() == 2, 5)  # one decoding + one queued
        assert h.dec.stats()["images_out"] == 0
        slow.release.set()
        assert h.wait(lambda: h.dec.stats()["images_out"] == 2 and h.dec.backlog() == 0, 20)
    finally:
        slow.release.set()
        h.close()
