"""Test doubles for the radio libraries: the TX->RX code paths run without hardware.

``FakeAir`` is the medium: a transmitter stores what it sends (a cyclic waveform, like the
Pluto's cyclic TX buffer, or a one-shot burst stream), a receiver reads it back through the
numpy ``ChannelSimulator`` (``blocks/phy/channel.py``: multipath, CFO, AWGN ... of the config's
``channel`` section). The state lives in a directory (``SEMCOM_FAKE_AIR``, default
``$TMPDIR/semcom-fake-air-$UID``) so ``semcom tx`` and ``semcom rx`` can run as two processes
(a receiver touches ``rx.listening`` there when it starts).

Levels (all complex baseband, 1.0 = full scale): the waveform the transmitter wrote is scaled
by ``10**((tx_gain_db - ref_tx_gain_db) / 20) / REF_RMS``, i.e. a signal of RMS ``REF_RMS`` (-20
dBFS) at the reference TX gain (``fake_air_for``: the config's safety cap ``tx_gain_max_db``)
arrives at ``channel.snr_db`` Es/N0 per unit-power symbol. So raising the TX gain by 3 dB raises the SNR by 3 dB, as over the air.
The RX gain (relative to ``REF_RX_GAIN_DB``) scales the received samples, which clip at full
scale. With a non-manual AGC the first ``AGC_SETTLE_S`` after the receiver starts come out
with a decaying gain error (4x to 1x), which is why receivers discard ``radio.rx_settle_s``.

Injection at the library boundary:

* ``FakePluto`` has the attributes and methods of ``adi.Pluto`` that ``pluto_burst`` uses;
  ``fake_pluto_factory(air)`` returns a callable to pass as ``PlutoBurst(..., factory=...)``.
  ``radio.device: fake_pluto`` selects it from the config.
* ``semcom.radio.gr_fakes`` (GNU Radio blocks) stand in for ``iio.fmcomms2_source/sink_fc32``
  and ``uhd.usrp_source/sink``; ``blocks/gr/radio.py`` builds them for ``fake_pluto``/``fake_uhd``.

Failure injection: ``FakeAir(unplug_after_reads=k)`` raises ``OSError(ENODEV)`` on the k-th
read (a device unplugged mid-run), ``FakeAir(overflow_every=n)`` drops samples every ``n``
read samples (the UHD fake then tags ``rx_time`` again, as gr-uhd does after an 'O'). A URI
not in ``FAKE_URIS`` (or ``SEMCOM_FAKE_URIS``, comma-separated) fails like a missing device.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from semcom.blocks.phy.channel import ChannelSimulator

__all__ = ["FakeAir", "FakePluto", "fake_pluto_factory", "fake_air_for", "default_air_dir", "check_fake_uri", "FAKE_URIS",
           "REF_RMS", "REF_RX_GAIN_DB", "AGC_SETTLE_S", "PLUTO_TX_FULL_SCALE", "PLUTO_RX_FULL_SCALE"]

REF_RMS = 0.1                  # full-scale units: this RMS at the reference TX gain -> channel.snr_db
REF_RX_GAIN_DB = 40.0          # RX gain at which the received level equals the channel output
AGC_SETTLE_S = 0.01            # seconds of AGC gain error after a receiver starts (non-manual AGC)
PLUTO_TX_FULL_SCALE = 2 ** 15  # adi.Pluto.tx() takes int16-range complex values
PLUTO_RX_FULL_SCALE = 2 ** 11  # adi.Pluto.rx() returns 12-bit ADC counts
FAKE_URIS = (None, "", "ip:192.168.2.1", "ip:pluto.local", "usb:", "type=b200", "type=usrp2",
             "addr=192.168.10.2", "fake")  # the shipped configs' addresses work with the fakes


def fake_air_for(cfg, path: str | Path | None = None, **kw: Any) -> "FakeAir":
    """The ``FakeAir`` of a config: its ``channel``, reference TX gain = ``radio.tx_gain_max_db`` (the
    safety cap; the device maximum without one), so at the cap the link reaches ``channel.snr_db``."""
    from .limits import limits_for  # noqa: PLC0415

    r = cfg.radio
    ref = r.tx_gain_max_db
    if ref is None:
        lim = limits_for(r.device, r.model, r.daughterboard)
        ref = lim.tx_gain[1] if lim else r.tx_gain_db
    return FakeAir(cfg.channel, ref_tx_gain_db=ref, path=path, **kw)


def default_air_dir() -> Path:
    """``$SEMCOM_FAKE_AIR`` or ``$TMPDIR/semcom-fake-air-$UID``."""
    env = os.environ.get("SEMCOM_FAKE_AIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"semcom-fake-air-{os.getuid()}"


def check_fake_uri(uri: str | None, what: str) -> None:
    """Fail like the real library for an address the fake does not know."""
    known = list(FAKE_URIS) + [u for u in os.environ.get("SEMCOM_FAKE_URIS", "").split(",") if u]
    if uri in known or (uri or "").startswith("usb:") or (uri or "").startswith("fake"):
        return
    if what == "pluto":
        raise OSError(errno.ETIMEDOUT, f"Connection timed out (no IIO context at {uri!r})")
    raise RuntimeError(f"LookupError: KeyError: No devices found for ----->\nDevice Address:\n    {uri}")


class FakeAir:
    """Shared medium between a fake transmitter and a fake receiver (see the module docstring).

    Parameters
    ----------
    channel : ``ChannelConfig`` / dict / None: impairments applied at the receiver.
    ref_tx_gain_db : TX gain (dB) at which an RMS of ``REF_RMS`` arrives at ``channel.snr_db``.
    path : directory holding the waveform (None: in memory only).
    unplug_after_reads : raise ``OSError(ENODEV)`` from this read on (None: never).
    overflow_every : drop ``overflow_drop`` samples after every this many read samples (0: never).
    """

    def __init__(self, channel: Any = None, ref_tx_gain_db: float = -10.0, path: str | Path | None = None,
                 unplug_after_reads: int | None = None, overflow_every: int = 0, overflow_drop: int = 4096):
        self.channel = channel
        self.ref_tx_gain_db = float(ref_tx_gain_db)
        self.path = Path(path) if path is not None else None
        self.unplug_after_reads = unplug_after_reads
        self.overflow_every = int(overflow_every)
        self.overflow_drop = int(overflow_drop)
        self._lock = threading.Lock()
        self._wave = np.zeros(0, np.complex64)
        self._cyclic = True
        self._tx_gain_db = self.ref_tx_gain_db
        self._transmitting = False
        self._session = uuid.uuid4().hex  # identifies this transmitter in the shared directory
        self._seen_session: str | None = None
        self._seen_mtime: int | None = None
        self.reset_receiver()
        self.reads = 0
        self.overflows = 0
        self.gain_history: list[float] = []

    # ------------------------------------------------------------------ transmitter side
    def transmit(self, iq: np.ndarray, tx_gain_db: float, cyclic: bool = True, append: bool = False) -> None:
        """Put ``iq`` (complex, full-scale units) on the air; ``append`` adds to a one-shot stream."""
        iq = np.asarray(iq, np.complex64).ravel()
        with self._lock:
            self._wave = np.concatenate([self._wave, iq]) if append else iq.copy()
            self._cyclic = bool(cyclic)
            self._tx_gain_db = float(tx_gain_db)
            self._transmitting = True
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            tmp = self.path / "air.npy.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, self._wave)
            os.replace(tmp, self.path / "air.npy")
            self._write_info()

    def set_tx_gain(self, tx_gain_db: float) -> None:
        self._tx_gain_db = float(tx_gain_db)
        self.gain_history.append(float(tx_gain_db))
        if self.path is not None and self._transmitting:  # never touch another transmitter's files
            self._write_info()

    def _write_info(self) -> None:
        tmp = self.path / "air.json.tmp"
        tmp.write_text(json.dumps({"cyclic": self._cyclic, "tx_gain_db": self._tx_gain_db, "session": self._session}))
        os.replace(tmp, self.path / "air.json")

    def stop_transmit(self) -> None:
        with self._lock:
            self._wave = np.zeros(0, np.complex64)
            self._transmitting = False
        if self.path is not None:
            for name in ("air.npy", "air.json"):
                (self.path / name).unlink(missing_ok=True)

    def load(self, initial: bool = False) -> bool:
        """Pick up what another process transmits (``path``); False if nothing is on the air.

        Cheap when nothing changed (one ``stat``). A new transmission (new TX session) plays from
        its start, except a one-shot stream already there when the receiver starts
        (``initial``): like a real receiver, it missed that one.
        """
        if self.path is None:
            return self._wave.size > 0
        info_path = self.path / "air.json"
        try:
            mtime = info_path.stat().st_mtime_ns
            if mtime == self._seen_mtime:
                return self._wave.size > 0
            info = json.loads(info_path.read_text())
            wave = np.load(self.path / "air.npy")
        except (OSError, ValueError):  # nothing sent yet, or the sender just stopped
            return self._wave.size > 0
        with self._lock:
            self._seen_mtime = mtime
            self._wave = wave
            self._cyclic, self._tx_gain_db = bool(info["cyclic"]), float(info["tx_gain_db"])
            if info.get("session") != self._seen_session:
                self._seen_session = info.get("session")
                self._pos = wave.size if (initial and not self._cyclic) else 0
        return True

    # ------------------------------------------------------------------ receiver side
    def reset_receiver(self) -> None:
        """A receiver (re)starts: fresh channel state, AGC settling again, read position 0."""
        self._sim = ChannelSimulator(self.channel)
        if self.path is not None:  # tells scripts and tests that a receiver listens
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "rx.listening").touch()
        self._pos = 0
        self._rx_count = 0
        self._since_overflow = 0

    def _air(self, n: int) -> np.ndarray:
        w = self._wave
        if w.size == 0:
            return np.zeros(n, np.complex64)
        if self._cyclic:
            idx = (self._pos + np.arange(n)) % w.size
            out = w[idx]
        else:
            out = np.zeros(n, np.complex64)  # one-shot stream: never read past what was sent yet
            seg = w[self._pos:self._pos + n]
            out[:seg.size] = seg
            self._pos += seg.size
            return out
        self._pos += n
        return out

    def receive(self, n: int, rx_gain_db: float = REF_RX_GAIN_DB, sample_rate: float = 1e6,
                agc: str = "manual") -> np.ndarray:
        """``n`` received complex64 samples (full-scale units, clipped at +-1 per rail).

        Raises ``OSError(ENODEV)`` once ``unplug_after_reads`` reads were made.
        """
        self.reads += 1
        if self.unplug_after_reads is not None and self.reads > self.unplug_after_reads:
            raise OSError(errno.ENODEV, "No such device (fake radio unplugged)")
        with self._lock:
            if self.overflow_every and self._since_overflow >= self.overflow_every:
                self._air(self.overflow_drop)  # samples lost while the host was late
                self._since_overflow = 0
                self.overflows += 1
            x = self._air(n).astype(np.complex128)
        g_tx = 10 ** ((self._tx_gain_db - self.ref_tx_gain_db) / 20) / REF_RMS
        y = self._sim.apply(x * g_tx) * REF_RMS  # noise N0 per sample relative to unit-power symbols
        g = 10 ** ((rx_gain_db - REF_RX_GAIN_DB) / 20)
        if agc != "manual":
            settle = int(AGC_SETTLE_S * sample_rate)
            k = self._rx_count + np.arange(n)
            g = g * np.where(k < settle, 1 + 3 * (1 - k / max(settle, 1)), 1.0)
        y = y * g
        self._rx_count += n
        self._since_overflow += n
        y = np.clip(y.real, -1, 1) + 1j * np.clip(y.imag, -1, 1)
        return y.astype(np.complex64)


class FakePluto:
    """Stands in for ``adi.Pluto(uri)`` (attributes used by ``semcom.radio.pluto_burst``).

    ``tx(data)`` takes complex values in int16 range (``PLUTO_TX_FULL_SCALE``); with
    ``tx_cyclic_buffer`` the buffer repeats until ``tx_destroy_buffer()``. ``rx()`` returns
    ``rx_buffer_size`` complex samples in 12-bit ADC counts. Setting a sample rate or an LO
    outside the device range raises ``OSError(EINVAL)`` as libiio does.
    """

    _RATE = (65.1e3, 61.44e6)

    def __init__(self, uri: str | None = None, air: FakeAir | None = None):
        check_fake_uri(uri, "pluto")
        self.uri = uri
        self.air = air if air is not None else FakeAir(path=default_air_dir())
        self._rate = 30.72e6
        self.rx_lo = int(2.4e9)
        self.tx_lo = int(2.4e9)
        self.rx_rf_bandwidth = int(18e6)
        self.tx_rf_bandwidth = int(18e6)
        self.gain_control_mode_chan0 = "slow_attack"
        self.rx_hardwaregain_chan0 = 71.0
        self._tx_gain = -10.0
        self.rx_buffer_size = 1024
        self.tx_cyclic_buffer = False
        self._tx_active = False
        self._rx_started = False
        self.tx_history: list[np.ndarray] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("rx_lo", "tx_lo"):
            lo = 70e6 if name == "rx_lo" else 47e6
            if not lo <= float(value) <= 6e9:
                raise OSError(errno.EINVAL, f"Invalid argument ({name} = {value})")
        object.__setattr__(self, name, value)

    @property
    def sample_rate(self) -> int:
        return int(self._rate)

    @sample_rate.setter
    def sample_rate(self, v: float) -> None:
        if not self._RATE[0] <= float(v) <= self._RATE[1]:
            raise OSError(errno.EINVAL, f"Invalid argument (sample_rate = {v})")
        self._rate = float(v)

    @property
    def tx_hardwaregain_chan0(self) -> float:
        return self._tx_gain

    @tx_hardwaregain_chan0.setter
    def tx_hardwaregain_chan0(self, v: float) -> None:
        if not -89.75 <= float(v) <= 0:
            raise OSError(errno.EINVAL, f"Invalid argument (tx_hardwaregain_chan0 = {v})")
        self._tx_gain = float(v)
        self.air.set_tx_gain(float(v))

    def tx(self, data: np.ndarray) -> None:
        if self._tx_active and self.tx_cyclic_buffer:
            raise Exception("TX buffer is cyclic and already active: call tx_destroy_buffer() first")
        x = np.asarray(data).ravel() / PLUTO_TX_FULL_SCALE
        self.tx_history.append(x.astype(np.complex64))
        self.air.transmit(x, self._tx_gain, cyclic=bool(self.tx_cyclic_buffer), append=not self.tx_cyclic_buffer)
        self._tx_active = True

    def tx_destroy_buffer(self) -> None:
        self._tx_active = False
        self.air.stop_transmit()

    def rx(self) -> np.ndarray:
        if not self._rx_started:
            self.air.reset_receiver()
            self.air.load(initial=True)
            self._rx_started = True
        gain = self.rx_hardwaregain_chan0 if self.gain_control_mode_chan0 == "manual" else REF_RX_GAIN_DB
        y = self.air.receive(int(self.rx_buffer_size), gain, self._rate, self.gain_control_mode_chan0)
        return (np.round(y.real * PLUTO_RX_FULL_SCALE) + 1j * np.round(y.imag * PLUTO_RX_FULL_SCALE))

    def rx_destroy_buffer(self) -> None:
        self._rx_started = False


def fake_pluto_factory(air: FakeAir):
    """A drop-in for ``adi.Pluto`` whose instances share ``air``."""
    def factory(uri: str | None = None) -> FakePluto:
        return FakePluto(uri, air=air)
    return factory
