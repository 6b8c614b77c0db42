"""Hardware fields of the ``radio`` config section and the ranges of the supported devices.

``check_radio(radio_config)`` is called by ``semcom.config.RadioConfig`` after its own checks; it
type-checks the hardware fields and rejects values outside the device's range, raising
``ConfigError`` naming the field (``radio.center_freq: 7e+09 Hz is outside the PlutoSDR RX LO
range 70 MHz..6 GHz``). Pure Python: no device library is imported.

Units: frequencies and sample rates in Hz / samples/s, gains in dB, times in seconds.

Ranges (``device`` -> ``DeviceLimits``):

* PlutoSDR (AD9363 with the AD9364 firmware setting ``ad9364``, as commonly flashed; the stock
  AD9363 tunes only 325 MHz..3.8 GHz): RX LO 70 MHz..6 GHz, TX LO 47 MHz..6 GHz, sample rate
  65.1 kS/s..61.44 MS/s, at least 521 kS/s unless ``pluto_x8_fir`` (the x8 decimation/
  interpolation FIR) is on; ``tx_gain_db`` is the TX hardware gain, i.e. minus the attenuation,
  -89.75..0 dB; manual RX gain -3..71 dB (the AD9361 range below 4 GHz); RF bandwidth
  200 kHz..56 MHz. USB 2 sustains only about 4-5 MS/s continuously (burst mode is not limited).
* USRP B200/B210 (AD9361): 70 MHz..6 GHz, up to 56 MS/s (61.44 MS/s master clock, 56 MS/s usable
  bandwidth), TX gain 0..89.75 dB, RX gain 0..76 dB.
* USRP N210 (25 MS/s over gigabit Ethernet at 16 bits) with a daughterboard: ``wbx``
  50 MHz..2.2 GHz (TX gain 0..31 dB: WBX v3/v4; v2 boards stop at 25 dB), ``sbx`` 400 MHz..4.4 GHz,
  ``ubx`` 10 MHz..6 GHz (TX and RX gain 0..31.5 dB); RX gain 0..31.5 dB.

``tx_gain_max_db`` is a safety cap on the device's own gain scale (a PA or an attenuator chain
on the bench): a ``tx_gain_db`` above it is an error. ``None``: the device maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["DeviceLimits", "LIMITS", "limits_for", "check_radio", "AGC_MODES", "CLOCK_SOURCES",
           "hardware_kind"]

AGC_MODES = ("manual", "slow_attack", "fast_attack", "hybrid")
CLOCK_SOURCES = ("internal", "external", "gpsdo", "mimo")
USRP_MODELS = ("b200", "b210", "n210")
N210_DAUGHTERBOARDS = ("wbx", "sbx", "ubx")


@dataclass(frozen=True)
class DeviceLimits:
    """Ranges of one device (Hz, samples/s, dB)."""

    name: str
    rx_freq: tuple[float, float]
    tx_freq: tuple[float, float]
    rate: tuple[float, float]
    tx_gain: tuple[float, float]
    rx_gain: tuple[float, float]
    bandwidth: tuple[float, float] | None = None
    rate_without_fir: float | None = None  # Pluto: minimum rate without the x8 FIR


LIMITS: dict[str, DeviceLimits] = {
    "pluto": DeviceLimits("PlutoSDR", (70e6, 6e9), (47e6, 6e9), (65.1e3, 61.44e6), (-89.75, 0.0), (-3.0, 71.0),
                          (200e3, 56e6), rate_without_fir=521e3),
    "b200": DeviceLimits("USRP B200", (70e6, 6e9), (70e6, 6e9), (62.5e3, 56e6), (0.0, 89.75), (0.0, 76.0), (200e3, 56e6)),
    "b210": DeviceLimits("USRP B210", (70e6, 6e9), (70e6, 6e9), (62.5e3, 56e6), (0.0, 89.75), (0.0, 76.0), (200e3, 56e6)),
    "n210/wbx": DeviceLimits("USRP N210 + WBX", (50e6, 2.2e9), (50e6, 2.2e9), (195.3125e3, 25e6), (0.0, 31.0), (0.0, 31.5)),
    "n210/sbx": DeviceLimits("USRP N210 + SBX", (400e6, 4.4e9), (400e6, 4.4e9), (195.3125e3, 25e6), (0.0, 31.5), (0.0, 31.5)),
    "n210/ubx": DeviceLimits("USRP N210 + UBX", (10e6, 6e9), (10e6, 6e9), (195.3125e3, 25e6), (0.0, 31.5), (0.0, 31.5)),
}


def _err(name: str, msg: str):
    from semcom.config import ConfigError  # noqa: PLC0415 (semcom.config imports this module lazily)

    return ConfigError(f"radio.{name}", msg)


def hardware_kind(device: str) -> str | None:
    """``pluto`` / ``uhd`` for real or fake radios, None for loopback, zmq and file."""
    return {"pluto": "pluto", "fake_pluto": "pluto", "uhd": "uhd", "fake_uhd": "uhd"}.get(device)


def limits_for(device: str, model: str | None, daughterboard: str | None) -> DeviceLimits | None:
    """The ranges that apply, or None for devices without hardware limits (loopback, zmq, file)."""
    kind = hardware_kind(device)
    if kind == "pluto":
        return LIMITS["pluto"]
    if kind == "uhd":
        m = model or "b210"
        return LIMITS[f"n210/{daughterboard}"] if m == "n210" else LIMITS[m]
    return None


def _hz(v: float) -> str:
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} Hz"


def _num(name: str, v: Any, lo: float | None = None, hi: float | None = None, allow_none: bool = False,
         lo_open: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise _err(name, f"must be a finite number, got {v!r}")
    v = float(v)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise _err(name, f"must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise _err(name, f"must be <= {hi:g}, got {v:g}")
    return v


def _int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(name, f"must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise _err(name, f"must be {lo}..{hi}, got {v}")
    return int(v)


def _str(name: str, v: Any, choices: tuple[str, ...] | None = None, allow_none: bool = True) -> str | None:
    if v is None and allow_none:
        return None
    if not isinstance(v, str):
        raise _err(name, f"must be a string, got {v!r}")
    if choices is not None and v not in choices:
        raise _err(name, f"must be one of {', '.join(choices)}; got {v!r}")
    return v


def _in(name: str, v: float, rng: tuple[float, float], what: str, fmt=_hz) -> None:
    if not rng[0] <= v <= rng[1]:
        raise _err(name, f"{fmt(v)} is outside the {what} range {fmt(rng[0])}..{fmt(rng[1])}")


def check_radio(rc: Any) -> dict[str, Any]:
    """Validate the hardware fields of a ``RadioConfig``; returns the normalised values to set.

    Raises ``ConfigError`` naming ``radio.<field>`` for a wrong type, an unknown choice, a value
    outside the device's range, or ``tx_gain_db`` above ``tx_gain_max_db``.
    """
    out: dict[str, Any] = {
        "model": _str("model", rc.model, USRP_MODELS),
        "daughterboard": _str("daughterboard", rc.daughterboard, N210_DAUGHTERBOARDS),
        "rf_bandwidth": _num("rf_bandwidth", rc.rf_bandwidth, lo=0.0, lo_open=True, allow_none=True),
        "tx_gain_max_db": _num("tx_gain_max_db", rc.tx_gain_max_db, lo=-100.0, hi=100.0, allow_none=True),
        "rx_agc": _str("rx_agc", rc.rx_agc, AGC_MODES, allow_none=False),
        "buffer_size": _int("buffer_size", rc.buffer_size, 256, 1 << 24),
        "tx_antenna": _str("tx_antenna", rc.tx_antenna),
        "rx_antenna": _str("rx_antenna", rc.rx_antenna),
        "clock_source": _str("clock_source", rc.clock_source, CLOCK_SOURCES),
        "time_source": _str("time_source", rc.time_source, CLOCK_SOURCES),
        "tx_peak": _num("tx_peak", rc.tx_peak, lo=0.0, hi=1.0, lo_open=True),
        "tx_ramp_s": _num("tx_ramp_s", rc.tx_ramp_s, lo=0.0, hi=60.0),
        "tx_ramp_steps": _int("tx_ramp_steps", rc.tx_ramp_steps, 1, 1000),
        "rx_settle_s": _num("rx_settle_s", rc.rx_settle_s, lo=0.0, hi=60.0),
    }
    if not isinstance(rc.pluto_x8_fir, bool):
        raise _err("pluto_x8_fir", f"must be true or false, got {rc.pluto_x8_fir!r}")
    kind = hardware_kind(rc.device)
    if out["model"] is not None and kind != "uhd":
        raise _err("model", f"only applies to USRPs (device uhd / fake_uhd), not device {rc.device!r}")
    if out["model"] in ("b200", "b210") and out["daughterboard"] is not None:
        raise _err("daughterboard", f"the {out['model'].upper()} has no daughterboard; leave it out")
    if out["model"] == "n210" and out["daughterboard"] is None:
        raise _err("daughterboard", f"an N210 needs its daughterboard to check ranges: one of "
                                    f"{', '.join(N210_DAUGHTERBOARDS)}")
    lim = limits_for(rc.device, out["model"], out["daughterboard"])
    cap = out["tx_gain_max_db"]
    if cap is not None and rc.tx_gain_db > cap:
        raise _err("tx_gain_db", f"{rc.tx_gain_db:g} dB is above the safety cap radio.tx_gain_max_db = {cap:g} dB")
    if lim is None:
        return out
    f = rc.center_freq
    _in("center_freq", f, lim.rx_freq, f"{lim.name} RX LO")
    _in("center_freq", f, lim.tx_freq, f"{lim.name} TX LO")
    sps = lambda v: f"{v / 1e6:g} MS/s" if v >= 1e6 else f"{v / 1e3:g} kS/s"  # noqa: E731
    _in("sample_rate", rc.sample_rate, lim.rate, f"{lim.name} sample rate", sps)
    if lim.rate_without_fir and rc.sample_rate < lim.rate_without_fir and not rc.pluto_x8_fir:
        raise _err("sample_rate", f"{rc.sample_rate / 1e3:g} kS/s is below {lim.rate_without_fir / 1e3:g} kS/s: "
                                  f"set radio.pluto_x8_fir: true (x8 FIR) or raise the rate")
    db = lambda v: f"{v:g} dB"  # noqa: E731
    _in("tx_gain_db", rc.tx_gain_db, lim.tx_gain, f"{lim.name} TX gain" +
        (" (minus the attenuation)" if kind == "pluto" else ""), db)
    if out["rx_agc"] == "manual":
        _in("rx_gain_db", rc.rx_gain_db, lim.rx_gain, f"{lim.name} manual RX gain", db)
    elif kind == "uhd" and out["model"] == "n210":
        raise _err("rx_agc", "the N210 has no hardware AGC; use manual")
    if out["rf_bandwidth"] is not None and lim.bandwidth is not None:
        _in("rf_bandwidth", out["rf_bandwidth"], lim.bandwidth, f"{lim.name} RF bandwidth")
    if kind == "pluto":
        for name in ("clock_source", "time_source"):
            if out[name] is not None:
                raise _err(name, "only applies to USRPs")
    return out
