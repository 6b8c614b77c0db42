"""Support for the hardware GRC flowgraphs (``flowgraphs/pluto_*.grc``, ``flowgraphs/usrp_*.grc``).

Those flowgraphs use GNU Radio's own device blocks (gr-iio "PlutoSDR Source/Sink", gr-uhd
"UHD: USRP Source/Sink") so that GRC users see and edit the usual blocks; this module gives
them the project's config and checks:

* ``flowgraph_config(config, kind)``: the validated ``Config`` behind the flowgraph's one
  ``config`` parameter (the same YAML files as the CLI). ``""`` means the shipped
  ``hw_configs/pluto.yaml`` (kind ``pluto``) or ``hw_configs/usrp_b210.yaml`` (kind ``uhd``).
  The file's ``radio.device`` must be that real device (``pluto`` / ``uhd``): a USRP config in a
  Pluto flowgraph, or a ``fake_*`` test device (the stock blocks always open real hardware), is a
  ``ConfigError`` naming the file. GRC evaluates this while editing, so it never touches a device.
* ``preflight(cfg, kind, side, ...)``: called by the flowgraphs' "Init - Before Blocks" snippet,
  i.e. when the generated top block is instantiated, before gr-iio/gr-uhd open anything. It
  re-validates the values the flowgraph is about to use (its GRC variables may have been edited:
  device ranges, the TX safety cap ``radio.tx_gain_max_db``), then looks for the device
  (``iio.Context(uri)`` / gr-iio's Pluto scan; ``uhd.find(args)``) and raises ``RadioError``
  naming the device and its address when it is not there. The stock blocks would otherwise fail
  with "Unable to create context" (no URI) or a UHD ``LookupError`` deep in their constructor.
  When the flowgraph runs as a script, ``RadioError``/``ConfigError`` (also a bad config file)
  end it with that one line instead of a traceback.

No device library is imported at module import (GRC imports this module while editing).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from semcom.config import Config, ConfigError, load_config

from . import RadioError

__all__ = ["flowgraph_config", "preflight", "DEFAULT_CONFIGS", "DEVICE_NAMES"]

DEFAULT_CONFIGS = {"pluto": "pluto.yaml", "uhd": "usrp_b210.yaml"}  # in <repo>/hw_configs
DEVICE_NAMES = {"pluto": "PlutoSDR", "uhd": "USRP"}
_HW_CONFIGS = Path(__file__).resolve().parents[2] / "hw_configs"


def _check_kind(kind: str) -> None:
    if kind not in DEFAULT_CONFIGS:
        raise ValueError(f"kind must be one of {', '.join(DEFAULT_CONFIGS)}, got {kind!r}")


def flowgraph_config(config: str | Path | None, kind: str) -> Config:
    """The validated config of a ``kind`` (``pluto`` / ``uhd``) hardware flowgraph; see the module docstring."""
    _check_kind(kind)
    if "gnuradio.grc" not in sys.modules:  # a generated flowgraph, not GRC evaluating it while editing
        _clean_exit_hook()
    if not config:
        path = _HW_CONFIGS / DEFAULT_CONFIGS[kind]
        if not path.is_file():
            raise ConfigError("", f"no config given and the shipped {DEFAULT_CONFIGS[kind]} is not in {_HW_CONFIGS}: "
                                  f"set the flowgraph's config parameter (-c FILE.yaml)")
        config = path
    cfg = load_config(config)
    if cfg.radio.device != kind:
        raise ConfigError("radio.device", f"{cfg.radio.device!r}: this flowgraph drives a real {DEVICE_NAMES[kind]} "
                                          f"through {'gr-iio' if kind == 'pluto' else 'gr-uhd'} and needs device "
                                          f"{kind!r} (fakes run with `semcom tx`/`semcom rx`)", str(config))
    return cfg


def _clean_exit_hook() -> None:
    """Print RadioError/ConfigError as one line when they end a script (generated flowgraphs)."""
    old = sys.excepthook
    if getattr(old, "_semcom", False):
        return

    def hook(etype, value, tb):
        if issubclass(etype, (RadioError, ConfigError)):
            print(f"error: {value}", file=sys.stderr)
        else:
            old(etype, value, tb)

    hook._semcom = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _find_pluto(uri: str) -> None:
    if uri:
        try:
            import iio  # noqa: PLC0415 (python3-libiio)
        except ImportError:
            return  # gr-iio reports it when the block opens the device
        try:
            iio.Context(uri)
        except Exception as e:  # noqa: BLE001 (OSError from the backends)
            raise RadioError(f"no PlutoSDR at radio.uri {uri!r} ({e}). Check the cable/network and the URI "
                             f"(`iio_info -s` or `semcom probe` list reachable devices)") from None
        return
    from gnuradio import iio as gr_iio  # noqa: PLC0415

    try:
        gr_iio.get_pluto_uri()
    except Exception as e:  # noqa: BLE001
        raise RadioError(f"no PlutoSDR found (radio.uri empty: USB/network scan: {e}). Plug one in or set "
                         f"radio.uri (`semcom probe` lists reachable devices)") from None


def _find_usrp(args: str) -> None:
    from gnuradio import uhd  # noqa: PLC0415

    try:
        found = list(uhd.find(args))
    except Exception as e:  # noqa: BLE001
        raise RadioError(f"USRP search for device args {args!r} failed: {e}") from None
    if not found:
        raise RadioError(f"no USRP found for device args radio.uri {args!r}. Check the cable/network and the "
                         f"args (`uhd_find_devices` or `semcom probe` list reachable devices)")


def preflight(cfg: Config, kind: str, side: str, *, center_freq: float, sample_rate: float,
              gain_db: float | None = None, block_agc: str | None = None, log=print):
    """Check a hardware flowgraph's settings and that its device is reachable (see the module docstring).

    ``side``: ``rx`` or ``tx``; ``center_freq`` (Hz), ``sample_rate`` (samples/s) and ``gain_db``
    (RX gain, or TX gain = minus the Pluto attenuation, in dB) are the values the flowgraph's blocks
    get. ``block_agc``: the AGC mode fixed in the RX block (an enum GRC bakes into the generated
    code); a note is printed when it differs from ``radio.rx_agc``. Returns the ``RadioConfig`` with
    those values; raises ``ConfigError`` (a value out of range / above the safety cap) or ``RadioError``
    (no device at the configured address).
    """
    _check_kind(kind)
    if side not in ("rx", "tx"):
        raise ValueError(f"side must be 'rx' or 'tx', got {side!r}")
    _clean_exit_hook()
    changes: dict[str, Any] = {"center_freq": float(center_freq), "sample_rate": float(sample_rate)}
    if gain_db is not None:
        changes["tx_gain_db" if side == "tx" else "rx_gain_db"] = float(gain_db)
    try:
        radio = dataclasses.replace(cfg.radio, **changes)
    except ConfigError as e:
        raise ConfigError(e.field, f"{e.message} (flowgraph variable value; config {cfg.source})") from None
    if side == "rx" and block_agc is not None and block_agc != radio.rx_agc:
        log(f"note: the {DEVICE_NAMES[kind]} source block uses AGC mode {block_agc!r}; the config says "
            f"radio.rx_agc {radio.rx_agc!r} (change the block's gain mode in GRC to follow it)")
    uri = radio.uri or ""
    if kind == "pluto":
        _find_pluto(uri)
    else:
        _find_usrp(uri)
    return radio
