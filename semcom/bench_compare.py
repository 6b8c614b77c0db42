"""``semcom bench compare``: semcom's JSCC decoder against the classical baseline, same symbol budget.

For each bandwidth ratio ``k/n`` (``n_channel_symbols = floor(ratio * 3 * H * W)`` complex
symbols per image) and SNR (Es/N0 per complex symbol, ``blocks/phy/snr.py``):

* every baseline scheme of ``semcom.baseline.chain.MCS`` (Pillow codec at the budget, CRC-16 +
  gr-fec LDPC, QAM), AWGN on the QAM symbols (fast path) and, for the first ``--phy`` images,
  through the OFDM PHY's digital payload and the channel simulator (``--phy-profile``);
* the envelope: at each SNR the fixed scheme with the best mean PSNR;
* the capacity bound: the codec at ``n * log2(1 + SNR)`` bits (ideal channel code, no framing);
* semcom's JSCC decoder when a checkpoint for the ratio exists (``--jscc 1/6=PATH``, or
  ``runs/jscc-1_6*/best.safetensors`` / ``models/checkpoints/jscc-1_6*.safetensors``), AWGN.

Metrics: PSNR (uint8 images, peak 255) and SSIM (``semcom.models.metrics`` when torch is there,
images >= 11 px) averaged over images. A lost image counts as the grey fallback image.
Writes a JSON (``--json``) and a plot (``--plot``, matplotlib) and prints a table.

Hook into the CLI: ``bench_compare.add_compare_parser(subparsers)`` adds ``compare`` with
``func=run_compare``.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_compare_parser", "run_compare", "compare", "load_images", "parse_snrs", "parse_ratios"]

DEFAULT_DATA = "../shared/data/cifar10"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# ---------------------------------------------------------------------- inputs
def parse_snrs(text: str) -> list[float]:
    """``"0:2:20"`` (start:step:stop, stop included) or ``"0,5,10"`` -> list of dB values."""
    try:
        if ":" in text:
            a, step, b = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError("step must be > 0")
            return [float(v) for v in np.round(np.arange(a, b + step / 2, step), 6)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise ValueError(f"--snr: cannot parse {text!r} ({e}); use start:step:stop or a,b,c") from None


def parse_ratios(text: str) -> list[Fraction]:
    """``"1/6,1/24"`` -> Fractions in (0, 1]."""
    out = []
    for part in text.split(","):
        try:
            r = Fraction(part.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"--ratio: cannot parse {part!r} as a fraction like 1/6") from None
        if not 0 < r <= 1:
            raise ValueError(f"--ratio: {part} is not in (0, 1]")
        out.append(r)
    return out


def load_images(path: str | Path, limit: int) -> tuple[list[np.ndarray], str]:
    """CIFAR-10 test images (folder with ``test.npz`` or the npz itself; same shuffle as
    ``models.data.load_cifar10``) or every PNG/JPEG under a folder (sorted); uint8 [H, W, 3] each."""
    p = Path(path)
    npz = p / "test.npz" if p.is_dir() else p
    if npz.suffix == ".npz" and npz.is_file():
        with np.load(npz) as d:
            if "x" not in d:
                raise ValueError(f"{npz}: no array 'x' (CIFAR-10 npz expected)")
            x = d["x"]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            raise ValueError(f"{npz}: x must be uint8 [N, H, W, 3], got {x.dtype} {x.shape}")
        order = np.random.default_rng(0).permutation(len(x))[:limit]
        return [x[i] for i in order], f"{npz} ({len(order)} of {len(x)})"
    if p.is_dir():
        from PIL import Image
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        if not files:
            raise ValueError(f"--data: {p} holds neither test.npz nor PNG/JPEG images")
        imgs = []
        for f in files:
            with Image.open(f) as im:
                imgs.append(np.asarray(im.convert("RGB")))
        return imgs, f"{p} ({len(imgs)} images)"
    raise ValueError(f"--data: {p} not found (a CIFAR-10 folder/npz or an image folder)")


def find_jscc(ratio: Fraction, explicit: dict[str, str]) -> str | None:
    """Checkpoint path for ``ratio``: ``explicit["1/6"]``, else runs/ or models/checkpoints/."""
    key = f"{ratio.numerator}/{ratio.denominator}"
    if key in explicit:
        return explicit[key]
    tag = f"{ratio.numerator}_{ratio.denominator}"
    root = Path(__file__).resolve().parent.parent
    for pat in (f"models/checkpoints/jscc-{tag}*.safetensors", f"runs/jscc-{tag}*/best.safetensors"):
        hits = sorted(glob.glob(str(root / pat)))
        if hits:
            return hits[0]
    return None


# ---------------------------------------------------------------------- metrics
def _metrics(rec: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, float | None]:
    """Mean PSNR (dB) and mean SSIM (None without torch or for images < 11 px)."""
    from semcom.baseline.source_codec import psnr
    p = float(np.mean([min(psnr(a, b), 100.0) for a, b in zip(rec, ref)]))
    try:
        import torch
        from semcom.models.metrics import ssim
    except ImportError:
        return p, None
    vals = []
    for a, b in zip(rec, ref):
        if min(a.shape[:2]) < 11:
            continue
        ta = torch.from_numpy(a.transpose(2, 0, 1).copy()).float()[None] / 255
        tb = torch.from_numpy(b.transpose(2, 0, 1).copy()).float()[None] / 255
        vals.append(float(ssim(ta, tb)[0]))
    return p, (float(np.mean(vals)) if vals else None)


def _jscc_rows(ckpt: str, images: list[np.ndarray], ratio: Fraction, snrs: list[float], seed: int) -> list[dict]:
    import torch
    from semcom.models.channel import awgn
    from semcom.models.decoders import SemanticCodec
    codec = SemanticCodec.from_checkpoints(ckpt)
    rows = []
    for snr in snrs:
        g = torch.Generator().manual_seed(seed + int(round(snr * 100)))
        recs, k_used = [], set()
        with torch.no_grad():
            for img in images:
                x = torch.from_numpy(img.transpose(2, 0, 1).copy()).float()[None] / 255
                s = torch.full((1,), float(snr))
                z = codec.encode(x, s)
                k_used.add(int(z.shape[1]))
                y, nv = awgn(z, s, g)
                out = codec.decode(y, nv, s, tuple(x.shape[-2:]), "jscc", g)
                recs.append((out[0].clamp(0, 1) * 255).round().byte().numpy().transpose(1, 2, 0))
        p, ss = _metrics(recs, images)
        rows.append({"ratio": str(ratio), "snr_db": snr, "method": "semcom-jscc", "path": "awgn", "psnr": p,
                     "ssim": ss, "images": len(images), "symbols": sorted(k_used), "checkpoint": ckpt})
    return rows


# ---------------------------------------------------------------------- the comparison
def compare(images: list[np.ndarray], snrs: list[float], ratios: list[Fraction], *, schemes=None,
            phy_images: int = 0, phy_channel: dict | None = None, jscc: dict[str, str] | None = None,
            seed: int = 0, log=print) -> dict[str, Any]:
    """All rows (one per ratio, SNR, method/scheme, path) plus budgets; see the module docstring."""
    from semcom.baseline import chain
    from semcom.baseline.source_codec import encode_to_budget
    schemes = list(schemes or chain.MCS)
    rows: list[dict] = []
    budgets: dict[str, dict] = {}
    for ratio in ratios:
        n_syms = [int(ratio * 3 * im.shape[0] * im.shape[1]) for im in images]
        sizes = sorted(set(n_syms))
        budgets[str(ratio)] = {s.name: [s.budget_bytes(n) for n in sizes] for s in schemes}
        budgets[str(ratio)]["n_channel_symbols"] = sizes
        cache: dict[tuple[int, int], Any] = {}  # (image index, budget bytes) -> Encoded

        def enc(i: int, budget: int):
            if (i, budget) not in cache:
                cache[(i, budget)] = encode_to_budget(images[i], budget)
            return cache[(i, budget)]

        for scheme in schemes:
            t0 = time.perf_counter()
            txs = [chain.transmit_image(im, n, scheme, enc(i, scheme.budget_bytes(n)))
                   for i, (im, n) in enumerate(zip(images, n_syms))]
            clean = [t.encoded.decoded for t in txs]
            fit = float(np.mean([t.encoded.codec is not None for t in txs]))
            rng = np.random.default_rng(seed)
            for snr in snrs:
                if fit == 0.0:  # nothing fits the budget: every image is the fallback whatever the channel
                    for path in ("awgn", "phy") if phy_images else ("awgn",):
                        n_img = len(images) if path == "awgn" else min(phy_images, len(images))
                        p, ss = _metrics(clean[:n_img], images[:n_img])
                        rows.append({"ratio": str(ratio), "snr_db": snr, "method": "baseline", "scheme": scheme.name,
                                     "path": path, "psnr": p, "ssim": ss, "images": n_img, "decoded_frac": 0.0,
                                     "codec_fit_frac": fit, "clean_psnr": p})
                    continue
                paths = {"awgn": [chain.awgn_llr(t.symbols, scheme, snr, rng) for t in txs]}
                if phy_images:
                    paths["phy"] = [chain.phy_llr(t.bits, scheme, snr, channel=phy_channel, seed=seed + j)[0]
                                    for j, t in enumerate(txs[:phy_images])]
                for path, llrs in paths.items():
                    recs, infos = [], []
                    for blocks in {tuple(c.name for c in t.blocks): t.blocks for t in txs}.values():  # by block plan
                        idx = [j for j, t in enumerate(txs[:len(llrs)]) if t.blocks == blocks]
                        res = chain.receive_images([llrs[j] for j in idx], blocks, [images[j].shape for j in idx])
                        recs += [(j, r[0]) for j, r in zip(idx, res)]
                        infos += [r[1] for r in res]
                    recs = [r for _, r in sorted(recs, key=lambda t: t[0])]
                    p, ss = _metrics(recs, images[:len(recs)])
                    rows.append({"ratio": str(ratio), "snr_db": snr, "method": "baseline", "scheme": scheme.name,
                                 "path": path, "psnr": p, "ssim": ss, "images": len(recs),
                                 "decoded_frac": float(np.mean([i["decoded"] for i in infos])),
                                 "codec_fit_frac": fit,
                                 "clean_psnr": _metrics(clean[:len(recs)], images[:len(recs)])[0]})
            log(f"  ratio {ratio} {scheme.name:12s} budget {budgets[str(ratio)][scheme.name]} B "
                f"fit {fit:.2f}  {time.perf_counter() - t0:.1f}s")
        for path in sorted({r["path"] for r in rows if r["method"] == "baseline" and r["ratio"] == str(ratio)}):
            for snr in snrs:
                cands = [r for r in rows if r["method"] == "baseline" and r["ratio"] == str(ratio)
                         and r["path"] == path and r["snr_db"] == snr]
                best = max(cands, key=lambda r: r["psnr"])
                rows.append({**best, "method": "baseline-envelope"})
        for snr in snrs:
            recs = [encode_to_budget(im, chain.capacity_bytes(n, snr)).decoded for im, n in zip(images, n_syms)]
            p, ss = _metrics(recs, images)
            rows.append({"ratio": str(ratio), "snr_db": snr, "method": "capacity-bound", "path": "ideal",
                         "psnr": p, "ssim": ss, "images": len(images)})
        ckpt = find_jscc(ratio, jscc or {})
        if ckpt is None:
            log(f"  ratio {ratio}: no JSCC checkpoint found (pass --jscc {ratio}=PATH); semcom rows skipped")
        else:
            try:
                rows += _jscc_rows(ckpt, images, ratio, snrs, seed)
            except Exception as e:  # noqa: BLE001 - a broken/in-progress checkpoint must not kill the baseline run
                log(f"  ratio {ratio}: JSCC checkpoint {ckpt} unusable ({type(e).__name__}: {e}); semcom rows skipped")
    return {"rows": rows, "budgets_bytes": budgets}


def format_table(rows: list[dict]) -> str:
    """Per ratio and SNR: envelope (scheme), capacity bound, semcom JSCC and JSCC - envelope (PSNR dB)."""
    lines = []
    for ratio in sorted({r["ratio"] for r in rows}, key=lambda s: -Fraction(s)):
        lines.append(f"ratio {ratio}   PSNR dB (SSIM)")
        lines.append(f"{'SNR':>6} {'envelope':>22} {'capacity':>14} {'semcom-jscc':>14} {'jscc-env':>9}")
        for snr in sorted({r["snr_db"] for r in rows if r["ratio"] == ratio}):
            pick = {r["method"]: r for r in rows if r["ratio"] == ratio and r["snr_db"] == snr
                    and r.get("path") in ("awgn", "ideal")}
            env, cap, js = pick.get("baseline-envelope"), pick.get("capacity-bound"), pick.get("semcom-jscc")

            def cell(r):
                if r is None:
                    return "-"
                return f"{r['psnr']:.2f}" + (f" ({r['ssim']:.3f})" if r.get("ssim") is not None else "")
            env_s = f"{cell(env)} {env['scheme']}" if env else "-"
            diff = f"{js['psnr'] - env['psnr']:+.2f}" if js and env else "-"
            lines.append(f"{snr:6.1f} {env_s:>22} {cell(cap):>14} {cell(js):>14} {diff:>9}")
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> str | None:
    """PSNR vs SNR per ratio; returns an explanation when matplotlib is missing, else None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not available: plot skipped (apt install python3-matplotlib)"
    ratios = sorted({r["ratio"] for r in rows}, key=lambda s: -Fraction(s))
    fig, axes = plt.subplots(1, len(ratios), figsize=(6 * len(ratios), 4.5), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        sel = [r for r in rows if r["ratio"] == ratio]
        for name in sorted({r["scheme"] for r in sel if r["method"] == "baseline"}):
            pts = sorted((r["snr_db"], r["psnr"]) for r in sel if r["method"] == "baseline"
                         and r["scheme"] == name and r["path"] == "awgn")
            ax.plot(*zip(*pts), color="0.75", lw=0.8)
        for method, style in (("baseline-envelope", dict(color="k", lw=2, label="baseline envelope (AWGN)")),
                              ("capacity-bound", dict(color="k", ls="--", label="codec at capacity")),
                              ("semcom-jscc", dict(color="tab:red", lw=2, marker="o", label="semcom JSCC"))):
            pts = sorted((r["snr_db"], r["psnr"]) for r in sel if r["method"] == method and r["path"] in ("awgn", "ideal"))
            if pts:
                ax.plot(*zip(*pts), **style)
        phy = [r for r in sel if r["method"] == "baseline-envelope" and r["path"] == "phy"]
        if phy:
            ax.plot(*zip(*sorted((r["snr_db"], r["psnr"]) for r in phy)), color="tab:blue", marker="s",
                    label=f"baseline envelope (OFDM PHY, first {phy[0]['images']} images)")
        ax.set_title(f"k/n = {ratio} (grey: fixed LDPC+QAM schemes)")
        ax.set_xlabel("SNR Es/N0 (dB)")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------- CLI
def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand (``func=run_compare``) to an argparse subparsers object."""
    p = subparsers.add_parser("compare", help="semcom vs classical baseline (codec + LDPC + QAM), same symbols",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 folder/npz or a folder of PNG/JPEG")
    p.add_argument("--limit", type=int, default=20, help="number of images (default 20)")
    p.add_argument("--snr", default="0:2:20", help="SNRs in dB: start:step:stop or a,b,c (default 0:2:20)")
    p.add_argument("--ratio", default="1/6,1/24", help="bandwidth ratios k/n (default 1/6,1/24)")
    p.add_argument("--schemes", default="", help="comma list like 16qam-1/2 (default: all)")
    p.add_argument("--phy", type=int, default=0, help="also send the first N images through the OFDM PHY")
    p.add_argument("--phy-profile", default="flat", help="channel profile of the PHY path (flat, indoor, outdoor)")
    p.add_argument("--phy-fading", default="none", help="fading of the PHY path (none, rayleigh, rician)")
    p.add_argument("--jscc", action="append", default=[], metavar="RATIO=PATH", help="JSCC checkpoint per ratio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="write rows to this JSON file")
    p.add_argument("--plot", default="", help="write the PSNR-vs-SNR plot to this PNG")
    p.set_defaults(func=run_compare)
    return p


def run_compare(args: argparse.Namespace) -> int:
    """CLI entry: returns 0, or 2 with a message on bad input."""
    from semcom.baseline import chain
    try:
        snrs, ratios = parse_snrs(args.snr), parse_ratios(args.ratio)
        if args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        schemes = None
        if args.schemes:
            by_name = {s.name: s for s in chain.MCS}
            bad = [n for n in args.schemes.split(",") if n not in by_name]
            if bad:
                raise ValueError(f"--schemes: unknown {bad}; valid: {sorted(by_name)}")
            schemes = [by_name[n] for n in args.schemes.split(",")]
        jscc = {}
        for item in args.jscc:
            if "=" not in item:
                raise ValueError(f"--jscc: expected RATIO=PATH, got {item!r}")
            k, v = item.split("=", 1)
            r = parse_ratios(k)[0]
            jscc[f"{r.numerator}/{r.denominator}"] = v
        images, desc = load_images(args.data, args.limit)
    except (ValueError, OSError) as e:
        print(f"error: {e}")
        return 2
    print(f"data: {desc}; SNRs {snrs}; ratios {[str(r) for r in ratios]}")
    t0 = time.perf_counter()
    res = compare(images, snrs, ratios, schemes=schemes, phy_images=args.phy,
                  phy_channel={"profile": args.phy_profile, "fading": args.phy_fading}, jscc=jscc, seed=args.seed)
    print(format_table(res["rows"]))
    res["config"] = {"data": desc, "snr_db": snrs, "ratios": [str(r) for r in ratios], "phy_images": args.phy,
                     "phy_channel": {"profile": args.phy_profile, "fading": args.phy_fading}, "seed": args.seed,
                     "seconds": round(time.perf_counter() - t0, 1),
                     "fallback": "lost image = uniform grey 128"}
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        msg = plot(res["rows"], args.plot)
        print(msg or f"wrote {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone: ``python -m semcom.bench_compare [options]``."""
    parser = argparse.ArgumentParser(prog="semcom-bench")
    sub = parser.add_subparsers(dest="cmd", required=True)
    add_compare_parser(sub)
    args = parser.parse_args(["compare"] + (argv if argv is not None else __import__("sys").argv[1:]))
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
