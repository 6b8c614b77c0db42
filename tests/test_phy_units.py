"""Unit tests of the transmit-side PHY modules: frame, header, modulation, ofdm, tx, chunking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semcom.blocks.phy import FrameSpec, FrameSpecError, FrameTransmitter
from semcom.blocks.phy import header as hdr
from semcom.blocks.phy.chunking import Reassembler, split_chunks
from semcom.blocks.phy.frame import HEADER_BITS, MODULATIONS
from semcom.blocks.phy.modulation import (bits_per_symbol, constellation, demodulate_hard, demodulate_llr,
                                          modulate)
from semcom.blocks.phy.ofdm import ofdm_demodulate, ofdm_modulate, papr_db


@pytest.fixture
def rng():
    return np.random.default_rng(99)


# ---------------------------------------------------------------------- frame.py
def test_default_spec_is_80211a_like():
    s = FrameSpec()
    assert (s.fft_len, s.cp_len, s.n_data, s.n_pilots) == (64, 16, 48, 4)
    assert s.pilot_carriers == (-21, -7, 7, 21)
    assert 0 not in s.used_carriers and s.n_used == 52
    assert s.pilot_values == (1, 1, 1, -1)
    assert s.symbol_len == 80


@pytest.mark.parametrize("kwargs, field", [
    ({"fft_len": 100}, "fft_len"), ({"fft_len": 2048}, "fft_len"), ({"fft_len": 32}, "fft_len"),
    ({"fft_len": True}, "fft_len"), ({"cp_len": 0}, "cp_len"), ({"cp_len": 33}, "cp_len"),
    ({"n_training": 0}, "n_training"), ({"n_training": 5}, "n_training"),
    ({"header_modulation": "16qam"}, "header_modulation"), ({"payload_kind": "text"}, "payload_kind"),
    ({"payload_modulation": "8psk"}, "payload_modulation"), ({"sc_threshold": 1.0}, "sc_threshold"),
    ({"sc_threshold": "high"}, "sc_threshold"), ({"max_payload_symbols": 0}, "max_payload_symbols"),
    ({"guard_len": -1}, "guard_len"), ({"seed": -3}, "seed"), ({"seed": 1.5}, "seed"),
    ({"data_carriers": (0, 1, 2, 3, 4, 5, 6, 8)}, "data_carriers"),
    ({"data_carriers": (1, 1, 2, 3, 4, 5, 6, 8)}, "data_carriers"),
    ({"data_carriers": (1, 2, 3, 4, 5, 6, 8, 40)}, "data_carriers"),
    ({"data_carriers": (1, 2, 3)}, "data_carriers"),
    ({"pilot_carriers": (7, 8)}, "pilot_carriers"),  # overlaps data
    ({"pilot_carriers": (29,)}, "pilot_carriers"),
    ({"pilot_values": (1, 1, 1)}, "pilot_values"), ({"pilot_values": (1, 1, 0, 1)}, "pilot_values"),
])
def test_validation_errors_name_the_field(kwargs, field):
    with pytest.raises(FrameSpecError) as e:
        FrameSpec(**kwargs)
    assert e.value.field == field
    assert f"frame.{field}" in str(e.value)


def test_from_dict_rejects_unknown_key():
    with pytest.raises(FrameSpecError, match="frame.fft_size"):
        FrameSpec.from_dict({"fft_size": 64})


@pytest.mark.parametrize("n", [64, 128, 256, 512, 1024])
def test_fft_sizes(n):
    s = FrameSpec(fft_len=n)
    half = 26 * n // 64
    assert s.n_used == 2 * half and s.n_pilots == 4 * n // 64
    assert max(s.used_carriers) == half and min(s.used_carriers) == -half
    assert sorted(-k for k in s.pilot_carriers) == list(s.pilot_carriers)  # symmetric
    sc = np.fft.ifft(s.sc_symbol_freq())
    np.testing.assert_allclose(sc[:n // 2], sc[n // 2:], atol=1e-12)  # two identical halves
    assert np.isclose(np.sum(np.abs(s.sc_symbol_freq()) ** 2), s.n_used)  # same energy as training
    tr = s.training_freq()
    assert set(np.abs(tr[s.bin(s.used_carriers)])) == {1.0}
    assert np.count_nonzero(tr) == s.n_used


def test_dict_round_trip():
    s = FrameSpec(fft_len=128, cp_len=32, pilot_values=(1, 1j, -1, -1j, 1, 1, 1, -1), n_training=3,
                  header_modulation="qpsk", payload_kind="digital", payload_modulation="16qam", seed=77)
    d = json.loads(json.dumps(s.to_dict()))
    assert FrameSpec.from_dict(d) == s
    assert FrameSpec.from_dict(FrameSpec().to_dict()) == FrameSpec()
    assert FrameSpec.from_dict(None) == FrameSpec()


def test_spec_id_tracks_waveform_only():
    base = FrameSpec()
    for change in ({"fft_len": 128}, {"cp_len": 8}, {"seed": 1}, {"n_training": 1},
                   {"header_modulation": "qpsk"}, {"pilot_values": (1, 1, -1, -1)}):
        assert base.replace(**change).spec_id != base.spec_id, change
    for change in ({"max_payload_symbols": 10}, {"guard_len": 0}, {"sc_threshold": 0.3},
                   {"payload_kind": "digital"}):
        assert base.replace(**change).spec_id == base.spec_id, change
    assert 0 <= base.spec_id < 65536


def test_frame_len_formula():
    s = FrameSpec()
    assert s.n_header_symbols == 6  # 268 coded bits over 48 BPSK carriers
    assert s.frame_len(0) == (3 + 6) * 80 + 160
    assert s.frame_len(48) == s.frame_len(1) == (3 + 6 + 1) * 80 + 160
    assert s.frame_len(49) == (3 + 6 + 2) * 80 + 160


def test_pilot_matrix_polarity():
    s = FrameSpec()
    m = s.pilot_matrix(130)
    assert m.shape == (130, 4)
    np.testing.assert_array_equal(m[0], [1, 1, 1, -1])
    np.testing.assert_array_equal(m[127], m[0])  # 127-periodic polarity
    np.testing.assert_array_equal(s.pilot_matrix(3, first=5), m[5:8])


# ---------------------------------------------------------------------- header.py
def _random_header(rng):
    count = int(rng.integers(1, 65536))
    return hdr.HeaderFields(payload_kind=int(rng.integers(0, 5)), flags=int(rng.integers(0, 256)),
                            spec_id=int(rng.integers(0, 65536)), codec_id=int(rng.integers(0, 256)),
                            frame_counter=int(rng.integers(0, 65536)), stream_id=int(rng.integers(0, 65536)),
                            chunk_index=int(rng.integers(0, count)), chunk_count=count,
                            n_payload=int(rng.integers(0, 65536)))


def test_header_pack_unpack_round_trip(rng):
    for _ in range(20):
        h = _random_header(rng)
        bits = hdr.pack(h)
        assert bits.shape == (HEADER_BITS,) and bits.dtype == np.uint8
        assert hdr.unpack(bits) == h
    assert hdr.unpack(np.zeros(10, np.uint8)) is None


def test_crc_catches_every_single_bit_flip(rng):
    bits = hdr.pack(_random_header(rng))
    for i in range(HEADER_BITS):
        b = bits.copy()
        b[i] ^= 1
        assert hdr.unpack(b) is None, i


def test_header_field_range_errors():
    with pytest.raises(hdr.HeaderError, match="n_payload"):
        hdr.HeaderFields(n_payload=70000)
    with pytest.raises(hdr.HeaderError, match="flags"):
        hdr.HeaderFields(flags=-1)
    with pytest.raises(hdr.HeaderError, match="spec_id"):
        hdr.HeaderFields(spec_id=1.5)
    with pytest.raises(hdr.HeaderError, match="chunk_count"):
        hdr.HeaderFields(chunk_count=0)
    with pytest.raises(hdr.HeaderError, match="chunk_index"):
        hdr.HeaderFields(chunk_index=3, chunk_count=3)
    assert hdr.payload_kind_name(hdr.payload_kind_code("digital", "16qam")) == ("digital", "16qam")
    assert hdr.payload_kind_name(0) == ("analog", None)
    with pytest.raises(hdr.HeaderError, match="payload_kind"):
        hdr.payload_kind_name(7)


def test_viterbi_corrects_errors_and_erasures(rng):
    bits = hdr.pack(_random_header(rng))
    coded = hdr.conv_encode(bits)
    assert coded.size == 2 * (HEADER_BITS + 6)
    llr = 1.0 - 2.0 * coded  # +1 for bit 0
    np.testing.assert_array_equal(hdr.viterbi_decode(llr, HEADER_BITS), bits)
    bad = llr.copy()
    bad[[10, 60, 110, 160, 210, 250]] *= -1  # six well-separated hard errors
    np.testing.assert_array_equal(hdr.viterbi_decode(bad, HEADER_BITS), bits)
    erased = llr.copy()
    erased[::4] = 0  # a quarter erased
    np.testing.assert_array_equal(hdr.viterbi_decode(erased, HEADER_BITS), bits)
    noisy = llr + rng.normal(0, 0.7, llr.size)  # soft noise at ~3 dB
    np.testing.assert_array_equal(hdr.viterbi_decode(noisy, HEADER_BITS), bits)


def _viterbi_reference(llr, n_bits):
    """Textbook soft Viterbi, state by state, with its own trellis from the 133/171 generators."""
    llr = np.asarray(llr, dtype=np.float64).reshape(-1, 2)
    k = 7
    n_states = 1 << (k - 1)

    def step(state, bit):  # shift register with the newest bit on top: (next state, (c0, c1))
        reg = (bit << (k - 1)) | state
        return reg >> 1, tuple(bin(reg & g).count("1") & 1 for g in (0o133, 0o171))

    metric = [0.0] + [-np.inf] * (n_states - 1)
    back = []  # per step: for every next state, (previous state, input bit) of the survivor
    for l0, l1 in llr.tolist():
        best = [None] * n_states
        for s in range(n_states):  # ascending: on a tie the lower previous state is kept
            for b in (0, 1):
                ns, (c0, c1) = step(s, b)
                m = metric[s] + (l0 * (1.0 - 2.0 * c0) + l1 * (1.0 - 2.0 * c1))
                if best[ns] is None or m > best[ns][0]:
                    best[ns] = (m, s, b)
        metric = [v[0] for v in best]
        back.append([(v[1], v[2]) for v in best])
    state, bits = 0, []
    for survivors in reversed(back):
        state, b = survivors[state]
        bits.append(b)
    return np.array(bits[::-1], dtype=np.uint8)[:n_bits]


def test_viterbi_equals_reference_on_random_llrs_with_erasures(rng):
    n_bits = HEADER_BITS
    bits = hdr.pack(_random_header(rng))
    sign = 1.0 - 2.0 * hdr.conv_encode(bits)
    cases = [
        rng.normal(0, 1, sign.size),  # pure noise: no codeword near, every tie-break exercised
        np.round(rng.normal(0, 1.5, sign.size)),  # small integers: many exact ties and zeros
        sign * 2.0 + rng.normal(0, 1.5, sign.size),  # noisy codeword: trellis path
        np.where(rng.random(sign.size) < 0.3, 0.0, sign + rng.normal(0, 0.8, sign.size)),  # erasures
        np.zeros(sign.size),  # everything erased
        sign * rng.uniform(0.5, 3.0, sign.size),  # clean: the hard-decision fast path
    ]
    for llr in cases:
        np.testing.assert_array_equal(hdr.viterbi_decode(llr, n_bits), _viterbi_reference(llr, n_bits))
    # fast path and trellis agree on a clean codeword with one tiny LLR (forced onto the trellis)
    clean = sign * 4.0
    clean[17] *= 1e-12
    np.testing.assert_array_equal(hdr.viterbi_decode(clean, n_bits), bits)


def test_interleaver_is_a_permutation(rng):
    x = np.arange(268)
    y = hdr.interleave(x)
    assert sorted(y) == list(x) and not np.array_equal(x, y)
    np.testing.assert_array_equal(hdr.deinterleave(y), x)
    assert abs(int(np.flatnonzero(y == 1)[0]) - int(np.flatnonzero(y == 0)[0])) > 1  # neighbours spread


# ---------------------------------------------------------------------- modulation.py
@pytest.mark.parametrize("mod", MODULATIONS)
def test_constellation_unit_power_and_gray(mod):
    pts = constellation(mod)
    bps = bits_per_symbol(mod)
    assert pts.size == 2 ** bps
    assert np.isclose(np.mean(np.abs(pts) ** 2), 1.0)
    d = np.abs(pts[:, None] - pts[None, :])
    dmin = d[d > 0].min()
    for i in range(pts.size):
        for j in np.flatnonzero(np.isclose(d[i], dmin)):
            assert bin(i ^ j).count("1") == 1, (mod, i, j)


@pytest.mark.parametrize("mod", MODULATIONS)
def test_modulation_round_trip(mod, rng):
    bps = bits_per_symbol(mod)
    bits = rng.integers(0, 2, 120 * bps).astype(np.uint8)
    sym = modulate(bits, mod)
    assert sym.dtype == np.complex64 and sym.size == 120
    np.testing.assert_array_equal(demodulate_hard(sym, mod), bits)
    noisy = sym + 0.02 * (rng.standard_normal(sym.size) + 1j * rng.standard_normal(sym.size))
    llr = demodulate_llr(noisy, mod, 0.001)
    np.testing.assert_array_equal((llr < 0).astype(np.uint8), bits)


def test_modulation_errors():
    with pytest.raises(ValueError, match="8psk"):
        bits_per_symbol("8psk")
    with pytest.raises(ValueError, match="multiple"):
        modulate(np.zeros(3, np.uint8), "qpsk")


# ---------------------------------------------------------------------- ofdm.py
def test_ofdm_cp_identity_and_power(rng):
    n, cp, k = 64, 16, 5
    grid = rng.standard_normal((k, n)) + 1j * rng.standard_normal((k, n))
    x = ofdm_modulate(grid, cp)
    assert x.dtype == np.complex64 and x.size == k * (n + cp)
    sym = x.reshape(k, n + cp)
    np.testing.assert_allclose(sym[:, :cp], sym[:, -cp:])  # CP is the symbol tail
    np.testing.assert_allclose(ofdm_demodulate(x, n, cp, k), grid, atol=1e-5)
    # unitary: energy per symbol (without CP) equals the grid energy
    np.testing.assert_allclose(np.sum(np.abs(sym[:, cp:]) ** 2, axis=1), np.sum(np.abs(grid) ** 2, axis=1), rtol=1e-5)
    # a window taken b samples early shows a linear phase exp(-2j pi k b / N)
    b = 3
    y = ofdm_demodulate(x, n, cp, k, cp_backoff=b)
    np.testing.assert_allclose(y, grid * np.exp(-2j * np.pi * np.arange(n) * b / n)[None, :], atol=1e-5)
    with pytest.raises(ValueError, match="need"):
        ofdm_demodulate(x[:-1], n, cp, k)


def test_papr():
    assert papr_db(np.ones(10)) == 0.0
    assert papr_db(np.zeros(4)) == 0.0
    assert np.isclose(papr_db(np.array([2.0, 0, 0, 0])), 0.0)
    assert np.isclose(papr_db(np.array([2.0, 1, 1, 1])), 10 * np.log10(4 / 1.75))


# ---------------------------------------------------------------------- tx.py
def test_tx_frame_length_and_fields(rng):
    s = FrameSpec()
    tx = FrameTransmitter(s)
    for n in (0, 1, 48, 49, 1000, s.max_payload_symbols):
        f = tx.modulate_frame((rng.standard_normal(n) + 0j).astype(np.complex64), stream_id=4)
        assert f.iq.size == s.frame_len(n) and f.iq.dtype == np.complex64
        assert f.header.n_payload == n and f.header.spec_id == s.spec_id and f.header.stream_id == 4
        assert np.all(f.iq[-s.guard_len:] == 0)
        assert np.isfinite(f.papr_db) and f.papr_db > 0 and np.isclose(f.papr_db, papr_db(f.iq))
    assert tx.frame_counter == 6
    np.testing.assert_array_equal(tx.preamble, f.iq[:tx.preamble.size])
    sc = tx.preamble[s.cp_len:s.symbol_len]
    np.testing.assert_allclose(sc[:32], sc[32:], atol=1e-6)


def test_tx_payload_on_data_carriers(rng):
    s = FrameSpec()
    pay = (rng.standard_normal(100) + 1j * rng.standard_normal(100)).astype(np.complex64)
    f = FrameTransmitter(s).modulate_frame(pay)
    first = s.n_preamble_symbols + s.n_header_symbols
    grid = ofdm_demodulate(f.iq, s.fft_len, s.cp_len, first + 3)[first:]
    np.testing.assert_allclose(grid[:, s.bin(s.data_carriers)].ravel()[:100], pay, atol=1e-5)
    np.testing.assert_allclose(grid[:, s.bin(s.pilot_carriers)], s.pilot_matrix(3, s.n_header_symbols), atol=1e-5)


def test_tx_errors(rng):
    s = FrameSpec(max_payload_symbols=100)
    tx = FrameTransmitter(s)
    with pytest.raises(ValueError, match="max_payload_symbols"):
        tx.modulate_frame(np.zeros(101, np.complex64))
    with pytest.raises(ValueError, match="NaN"):
        tx.modulate_frame(np.array([np.nan], np.complex64))
    with pytest.raises(ValueError, match="kind"):
        tx.modulate_frame(np.zeros(3), kind="text")
    with pytest.raises(ValueError, match="multiple"):
        tx.modulate_stream(np.zeros(7, np.uint8), kind="digital", modulation="qpsk")


def test_tx_stream_chunking(rng):
    s = FrameSpec(max_payload_symbols=100)
    tx = FrameTransmitter(s)
    pay = (rng.standard_normal(250) + 1j * rng.standard_normal(250)).astype(np.complex64)
    frames = tx.modulate_stream(pay, stream_id=11)
    assert [f.header.n_payload for f in frames] == [100, 100, 50]
    assert [f.header.chunk_index for f in frames] == [0, 1, 2]
    assert {f.header.chunk_count for f in frames} == {3}
    assert [f.header.flags & 1 for f in frames] == [0, 0, 1]
    np.testing.assert_array_equal(np.concatenate([f.payload for f in frames]), pay)
    bits = rng.integers(0, 2, 2 * 150).astype(np.uint8)
    dig = tx.modulate_stream(bits, kind="digital", modulation="qpsk")
    assert [f.header.n_payload for f in dig] == [100, 50]
    assert hdr.payload_kind_name(dig[0].header.payload_kind) == ("digital", "qpsk")
    assert len(tx.modulate_stream(np.zeros(0, np.complex64))) == 1  # empty payload still one frame


# ---------------------------------------------------------------------- chunking.py
def test_split_chunks():
    assert split_chunks(0, 10) == [(0, 0)]
    assert split_chunks(25, 10) == [(0, 10), (10, 20), (20, 25)]
    with pytest.raises(ValueError):
        split_chunks(5, 0)


def _chunks(n=25, size=10):
    sym = (np.arange(n) + 1).astype(np.complex64)
    return sym, [(i, sym[a:b]) for i, (a, b) in enumerate(split_chunks(n, size))]


def test_reassembler_out_of_order_and_duplicates():
    sym, parts = _chunks()
    r = Reassembler(10)
    assert r.add(5, 2, 3, parts[2][1], 0.1) is None
    assert r.add(5, 0, 3, parts[0][1], 0.1) is None
    assert r.add(5, 0, 3, parts[0][1] * 0, 0.1) is None  # duplicate ignored, counted
    out = r.add(5, 1, 3, parts[1][1], 0.2)
    assert out is not None and out.complete and out.duplicates == 1
    np.testing.assert_array_equal(out.symbols, sym)
    assert out.noise_var[15] == np.float32(0.2) and out.mask.all()
    assert r.pending() == []


def test_reassembler_missing_chunk_not_shifted():
    sym, parts = _chunks()
    r = Reassembler(10)
    r.add(1, 0, 3, parts[0][1], 0.1)
    r.add(1, 2, 3, parts[2][1], 0.1)
    [out] = r.flush()
    assert out.missing == [1] and not out.complete
    assert out.symbols.size == 25
    np.testing.assert_array_equal(out.symbols[20:], sym[20:])  # chunk 2 stays in its place
    assert not out.mask[10:20].any() and np.isinf(out.noise_var[10:20]).all()
    assert np.all(out.symbols[10:20] == 0)
    # lost last chunk: length from total_symbols
    r.add(2, 0, 3, parts[0][1], 0.1)
    [out] = r.flush(2, total_symbols=25)
    assert out.symbols.size == 25 and out.missing == [1, 2]
    with pytest.raises(ValueError, match="chunk_index"):
        r.add(3, 3, 3, parts[0][1], 0.1)


def test_crc_valid_header_with_impossible_fields_is_rejected():
    # chunk_count 0 with a correct CRC: unpack refuses it instead of raising deep in the receiver
    body = np.concatenate([hdr._int_bits(v, w) for v, (_, w) in zip(
        [hdr.HEADER_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 10], hdr._LAYOUT)])
    bits = np.concatenate([body, hdr._int_bits(hdr.crc16(body), 16)])
    assert hdr.unpack(bits) is None
