"""``semcom campaign``: run (or resume) a measurement campaign, or plot one.

    semcom campaign CAMPAIGN.yaml [--out DIR] [--set K=V]  # run; rerun the same command to resume
    semcom campaign --plot DIR [--png FILE]                # summary table + figure of a run

Examples in ``campaigns/``. See ``semcom/campaign.py`` for the campaign file and the output
layout (``results.csv`` row per payload and decoder, ``run.json`` metadata with the checksum of
every model used, SigMF captures under ``iq/``). Image payloads
(``payload: {kind: images, images: pics/ | cifar10:PATH:N}``) add PSNR, SSIM and the shipped
CIFAR-10 classifier's ``accuracy`` (labelled CIFAR-10 images) and ``agreement`` (reconstruction vs
original) per row, over any link (simulator, Pluto, USRP through GNU Radio). Their models follow
each point's ``model`` section, so ``model.ratio``, ``model.decoder`` (e.g. ``jscc,cm1,teacher``:
one row per decoder), ``model.nfe`` and the checkpoints can be swept like any field; a decoder
without its checkpoint is an error before the run starts. ``--plot`` draws PSNR / accuracy /
agreement vs measured SNR per decoder and ratio.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("campaign", nargs="?", metavar="CAMPAIGN.yaml", help="campaign file to run or resume")
    parser.add_argument("--out", metavar="DIR", default=None, help="output directory (default: `out:` of the file)")
    parser.add_argument("--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="extra fixed override appended to the campaign's `set:` (repeatable), e.g. "
                             "--set radio.device=fake_pluto --set radio.uri=null to rehearse without hardware")
    parser.add_argument("--plot", metavar="DIR", default=None, help="print the summary of DIR and draw DIR/plot.png")
    parser.add_argument("--png", metavar="FILE", default=None, help="figure path for --plot")
    parser.set_defaults(func=run)


def _print_table(table: list[dict]) -> None:
    if not table:
        return
    cols = list(table[0])
    print("  ".join(f"{c:>14s}" for c in cols))
    for t in table:
        print("  ".join(f"{t[c]:>14.4g}" if isinstance(t[c], float) else f"{str(t[c]) if t[c] is not None else '-':>14s}"
                        for c in cols))


def run(args: argparse.Namespace) -> int:
    from semcom.campaign import CampaignError, load_campaign, plot, run_campaign

    try:
        if args.plot:
            table, png = plot(args.plot, args.png)
            _print_table(table)
            print(f"figure: {png}")
            return 0
        if not args.campaign:
            raise CampaignError("give CAMPAIGN.yaml to run, or --plot DIR")
        camp = load_campaign(args.campaign)
        camp.set = list(camp.set) + list(args.overrides)
        res = run_campaign(camp, args.out, log=lambda s: print(s, file=sys.stderr, flush=True))
        print(f"campaign: {res['rows_written']} rows written, {res['skipped']} already done, "
              f"{res['rows_total']} in {res['out']}/results.csv")
        return 0
    except CampaignError as e:
        print(f"semcom campaign: error: {e}", file=sys.stderr)
        return 1
