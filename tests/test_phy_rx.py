"""Receiver tests: loopback through a small local channel model (AWGN, CFO, delay, multipath, SFO)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semcom.blocks.phy import FrameSpec, FrameTransmitter
from semcom.blocks.phy import header as hdr
from semcom.blocks.phy.modulation import modulate
from semcom.blocks.phy.ofdm import ofdm_modulate
from semcom.blocks.phy.rx import FrameDemodulator, RxStats, StreamingReceiver, genie_equalize, receive


# ---------------------------------------------------------------------- local channel helpers
def gauss(rng, n):
    """Unit-power complex Gaussian symbols; complex64 [n]."""
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def resample(x, ratio):
    """Band-limited resampling ``y[n] = x(n * ratio)`` (windowed sinc, 64 taps)."""
    t = np.arange(int((x.size - 1) / ratio)) * ratio
    i0 = np.floor(t).astype(int)
    k = np.arange(-32, 33)
    idx = i0[:, None] + k[None, :]
    frac = t[:, None] - idx
    w = np.sinc(frac) * np.blackman(k.size + 2)[1:-1][None, :]
    xp = np.concatenate([x, np.zeros(40, complex)])
    return np.sum(xp[np.clip(idx, 0, x.size + 39)] * w * (idx >= 0), axis=1)


def channel(x, rng, snr_db=None, cfo=0.0, taps=None, lead=0, tail=0, sfo_ppm=0.0):
    """Zero padding, multipath (``taps`` [(delay, gain)], unit power), SFO, CFO, AWGN at Es/N0 ``snr_db``.

    Returns (received complex128, channel frequency response for ``fft_len`` given by caller later: taps array).
    """
    y = np.concatenate([np.zeros(lead), np.asarray(x, complex), np.zeros(tail)])
    h = np.array([1.0 + 0j])
    if taps:
        h = np.zeros(max(d for d, _ in taps) + 1, complex)
        for d, g in taps:
            h[d] += g
        h /= np.linalg.norm(h)
        y = np.convolve(y, h)[:y.size]
    if sfo_ppm:
        y = resample(y, 1 + sfo_ppm * 1e-6)
    n_fft = 64 if not hasattr(channel, "n_fft") else channel.n_fft
    y = y * np.exp(2j * np.pi * cfo * np.arange(y.size) / n_fft)
    if snr_db is not None:
        n0 = 10 ** (-snr_db / 10)
        y = y + np.sqrt(n0 / 2) * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))
    return y, h


def snr_db_of(est, ref):
    return float(10 * np.log10(np.mean(np.abs(ref) ** 2) / np.mean(np.abs(est - ref) ** 2)))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _fft64():
    channel.n_fft = 64
    yield


SPEC = FrameSpec()


# ---------------------------------------------------------------------- loopback
@pytest.mark.parametrize("n_fft", [64, 256, 1024])
def test_noiseless_loopback_all_fft_sizes(n_fft, rng):
    spec = FrameSpec(fft_len=n_fft, guard_len=50)
    tx = FrameTransmitter(spec)
    pay = gauss(rng, 700)
    f = tx.modulate_frame(pay, stream_id=3, codec_id=2)
    frames, st = receive(np.concatenate([np.zeros(123), f.iq]), spec)
    assert len(frames) == 1 and st.frames_ok == 1
    fr = frames[0]
    assert fr.header == f.header
    assert fr.start == 123
    assert fr.kind == "analog" and fr.llr is None and fr.bits is None
    assert fr.payload.shape == (700,) and fr.payload.dtype == np.complex64
    assert fr.noise_var.shape == (700,) and fr.noise_var_carrier.shape == (spec.n_data,)
    assert snr_db_of(fr.payload, pay) > 40
    json.dumps(fr.meta())


@pytest.mark.parametrize("snr", [10, 20])
def test_awgn_post_eq_snr_and_estimate(snr, rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 3072)
    y, _ = channel(tx.modulate_frame(pay).iq, rng, snr, lead=200, tail=100)
    frames, _ = receive(y, SPEC)
    assert len(frames) == 1
    fr = frames[0]
    assert abs(snr_db_of(fr.payload, pay) - snr) < 0.5
    assert abs(fr.snr_db - snr) < 1.0
    # predicted noise variance matches the measured error
    assert abs(10 * np.log10(np.mean(np.abs(fr.payload - pay) ** 2) / np.mean(fr.noise_var))) < 0.5


@pytest.mark.parametrize("cfo", [-4.5, -2.4, -1.3, 0.45, 2.4, 4.5])
def test_cfo_and_timing_offset(cfo, rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 1000)
    lead = int(rng.integers(50, 400))
    y, _ = channel(tx.modulate_frame(pay).iq, rng, 25, cfo=cfo, lead=lead, tail=80)
    frames, _ = receive(y, SPEC)
    assert len(frames) == 1
    assert frames[0].start == lead
    assert abs(frames[0].cfo - cfo) < 0.01
    assert snr_db_of(frames[0].payload, pay) > 24


@pytest.mark.parametrize("taps", [[(0, 1.0), (3, 0.6j), (9, 0.3)], [(0, 0.4), (5, 1.0), (14, -0.5j)]])
def test_multipath_within_cp_close_to_genie(taps, rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 3072)
    lead, cfo = 300, 0.8
    y, h = channel(tx.modulate_frame(pay).iq, rng, 25, cfo=cfo, taps=taps, lead=lead, tail=100)
    frames, _ = receive(y, SPEC)
    assert len(frames) == 1
    fr = frames[0]
    assert lead - 3 <= fr.start <= lead + 1  # first path, not the strongest
    genie = genie_equalize(y, SPEC, lead, cfo, np.fft.fft(h, SPEC.fft_len), pay.size)
    assert snr_db_of(genie, pay) - snr_db_of(fr.payload, pay) < 1.0
    assert abs(fr.snr_db - 25) < 1.0


def test_sfo_50ppm_long_frame(rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, SPEC.max_payload_symbols)
    y, _ = channel(tx.modulate_frame(pay).iq, rng, 30, sfo_ppm=50, lead=200, tail=200)
    frames, _ = receive(y, SPEC)
    assert len(frames) == 1
    assert snr_db_of(frames[0].payload, pay) > 27


@pytest.mark.parametrize("mod", ["qpsk", "16qam"])
def test_digital_payload_bit_exact(mod, rng):
    tx = FrameTransmitter(SPEC)
    bits = rng.integers(0, 2, 600 * {"qpsk": 2, "16qam": 4}[mod]).astype(np.uint8)
    y, _ = channel(tx.modulate_frame(bits, kind="digital", modulation=mod).iq, rng, 25, cfo=0.3, lead=100, tail=50)
    frames, _ = receive(y, SPEC)
    assert len(frames) == 1
    fr = frames[0]
    assert fr.kind == "digital" and fr.modulation == mod
    assert fr.llr.dtype == np.float32 and fr.llr.size == bits.size
    np.testing.assert_array_equal(fr.bits, bits)


# ---------------------------------------------------------------------- streaming
def _stream(rng, n_frames=3, snr=20, spec=SPEC, sizes=(200, 0, 350)):
    tx = FrameTransmitter(spec)
    parts, pays = [np.zeros(77)], []
    for i in range(n_frames):
        p = gauss(rng, sizes[i % len(sizes)])
        pays.append(p)
        parts.append(tx.modulate_frame(p, stream_id=i).iq)
    y, _ = channel(np.concatenate(parts), rng, snr, cfo=0.37, lead=0, tail=120)
    return y.astype(np.complex64), pays


def _same(a, b):
    assert len(a) == len(b)
    for fa, fb in zip(a, b):
        assert fa.start == fb.start and fa.header == fb.header and fa.cfo == fb.cfo and fa.snr_db == fb.snr_db
        np.testing.assert_array_equal(fa.payload, fb.payload)
        np.testing.assert_array_equal(fa.noise_var, fb.noise_var)


def test_chunk_size_independence(rng):
    y, pays = _stream(rng)
    ref, st_ref = receive(y, SPEC)
    assert [f.header.stream_id for f in ref] == [0, 1, 2]
    assert [f.header.n_payload for f in ref] == [p.size for p in pays]
    for trial in range(3):
        rx = StreamingReceiver(SPEC)
        out, pos = [], 0
        while pos < y.size:
            n = int(rng.choice([1, 2, 7, 64, 333, 1000, 5000]))
            out += rx.process(y[pos:pos + n])
            pos += n
        out += rx.flush()
        _same(ref, out)
        assert rx.stats.as_dict() == st_ref.as_dict()


def test_one_sample_chunks(rng):
    y, _ = _stream(rng, n_frames=2, sizes=(60, 0))
    ref, _ = receive(y, SPEC)
    assert len(ref) == 2
    rx = StreamingReceiver(SPEC)
    out = []
    for v in y:
        out += rx.process(np.array([v]))
    out += rx.flush()
    _same(ref, out)


def test_back_to_back_guard_zero(rng):
    spec = SPEC.replace(guard_len=0)
    y, pays = _stream(rng, n_frames=4, spec=spec, snr=25, sizes=(100, 48, 0, 500))
    frames, st = receive(y, spec)
    assert [f.header.stream_id for f in frames] == [0, 1, 2, 3]
    for f, p in zip(frames, pays):
        if p.size:
            assert snr_db_of(f.payload, p) > 22


def test_frame_flush_with_stream_ending_at_frame_end(rng):
    spec = SPEC.replace(guard_len=0)
    f = FrameTransmitter(spec).modulate_frame(gauss(rng, 100))
    rx = StreamingReceiver(spec)
    out = rx.process(np.concatenate([np.zeros(40), f.iq]))
    out += rx.flush()
    assert len(out) == 1 and out[0].start == 40 and rx.stats.truncated == 0


def test_memory_stays_bounded(rng):
    spec = SPEC.replace(max_payload_symbols=500)
    tx = FrameTransmitter(spec)
    rx = StreamingReceiver(spec)
    got, peak = 0, 0
    for i in range(12):
        y, _ = channel(tx.modulate_frame(gauss(rng, 500), stream_id=i).iq, rng, 25, lead=500)
        for part in np.array_split(y, 7):
            got += len(rx.process(part))
            peak = max(peak, rx._buf.size)
    got += len(rx.flush())
    assert got == 12
    assert peak < 3 * (spec.frame_len(500) + 500)  # 12 frames = 70k samples fed


@pytest.mark.parametrize("n_fft", [64, 256])
def test_low_snr_detection_with_lower_threshold(n_fft, rng):
    spec = FrameSpec(fft_len=n_fft, sc_threshold=0.2)
    channel.n_fft = n_fft
    pay = gauss(rng, 2000)
    y, _ = channel(FrameTransmitter(spec).modulate_frame(pay).iq, rng, 3, cfo=0.6, lead=400, tail=400)
    frames, _ = receive(y, spec)
    assert len(frames) == 1 and frames[0].start == 400
    assert snr_db_of(frames[0].payload, pay) > 3 - 0.8
    assert abs(frames[0].snr_db - 3) < 1.0


def test_zero_length_payload(rng):
    tx = FrameTransmitter(SPEC)
    f = tx.modulate_frame(np.zeros(0, np.complex64), stream_id=9)
    frames, _ = receive(channel(f.iq, rng, 20, lead=50)[0], SPEC)
    assert len(frames) == 1 and frames[0].header.n_payload == 0 and frames[0].payload.size == 0


# ---------------------------------------------------------------------- robustness
def test_noise_only_gives_no_frames(rng):
    noise = gauss(rng, 1_000_000)
    frames, st = receive(noise, SPEC)
    assert frames == [] and st.frames_ok == 0 and st.samples == 1_000_000


def test_nonfinite_samples_counted(rng):
    y, pays = _stream(rng, n_frames=2, sizes=(200, 100))
    y = y.copy()
    y[10:15] = np.nan
    y[20] = np.inf
    y[-30] = complex(np.nan, 1)
    frames, st = receive(y, SPEC)
    assert st.nonfinite_samples == 7
    assert len(frames) == 2
    assert all(np.all(np.isfinite(f.payload)) for f in frames)
    # NaNs inside a frame: no crash, no non-finite output
    y2 = y.copy()
    y2[500:900] = np.nan
    frames2, st2 = receive(y2, SPEC)
    assert st2.nonfinite_samples == 407
    assert all(np.all(np.isfinite(f.payload)) for f in frames2)


def test_truncated_frame(rng):
    tx = FrameTransmitter(SPEC)
    f = tx.modulate_frame(gauss(rng, 1000))
    y, _ = channel(np.concatenate([np.zeros(100), f.iq[:f.iq.size // 2]]), rng, 25)
    rx = StreamingReceiver(SPEC)
    assert rx.process(y) == []
    assert rx.flush() == []
    assert rx.stats.truncated == 1 and rx.stats.frames_ok == 0
    # direct demodulate on a short buffer
    st = RxStats()
    assert FrameDemodulator(SPEC).demodulate(y, 100, stats=st) is None and st.truncated == 1


def _frame_with_header_bits(spec, bits, payload):
    """A frame whose header carries ``bits`` (128, e.g. with a wrong CRC) — built from the TX parts."""
    tx = FrameTransmitter(spec)
    coded = hdr.interleave(hdr.conv_encode(bits))
    slots = spec.n_header_symbols * spec.n_data * {"bpsk": 1, "qpsk": 2}[spec.header_modulation]
    hs = modulate(np.concatenate([coded, np.zeros(slots - coded.size, np.uint8)]), spec.header_modulation)
    grid = tx.data_grid(np.concatenate([hs, payload]).astype(np.complex128), 0)
    return np.concatenate([tx.preamble, ofdm_modulate(grid, spec.cp_len), np.zeros(spec.guard_len, np.complex64)])


def test_corrupted_header_rejected(rng):
    h = hdr.HeaderFields(spec_id=SPEC.spec_id, n_payload=100)
    bits = hdr.pack(h)
    bits[5] ^= 1  # CRC no longer matches
    iq = _frame_with_header_bits(SPEC, bits, gauss(rng, 100))
    frames, st = receive(channel(iq, rng, 25, lead=100)[0], SPEC)
    assert frames == [] and st.header_crc_fail == 1


def test_oversized_and_unknown_kind_rejected(rng):
    big = hdr.pack(hdr.HeaderFields(spec_id=SPEC.spec_id, n_payload=SPEC.max_payload_symbols + 1))
    iq = _frame_with_header_bits(SPEC, big, gauss(rng, 10))
    frames, st = receive(np.concatenate([np.zeros(100), iq, np.zeros(5000)]), SPEC)
    assert frames == [] and st.bad_length == 1
    odd = hdr.pack(hdr.HeaderFields(spec_id=SPEC.spec_id, n_payload=10, payload_kind=9))
    iq = _frame_with_header_bits(SPEC, odd, gauss(rng, 10))
    frames, st = receive(np.concatenate([np.zeros(100), iq]), SPEC)
    assert frames == [] and st.bad_length == 1
    # a receiver with a smaller payload bound
    f = FrameTransmitter(SPEC).modulate_frame(gauss(rng, 500))
    rx = StreamingReceiver(SPEC, max_frame_payload=400)
    assert rx.process(np.concatenate([np.zeros(100), f.iq])) + rx.flush() == []
    assert rx.stats.bad_length == 1


@pytest.mark.parametrize("other", [{"seed": 0x1234}, {"pilot_values": (1, 1, -1, -1)}, {"cp_len": 8}])
def test_other_frame_spec_not_delivered(other, rng):
    tx = FrameTransmitter(SPEC.replace(**other))
    y, _ = channel(tx.modulate_frame(gauss(rng, 300)).iq, rng, 30, lead=100, tail=100)
    frames, st = receive(y, SPEC)
    assert frames == []
    assert st.detections >= 1  # the burst was seen (positive control), then rejected for the right reason
    if "seed" in other:  # other training sequence: fails the training correlation
        assert st.sync_fail >= 1
    if "pilot_values" in other:  # same preamble: synchronises, header decodes, spec_id differs
        assert st.spec_mismatch == 1
    if "cp_len" in other:  # other symbol timing: the header does not decode
        assert st.header_crc_fail + st.sync_fail >= 1 and st.spec_mismatch == 0


def test_demodulate_with_precorrected_cfo(rng):
    """GNU Radio style: the caller removed the fractional CFO and gives a rough start."""
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 500)
    cfo = 2.3  # fractional part 0.3 removed by the caller, integer 2 left to the receiver
    y, _ = channel(tx.modulate_frame(pay).iq, rng, 25, cfo=cfo, lead=300, tail=100)
    y = y * np.exp(-2j * np.pi * 0.3 * np.arange(y.size) / SPEC.fft_len)
    dm = FrameDemodulator(SPEC)
    for coarse in (300 - SPEC.cp_len, 300, 300 + SPEC.cp_len):
        fr = dm.demodulate(y, coarse, cfo_frac=0.0)
        assert fr is not None and fr.start == 300 and abs(fr.cfo - 2.0) < 0.01
        assert snr_db_of(fr.payload, pay) > 24


def test_genie_noiseless_exact(rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 400)
    y, h = channel(tx.modulate_frame(pay).iq, rng, None, cfo=-1.7, taps=[(0, 1), (4, 0.5)], lead=60, tail=10)
    g = genie_equalize(y, SPEC, 60, -1.7, np.fft.fft(h, 64), pay.size)
    assert snr_db_of(g, pay) > 60
    with pytest.raises(ValueError, match="h_true_freq"):
        genie_equalize(y, SPEC, 60, 0.0, np.ones(5), pay.size)


def test_rx_stats_dict():
    d = RxStats().as_dict()
    for key in ("samples", "detections", "frames_ok", "header_crc_fail", "spec_mismatch", "bad_length",
                "truncated", "nonfinite_samples", "dropped_overflow"):
        assert d[key] == 0


# ---------------------------------------------------------------------- building blocks
def test_track_phase_recovers_lines_and_phase_noise(rng):
    from semcom.blocks.phy.equalize import track_phase

    n, kp = 80, np.array([-21.0, -7.0, 7.0, 21.0])
    t = np.arange(n)
    phi = 0.02 * (t + 1.5) + np.cumsum(rng.normal(0, 0.02, n))  # residual CFO + random walk
    beta = 2e-4 * (t + 1.5)  # SFO: slope grows from the training centre
    n0 = 0.01
    z = np.exp(1j * (phi[:, None] + beta[:, None] * kp[None, :]))
    z = z + np.sqrt(n0 / 2) * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    est_phi, est_beta = track_phase(z, np.ones(4), kp, None, n0, t_ref=-1.5)
    raw = np.angle(z.sum(axis=1))
    err = np.angle(np.exp(1j * (est_phi - phi)))
    assert np.mean(err ** 2) < 0.5 * np.mean(np.angle(np.exp(1j * (raw - phi))) ** 2)  # smoothing helps
    assert np.sqrt(np.mean(err ** 2)) < 0.03
    assert np.max(np.abs(est_beta - beta)) < 2e-4


def test_delay_domain_estimator_denoises(rng):
    from semcom.blocks.phy.chanest import DelayDomainEstimator

    est = DelayDomainEstimator(SPEC)
    k = np.asarray(SPEC.used_carriers)
    n0 = 0.1
    for taps in ([(2, 1.0)], [(2, 0.8), (5, 0.5j), (13, 0.3)]):
        h = sum(g * np.exp(-2j * np.pi * k * d / 64) for d, g in taps)
        noisy = h + np.sqrt(n0 / 2) * (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size))
        ce = est.fit(noisy, np.ones(k.size), n0)
        assert ce.n_taps >= len(taps)
        mse = np.mean(np.abs(ce.h - h) ** 2)
        assert mse < 0.25 * n0  # well below the raw per-carrier error n0
        assert abs(np.mean(ce.err_var) - n0 * ce.n_taps / k.size) < 1e-12


def test_phase_noise_tracked(rng):
    tx = FrameTransmitter(SPEC)
    pay = gauss(rng, 3072)
    y, _ = channel(tx.modulate_frame(pay).iq, rng, 30, lead=200, tail=200)
    ph = np.cumsum(rng.standard_normal(y.size)) * 0.01 / np.sqrt(SPEC.symbol_len)  # 0.01 rad rms per symbol
    frames, _ = receive(y * np.exp(1j * ph), SPEC)
    assert len(frames) == 1 and snr_db_of(frames[0].payload, pay) > 29
