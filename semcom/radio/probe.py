"""Reachable radios: IIO contexts (PlutoSDR, via libiio's ``iio.scan_contexts``) and USRPs
(``uhd.find("")``; ``uhd.find_devices`` is broken in GNU Radio 3.10.5).

Discovery can block (network scans, a wedged USB device), so ``probe(timeout)`` runs the scan
in a child process (``python -m semcom.radio.probe --json``) and kills it after ``timeout``
seconds: it always returns within about that time. Each backend's failure (library missing,
Avahi not running, ...) is reported next to the devices, never raised.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

__all__ = ["scan_iio", "scan_uhd", "scan_all", "probe", "ProbeResult"]


def scan_iio() -> tuple[list[dict], str | None]:
    """``([{"backend": "iio", "uri", "description"}], error)``."""
    try:
        import iio  # noqa: PLC0415
    except ImportError as e:
        return [], f"libiio Python bindings missing ({e}): apt install python3-libiio"
    try:
        ctxs = iio.scan_contexts()
    except Exception as e:  # noqa: BLE001 (OSError from backends, e.g. Avahi not running)
        return [], f"iio.scan_contexts failed: {e}"
    return [{"backend": "iio", "uri": uri, "description": desc} for uri, desc in sorted(ctxs.items())], None


def scan_uhd() -> tuple[list[dict], str | None]:
    """``([{"backend": "uhd", "args", "description"}], error)``."""
    try:
        from gnuradio import uhd  # noqa: PLC0415
    except ImportError as e:
        return [], f"gr-uhd missing ({e})"
    try:
        found = uhd.find("")
    except Exception as e:  # noqa: BLE001
        return [], f"uhd.find failed: {e}"
    out = []
    for addr in found:
        text = addr.to_string() if hasattr(addr, "to_string") else str(addr)
        out.append({"backend": "uhd", "args": text, "description": text})
    return out, None


def scan_all() -> dict[str, Any]:
    devices, errors = [], {}
    for name, fn in (("iio", scan_iio), ("uhd", scan_uhd)):
        found, err = fn()
        devices += found
        if err:
            errors[name] = err
    return {"devices": devices, "errors": errors}


class ProbeResult(dict):
    """``{"devices": [...], "errors": {backend: text}, "timed_out": bool}``."""


def probe(timeout: float = 8.0, cmd: list[str] | None = None) -> ProbeResult:
    """Scan in a child process; never takes (much) longer than ``timeout`` seconds."""
    cmd = cmd or [sys.executable, "-m", "semcom.radio.probe", "--json"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(devices=[], errors={"probe": f"device scan did not finish within {timeout:g} s "
                                                        f"(a hung USB device or network scan?)"}, timed_out=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return ProbeResult(devices=[], errors={"probe": f"scan process failed (exit {p.returncode}): {tail}"},
                           timed_out=False)
    return ProbeResult(**json.loads(lines[-1]), timed_out=False)


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps(scan_all()), flush=True)
    else:
        print(json.dumps(scan_all(), indent=1))
