"""``semcom probe``: list reachable radios (PlutoSDR over IIO, USRPs over UHD).

Exit status 0 when at least one device answered, 1 when none did (with the reason per
backend), within ``--timeout`` seconds (the scan runs in a child process that is killed on time).
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--timeout", type=float, default=8.0, help="seconds before giving up (default 8)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semcom.radio.probe import probe

    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0, got {args.timeout}")
    res = probe(args.timeout)
    if args.json:
        print(json.dumps(res))
    else:
        for d in res["devices"]:
            addr = d.get("uri") or d.get("args")
            print(f"{d['backend']:4s} {addr}  {d['description']}")
    if not res["devices"]:
        why = "; ".join(f"{k}: {v}" for k, v in res["errors"].items()) or "no IIO context and no USRP answered"
        print(f"semcom probe: no radio found ({why}). Check the USB/Ethernet cable, the URI "
              f"(Pluto: ip:192.168.2.1) and that the device is powered.", file=sys.stderr)
        return 1
    return 0
