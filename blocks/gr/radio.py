"""Radio sources and sinks for GNU Radio flowgraphs, built from the validated ``radio`` config.

``make_source(cfg)`` / ``make_sink(cfg)`` return a configured block for ``cfg.radio.device``:

* ``pluto``: gr-iio ``fmcomms2_source_fc32(uri, [True, True], buffer_size)`` /
  ``fmcomms2_sink_fc32(uri, [True, True], buffer_size, False)`` (LO, rate, RF bandwidth, gain
  mode + manual gain, attenuation = ``-tx_gain_db``). gr-iio gives no overflow indication, its
  3.10.5 source binds no ``set_bandwidth`` (the RX analog filter keeps the device setting), and
  its sink pushes only whole buffers of ``radio.buffer_size`` samples: the tail of a finite
  transmission waits for the next buffer (PlutoSDR burst mode, ``semcom.radio.pluto_burst``,
  is the robust Pluto path).
* ``uhd``: gr-uhd ``usrp_source/usrp_sink(args, stream_args(fc32, [0]))`` (clock/time source,
  rate, ``tune_request``, gain or RX AGC, antennas, bandwidth). The sink bursts on the
  ``tx_sob``/``tx_eob`` tags of ``semcom_ofdm_tx``; underflows come as ``async_msgs``.
* ``fake_pluto`` / ``fake_uhd``: ``semcom.radio.gr_fakes`` blocks on a ``FakeAir`` (pass
  ``air=`` to share one between a sink and a source in one process).

Device libraries are imported when a block is made (``gnuradio.iio``, ``gnuradio.uhd``), never
at module import; a device that cannot be opened raises ``semcom.radio.RadioError`` naming the
address. ``RadioRx`` / ``RadioTx`` are the top blocks of ``semcom rx`` / ``semcom tx`` in GNU
Radio mode: they add the AGC settle (``skiphead`` of ``rx_settle_s``), the TX gain ramp, an
overflow counter (``rx_time`` tags after the first, gr-uhd's mark of an 'O') and an underflow
counter (``async_msgs`` events).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pmt
from gnuradio import blocks, gr

from semcom.radio import RadioError
from semcom.radio.limits import hardware_kind

from .ofdm_rx import BUFFER_ITEMS, semcom_ofdm_rx
from .ofdm_tx import semcom_ofdm_tx
from .topblocks import FrameCollector

__all__ = ["make_source", "make_sink", "OverflowCounter", "UnderflowCounter", "RadioRx", "RadioTx",
           "tx_gain_ramp", "PAPR_HEADROOM"]

PAPR_HEADROOM = 4.0  # amplitude (12 dB): peak / RMS of the OFDM bursts that is mapped to radio.tx_peak


def _where(r) -> str:
    return f"{r.device} at {r.uri or 'the default address'!r}"


def _open(r, what: str, fn, *a):
    try:
        return fn(*a)
    except Exception as e:  # noqa: BLE001 (RuntimeError from UHD/IIO constructors)
        raise RadioError(f"cannot open {what} on {_where(r)}: {str(e).strip().splitlines()[-1] if str(e).strip() else e}"
                         f". Check radio.uri and the cable; `semcom probe` lists reachable devices") from None


def _fake_air(cfg, air):
    if air is not None:
        return air
    from semcom.radio.fakes import default_air_dir, fake_air_for

    return fake_air_for(cfg, path=default_air_dir())


def _make(cfg, air, rx: bool, speed: float = 1.0, underflow_every: int = 0):
    r = cfg.radio
    kind = hardware_kind(r.device)
    if kind is None:
        raise RadioError(f"radio.device {r.device!r} is not a radio (pluto, uhd, fake_pluto, fake_uhd)")
    side = "source" if rx else "sink"
    if r.device.startswith("fake_"):
        from semcom.radio import gr_fakes
        from semcom.radio.fakes import check_fake_uri

        _open(r, f"the fake {side}", check_fake_uri, r.uri, kind)
        flavour = "iio" if kind == "pluto" else "uhd"
        blk = (gr_fakes.FakeRadioSource(_fake_air(cfg, air), flavour, speed) if rx
               else gr_fakes.FakeRadioSink(_fake_air(cfg, air), flavour, underflow_every))
    elif kind == "pluto":
        from gnuradio import iio

        make = iio.fmcomms2_source_fc32 if rx else iio.fmcomms2_sink_fc32
        extra = () if rx else (False,)  # sink: not cyclic
        blk = _open(r, f"the gr-iio {side}", make, r.uri or "", [True, True], r.buffer_size, *extra)
    else:
        from gnuradio import uhd

        make = uhd.usrp_source if rx else uhd.usrp_sink
        extra = () if rx else ("",)  # sink: no length tag, bursts from tx_sob/tx_eob
        blk = _open(r, f"the gr-uhd {side}", make, r.uri or "", uhd.stream_args(cpu_format="fc32", channels=[0]),
                    *extra)
    _configure(blk, cfg, rx=rx)
    return blk


def make_source(cfg, air=None, speed: float = 1.0):
    """A configured RX block for ``cfg.radio`` (see the module docstring); ``air``/``speed``: fakes only."""
    return _make(cfg, air, True, speed=speed)


def make_sink(cfg, air=None, underflow_every: int = 0):
    """A configured TX block for ``cfg.radio``; its gain starts at the bottom of the ramp."""
    return _make(cfg, air, False, underflow_every=underflow_every)


def tx_gain_ramp(cfg) -> list[float]:
    """TX gains (dB, device scale) of the ramp ending at ``radio.tx_gain_db``."""
    from semcom.radio.limits import limits_for
    from semcom.radio.pluto_burst import ramp_steps

    r = cfg.radio
    lim = limits_for(r.device, r.model, r.daughterboard)
    return ramp_steps(r.tx_gain_db, r.tx_ramp_steps, lim.tx_gain[0] if lim else r.tx_gain_db - 20)


def _set_tx_gain(blk, kind: str, g: float) -> None:
    if kind == "pluto":
        blk.set_attenuation(0, -g)
    else:
        blk.set_gain(g, 0)


def _configure(blk, cfg, rx: bool) -> None:
    r = cfg.radio
    kind = hardware_kind(r.device)
    bw = r.rf_bandwidth or r.sample_rate
    try:
        if kind == "pluto":
            blk.set_samplerate(int(r.sample_rate))
            blk.set_frequency(int(r.center_freq))
            if hasattr(blk, "set_bandwidth"):  # gr-iio 3.10.5 binds it on the sink only
                blk.set_bandwidth(int(bw))
            blk.set_filter_params("Auto", "", 0, 0)
            if rx:
                blk.set_quadrature(True)
                blk.set_rfdc(True)
                blk.set_bbdc(True)
                blk.set_gain_mode(0, r.rx_agc)
                if r.rx_agc == "manual":
                    blk.set_gain(0, r.rx_gain_db)
            else:
                _set_tx_gain(blk, kind, tx_gain_ramp(cfg)[0])
            return
        if r.clock_source:
            blk.set_clock_source(r.clock_source, 0)
        if r.time_source:
            blk.set_time_source(r.time_source, 0)
        blk.set_samp_rate(r.sample_rate)
        if r.device == "uhd":
            from gnuradio import uhd

            blk.set_center_freq(uhd.tune_request(r.center_freq, 0.0), 0)
        else:
            blk.set_center_freq(r.center_freq, 0)
        blk.set_bandwidth(bw, 0)
        ant = r.rx_antenna if rx else r.tx_antenna
        if ant:
            blk.set_antenna(ant, 0)
        if rx:
            if r.rx_agc != "manual":
                blk.set_rx_agc(True, 0)
            else:
                blk.set_gain(r.rx_gain_db, 0)
        else:
            _set_tx_gain(blk, kind, tx_gain_ramp(cfg)[0])
    except Exception as e:  # noqa: BLE001
        raise RadioError(f"{_where(r)} refused a setting: {e}") from None


class OverflowCounter(gr.sync_block):
    """Sink counting RX overflows: every ``rx_time`` tag after the first marks a discontinuity
    (gr-uhd re-tags ``rx_time`` after each overflow). Cheap: only tags are looked at."""

    def __init__(self):
        gr.sync_block.__init__(self, name="semcom_overflow_counter", in_sig=[np.complex64], out_sig=None)
        self.rx_time_tags = 0

    @property
    def overflows(self) -> int:
        return max(0, self.rx_time_tags - 1)

    def work(self, input_items, output_items):
        n = len(input_items[0])
        self.rx_time_tags += len(self.get_tags_in_window(0, 0, n, pmt.intern("rx_time")))
        return n


class UnderflowCounter(gr.basic_block):
    """Message sink for gr-uhd's ``async_msgs``: counts ``underflow`` / ``underflow_in_packet`` events."""

    def __init__(self):
        gr.basic_block.__init__(self, name="semcom_underflow_counter", in_sig=None, out_sig=None)
        self.underflows = 0
        self.events = 0
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def _handle(self, msg) -> None:
        self.events += 1
        if "underflow" in pmt.write_string(msg):
            self.underflows += 1


