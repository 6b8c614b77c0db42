"""PlutoSDR burst mode through pyadi-iio (``adi.Pluto``), no GNU Radio scheduler.

The transmitter loads one waveform into the Pluto's *cyclic* TX buffer (the hardware repeats it
until ``stop_tx``), the receiver captures a fixed number of samples. This is the robust way to
measure over USB 2 (which sustains only ~4-5 MS/s continuously): a frame is never cut by a
host underflow because the FPGA replays the buffer.

Both share the validated ``radio`` config section (``semcom.config.RadioConfig``):

* ``sample_rate``, ``center_freq`` (RX and TX LO), ``rf_bandwidth`` (default: sample rate);
* ``tx_gain_db`` = ``tx_hardwaregain_chan0`` (-89.75..0 dB: minus the attenuation), reached by a
  *gain ramp*: the buffer starts ``RAMP_SPAN_DB`` below and steps up in ``tx_ramp_steps`` over
  ``tx_ramp_s`` seconds (no full-power transient into a PA or a cabled receiver);
* ``tx_peak``: the waveform's peak is scaled to this fraction of full scale (int16);
* ``rx_agc`` -> ``gain_control_mode_chan0`` (``hybrid`` is Pluto's name too), ``rx_gain_db`` ->
  ``rx_hardwaregain_chan0`` in manual mode; ``buffer_size`` -> ``rx_buffer_size``;
* ``rx_settle_s``: captured samples discarded first (AGC settle, LO lock, stale buffers).

Overflows: libiio/pyadi-iio give no overflow indication (neither does gr-iio); a capture is one
or more whole kernel buffers, so ``rx_buffer_size >= n`` captures without gaps. Reported as
``overflows: None`` (unknown). Underflows cannot happen with the cyclic buffer.

Device errors (no device at the URI, a refused setting, the device lost mid-run) raise
``RadioError`` with the URI and what to check.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from . import RadioError
from .fakes import PLUTO_RX_FULL_SCALE, PLUTO_TX_FULL_SCALE, default_air_dir, fake_air_for, fake_pluto_factory

__all__ = ["PlutoBurst", "pluto_factory", "RAMP_SPAN_DB", "ramp_steps"]

MAX_CAPTURE = 1 << 27  # samples per burst capture (1 GiB of complex64)
RAMP_SPAN_DB = 20.0  # the TX gain ramp starts this far below the target (bounded by -89.75 dB)
PLUTO_MIN_TX_GAIN = -89.75


def ramp_steps(target_db: float, steps: int, lo_db: float = PLUTO_MIN_TX_GAIN) -> list[float]:
    """Gains (dB) of a ramp ending at ``target_db``: ``steps`` values from ``target - RAMP_SPAN_DB``."""
    start = max(lo_db, target_db - RAMP_SPAN_DB)
    if steps <= 1:
        return [float(target_db)]
    return [float(start + (target_db - start) * (i + 1) / steps) for i in range(steps)]


def pluto_factory(cfg) -> Callable[[str | None], Any]:
    """``adi.Pluto`` for ``radio.device: pluto``; a ``FakePluto`` on the shared fake air for
    ``fake_pluto`` (channel = the config's ``channel`` section)."""
    if cfg.radio.device == "fake_pluto":
        return fake_pluto_factory(fake_air_for(cfg, path=default_air_dir()))
    if cfg.radio.device != "pluto":
        raise RadioError(f"radio.device is {cfg.radio.device!r}: burst mode needs pluto or fake_pluto")
    try:
        import adi  # noqa: PLC0415 (optional, heavy)
    except ImportError as e:
        raise RadioError(f"pyadi-iio is not installed ({e}): pip install --no-deps pyadi-iio "
                         f"(with Debian's python3-libiio)") from None
    return adi.Pluto


class PlutoBurst:
    """One PlutoSDR driven by pyadi-iio from a ``Config``.

    ``factory(uri)`` opens the device (default ``pluto_factory(cfg)``: ``adi.Pluto`` or the
    fake); ``sleep`` is ``time.sleep`` (injectable so tests need not wait for the ramp).
    """

    def __init__(self, cfg, factory: Callable | None = None, sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.radio = cfg.radio
        self.factory = factory if factory is not None else pluto_factory(cfg)
        self.sleep = sleep
        self.sdr: Any = None
        self.tx_scale: float | None = None
        self.gain_log: list[float] = []
        self._tx_active = False  # this process loaded the cyclic TX buffer (close() then destroys it)

    def _where(self) -> str:
        return f"PlutoSDR at {self.radio.uri or 'the default URI'!r}"

    def _call(self, what: str, fn: Callable, *a):
        try:
            return fn(*a)
        except RadioError:
            raise
        except Exception as e:  # noqa: BLE001 (libiio raises OSError, pyadi plain Exception)
            hint = "is it still plugged in? `semcom probe` lists devices" if isinstance(e, OSError) else \
                "check the setting against the device range"
            raise RadioError(f"{self._where()}: {what} failed: {e} ({hint})") from None

    def open(self) -> "PlutoBurst":
        """Open the device and apply the config (rate, LOs, bandwidths, AGC/gain, buffer size)."""
        r = self.radio
        try:
            self.sdr = self.factory(r.uri)
        except Exception as e:  # noqa: BLE001
            raise RadioError(f"cannot open {self._where()}: {e}. Check radio.uri (ip:192.168.2.1, usb:x.y.z) and "
                             f"the cable; `semcom probe` lists reachable devices") from None
        bw = int(r.rf_bandwidth or r.sample_rate)
        for name, value in (("sample_rate", int(r.sample_rate)), ("rx_lo", int(r.center_freq)),
                            ("tx_lo", int(r.center_freq)), ("rx_rf_bandwidth", bw), ("tx_rf_bandwidth", bw),
                            ("gain_control_mode_chan0", r.rx_agc), ("rx_buffer_size", int(r.buffer_size))):
            self._call(f"setting {name} = {value}", setattr, self.sdr, name, value)
        if r.rx_agc == "manual":
            self._call(f"setting rx_hardwaregain_chan0 = {r.rx_gain_db}", setattr, self.sdr,
                       "rx_hardwaregain_chan0", r.rx_gain_db)
        return self

    def __enter__(self) -> "PlutoBurst":
        return self.open() if self.sdr is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ TX
    def start_tx(self, iq: np.ndarray) -> dict[str, Any]:
        """Load ``iq`` (complex [n], any scale) into the cyclic TX buffer and ramp the gain up.

        The peak is scaled to ``tx_peak`` of full scale. Returns ``{"scale", "n_samples",
        "gains_db"}`` (``scale``: factor from ``iq`` to int16 units)."""
        if self.sdr is None:
            self.open()
        iq = np.asarray(iq).ravel()
        if iq.size == 0 or not np.all(np.isfinite(iq)):
            raise ValueError("TX waveform must be non-empty and finite")
        peak = float(np.max(np.abs(iq)))
        if peak <= 0:
            raise ValueError("TX waveform is all zeros")
        self.tx_scale = self.radio.tx_peak * (PLUTO_TX_FULL_SCALE - 1) / peak
        data = (iq * self.tx_scale).astype(np.complex128)
        # the TX gain is touched only here (a receive-only process must not change a running TX)
        steps = ramp_steps(self.radio.tx_gain_db, self.radio.tx_ramp_steps)
        self._call("setting tx_hardwaregain_chan0", setattr, self.sdr, "tx_hardwaregain_chan0",
                   max(PLUTO_MIN_TX_GAIN, steps[0] - RAMP_SPAN_DB / max(len(steps), 1)))
        self._call("setting tx_cyclic_buffer", setattr, self.sdr, "tx_cyclic_buffer", True)
        self._call("tx()", self.sdr.tx, data)
        self._tx_active = True
        for g in steps:
            self._call(f"setting tx_hardwaregain_chan0 = {g:.2f}", setattr, self.sdr, "tx_hardwaregain_chan0", g)
            self.gain_log.append(g)
            self.sleep(self.radio.tx_ramp_s / max(len(steps), 1))
        return {"scale": self.tx_scale, "n_samples": int(iq.size), "gains_db": steps}

    def stop_tx(self) -> None:
        if self.sdr is not None:
            self._call("setting tx_hardwaregain_chan0", setattr, self.sdr, "tx_hardwaregain_chan0", PLUTO_MIN_TX_GAIN)
            self._call("tx_destroy_buffer()", self.sdr.tx_destroy_buffer)
            self._tx_active = False

    # ------------------------------------------------------------------ RX
    def capture(self, n: int) -> tuple[np.ndarray, dict[str, Any]]:
        """``n`` complex64 samples (full scale = 1) after discarding ``rx_settle_s``.

        Returns ``(iq, info)`` with ``info = {"settle_samples", "buffers", "overflows": None}``.
        """
        if self.sdr is None:
            self.open()
        if n < 1:
            raise ValueError(f"capture length must be >= 1, got {n}")
        if n > MAX_CAPTURE:
            raise ValueError(f"capture of {n} samples exceeds {MAX_CAPTURE} ({MAX_CAPTURE * 8 >> 20} MiB): shorten "
                             f"--duration or use the gnuradio backend (streams, bounded memory)")
        # a fresh buffer: libiio keeps filling its kernel buffers between captures, and those
        # stale samples (an earlier payload) must not start this capture
        self._call("rx_destroy_buffer()", self.sdr.rx_destroy_buffer)
        settle = int(math.ceil(self.radio.rx_settle_s * self.radio.sample_rate))
        discard, have, buffers = settle, 0, 0
        got: list[np.ndarray] = []
        while have < n:
            x = np.asarray(self._call("rx()", self.sdr.rx)).ravel()
            buffers += 1
            if discard:
                d = min(discard, x.size)
                x, discard = x[d:], discard - d
            got.append(x)
            have += x.size
        iq = np.concatenate(got)[:n].astype(np.complex64) / PLUTO_RX_FULL_SCALE
        return iq, {"settle_samples": settle, "buffers": buffers, "overflows": None}

    def close(self) -> None:
        """Release the device; a cyclic TX buffer this object loaded is destroyed (a receive-only
        process leaves another process's transmission alone)."""
        if self.sdr is not None:
            if self._tx_active:
                try:
                    self.sdr.tx_destroy_buffer()
                except Exception:  # noqa: BLE001 (best effort on the way out)
                    pass
                self._tx_active = False
            self.sdr = None
