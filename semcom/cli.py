"""The ``semcom`` command. Each subcommand lives in its own module ``semcom.commands.<name>``
exposing ``add_parser(subparsers)`` and ``run(args) -> int``; modules are imported lazily so
``semcom --help`` stays fast and a missing optional dependency only breaks its own command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "loopback": ("semcom.commands.loopback", "run the whole link in GNU Radio through the channel simulator"),
    "phy": ("semcom.commands.phy", "PHY tools: write frames to SigMF, decode recordings, ZMQ two-process link"),
    "bench": ("semcom.commands.bench", "benchmarks (phy, ...) printing tables and writing JSON"),
    "train": ("semcom.commands.train", "train the semantic codec (jscc, teacher, consistency, classifier)"),
    "export": ("semcom.commands.export", "write one checkpoint per ratio from a rate-adaptive training run"),
    "eval": ("semcom.commands.eval", "evaluate decoders on CIFAR-10 or a folder of images"),
    "tx": ("semcom.commands.tx", "transmit PHY payloads on a radio (PlutoSDR burst mode, gr-uhd, fakes)"),
    "rx": ("semcom.commands.rx", "receive on a radio: frames, SNR estimate, overflows, SigMF capture"),
    "probe": ("semcom.commands.probe", "list reachable radios (IIO / UHD), bounded time"),
    "campaign": ("semcom.commands.campaign", "measurement campaign: sweep config fields, CSV rows, resumable; plot"),
    "grc": ("semcom.commands.grc", "GNU Radio Companion with the semcom blocks: open, compile (checked), user set-up"),
}


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semcom", description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"semcom {__import__('semcom').__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (mod, help_) in COMMANDS.items():
        try:
            module = importlib.import_module(mod)
        except ImportError as e:  # keep the rest of the CLI usable
            sp = sub.add_parser(name, help=f"{help_} (unavailable: {e})")
            sp.set_defaults(_unavailable=str(e))
            continue
        sp = sub.add_parser(name, help=help_, description=help_)
        module.add_parser(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_unavailable", None):
        print(f"semcom {args.command}: unavailable: {args._unavailable}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"semcom {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"semcom {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