class RadioRx(gr.top_block):
    """radio source -> skiphead(AGC settle) -> ``semcom_ofdm_rx`` -> ``FrameCollector``; overflow counter."""

    def __init__(self, cfg, air=None, speed: float = 1.0):
        gr.top_block.__init__(self, "semcom_radio_rx")
        self.cfg = cfg
        self.source = make_source(cfg, air, speed)
        self.source.set_min_output_buffer(BUFFER_ITEMS)
        self.settle_samples = int(round(cfg.radio.rx_settle_s * cfg.radio.sample_rate))
        self.skip = blocks.skiphead(gr.sizeof_gr_complex, self.settle_samples)
        self.rx = semcom_ofdm_rx(cfg.frame)
        self.collector = FrameCollector()
        self.overflow = OverflowCounter()
        self.connect(self.source, self.skip, self.rx)
        self.connect(self.source, self.overflow)
        self.msg_connect(self.rx, "out", self.collector, "in")

    def settled(self) -> bool:
        """True once the AGC settle samples were skipped (start a transmitter after this)."""
        return int(self.overflow.nitems_read(0)) >= self.settle_samples

    def overflows(self) -> int | None:
        """Overflows seen (None: the device cannot tell, i.e. gr-iio / Pluto)."""
        return None if hardware_kind(self.cfg.radio.device) == "pluto" else self.overflow.overflows


