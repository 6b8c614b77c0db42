"""``semcom campaign``: run (or resume) a measurement campaign, or plot one.

    semcom campaign CAMPAIGN.yaml [--out DIR] [--set K=V]  # run; rerun the same command to resume
    semcom campaign --plot DIR [--png FILE]                # summary table + figure of a run
    semcom campaign CAMPAIGN.yaml --workers 4              # payloads on a local pool of 4 processes (Dask)
    semcom campaign CAMPAIGN.yaml --cluster tcp://HOST:8786  # ... on a running Dask cluster

Campaign file (YAML; unknown keys and wrong types are errors naming the key; examples in
``campaigns/``; paths are relative to the file)::

    config: ../hw_configs/loopback.yaml   # base config (default: the built-in defaults)
    set: [channel.profile=indoor]         # fixed section.key=value overrides (optional)
    sweep:                                # required: config fields and their values; every
      channel.snr_db: [0, 5, 10]          #   combination is a point, the last field fastest
      radio.tx_gain_db: [-20, -10]
    payloads_per_point: 4                 # default 4
    payload: {kind: random, streams: 1, symbols: 3072, seed: 0}   # the default
    #   or {kind: images, images: pics/ | a.png,b.jpg | cifar10:PATH:N, seed: 0}
    #   (without images: seeded synthetic scenes)
    link: simulator                       # simulator (the config's channel, numpy) | radio (radio.device)
    record_iq: false                      # SigMF capture per payload under OUT/iq/
    timeout_s: 10.0                       # link: radio, USRP: wait for a payload's frames
    out: ../runs/campaign_snr             # output directory (--out wins)

Output in OUT: ``results.csv`` (one row per payload and decoder, appended and fsynced: point,
payload, decoder, one column per swept field, then status, nfe (network evaluations, the JSCC
decoder pass counting one), ratio, symbols, frames sent/received, frame_loss, snr_est_db,
snr_meas_db, latency_s, decode_s, psnr_db, ssim, accuracy, agreement, iq_file, note, time_utc),
``run.json`` (the campaign, the resolved base config, the git revision
and the checksum of every model used) and ``iq/`` (SigMF captures). Image payloads
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
    parser.add_argument("--allow-high-tx-gain", action="store_true",
                        help="let set/sweep/--set raise the base config's TX safety cap radio.tx_gain_max_db "
                             "(refused without this flag; printed when used)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="payloads run on a local pool of N worker processes (Dask distributed; rows are "
                             "still appended by this process, same rows as N=1); 1: in this process, in order "
                             "(default 1)")
    parser.add_argument("--cluster", metavar="ADDRESS", default=None,
                        help="run the payloads on the Dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786; "
                             "default: $DASK_SCHEDULER_ADDRESS if set); every worker needs semcom and the same "
                             "checkpoint/image paths (checked by checksum)")
    parser.add_argument("--cluster-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to reach the --cluster scheduler and see a worker before giving up (default 10)")
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
    from semcom.sweep_pool import cluster_address

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
        if args.workers < 1:
            raise CampaignError(f"--workers must be >= 1, got {args.workers}")
        res = run_campaign(camp, args.out, log=lambda s: print(s, file=sys.stderr, flush=True),
                           allow_high_tx_gain=args.allow_high_tx_gain, workers=args.workers,
                           cluster=cluster_address(args.cluster), cluster_timeout_s=args.cluster_timeout)
        print(f"campaign: {res['rows_written']} rows written, {res['skipped']} already done, "
              f"{res['rows_total']} in {res['out']}/results.csv")
        return 0
    except CampaignError as e:
        print(f"semcom campaign: error: {e}", file=sys.stderr)
        return 1
