"""Evaluation tables: per channel, SNR and decoder, PSNR, SSIM (MS-SSIM for large images),
classifier accuracy and classifier-feature Fréchet distance, network evaluations and decode time;
with ``perceptual=True`` also NIQE and the log-spectrum distance to the original
(``perceptual.py``; images of at least 96 x 96), and a ``reference`` row with the originals' NIQE.

The Fréchet distance uses the penultimate features of the CIFAR-10 classifier trained in this
project (``classifier.py``), *not* Inception: it is reported as ``feature_fd``, comparable only
between runs that use the same classifier checkpoint.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from .channel import Channel
from .config import ChannelConfig
from .decoders import DecodeKnobs, SemanticCodec
from .metrics import MS_SSIM_MIN_SIDE, frechet_distance, ms_ssim, psnr, ssim

__all__ = ["evaluate", "format_table", "plot_rows", "figure"]


def _groups(images: torch.Tensor | Sequence[torch.Tensor], batch: int) -> list[tuple[int, torch.Tensor]]:
    """Split images into ``(first_index, [b, 3, H, W])`` batches of one size each."""
    if isinstance(images, torch.Tensor):
        return [(i, images[i: i + batch]) for i in range(0, len(images), batch)]
    return [(i, img[None]) for i, img in enumerate(images)]  # mixed sizes: one at a time


@torch.no_grad()
def evaluate(codec: SemanticCodec, images: torch.Tensor | Sequence[torch.Tensor],
             snrs_db: Sequence[float], decoders: Sequence[str], channels: Sequence[str] = ("awgn",),
             labels: torch.Tensor | None = None, classifier: torch.nn.Module | None = None,
             batch: int = 100, seed: int = 0, channel_cfg: ChannelConfig | None = None,
             progress=None, knobs: DecodeKnobs | None = None, perceptual: bool = False) -> list[dict[str, Any]]:
    """One row per (channel, snr, decoder). ``images``: float ``[N, 3, H, W]`` in [0, 1] or a list
    of ``[3, H, W]`` of any sizes. The channel noise is seeded per (channel, snr) so every decoder
    sees the same received symbols."""
    for c in channels:
        if c not in ("awgn", "fading"):
            raise ValueError(f"channel: unknown {c!r} (awgn, fading)")
    ch = Channel(channel_cfg or ChannelConfig())
    groups = _groups(images, batch)
    n = sum(len(x) for _, x in groups)
    ref_feats = None
    if classifier is not None:
        ref_feats = torch.cat([classifier.features(x) for _, x in groups])
    rows = []
    if perceptual:
        from .perceptual import niqe, spectrum_distance

        def to_np(t: torch.Tensor):
            return (t.clamp(0, 1).permute(1, 2, 0) * 255.0).round().byte().cpu().numpy()
        refs = [to_np(im) for _, x in groups for im in x]
        big = [min(r.shape[:2]) >= 96 for r in refs]
        if not any(big):
            raise ValueError("perceptual metrics need images of at least 96 x 96 (NIQE patches)")
        ref_niqe = [niqe(r) for r, b in zip(refs, big) if b]
        rows.append({"channel": "-", "snr_db": None, "decoder": "reference", "images": sum(big),
                     "psnr": None, "ssim": None, "ms_ssim": None, "accuracy": None, "feature_fd": None,
                     "niqe": sum(ref_niqe) / len(ref_niqe), "spec_abs": 0.0, "spec_high": 0.0,
                     "nfe": 0, "decode_ms_per_image": 0.0, "batch": 0})
    for cname in channels:
        for snr in snrs_db:
            # Received symbols once per (channel, snr), shared by all decoders.
            g = torch.Generator().manual_seed(seed + int(snr * 100) + (7919 if cname == "fading" else 0))
            received = []
            for _, x in groups:
                s = torch.full((len(x),), float(snr))
                y, nv = ch(codec.encode(x, s), s, g, fading=cname == "fading")
                received.append((y, nv, s))
            for dec in decoders:
                gd = torch.Generator().manual_seed(seed + 1)
                p, ss, ms, correct, feats, t_dec = [], [], [], 0, [], 0.0
                nq, spa, sph = [], [], []
                for (i0, x), (y, nv, s) in zip(groups, received):
                    t = time.perf_counter()
                    out = codec.decode(y, nv, s, tuple(x.shape[-2:]), dec, gd, knobs)
                    t_dec += time.perf_counter() - t
                    if perceptual:
                        for j, im in enumerate(out):
                            if big[i0 + j]:
                                a = to_np(im)
                                nq.append(niqe(a))
                                sd = spectrum_distance(a, refs[i0 + j])
                                spa.append(sd["spec_abs"])
                                sph.append(sd["spec_high"])
                    p.append(psnr(out, x))
                    if min(x.shape[-2:]) >= 11:
                        ss.append(ssim(out, x))
                    if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE:
                        ms.append(ms_ssim(out, x))
                    if classifier is not None:
                        f = classifier.features(out)
                        feats.append(f)
                        if labels is not None:
                            correct += (classifier.fc(f).argmax(1) == labels[i0: i0 + len(x)]).sum().item()
                row: dict[str, Any] = {
                    "channel": cname, "snr_db": float(snr), "decoder": dec, "images": n,
                    "psnr": torch.cat(p).mean().item(),
                    "ssim": torch.cat(ss).mean().item() if ss else None,
                    "ms_ssim": torch.cat(ms).mean().item() if ms else None,
                    "accuracy": correct / n if (classifier is not None and labels is not None) else None,
                    "feature_fd": (frechet_distance(torch.cat(feats), ref_feats)
                                   if classifier is not None and n > 1 else None),
                    "nfe": codec.nfe(dec), "decode_ms_per_image": 1000.0 * t_dec / n,
                    **({"niqe": sum(nq) / len(nq), "spec_abs": sum(spa) / len(spa), "spec_high": sum(sph) / len(sph)}
                       if perceptual else {}),
                    "batch": groups[0][1].shape[0],
                }
                rows.append(row)
                if progress:
                    progress(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    cols = ["channel", "snr_db", "decoder", "psnr", "ssim", "ms_ssim", "accuracy", "feature_fd", "nfe",
            "decode_ms_per_image"]
    head = ["channel", "SNR dB", "decoder", "PSNR", "SSIM", "MS-SSIM", "acc", "feat-FD", "NFE", "ms/img"]
    if any("niqe" in r for r in rows):
        cols[8:8] = ["niqe", "spec_abs", "spec_high"]
        head[8:8] = ["NIQE", "spec|d|dB", "spec-high dB"]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
        return str(v)
    table = [head] + [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table)


def plot_rows(rows: list[dict[str, Any]], path: str) -> None:
    """PSNR (and accuracy / feature FD when present) against SNR, one line per decoder and channel."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["decoder"] != "reference"]
    metrics = [m for m in ("psnr", "accuracy", "feature_fd", "niqe", "spec_abs") if any(r.get(m) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for key in sorted({(r["channel"], r["decoder"]) for r in rows}):
            pts = sorted((r["snr_db"], r[m]) for r in rows if (r["channel"], r["decoder"]) == key)
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", label=f"{key[1]} ({key[0]})")
        ax.set_xlabel("SNR (Es/N0, dB)")
        ax.set_ylabel(m)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@torch.no_grad()
def figure(codec: SemanticCodec, images: Sequence[torch.Tensor], snr_db: float, decoders: Sequence[str], path: str,
           channel: str = "awgn", seed: int = 0, knobs: DecodeKnobs | None = None,
           channel_cfg: ChannelConfig | None = None) -> list[list[dict[str, float]]]:
    """Side-by-side figure: one row per image (``[3, H, W]`` in [0, 1]), columns original and each
    decoder at ``snr_db``, with PSNR, NIQE and the log-spectrum |distance| under each panel.
    Returns the metrics ``[image][decoder]``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .perceptual import niqe, spectrum_distance

    def to_np(t: torch.Tensor):
        return (t.clamp(0, 1).permute(1, 2, 0) * 255.0).round().byte().cpu().numpy()
    ch = Channel(channel_cfg or ChannelConfig())
    cols = 1 + len(decoders)
    h0, w0 = images[0].shape[-2:]
    fig, axes = plt.subplots(len(images), cols, figsize=(3.2 * cols, (3.2 * h0 / w0 + 0.45) * len(images) + 0.4),
                             squeeze=False)
    out = []
    for i, x in enumerate(images):
        x = x[None]
        g = torch.Generator().manual_seed(seed + i)
        s = torch.full((1,), float(snr_db))
        y, nv = ch(codec.encode(x, s), s, g, fading=channel == "fading")
        ref = to_np(x[0])
        panels = [("original", ref, {"niqe": niqe(ref)})]
        for dec in decoders:
            rec = to_np(codec.decode(y, nv, s, tuple(x.shape[-2:]), dec, torch.Generator().manual_seed(seed + 1),
                                     knobs)[0])
            m = {"psnr": float(psnr(torch.from_numpy(rec).permute(2, 0, 1)[None].float() / 255.0, x)),
                 "niqe": niqe(rec), "spec_abs": spectrum_distance(rec, ref)["spec_abs"]}
            panels.append((dec, rec, m))
        out.append([m for _, _, m in panels])
        for ax, (name, img, m) in zip(axes[i], panels):
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"NIQE {m['niqe']:.1f}" if "psnr" not in m else \
                f"{m['psnr']:.2f} dB, NIQE {m['niqe']:.1f}, spec {m['spec_abs']:.1f} dB"
            ax.set_xlabel(label, fontsize=8)
            if i == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(f"{channel} {snr_db:g} dB, k/n = {codec.jscc.cfg.ratio}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return out