class RadioTx(gr.top_block):
    """``semcom_ofdm_tx`` -> radio sink; ``ramp()`` steps the TX gain up; underflow counter (UHD)."""

    def __init__(self, cfg, air=None, underflow_every: int = 0):
        gr.top_block.__init__(self, "semcom_radio_tx")
        self.cfg = cfg
        self.tx = semcom_ofdm_tx(cfg.frame)
        self.sink = make_sink(cfg, air, underflow_every)
        # unit-power symbols give an RMS of about sqrt(n_used / fft_len) <= 1; OFDM peaks stay
        # within PAPR_HEADROOM of that almost always, so the peak lands near radio.tx_peak
        self.scale = blocks.multiply_const_cc(cfg.radio.tx_peak / PAPR_HEADROOM)
        self.connect(self.tx, self.scale, self.sink)
        self.underflow = UnderflowCounter()
        self._has_async = hardware_kind(cfg.radio.device) == "uhd"
        if self._has_async:
            self.msg_connect(self.sink, "async_msgs", self.underflow, "in")
        self.gains: list[float] = []

    def ramp(self, sleep=time.sleep) -> list[float]:
        """Step the TX gain from the bottom of the ramp to ``radio.tx_gain_db`` over ``tx_ramp_s``."""
        steps = tx_gain_ramp(self.cfg)
        kind = hardware_kind(self.cfg.radio.device)
        for g in steps:
            _set_tx_gain(self.sink, kind, g)
            self.gains.append(g)
            sleep(self.cfg.radio.tx_ramp_s / len(steps))
        return steps

    def send(self, data: np.ndarray, **meta: Any) -> None:
        self.tx.send(data, **meta)

    def underflows(self) -> int | None:
        """Underflow events (None: gr-iio reports none)."""
        return self.underflow.underflows if self._has_async else None
