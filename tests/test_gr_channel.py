"""GNU Radio ``semcom_channel`` against the numpy channel and the SNR convention; GRC compile check.

Every flowgraph runs with ``tb.start()`` + a bounded wait + ``stop()/wait()`` (a broken flowgraph
hangs instead of exiting).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")
from gnuradio import analog, blocks  # noqa: E402

from semcom.blocks.gr.channel import semcom_channel  # noqa: E402
from semcom.blocks.phy.channel import ChannelConfigError, simulate  # noqa: E402
from semcom.blocks.phy.snr import noise_variance  # noqa: E402

pytestmark = pytest.mark.gnuradio
REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0


def _run(tb) -> None:
    """Run a finite flowgraph, failing (after stopping it) if it does not finish within TIMEOUT s."""
    tb.start()
    waiter = threading.Thread(target=tb.wait, daemon=True)
    waiter.start()
    waiter.join(TIMEOUT)
    if waiter.is_alive():
        tb.stop()
        waiter.join(5.0)
        pytest.fail(f"flowgraph did not finish within {TIMEOUT} s")


def _through(block, x: np.ndarray) -> np.ndarray:
    tb = gr.top_block()
    src = blocks.vector_source_c(np.asarray(x, np.complex64).tolist())
    snk = blocks.vector_sink_c()
    tb.connect(src, block, snk)
    _run(tb)
    return np.array(snk.data(), dtype=np.complex64)


def test_gnuradio_noise_source_amplitude_is_total_complex_std():
    """The fact the mapping N0 -> amplitude sqrt(N0) rests on: variance a**2 in total, a**2/2 per part."""
    tb = gr.top_block()
    src = analog.noise_source_c(analog.GR_GAUSSIAN, 0.5, 3)
    head = blocks.head(gr.sizeof_gr_complex, 200_000)
    snk = blocks.vector_sink_c()
    tb.connect(src, head, snk)
    _run(tb)
    w = np.array(snk.data())
    assert np.mean(np.abs(w) ** 2) == pytest.approx(0.25, rel=0.02)
    assert np.var(w.real) == pytest.approx(0.125, rel=0.02)
    assert src.amplitude() == pytest.approx(0.5 / np.sqrt(2))  # the getter reads back the per-part std


def test_live_snr_setter_sets_measured_noise_power():
    ch = semcom_channel(snr_db=30.0, seed=4)
    ch.set_snr_db(3.0)
    y = _through(ch, np.zeros(100_000))
    assert np.mean(np.abs(y) ** 2) == pytest.approx(noise_variance(3.0), rel=0.02)


@pytest.mark.parametrize("snr_db", [7.0, 20.0])
def test_awgn_only_noise_power_matches_n0(snr_db):
    """Kills the 3 dB error: measured noise power within 2% of N0 = 10^(-SNR/10), like numpy."""
    n = 200_000
    y = _through(semcom_channel(snr_db=snr_db, seed=1), np.zeros(n))
    ref = simulate(np.zeros(n, np.complex64), {"snr_db": snr_db, "seed": 1})
    n0 = noise_variance(snr_db)
    assert y.size == n
    assert np.mean(np.abs(y) ** 2) == pytest.approx(n0, rel=0.02)
    assert np.mean(np.abs(ref) ** 2) == pytest.approx(n0, rel=0.02)
    assert np.var(y.real) == pytest.approx(n0 / 2, rel=0.02)
    assert np.var(y.imag) == pytest.approx(n0 / 2, rel=0.02)


def test_cfo_only_phase_slope_matches_numpy():
    n, cfo = 50_000, 0.3
    y = _through(semcom_channel(cfo=cfo, fft_len=64), np.ones(n))
    ref = simulate(np.ones(n, np.complex64), {"cfo": cfo, "fft_len": 64})
    slope = np.angle(y[1:] * np.conj(y[:-1]))
    np.testing.assert_allclose(slope, 2 * np.pi * cfo / 64, atol=1e-4)
    np.testing.assert_allclose(y, ref, atol=1e-3)  # same phase, sample by sample


@pytest.mark.parametrize("cfg", [
    {"profile": "outdoor", "fading": "none", "timing_offset": 13.3},  # C++ delay + fir_filter_ccc
    {"profile": "indoor", "fading": "none", "timing_offset": 3},
    {"profile": "outdoor", "fading": "rayleigh", "block_len": 500, "timing_offset": 5.5, "seed": 3},  # Python
])
def test_multipath_and_timing_equal_numpy(cfg):
    x = np.random.default_rng(0).standard_normal(2 * 20_000).view(np.complex128)
    ch = semcom_channel(**cfg)
    y = _through(ch, x)
    ref = simulate(x, cfg)
    assert y.size >= ref.size  # blocks.delay also lets the delayed tail out at the end
    np.testing.assert_allclose(y[:ref.size], ref, atol=1e-5)
    if cfg.get("fading", "none") != "none":  # genie knowledge of the block-fading taps
        h = ch.simulator.impulse_response(19_999)
        assert h.size > 1 and np.isfinite(h).all()


def test_sro_stretches_like_numpy():
    n, f0, ppm = 50_000, 0.05, 100.0
    x = np.exp(2j * np.pi * f0 * np.arange(n))
    y = _through(semcom_channel(sro_ppm=ppm), x)
    phase = np.unwrap(np.angle(y[100:-100]))
    f_out = np.polyfit(np.arange(phase.size), phase, 1)[0] / (2 * np.pi)
    assert f_out == pytest.approx(f0 / (1 + ppm * 1e-6), abs=5e-7)  # the unstretched tone is 5e-6 away


def test_phase_noise_increment_variance():
    linewidth, rate = 1000.0, 1e6
    y = _through(semcom_channel(phase_noise=linewidth, sample_rate=rate, seed=2), np.ones(200_000))
    d = np.diff(np.unwrap(np.angle(y)))
    assert np.var(d) == pytest.approx(2 * np.pi * linewidth / rate, rel=0.05)


def test_setters_map_units_and_validate():
    ch = semcom_channel(snr_db=10.0, cfo=0.0)
    assert ch.noise_voltage() == pytest.approx(np.sqrt(0.1), rel=1e-6)
    ch.set_snr_db(0.0)
    assert ch.noise_voltage() == pytest.approx(1.0, rel=1e-6)
    ch.set_snr_db(None)
    assert ch.noise_voltage() == 0.0
    ch.set_cfo(-1.5)
    assert ch.config.cfo == -1.5
    with pytest.raises(ChannelConfigError, match=r"channel\.snr_db"):
        ch.set_snr_db("loud")
    with pytest.raises(ChannelConfigError, match=r"channel\.bogus"):
        semcom_channel(bogus=1)


def test_config_path_reads_the_channel_section():
    path = REPO / "hw_configs" / "loopback.yaml"
    if not path.exists():
        pytest.skip("no hw_configs/loopback.yaml")
    from semcom.config import load_config

    ch = semcom_channel(config_path=str(path), snr_db=-3.0)  # fields are ignored with a file
    assert ch.config == load_config(str(path)).channel


_GRC = """\
options:
  parameters:
    id: semcom_channel_check
    title: semcom channel check
    generate_options: no_gui
    output_language: python
    run_options: run
    category: Custom
  states: {coordinate: [8, 8], rotation: 0, state: enabled}
