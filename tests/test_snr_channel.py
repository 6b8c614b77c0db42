"""SNR convention (snr.py) and the numpy channel simulator (channel.py)."""

from __future__ import annotations

import numpy as np
import pytest

from semcom.blocks.phy import FrameSpec, FrameTransmitter
from semcom.blocks.phy.channel import (ChannelConfig, ChannelConfigError, ChannelSimulator, PROFILES,
                                       rms_delay_spread, simulate)
from semcom.blocks.phy.ofdm import ofdm_demodulate
from semcom.blocks.phy.snr import add_awgn, complex_awgn, db, measured_snr_db, noise_variance, undb

N_PAYLOAD = 24000  # enough symbols for a +-0.1 dB SNR measurement (3 sigma ~ 0.08 dB)


def _unit_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    s = rng.standard_normal(2 * n).view(np.complex128)
    return (s / np.sqrt(np.mean(np.abs(s) ** 2))).astype(np.complex64)


@pytest.fixture(scope="module")
def frame():
    """(spec, tx frame iq, payload, first payload sample) for one long analog frame."""
    spec = FrameSpec(max_payload_symbols=N_PAYLOAD)
    payload = _unit_symbols(N_PAYLOAD, np.random.default_rng(11))
    f = FrameTransmitter(spec).modulate_frame(payload)
    start = (spec.n_preamble_symbols + spec.n_header_symbols) * spec.symbol_len
    return spec, f.iq, payload, start


def _genie_payload(spec: FrameSpec, rx: np.ndarray, start: int, n_payload: int) -> np.ndarray:
    n_sym = spec.n_payload_ofdm_symbols(n_payload)
    grid = ofdm_demodulate(rx, spec.fft_len, spec.cp_len, n_sym, start=start)  # [n_sym, N]
    return grid[:, spec.bin(spec.data_carriers)].ravel()[:n_payload]


# ---------------------------------------------------------------------- snr.py
def test_db_undb_and_noise_variance():
    assert undb(db(3.7)) == pytest.approx(3.7)
    assert noise_variance(10.0) == pytest.approx(0.1)
    assert noise_variance(0.0, es=2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="snr_db"):
        noise_variance(float("nan"))


def test_complex_awgn_power_and_split():
    n0 = 0.37
    w = complex_awgn(400_000, n0, np.random.default_rng(0))
    assert w.dtype == np.complex64
    assert np.mean(np.abs(w) ** 2) == pytest.approx(n0, rel=0.01)
    assert np.var(w.real) == pytest.approx(n0 / 2, rel=0.015)
    assert np.var(w.imag) == pytest.approx(n0 / 2, rel=0.015)
    assert abs(np.mean(w.real * w.imag)) < 0.01 * n0  # independent I and Q


