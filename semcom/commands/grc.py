"""``semcom grc``: GNU Radio Companion with the semcom blocks.

  semcom grc [FILE.grc ...]              open GRC (the project's blocks in GRC_BLOCKS_PATH, run by
                                         this Python, which imports semcom; "Execute" uses it too)
  semcom grc --compile FILE.grc ... [-o DIR]
                                         grcc with the blocks; exit 2 when grcc fails or a generated
                                         script lacks the flowgraph's semcom blocks
  semcom grc --setup                     the user-level set-up of `./run.sh setup`: [grc]
                                         local_blocks_path in ~/.gnuradio/config.conf (merged) and
                                         semcom.pth in Debian python3's user site, so that a plainly
                                         started gnuradio-companion / grcc / python3 work
  semcom grc --check                     what plainly started GRC sees (exit 1 when blocks are missing)
"""

from __future__ import annotations

import argparse
import subprocess
import sys

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("files", nargs="*", metavar="FILE", help="flowgraphs (.grc) to open or compile")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--compile", action="store_true", help="compile FILEs with grcc and check the semcom blocks")
    mode.add_argument("--setup", action="store_true", help="user-level set-up for plainly started GRC (idempotent)")
    mode.add_argument("--check", action="store_true", help="check what plainly started GRC (Debian python3) sees")
    mode.add_argument("--print-command", action="store_true", help="print the command that opens GRC, do not run it")
    parser.add_argument("-o", "--out-dir", default=".", help="--compile: folder for the generated scripts (default .)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semcom.cli import CliError
    from semcom.grc import GrcError, check, compile_flowgraphs, grc_command, setup

    try:
        if args.setup or args.check:
            if args.files:
                raise CliError(f"--{'setup' if args.setup else 'check'} takes no FILE")
            if args.setup:
                setup(log=lambda s: print(f"semcom grc: {s}"))
                return 0
            res = check()
            print(f"block paths: {', '.join(res['paths'])}")
            print(f"semcom blocks: {', '.join(res['blocks']) or 'none'}")
            if res["missing"]:
                print(f"semcom grc: plainly started GRC misses {', '.join(res['missing'])}: run `./run.sh setup` "
                      f"(or `semcom grc --setup`)", file=sys.stderr)
                return 1
            return 0
        if args.compile:
            if not args.files:
                raise CliError("--compile needs at least one FILE.grc")
            for script in compile_flowgraphs(args.files, args.out_dir):
                print(f"wrote {script}")
            return 0
        argv, env = grc_command(args.files)
        if args.print_command:
            print(f"GRC_BLOCKS_PATH={env['GRC_BLOCKS_PATH']} {subprocess.list2cmdline(argv)}")
            return 0
        return subprocess.call(argv, env=env)
    except GrcError as e:
        raise CliError(str(e)) from e