blocks:
- name: samp_rate
  id: variable
  parameters: {value: '2e6'}
  states: {coordinate: [200, 8], rotation: 0, state: enabled}
- name: src
  id: blocks_vector_source_x
  parameters: {type: complex, vector: '[1.0] * 1000', repeat: 'False', tags: '[]', vlen: '1'}
  states: {coordinate: [8, 120], rotation: 0, state: enabled}
- name: chan
  id: semcom_channel
  parameters: {snr_db: '15.0', cfo: '0.2', profile: '"outdoor"', fading: '"rayleigh"', block_len: '400',
               timing_offset: '2.5'}
  states: {coordinate: [200, 120], rotation: 0, state: enabled}
- name: snk
  id: blocks_null_sink
  parameters: {type: complex, vlen: '1', num_inputs: '1', bus_structure_sink: '[[0,],]'}
  states: {coordinate: [400, 120], rotation: 0, state: enabled}
connections:
- [src, '0', chan, '0']
- [chan, '0', snk, '0']
metadata:
  file_format: 1
"""


def test_grc_block_compiles_and_runs(tmp_path):
    grcc = "/usr/bin/grcc"
    if not os.path.exists(grcc):
        pytest.skip("grcc not installed")
    (tmp_path / "home").mkdir()
    grc = tmp_path / "check.grc"
    grc.write_text(_GRC)
    env = dict(os.environ, HOME=str(tmp_path / "home"), GRC_BLOCKS_PATH=str(REPO / "blocks" / "grc"))
    r = subprocess.run([grcc, "-o", str(tmp_path), str(grc)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    script = tmp_path / "semcom_channel_check.py"
    assert "semcom_channel(config_path=''" in script.read_text()
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
