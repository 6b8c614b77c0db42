"""Reachable radios: IIO contexts (PlutoSDR, via libiio's ``iio.scan_contexts``) and USRPs
(``uhd.find("")``; ``uhd.find_devices`` is broken in GNU Radio 3.10.5).

Discovery can block (network scans, a wedged USB device), so ``probe(timeout)`` runs the scan
in a child process, the IIO/UHD probe helper ``python -m semcom.radio.probe --json``, and kills it
after ``timeout`` seconds: it always returns within about that time. Each backend's failure
(library missing, Avahi not running, ...) is reported next to the devices, never raised; so is a
helper that cannot be started (``OSError``: e.g. ``Text file busy`` while the interpreter is being
rewritten) or that crashes, with what failed and why.
"""

from __future__ import annotations

import errno
import json
import signal
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
    except Exception as e:  # noqa: BLE001 (OSError from loading libuhd, ...)
        return [], f"gr-uhd could not be loaded ({type(e).__name__}: {e})"
    try:
        found = uhd.find("")
    except Exception as e:  # noqa: BLE001
        return [], f"uhd.find failed ({type(e).__name__}: {e})"
    out = []
    for addr in found:
        text = addr.to_string() if hasattr(addr, "to_string") else str(addr)
        out.append({"backend": "uhd", "args": text, "description": text})
    return out, None


def scan_all() -> dict[str, Any]:
    devices, errors = [], {}
    for name, fn in (("iio", scan_iio), ("uhd", scan_uhd)):
        try:
            found, err = fn()
        except Exception as e:  # noqa: BLE001 (a backend must not hide the other one)
            found, err = [], f"{name} scan failed ({type(e).__name__}: {e})"
        devices += found
        if err:
            errors[name] = err
    return {"devices": devices, "errors": errors}


class ProbeResult(dict):
    """``{"devices": [...], "errors": {backend: text}, "timed_out": bool}``."""


def probe(timeout: float = 8.0, cmd: list[str] | None = None) -> ProbeResult:
    """Scan in a child process; never takes (much) longer than ``timeout`` seconds."""
    cmd = cmd or [sys.executable, "-m", "semcom.radio.probe", "--json"]
    helper = "the IIO/UHD probe helper (" + " ".join(cmd) + ")"
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as e:  # cannot even start it: no radio was looked for
        hint = {errno.ETXTBSY: ": the program is being written right now (a venv rebuild, `./run.sh setup`?); "
                               "retry when that is done",
                errno.ENOENT: ": the program does not exist", errno.EACCES: ": the program is not executable"}
        return ProbeResult(devices=[], errors={"probe": f"could not run {helper}: {e.strerror or e}"
                                                        f"{hint.get(e.errno, '')}; no IIO or UHD device was probed"},
                           timed_out=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(devices=[], errors={"probe": f"device scan did not finish within {timeout:g} s "
                                                        f"(a hung USB device or network scan?)"}, timed_out=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
        if p.returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-p.returncode).name} (a crash in libiio or libuhd?)"
            except ValueError:
                how = f"was killed by signal {-p.returncode}"
        else:
            how = f"failed (exit {p.returncode})"
        return ProbeResult(devices=[], errors={"probe": f"{helper} {how}: {tail}"}, timed_out=False)
    return ProbeResult(**json.loads(lines[-1]), timed_out=False)


if __name__ == "__main__":
    if "--json" in sys.argv:
        print(json.dumps(scan_all()), flush=True)
    else:
        print(json.dumps(scan_all(), indent=1))
