"""GNU Radio stand-ins for gr-iio's ``fmcomms2_source/sink_fc32`` and gr-uhd's ``usrp_source/sink``.

Same setters as the real blocks (so ``blocks/gr/radio.py`` configures them with the same code),
samples through ``semcom.radio.fakes.FakeAir``:

* ``FakeRadioSink`` (complex in): appends every input sample to the air as a one-shot stream,
  a whole burst at a time (up to its ``tx_eob`` tag: a receiver reading faster than the
  flowgraph hands samples over must never see half a burst followed by silence, which a real
  device streaming a burst does not produce); counts ``tx_sob``/``tx_eob`` bursts. The UHD
  flavour has the ``async_msgs`` message port and publishes an ``underflow`` event every
  ``underflow_every`` bursts (0: never) in the layout of gr-uhd
  (``(uhd_async_msg . ((event_code . underflow) ...))``).
* ``FakeRadioSource`` (complex out): reads the air at about ``speed * sample_rate`` samples per
  second of wall clock (a real radio delivers at the sample rate, noise when nothing is sent);
  with a file-backed air it polls for another process's transmission every 50 ms.
  The UHD flavour tags ``rx_time`` on its first sample and again after every overflow injected
  by ``FakeAir(overflow_every=...)``, as gr-uhd does after printing 'O'; the IIO flavour has no
  overflow indication, like gr-iio.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pmt
from gnuradio import gr

from .fakes import REF_RX_GAIN_DB, FakeAir

__all__ = ["FakeRadioSink", "FakeRadioSource"]

_RX_TIME = pmt.intern("rx_time")
_SOB = pmt.intern("tx_sob")
_EOB = pmt.intern("tx_eob")


class _Setters:
    """The configuration calls of gr-iio and gr-uhd blocks, recorded in ``settings``."""

    flavour = "uhd"

    def _init_settings(self) -> None:
        self.settings: dict[str, Any] = {"sample_rate": 1e6, "gain": REF_RX_GAIN_DB, "agc": "manual"}
        self.gain_history: list[float] = []

    # gr-uhd
    def set_samp_rate(self, rate: float) -> None:
        self.settings["sample_rate"] = float(rate)

    def set_center_freq(self, freq: Any, chan: int = 0) -> None:
        self.settings["center_freq"] = freq

    def set_gain(self, *a: Any) -> None:  # uhd: (gain, chan); iio source: (chan, gain)
        g = float(a[0]) if self.flavour == "uhd" else float(a[1])
        self.settings["gain"] = g
        self.gain_history.append(g)

    def set_rx_agc(self, enable: bool, chan: int = 0) -> None:
        self.settings["agc"] = "fast_attack" if enable else "manual"

    def set_antenna(self, ant: str, chan: int = 0) -> None:
        self.settings["antenna"] = ant

    def set_bandwidth(self, *a: Any) -> None:  # not on gr-iio's source (3.10.5): see blocks/gr/radio.py
        self.settings["bandwidth"] = a[0]

    def set_clock_source(self, src: str, mboard: int = 0) -> None:
        self.settings["clock_source"] = src

    def set_time_source(self, src: str, mboard: int = 0) -> None:
        self.settings["time_source"] = src

    # gr-iio
    def set_frequency(self, f: int) -> None:
        self.settings["center_freq"] = f

    def set_samplerate(self, rate: int) -> None:
        self.settings["sample_rate"] = float(rate)

    def set_gain_mode(self, chan: int, mode: str) -> None:
        self.settings["agc"] = mode

    def set_attenuation(self, chan: int, att: float) -> None:
        self.settings["gain"] = -float(att)
        self.gain_history.append(-float(att))

    def set_filter_params(self, *a: Any) -> None:
        self.settings["filter"] = a

    def set_quadrature(self, on: bool) -> None:
        self.settings["quadrature"] = on

    def set_rfdc(self, on: bool) -> None:
        self.settings["rfdc"] = on

    def set_bbdc(self, on: bool) -> None:
        self.settings["bbdc"] = on


class FakeRadioSink(gr.sync_block, _Setters):
    """Complex samples in -> ``air`` (one-shot stream). ``flavour``: ``uhd`` or ``iio``."""

    def __init__(self, air: FakeAir, flavour: str = "uhd", underflow_every: int = 0):
        gr.sync_block.__init__(self, name=f"fake_{flavour}_sink", in_sig=[np.complex64], out_sig=None)
        self.flavour = flavour
        self.air = air
        self._init_settings()
        self.underflow_every = int(underflow_every)
        self.bursts = 0
        self.samples = 0
        self._held: list[np.ndarray] = []  # samples of the burst in progress
        self._held_n = 0
        if flavour == "uhd":
            self.message_port_register_out(pmt.intern("async_msgs"))

    def set_gain(self, *a: Any) -> None:
        _Setters.set_gain(self, *a)
        self.air.set_tx_gain(self.settings["gain"])

    def set_attenuation(self, chan: int, att: float) -> None:
        _Setters.set_attenuation(self, chan, att)
        self.air.set_tx_gain(self.settings["gain"])

    MAX_HELD = 1 << 20  # samples held without a tx_eob before they go out anyway (untagged streams)

    def _release(self, x: np.ndarray, end: bool) -> None:
        self._held.append(np.array(x))
        self._held_n += len(x)
        if end or self._held_n >= self.MAX_HELD:
            self.air.transmit(np.concatenate(self._held), self.settings["gain"], cyclic=False, append=True)
            self._held, self._held_n = [], 0

    def work(self, input_items, output_items):
        x = input_items[0]
        self.samples += len(x)
        start, done = self.nitems_read(0), 0
        for tag in sorted(self.get_tags_in_window(0, 0, len(x)), key=lambda t: t.offset):
            if pmt.eq(tag.key, _EOB):
                end = int(tag.offset - start) + 1
                self._release(x[done:end], True)
                done = end
                self.bursts += 1
                if self.flavour == "uhd" and self.underflow_every and self.bursts % self.underflow_every == 0:
                    event = pmt.make_dict()
                    event = pmt.dict_add(event, pmt.intern("event_code"), pmt.intern("underflow"))
                    event = pmt.dict_add(event, pmt.intern("channel"), pmt.from_long(0))
                    self.message_port_pub(pmt.intern("async_msgs"), pmt.cons(pmt.intern("uhd_async_msg"), event))
        if done < len(x):
            self._release(x[done:], False)
        return len(x)


class FakeRadioSource(gr.sync_block, _Setters):
    """``air`` -> complex samples at about ``speed`` x real time. ``flavour``: ``uhd`` or ``iio``."""

    def __init__(self, air: FakeAir, flavour: str = "uhd", speed: float = 1.0):
        gr.sync_block.__init__(self, name=f"fake_{flavour}_source", in_sig=None, out_sig=[np.complex64])
        self.flavour = flavour
        self.air = air
        self.speed = float(speed)
        self._init_settings()
        self._t0: float | None = None
        self._overflows = 0

    def work(self, input_items, output_items):
        out = output_items[0]
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = self._polled = now
            self.air.reset_receiver()
            self.air.load(initial=True)
        elif now - self._polled > 0.05:  # another process may have started transmitting
            self._polled = now
            self.air.load()
        allowed = int((now - self._t0) * self.settings["sample_rate"] * self.speed) - int(self.nitems_written(0))
        n = min(len(out), max(allowed, 0))
        if n <= 0:
            time.sleep(0.002)
            return 0
        if self.nitems_written(0) == 0 and self.flavour == "uhd":
            self.add_item_tag(0, 0, _RX_TIME, pmt.make_tuple(pmt.from_uint64(0), pmt.from_double(0.0)))
        before = self.air.overflows
        out[:n] = self.air.receive(n, self.settings["gain"], self.settings["sample_rate"], self.settings["agc"])
        if self.air.overflows != before and self.flavour == "uhd":
            t = (self.nitems_written(0)) / self.settings["sample_rate"]
            self.add_item_tag(0, self.nitems_written(0), _RX_TIME,
                              pmt.make_tuple(pmt.from_uint64(int(t)), pmt.from_double(t - int(t))))
        return n