def test_complex_awgn_is_chunk_independent():
    a = complex_awgn(1000, 1.0, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    b = np.concatenate([complex_awgn(k, 1.0, rng) for k in (1, 10, 333, 656)])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_frame_through_awgn_gives_payload_snr(frame, snr_db):
    spec, iq, payload, start = frame
    rx = add_awgn(iq, snr_db, np.random.default_rng(int(snr_db) + 1))
    got = measured_snr_db(payload, _genie_payload(spec, rx, start, payload.size))
    assert got == pytest.approx(snr_db, abs=0.1)


def test_simulator_snr_matches_convention(frame):
    spec, iq, payload, start = frame
    rx = simulate(iq, {"snr_db": 12.0, "timing_offset": 37, "seed": 4})
    assert rx.size == iq.size
    got = measured_snr_db(payload, _genie_payload(spec, rx, start + 37, payload.size))
    assert got == pytest.approx(12.0, abs=0.1)


def test_measured_snr_checks_shapes():
    with pytest.raises(ValueError, match="shape"):
        measured_snr_db(np.ones(3), np.ones(4))


# ---------------------------------------------------------------------- channel.py: impairments
def test_default_channel_is_identity():
    x = _unit_symbols(1000, np.random.default_rng(1))
    np.testing.assert_array_equal(simulate(x), x)


def test_cfo_rotates_by_right_phase_per_sample():
    cfg = ChannelConfig(cfo=0.3, fft_len=64)
    y = simulate(np.ones(5000, np.complex64), cfg)
    step = np.angle(y[1:] * np.conj(y[:-1]))
    np.testing.assert_allclose(step, 2 * np.pi * 0.3 / 64, atol=1e-5)
    assert abs(np.angle(y[0])) < 1e-6


def test_integer_timing_offset_shifts():
    x = _unit_symbols(500, np.random.default_rng(2))
    y = simulate(x, {"timing_offset": 17})
    assert np.all(y[:17] == 0)
    np.testing.assert_allclose(y[17:], x[:-17], atol=1e-7)


def test_genie_frequency_response_equalises_fractional_delay_and_fading(frame):
    """Noise-free outdoor Rayleigh channel + fractional timing: Y / H recovers the payload (>50 dB)."""
    spec, iq, payload, start = frame
    sim = ChannelSimulator({"profile": "outdoor", "fading": "rayleigh", "timing_offset": 10.3, "seed": 8})
    rx = sim.apply(iq)
    h = sim.frequency_response(spec.fft_len)[spec.bin(spec.data_carriers)]  # [n_data]
    n_sym = spec.n_payload_ofdm_symbols(payload.size)
    assert sim.delay_span <= spec.cp_len + 1  # the whole response fits the CP
    grid = ofdm_demodulate(rx, spec.fft_len, spec.cp_len, n_sym, start=start + sim.first_delay)
    eq = (grid[:, spec.bin(spec.data_carriers)] / h).ravel()[:payload.size]
    assert measured_snr_db(payload, eq) > 50.0


@pytest.mark.parametrize("name, rate, rms_ns", [("outdoor", 10e6, 633.0), ("indoor", 100e6, 37.0)])
def test_profile_unit_power_and_delay_spread(name, rate, rms_ns):
    delays, powers_db = PROFILES[name]
    documented = rms_delay_spread(delays, 10 ** (np.asarray(powers_db) / 10))
    assert documented * 1e9 == pytest.approx(rms_ns, abs=1.0)
    # At these rates every path falls on a sample: the taps are the profile itself.
    h = ChannelSimulator({"profile": name, "fading": "none", "sample_rate": rate}).last_taps
    p = np.abs(h) ** 2
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert rms_delay_spread(np.arange(h.size) / rate, p) == pytest.approx(documented, rel=1e-9)


def test_outdoor_delay_spread_fits_cp_at_2msps():
    h = ChannelSimulator({"profile": "outdoor", "fading": "none", "sample_rate": 2e6}).last_taps
    assert h.size <= 16 + 1
    assert np.sum(np.abs(h) ** 2) == pytest.approx(1.0)


def test_rayleigh_block_fading_average_power_and_constant_in_block():
    """Blocks follow the input time axis: with a timing offset, block b still covers input b*block.."""
    block, delay = 50, 37
    sim = ChannelSimulator({"fading": "rayleigh", "block_len": block, "timing_offset": delay, "seed": 3})
    y = sim.apply(np.ones(4000 * block + delay, np.complex64))[delay:].reshape(4000, block)
    np.testing.assert_allclose(y, y[:, :1] * np.ones((1, block)), atol=1e-6)  # constant within a block
    g = y[:, 0]
    assert np.mean(np.abs(g) ** 2) == pytest.approx(1.0, rel=0.06)
    assert np.mean(np.abs(g) ** 2 < 0.1) == pytest.approx(1 - np.exp(-0.1), abs=0.015)  # exponential power
    for b in (3000, 3517, 3999):  # the last 1024 blocks are kept
        assert sim.impulse_response(b * block)[0] == pytest.approx(complex(g[b]), abs=1e-6)


def test_multipath_rayleigh_average_tap_energy_is_one():
    sim = ChannelSimulator({"profile": "outdoor", "fading": "rayleigh", "block_len": 10, "seed": 2})
    e = [np.sum(np.abs(sim.impulse_response(10 * b)) ** 2) for b in range(1000)]
    assert np.mean(e) == pytest.approx(1.0, rel=0.05)


def test_rician_k_factor():
    sim = ChannelSimulator({"fading": "rician", "k_factor_db": 10.0, "block_len": 1, "seed": 6})
    g = sim.apply(np.ones(20000, np.complex64))
    los = np.mean(g)
    k_est = np.abs(los) ** 2 / np.var(g)
    assert 10 * np.log10(k_est) == pytest.approx(10.0, abs=0.5)
    assert np.mean(np.abs(g) ** 2) == pytest.approx(1.0, rel=0.03)


def test_sro_stretches_signal():
    ppm, f0, n = 100.0, 0.05, 100_000
    x = np.exp(2j * np.pi * f0 * np.arange(n))
    y = simulate(x, {"sro_ppm": ppm})
    ratio = 1 / (1 + ppm * 1e-6)
    assert y.size == pytest.approx(n * (1 + ppm * 1e-6), abs=1)  # 10 samples more
    m = np.arange(20, y.size - 20)
    np.testing.assert_allclose(y[m], np.exp(2j * np.pi * f0 * m * ratio), atol=2e-3)
    # after 100k samples the tone lags by 10 samples = 0.5 cycle: clearly not the unstretched tone
    assert np.abs(y[n - 100] - x[n - 100]) > 1.0


def test_phase_noise_variance_grows_linearly():
    linewidth, rate = 1000.0, 1e6
    y = simulate(np.ones(400_000, np.complex64), {"phase_noise": linewidth, "sample_rate": rate, "seed": 9})
    phi = np.unwrap(np.angle(y))
    per_sample = 2 * np.pi * linewidth / rate
    for lag in (1, 200):
        d = phi[lag::lag] - phi[:-lag:lag]
        assert np.var(d) == pytest.approx(lag * per_sample, rel=0.1)


def test_chunked_equals_one_shot_with_all_impairments():
    cfg = {"snr_db": 15.0, "cfo": 0.37, "timing_offset": 12.6, "sro_ppm": -80.0, "phase_noise": 200.0,
           "profile": "outdoor", "fading": "rician", "k_factor_db": 3.0, "block_len": 333, "seed": 21}
    x = _unit_symbols(30_000, np.random.default_rng(4))
    whole = simulate(x, cfg)
    sim = ChannelSimulator(cfg)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 60, replace=False))
    parts = [sim.apply(c) for c in np.split(x, cuts)] + [sim.flush()]
    chunked = np.concatenate(parts)
    assert chunked.size == whole.size
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_same_seed_same_output_other_seed_differs():
    x = np.ones(1000, np.complex64)
    a = simulate(x, {"snr_db": 5, "seed": 1})
    np.testing.assert_array_equal(a, simulate(x, {"snr_db": 5, "seed": 1}))
    assert not np.allclose(a, simulate(x, {"snr_db": 5, "seed": 2}))


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize("d, field", [
    ({"bogus": 1}, "channel.bogus"),
    ({"snr_db": "high"}, "channel.snr_db"),
    ({"cfo": 100.0}, "channel.cfo"),
    ({"timing_offset": -1}, "channel.timing_offset"),
    ({"fading": "nakagami"}, "channel.fading"),
    ({"profile": "urban"}, "channel.profile"),
    ({"profile": "custom"}, "channel.delays"),
    ({"profile": "custom", "delays": [0, 1e-6], "powers_db": [0]}, "channel.powers_db"),
    ({"delays": [0.0]}, "channel.delays"),
    ({"block_len": 1.5}, "channel.block_len"),
    ({"seed": True}, "channel.seed"),
    ({"phase_noise": -3}, "channel.phase_noise"),
])
def test_from_dict_errors_name_the_field(d, field):
    with pytest.raises(ChannelConfigError, match=field.replace(".", r"\.")):
        ChannelConfig.from_dict(d)


def test_to_dict_round_trip():
    c = ChannelConfig(snr_db=3.0, profile="custom", delays=(0.0, 1e-6), powers_db=(0.0, -3.0), fading="rician")
    assert ChannelConfig.from_dict(c.to_dict()) == c
    assert ChannelConfig.from_dict(None) == ChannelConfig()
