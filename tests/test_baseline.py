"""Classical baseline (semcom.baseline): codec under a budget, gr-fec LDPC, whole chain on AWGN and the PHY."""

from __future__ import annotations

import numpy as np
import pytest

from semcom.baseline import chain, ldpc, source_codec as sc
from semcom.blocks.phy.modulation import demodulate_llr, modulate
from semcom.blocks.phy.snr import add_awgn, noise_variance

pytest.importorskip("PIL")


def _image(h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients + a little texture: compresses like a natural image; uint8 [h, w, 3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([120 + 100 * np.sin(3 * x + seed), 80 + 120 * y, 200 - 150 * x * y], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- budget
def test_budget_from_channel_symbols():
    s = chain.BaselineScheme("qpsk", "1/2")
    n_sym = 2000
    blocks = s.blocks(n_sym)
    assert sum(c.n for c in blocks) <= n_sym * 2
    assert sum(c.n for c in blocks) > n_sym * 2 - min(c.n for c in ldpc.code_family("1/2"))
    assert s.budget_bits(n_sym) == sum(c.k - ldpc.CRC_BITS for c in blocks)
    assert s.budget_bytes(n_sym) == s.budget_bits(n_sym) // 8
    # more symbols, higher order, or higher rate never give fewer bits
    assert s.budget_bits(4000) > s.budget_bits(2000)
    assert chain.BaselineScheme("16qam", "1/2").budget_bits(n_sym) > s.budget_bits(n_sym)
    assert chain.BaselineScheme("qpsk", "1/4").budget_bits(n_sym) < s.budget_bits(n_sym)
    # below the shortest block nothing fits
    assert chain.BaselineScheme("bpsk", "1/2").budget_bits(100) == 0
    with pytest.raises(ValueError, match="code_rate"):
        chain.BaselineScheme("qpsk", "5/6")
    with pytest.raises(ValueError, match="modulation"):
        chain.BaselineScheme("8psk", "1/2")


def test_capacity_bytes():
    assert chain.capacity_bytes(800, 0.0) == 100  # log2(2) = 1 bit per symbol
    assert chain.capacity_bytes(80, 10 * np.log10(3)) == 20  # log2(4) = 2
    assert chain.required_snr_db(chain.BaselineScheme("bpsk", "1/2")) == pytest.approx(10 * np.log10(2 ** 0.5 - 1))


# ---------------------------------------------------------------------- source codec
def test_codec_fits_budget_and_improves_with_budget():
    img = _image(48, 64)
    small = sc.encode_to_budget(img, 200)
    large = sc.encode_to_budget(img, 1200)
    assert small.codec is not None and large.codec is not None
    assert 0 < len(small.data) <= 200 and 0 < len(large.data) <= 1200
    assert large.psnr > small.psnr + 2.0
    rec, ok = sc.decode_container(large.data, img.shape)
    assert ok and np.array_equal(rec, large.decoded)
    assert sc.psnr(rec, img) == pytest.approx(large.psnr)


def test_codec_low_rate_of_a_large_image():
    """~0.025 bit per pixel (1/24 at BPSK-1/4 for 768x512): below JPEG's and WebP's smallest files,
    JPEG 2000 and AVIF still fit and beat the grey fallback by far."""
    from semcom.imagelink import synthetic_image

    img = synthetic_image(512, 768)
    assert min(len(sc.encode(img, c, sc._QUALITY[c][0])) for c in ("jpeg", "webp")) > 1200
    e = sc.encode_to_budget(img, 1200)
    assert e.codec in ("jpeg2000", "avif") and len(e.data) <= 1200
    assert e.psnr > sc.psnr(sc.fallback_image(img.shape), img) + 10


def test_codec_nothing_fits_gives_fallback():
    img = _image()
    e = sc.encode_to_budget(img, 10)
    assert e.codec is None and e.data == b""
    assert np.all(e.decoded == sc.FALLBACK_VALUE)


@pytest.mark.parametrize("codec", sc.CODECS)
def test_damaged_bitstream_never_raises(codec):
    img = _image(40, 40, seed=3)
    data = sc.pack(codec, sc.encode(img, codec, 60))
    rng = np.random.default_rng(1)
    damaged = [data[:len(data) // 2], data[:5], b"",
               bytes(rng.integers(0, 256, len(data), dtype=np.uint8)),
               data[:8] + bytes(rng.integers(0, 256, len(data) - 8, dtype=np.uint8))]
    for d in damaged:
        rec, ok = sc.decode_container(d, img.shape)
        assert rec.shape == img.shape and rec.dtype == np.uint8
        if not ok:
            assert np.all(rec == sc.FALLBACK_VALUE)
    rec, ok = sc.decode_container(b"", img.shape)
    assert not ok and np.all(rec == sc.FALLBACK_VALUE)


def test_container_round_trip():
    payload = bytes(range(256)) * 3
    for codec in sc.CODECS:
        assert sc.unpack(sc.pack(codec, payload)) == (codec, payload)
    assert sc.unpack(b"\x09abc") == (None, b"")


# ---------------------------------------------------------------------- LDPC (gr-fec)
@pytest.fixture(scope="module")
def fec():
    return pytest.importorskip("gnuradio.fec")


@pytest.mark.gnuradio
@pytest.mark.parametrize("rate", list(ldpc.RATES))
def test_ldpc_round_trip_noise_free(fec, rate):
    c = ldpc.code_family(rate)[-1]  # shortest block of the rate: fast
    rng = np.random.default_rng(0)
    u = rng.integers(0, 2, (3, c.k)).astype(np.uint8)
    cw = ldpc.encode_blocks(c, u)
    assert cw.shape == (3, c.n)
    assert np.array_equal(cw[:, c.n - c.k:], u)  # systematic, info at the end
    llr = (1.0 - 2.0 * cw) * 4.0  # positive = bit 0
    assert np.array_equal(ldpc.decode_blocks(c, llr), u)
    # soft input: noisy BPSK LLRs at Es/N0 = 4 dB (~2 dB above every rate's Shannon limit) decode
    y = (1.0 - 2.0 * cw) + rng.normal(0, np.sqrt(noise_variance(4.0) / 2), cw.shape)
    assert np.array_equal(ldpc.decode_blocks(c, 4.0 * y / noise_variance(4.0)), u)


@pytest.mark.gnuradio
def test_ldpc_coding_gain_bpsk(fec):
    """Rate-1/2 n=300 at Es/N0 = 1 dB (Eb/N0 = 4 dB): uncoded blocks nearly all fail, coded nearly none."""
    c = ldpc.code("n_0300_k_0152_gap_03")
    blocks = [c] * 20
    rng = np.random.default_rng(5)
    data = rng.integers(0, 2, ldpc.info_bits(blocks)).astype(np.uint8)
    coded = ldpc.encode(data, blocks)
    snr = 1.0
    llr = demodulate_llr(add_awgn(modulate(coded, "bpsk"), snr, rng), "bpsk", noise_variance(snr))
    out, ok = ldpc.decode(llr, blocks)
    hard = (llr < 0).astype(np.uint8).reshape(len(blocks), c.n)
    uncoded_bler = np.mean(np.any(hard != coded.reshape(len(blocks), c.n), axis=1))
    coded_bler = 1.0 - ok.mean()
    assert uncoded_bler >= 0.9
    assert coded_bler <= 0.15
    per_block = np.split(out, np.cumsum([b.payload for b in blocks])[:-1])
    ref = np.split(data, np.cumsum([b.payload for b in blocks])[:-1])
    for good, o, r in zip(ok, per_block, ref):
        if good:
            assert np.array_equal(o, r)


@pytest.mark.gnuradio
@pytest.mark.parametrize("snr", [15.0, 20.0])
def test_ldpc_large_llrs_high_snr(fec, snr):
    """64-QAM far above the cliff gives |LLR| > 60: every block must still decode (LLR clipping)."""
    c = ldpc.code("n_0500_k_0127_gap_21")
    rng = np.random.default_rng(7)
    u = rng.integers(0, 2, (6, c.k)).astype(np.uint8)
    cw = ldpc.encode_blocks(c, u)
    llr = demodulate_llr(add_awgn(modulate(cw.ravel(), "64qam"), snr, rng), "64qam", noise_variance(snr))
    assert np.abs(llr).max() > 60
    assert np.array_equal(ldpc.decode_blocks(c, llr), u)


@pytest.mark.gnuradio
def test_ldpc_crc_flags_failed_blocks(fec):
    blocks = [ldpc.code("n_0300_k_0152_gap_03")] * 2
    data = np.random.default_rng(2).integers(0, 2, ldpc.info_bits(blocks)).astype(np.uint8)
    llr = (1.0 - 2.0 * ldpc.encode(data, blocks)) * 5.0
    llr[:300] = np.random.default_rng(3).normal(0, 1, 300)  # first block: pure noise
    out, ok = ldpc.decode(llr, blocks)
    assert ok.tolist() == [False, True]
    assert np.array_equal(out[152 - 16:], data[152 - 16:])


# ---------------------------------------------------------------------- whole chain
@pytest.mark.gnuradio
def test_chain_high_snr_reproduces_codec_image(fec):
    img = _image()
    scheme = chain.BaselineScheme("16qam", "1/2")
    tx = chain.transmit_image(img, 512, scheme)  # k/n = 1/6 of a 32x32 image
    assert tx.symbols.size <= 512 and tx.encoded.codec is not None
    rng = np.random.default_rng(0)
    rec, info = chain.receive_image(chain.awgn_llr(tx.symbols, scheme, 30.0, rng), tx.blocks, img.shape)
    assert info["decoded"] and all(info["blocks_ok"])
    assert np.array_equal(rec, tx.encoded.decoded)


@pytest.mark.gnuradio
def test_chain_cliff_low_snr_gives_fallback(fec):
    img = _image()
    scheme = chain.BaselineScheme("16qam", "1/2")
    tx = chain.transmit_image(img, 512, scheme)
    rng = np.random.default_rng(0)
    rec, info = chain.receive_image(chain.awgn_llr(tx.symbols, scheme, 0.0, rng), tx.blocks, img.shape)
    assert not info["decoded"] and not any(info["blocks_ok"])
    assert np.all(rec == sc.FALLBACK_VALUE)


@pytest.mark.gnuradio
def test_chain_lost_first_block_truncates(fec):
    img = _image(64, 64)
    scheme = chain.BaselineScheme("qpsk", "1/2")
    tx = chain.transmit_image(img, 2000, scheme)
    assert len(tx.blocks) >= 2
    llr = (1.0 - 2.0 * tx.bits.astype(np.float64)) * 5.0
    llr[tx.blocks[0].n:tx.blocks[0].n + tx.blocks[1].n] = 0.0  # second block erased (lost frame)
    rec, info = chain.receive_image(llr, tx.blocks, img.shape)
    assert info["blocks_ok"][0] and not info["blocks_ok"][1]
    assert info["bytes_kept"] == (tx.blocks[0].k - ldpc.CRC_BITS) // 8
    assert rec.shape == img.shape


@pytest.mark.gnuradio
def test_chain_through_ofdm_phy_digital_payload(fec):
    img = _image()
    scheme = chain.BaselineScheme("qpsk", "1/2")
    tx = chain.transmit_image(img, 4000, scheme)  # > max_payload_symbols: several frames
    llr, info = chain.phy_llr(tx.bits, scheme, 25.0, seed=3)
    assert info["frames_sent"] >= 2 and info["frames_ok"] == info["frames_sent"]
    assert info["snr_est_db"] == pytest.approx(25.0, abs=2.0)
    rec, rinfo = chain.receive_image(llr, tx.blocks, img.shape)
    assert rinfo["decoded"] and np.array_equal(rec, tx.encoded.decoded)


# ---------------------------------------------------------------------- phylink (both engines)
@pytest.mark.gnuradio
def test_phylink_analog_payload_and_lost_frames():
    from semcom.baseline import phylink

    spec_max = 3072
    rng = np.random.default_rng(4)
    x = ((rng.standard_normal(spec_max + 500) + 1j * rng.standard_normal(spec_max + 500)) / np.sqrt(2)).astype(np.complex64)
    rx = phylink.exchange(x, {"snr_db": 30.0, "seed": 2})
    assert rx.frames_sent == rx.frames_ok == 2 and rx.symbols.shape == x.shape
    err = np.mean(np.abs(rx.symbols - x) ** 2)
    assert 10 * np.log10(err) < -25 and np.all(np.isfinite(rx.noise_var))
    assert np.mean(rx.noise_var) == pytest.approx(10 ** -3, rel=0.5)  # N0 at 30 dB
    rx = phylink.exchange(x, {"snr_db": -15.0, "seed": 2})  # nothing survives
    assert rx.frames_ok == 0 and np.all(np.isinf(rx.noise_var)) and not np.any(rx.symbols)
    assert rx.snr_est_db is None
    with pytest.raises(ValueError, match="engine"):
        phylink.exchange(x, {}, engine="matlab")


@pytest.mark.gnuradio
def test_phylink_gnuradio_engine_same_realisation(fec):
    """Digital payload over the indoor Rayleigh channel: the GNU Radio flowgraph and numpy see the same
    taps and noise (same seed), so at 25 dB their hard decisions agree; LLRs of a lost frame are 0."""
    from semcom.baseline import phylink

    bits = np.random.default_rng(1).integers(0, 2, 2 * 3072 * 2 + 100).astype(np.uint8)
    ch = {"snr_db": 25.0, "seed": 7, "profile": "indoor", "fading": "rayleigh"}
    a = phylink.exchange(bits, ch, kind="digital", modulation="qpsk")
    b = phylink.exchange(bits, ch, kind="digital", modulation="qpsk", engine="gnuradio", timeout=30)
    assert a.frames_sent == b.frames_sent == 3 and a.frames_ok == b.frames_ok == 3
    la, lb = phylink.llr_of(a, "qpsk")[:bits.size], phylink.llr_of(b, "qpsk")[:bits.size]
    assert np.mean((la < 0) == (lb < 0)) > 0.999 and np.mean((la < 0) == bits.astype(bool)) > 0.99
    lost = phylink.Received(a.symbols, np.where(np.arange(a.symbols.size) < 10, np.inf, a.noise_var), 3, 3, 25.0)
    llr = phylink.llr_of(lost, "qpsk")
    assert not np.any(llr[:20]) and np.all(llr[20:40] != 0)


@pytest.mark.gnuradio
def test_phylink_gnuradio_engine_keeps_one_flowgraph():
    """Many payloads through the gnuradio engine: one flowgraph, no growth of shared-memory buffers
    (a flowgraph per payload left ~40 System V segments each behind, until the kernel limit)."""
    from pathlib import Path

    from semcom.baseline import phylink

    shm = Path("/proc/sysvipc/shm")
    if not shm.is_file():
        pytest.skip("no /proc/sysvipc/shm")
    x = np.ones(300, np.complex64)
    phylink.exchange(x, {"snr_db": 20.0, "seed": 0}, engine="gnuradio")
    before = len(shm.read_text().splitlines())
    for i in range(8):
        rx = phylink.exchange(x, {"snr_db": 20.0, "seed": i}, engine="gnuradio")
        assert rx.frames_ok == 1
    assert len(shm.read_text().splitlines()) <= before + 5
    assert len(phylink._GR_LINKS) == 1
    phylink.close_gnuradio()
    assert not phylink._GR_LINKS


@pytest.mark.gnuradio
def test_staged_ldpc_decoding_matches_full_decoding(fec):
    """receive_images stops decoding an image at its first lost block: same image and kept bytes as
    decoding every block; the blocks after the failure are reported as not decoded (None)."""
    img = _image(64, 64)
    scheme = chain.BaselineScheme("qpsk", "1/2")
    tx = chain.transmit_image(img, 6000, scheme)
    assert len(tx.blocks) >= 6
    llr = (1.0 - 2.0 * tx.bits.astype(np.float64)) * 5.0
    cut = llr.copy()
    a = sum(c.n for c in tx.blocks[:2])
    cut[a:a + tx.blocks[2].n] = 0.0  # third block erased
    (good, gi), (bad, bi) = chain.receive_images([llr, cut], tx.blocks, [img.shape] * 2)
    assert gi["blocks_ok"] == [True] * len(tx.blocks) and np.array_equal(good, tx.encoded.decoded)
    assert bi["blocks_ok"][:3] == [True, True, False] and all(v is None for v in bi["blocks_ok"][5:])
    data, ok = ldpc.decode(cut[:sum(c.n for c in tx.blocks)], tx.blocks)
    full_kept = sum(c.payload for c in tx.blocks[:2]) // 8
    assert bi["bytes_kept"] == full_kept and not ok[2]
    assert np.array_equal(bad, sc.decode_container(np.packbits(data[:full_kept * 8]).tobytes(), img.shape)[0])


def test_avif_is_available_and_strongest_at_low_rate():
    """Pillow 11.3 (pinned) carries libavif: AVIF is in the envelope and, on a natural photo at
    ~0.3 bit/pixel, beats JPEG and WebP at the same budget."""
    from PIL import Image

    from semcom.baseline.natural_images import _sample_dir

    assert "avif" in sc.available_codecs()
    with Image.open(_sample_dir() / "grace_hopper.jpg") as im:
        img = np.asarray(im.convert("RGB"))[40:296, 64:320]
    budget = 256 * 256 * 3 // 80  # bytes: 0.3 bit per pixel
    got = {c: sc.encode_to_budget(img, budget, codecs=(c,)).psnr for c in ("jpeg", "webp", "avif")}
    assert got["avif"] > max(got["jpeg"], got["webp"]) + 0.5, got
    e = sc.encode_to_budget(img, budget)
    assert e.codec in ("avif", "jpeg2000") and len(e.data) <= budget
