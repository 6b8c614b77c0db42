"""``semcom bench compare``: semcom's decoders against the classical baseline, same symbols per image.

For each bandwidth ratio ``k/n`` every image gets the same number of complex channel symbols on
both sides: semcom's latent size (``JSCC.num_symbols(H, W)``, = ``ratio * 3 * H * W`` when the sides
are multiples of the encoder stride) or ``floor(ratio * 3 * H * W)`` without a semcom checkpoint.
SNR is Es/N0 per complex payload symbol (``blocks/phy/snr.py``).

Methods (rows of the result, ``method`` field):

* ``baseline`` (``scheme`` e.g. ``16qam-1/2``): Pillow codec at the scheme's budget, CRC-16 +
  gr-fec LDPC, QAM (``semcom.baseline.chain``); a lost image is the grey fallback (128);
* ``baseline-envelope``: at each SNR the fixed scheme with the best mean PSNR (``scheme`` names it);
* ``capacity-bound``: the codec at ``n * C`` bits, ``C`` the Shannon capacity of the image's channel
  realisation (``mean_k log2(1 + SNR |H_k|^2)`` over the data carriers; AWGN: ``log2(1 + SNR)``);
* ``semcom-<decoder>``: ``jscc`` (one network pass) and ``cm1``, ``cm2``, ... (consistency decoder,
  N evaluations) through ``models.decoders.SemanticCodec`` with the codec's interleaver
  (``semcom.imagelink.CodecRuntime``); the decoder gets the received symbols, their per-symbol
  noise variance and the SNR (the receiver's estimate on the OFDM channels).

Channels (``--channel``, ``channel`` field) and engines (``engine`` field):

* ``awgn``: complex AWGN added to the symbols themselves (``engine: symbols``, no PHY), the
  textbook channel of JSCC papers; QAM LLRs for the baseline, ``y`` and ``N0`` for semcom;
* ``flat``, ``indoor``, ``outdoor``: through the OFDM PHY in numpy (``engine: numpy``,
  ``semcom.baseline.phylink.exchange``): semcom as an analog payload, the baseline as the digital
  payload mode; profile ``indoor`` (ITU-R M.1225 indoor office A) or ``outdoor`` (pedestrian B)
  with ``--fading`` (default ``rayleigh``), one realisation per image, drawn from the seed
  ``seed * 1000003 + image index``: **the same taps for both sides and at every SNR**; the
  receiver synchronises, estimates the channel and N0, equalises (zero forcing); lost frames are
  erased (semcom: variance inf; baseline: LLR 0).
* ``--gr N``: the first N images of both sides also go through the GNU Radio flowgraph
  (``blocks.gr.topblocks.PhyLoopback``: ``semcom_ofdm_tx -> semcom_channel -> semcom_ofdm_rx``,
  ``engine: gnuradio``) and, for the same N images, through the numpy PHY (``engine: numpy``,
  ``subset: true``), with the same channel configuration (``awgn`` there means the PHY with a flat
  channel). Baseline: the envelope scheme chosen at each SNR by the full numpy run. Rows with
  ``subset: true`` are only that check; the table, plot and targets use the full runs.

Metrics per row (means over the images): ``psnr`` (uint8, peak 255, capped at 100 dB), ``ssim``
(any size; below 11 px a smaller window), ``ms_ssim`` (sides >= 176 px), ``accuracy`` of the shipped CIFAR-10 classifier
on the reconstructions (``--classifier``; only for CIFAR-10 data, whose labels come with the npz;
None for an image folder), ``decoded_frac`` (baseline: images not shown as the fallback),
``frames_ok_frac`` and ``snr_est_db`` (OFDM channels).

Targets (``targets`` in the JSON, printed under the tables): per ratio, channel, semcom decoder and
SNR, ``semcom - envelope`` PSNR (>= 0: at or above the envelope; < 0: the baseline wins by that
much) and whether that holds at every SNR <= 15 dB; and per curve a **cliff**: between two adjacent
SNR points of the sweep the PSNR drops by more than ``--cliff-db`` (default 5 dB) and faster than
1 dB per dB of SNR (the second condition keeps a coarse grid from making a cliff of a smooth curve;
on the 4 dB grid of the README runs a cliff is a drop of more than 5 dB between neighbours).
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["add_compare_parser", "run_compare", "compare", "load_images", "parse_snrs", "parse_ratios",
           "parse_channels", "parse_decoders", "Link", "link_config", "targets", "summary_table", "gr_summary",
           "format_table", "plot",
           "CHANNELS", "DEFAULT_CLIFF_DB", "TARGET_MAX_SNR_DB"]

DEFAULT_DATA = "../shared/data/cifar10"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CHANNELS = ("awgn", "flat", "indoor", "outdoor")
DEFAULT_CLIFF_DB = 5.0
CLIFF_SLOPE = 1.0  # dB of PSNR per dB of SNR: a cliff is also steeper than this
TARGET_MAX_SNR_DB = 15.0
FALLBACK_NOTE = "a lost baseline image is shown as uniform grey 128"
ACCURACY_NOTE = "accuracy: shipped CIFAR-10 classifier on the reconstructions; only for CIFAR-10 data (labels)"
_ROOT = Path(__file__).resolve().parent.parent


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


def parse_channels(text: str) -> list[str]:
    """``"awgn,indoor"`` -> names from ``CHANNELS`` (order kept, duplicates dropped)."""
    out = []
    for c in (s.strip() for s in text.split(",")):
        if c not in CHANNELS:
            raise ValueError(f"--channel: unknown {c!r}; valid: {', '.join(CHANNELS)}")
        if c not in out:
            out.append(c)
    if not out:
        raise ValueError("--channel: give at least one channel")
    return out


def parse_decoders(text: str) -> list[str]:
    """``"jscc,cm1,cm2"`` -> decoder names (``jscc`` and ``cmN``; ``consistency`` = ``cm1``)."""
    from semcom.models.decoders import parse_decoder

    out = []
    for d in (s.strip() for s in text.split(",") if s.strip()):
        d = "cm1" if d == "consistency" else d
        try:
            kind, _ = parse_decoder(d)
        except ValueError as e:
            raise ValueError(f"--decoders: {e}") from None
        if kind == "teacher":
            raise ValueError("--decoders: the teacher decoder is not part of the comparison (jscc, cm1, cm2, ...)")
        if d not in out:
            out.append(d)
    return out


def parse_ratio_paths(items: list[str], flag: str) -> dict[str, str]:
    """``["1/6=PATH", ...]`` -> ``{"1/6": PATH}``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag}: expected RATIO=PATH, got {item!r}")
        k, v = item.split("=", 1)
        r = parse_ratios(k)[0]
        if not Path(v).is_file():
            raise ValueError(f"{flag}: {v} not found")
        out[f"{r.numerator}/{r.denominator}"] = v
    return out


def load_images(path: str | Path, limit: int) -> tuple[list[np.ndarray], np.ndarray | None, str]:
    """``(images, labels, description)``: CIFAR-10 test images (folder with ``test.npz`` or the npz
    itself; same shuffle as ``models.data.load_cifar10``; labels int64 [n] from its ``y``) or every
    PNG/JPEG under a folder (sorted, any size, labels None); images uint8 [H, W, 3]."""
    p = Path(path)
    npz = p / "test.npz" if p.is_dir() else p
    if npz.suffix == ".npz" and npz.is_file():
        with np.load(npz) as d:
            if "x" not in d:
                raise ValueError(f"{npz}: no array 'x' (CIFAR-10 npz expected)")
            x = d["x"]
            y = d["y"] if "y" in d else None
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            raise ValueError(f"{npz}: x must be uint8 [N, H, W, 3], got {x.dtype} {x.shape}")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{npz}: y has {len(y)} labels for {len(x)} images")
        order = np.random.default_rng(0).permutation(len(x))[:limit]
        labels = None if y is None else np.asarray(y)[order].astype(np.int64)
        return [x[i] for i in order], labels, f"{npz} ({len(order)} of {len(x)})"
    if p.is_dir():
        from semcom.imagelink import load_image

        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)[:limit]
        if not files:
            raise ValueError(f"--data: {p} holds neither test.npz nor PNG/JPEG images")
        imgs = [load_image(f) for f in files]
        sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in imgs})
        return imgs, None, f"{p} ({len(imgs)} images, {', '.join(sizes)})"
    raise ValueError(f"--data: {p} not found (a CIFAR-10 folder/npz or an image folder)")


def _ratio_key(ratio: Fraction) -> str:
    return f"{ratio.numerator}/{ratio.denominator}"


def find_jscc(ratio: Fraction, explicit: dict[str, str]) -> str | None:
    """JSCC checkpoint for ``ratio``: ``explicit["1/6"]``, else models/checkpoints/ or runs/."""
    key = _ratio_key(ratio)
    if key in explicit:
        return explicit[key]
    tag = f"{ratio.numerator}_{ratio.denominator}"
    for pat in (f"models/checkpoints/jscc-{tag}.safetensors", f"models/checkpoints/jscc-{tag}*.safetensors",
                f"runs/jscc-{tag}*/best.safetensors"):
        hits = sorted(glob.glob(str(_ROOT / pat)))
        if hits:
            return hits[0]
    return None


def find_consistency(ratio: Fraction, explicit: dict[str, str]) -> str | None:
    """Consistency checkpoint for ``ratio``: ``explicit["1/24"]``, else ``imagelink.find_extra_checkpoint``
    (``models/checkpoints/consistency-<n>_<d>.safetensors``, ``runs/consistency*<n>_<d>*/best.safetensors``),
    else a training run named ``runs/cm-<n>_<d>*/best.safetensors``."""
    key = _ratio_key(ratio)
    if key in explicit:
        return explicit[key]
    from semcom.imagelink import find_extra_checkpoint

    p = find_extra_checkpoint("consistency", ratio)
    if p:
        return str(p)
    hits = sorted(glob.glob(str(_ROOT / f"runs/cm-{ratio.numerator}_{ratio.denominator}*/best.safetensors")))
    return hits[0] if hits else None


# ---------------------------------------------------------------------- channels
@dataclass(frozen=True)
class Link:
    """How the symbols travel: ``channel`` (``CHANNELS``), ``engine`` (``symbols`` | ``numpy`` |
    ``gnuradio``), the first ``n_images`` images, ``subset`` (the GNU Radio check), ``fading`` of
    the multipath profiles, ``seed``."""

    channel: str
    engine: str
    n_images: int
    subset: bool = False
    fading: str = "rayleigh"
    seed: int = 0

    def config(self, snr_db: float, index: int) -> dict:
        """``ChannelConfig`` fields of image ``index`` at ``snr_db`` (PHY engines)."""
        return link_config(self.channel, snr_db, index, self.fading, self.seed)


def link_config(channel: str, snr_db: float, index: int, fading: str = "rayleigh", seed: int = 0) -> dict:
    """``ChannelConfig`` fields: ``awgn``/``flat`` -> flat, no fading; ``indoor``/``outdoor`` -> that
    profile with ``fading``; seed ``seed * 1000003 + index`` (one realisation per image, shared by
    both sides and every SNR)."""
    profile = "flat" if channel in ("awgn", "flat") else channel
    return {"snr_db": float(snr_db), "profile": profile, "fading": "none" if profile == "flat" else fading,
            "seed": int(seed) * 1000003 + int(index)}


def _awgn_rng(seed: int, index: int, snr_db: float) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), int(round(snr_db * 100)) + 100000])


def capacity_bits_per_symbol(channel: str, snr_db: float, index: int, fading: str, seed: int, spec=None) -> float:
    """Shannon capacity (bits per complex symbol) of image ``index``'s channel realisation:
    ``mean_k log2(1 + SNR |H_k|^2)`` over the data carriers (flat: ``log2(1 + SNR)``)."""
    from semcom.blocks.phy.snr import undb

    snr = undb(snr_db)
    if channel in ("awgn", "flat"):
        return float(np.log2(1.0 + snr))
    from semcom.blocks.phy.channel import ChannelConfig, ChannelSimulator
    from semcom.blocks.phy.frame import FrameSpec

    spec = spec or FrameSpec()
    cfg = ChannelConfig.from_dict({**link_config(channel, snr_db, index, fading, seed), "fft_len": spec.fft_len})
    h = ChannelSimulator(cfg).frequency_response(spec.fft_len)
    bins = np.asarray(spec.data_carriers) % spec.fft_len
    return float(np.mean(np.log2(1.0 + snr * np.abs(h[bins]) ** 2)))


# ---------------------------------------------------------------------- metrics
class Scorer:
    """Mean PSNR / SSIM / MS-SSIM / classifier accuracy of reconstructions against ``refs``.

    ``refs`` uint8 [H, W, 3] each; ``labels`` int [n] or None; ``classifier`` a torch module
    (``models.classifier.Classifier``) or None. Without torch only PSNR is computed. Per-image
    results are cached by image index and content: the baseline shows the same grey or error-free
    image at many SNRs, and each is scored once.
    """

    def __init__(self, refs: list[np.ndarray], labels: np.ndarray | None = None, classifier=None,
                 perceptual: bool = False):
        self.refs, self.labels, self.classifier = refs, labels, classifier
        # NIQE and the log-spectrum distance (models/perceptual.py) on images of at least 96 x 96
        self.perceptual = perceptual
        self._cache: dict[tuple[int, bytes], dict] = {}

    def _score(self, recs: list[np.ndarray], idx: list[int]) -> list[dict]:
        from semcom.baseline.source_codec import psnr

        out = [{"psnr": min(psnr(recs[i], self.refs[i]), 100.0)} for i in idx]
        if self.perceptual:
            from semcom.models.perceptual import niqe, spectrum_distance

            for o, i in zip(out, idx):
                if min(recs[i].shape[:2]) >= 96:
                    sd = spectrum_distance(recs[i], self.refs[i])
                    o.update(niqe=niqe(recs[i]), spec_abs=sd["spec_abs"], spec_high=sd["spec_high"])
        try:
            import torch

            from semcom.models.metrics import MS_SSIM_MIN_SIDE, ms_ssim, ssim
        except ImportError:
            return out
        for batch in _shape_batches([recs[i].shape for i in idx]):
            a = _to_tensor([recs[idx[j]] for j in batch])
            b = _to_tensor([self.refs[idx[j]] for j in batch])
            side = min(a.shape[-2:])
            with torch.no_grad():
                ss = ssim(a, b).tolist()  # any size: the window shrinks below 11 px
                ms = ms_ssim(a, b).tolist() if side >= MS_SSIM_MIN_SIDE else None
                pred = (self.classifier(a).argmax(1).numpy() if self.classifier is not None and self.labels is not None
                        else None)
            for n, j in enumerate(batch):
                out[j].update(ssim=ss and ss[n], ms_ssim=ms and ms[n],
                              correct=None if pred is None else float(pred[n] == self.labels[idx[j]]))
        return out

    def __call__(self, recs: list[np.ndarray]) -> dict[str, float | None]:
        import hashlib

        keys = [(i, hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=16).digest())
                for i, r in enumerate(recs)]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        for i, m in zip(todo, self._score(recs, todo)):
            self._cache[keys[i]] = m
        per = [self._cache[k] for k in keys]

        def mean(name: str) -> float | None:
            v = [p[name] for p in per if p.get(name) is not None]
            return float(np.mean(v)) if v else None
        res = {"psnr": mean("psnr"), "ssim": mean("ssim"), "ms_ssim": mean("ms_ssim"), "accuracy": mean("correct")}
        if self.perceptual:
            res.update(niqe=mean("niqe"), spec_abs=mean("spec_abs"), spec_high=mean("spec_high"))
        return res


def _shape_batches(shapes: list[tuple], max_pixels: int = 1 << 17) -> list[np.ndarray]:
    """Indices grouped by image shape, at most ``max_pixels`` pixels per batch (at least one image)."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(shapes):
        groups.setdefault(tuple(s), []).append(i)
    out = []
    for s, idx in groups.items():
        b = max(1, max_pixels // (s[0] * s[1]))
        out += [np.asarray(idx[j:j + b]) for j in range(0, len(idx), b)]
    return out


def _to_tensor(imgs: list[np.ndarray]):
    import torch

    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255.0


def load_classifier(path: str | None):
    """The classifier module (eval mode) or None (no path / ``none`` / file missing)."""
    if not path or path == "none":
        return None
    from semcom.models.checkpoint import load_model

    return load_model(path, kind="classifier")[0].eval()


# ---------------------------------------------------------------------- semcom side
class SemcomSide:
    """semcom's codec for one ratio: batched encode/decode around ``imagelink.CodecRuntime``
    (its interleaver: air slot ``i`` carries latent symbol ``perm[i]``) and the links."""

    def __init__(self, jscc: str, consistency: str | None = None):
        from semcom.imagelink import CodecRuntime

        self.rt = CodecRuntime(jscc, consistency=consistency or "")
        self.torch = self.rt.torch

    def decoders(self, wanted: list[str]) -> tuple[list[str], list[str]]:
        """(usable, skipped) decoders: ``cmN`` needs the consistency checkpoint."""
        ok = [d for d in wanted if d == "jscc" or self.rt.codec.consistency is not None]
        return ok, [d for d in wanted if d not in ok]

    def num_symbols(self, shape: tuple) -> int:
        return self.rt.num_symbols(shape[0], shape[1])

    def encode(self, images: list[np.ndarray], snr_db: float) -> list[np.ndarray]:
        """Air-order unit-power symbols complex64 [k] per image, the encoder told ``snr_db``."""
        t, out = self.torch, [None] * len(images)
        for idx in _shape_batches([im.shape for im in images]):
            x = _to_tensor([images[i] for i in idx])
            with t.no_grad():
                z = self.rt.codec.encode(x, t.full((len(idx),), float(snr_db))).numpy().astype(np.complex64)
            perm = self.rt.perm(z.shape[1])
            for j, i in enumerate(idx):
                out[i] = z[j][perm]
        return out

    def decode(self, ys: list[np.ndarray], nvs: list[np.ndarray], snrs: list[float], shapes: list[tuple],
               decoder: str, seed: int) -> list[np.ndarray]:
        """Air-order symbols + noise variance (inf = erased) -> uint8 [H, W, 3] per image."""
        t, out = self.torch, [None] * len(ys)
        for n, idx in enumerate(_shape_batches(shapes)):
            perm = self.rt.perm(ys[idx[0]].size)
            y = np.empty((len(idx), perm.size), np.complex64)
            nv = np.empty((len(idx), perm.size), np.float32)
            y[:, perm] = np.stack([ys[i] for i in idx])
            nv[:, perm] = np.stack([nvs[i] for i in idx])
            g = t.Generator().manual_seed(int(seed) * 7919 + n)
            snr = t.tensor([float(snrs[i]) for i in idx])
            rec = self.rt.codec.decode(t.from_numpy(y), t.from_numpy(nv), snr, tuple(shapes[idx[0]][:2]), decoder, g)
            rec = (rec.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
            for j, i in enumerate(idx):
                out[i] = rec[j]
        return out


def _load_side(ratio: Fraction, decoders: list[str], jscc: dict[str, str], consistency: dict[str, str],
               notes: list[str]) -> tuple[SemcomSide | None, list[str], str | None, str | None]:
    """(side, usable decoders, JSCC path, consistency path) for ``ratio``; problems go to ``notes``.
    A consistency checkpoint that does not load (e.g. still being written) leaves the JSCC rows."""
    rk = str(ratio)
    ckpt = find_jscc(ratio, jscc)
    if ckpt is None:
        notes.append(f"ratio {rk}: no JSCC checkpoint (pass --jscc {rk}=PATH): semcom rows skipped")
        return None, [], None, None
    cm = find_consistency(ratio, consistency) if any(d != "jscc" for d in decoders) else None
    for c in ([cm, None] if cm else [None]):
        try:
            side = SemcomSide(ckpt, c)
        except Exception as e:  # noqa: BLE001 - a broken/in-progress checkpoint must not kill the baseline run
            notes.append(f"ratio {rk}: {c or ckpt} unusable ({type(e).__name__}: {e})")
            continue
        if side.rt.ratio != ratio:
            notes.append(f"ratio {rk}: {ckpt} is a {side.rt.ratio} checkpoint: semcom rows skipped")
            return None, [], ckpt, None
        decs, skipped = side.decoders(decoders)
        if skipped:
            notes.append(f"ratio {rk}: no usable consistency checkpoint (pass --consistency {rk}=PATH): "
                         f"{','.join(skipped)} rows skipped")
        return side, decs, ckpt, c
    notes.append(f"ratio {rk}: semcom rows skipped")
    return None, [], ckpt, None


def _through(link: Link, payload: np.ndarray, snr_db: float, index: int, *, kind: str = "analog",
             modulation: str | None = None) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """One payload over ``link`` -> (symbols, noise variance, SNR for the decoder, frame info)."""
    from semcom.blocks.phy.snr import add_awgn, noise_variance

    if link.engine == "symbols":
        if kind == "digital":
            raise ValueError("digital payloads go through awgn_llr on the symbol path")
        y = add_awgn(payload, snr_db, _awgn_rng(link.seed, index, snr_db)).astype(np.complex64)
        return y, np.full(y.size, noise_variance(snr_db), np.float32), snr_db, {}
    from semcom.baseline.phylink import exchange

    rx = exchange(payload, link.config(snr_db, index), kind=kind, modulation=modulation, engine=link.engine)
    info = {"frames_sent": rx.frames_sent, "frames_ok": rx.frames_ok, "snr_est_db": rx.snr_est_db}
    return rx.symbols, rx.noise_var, (rx.snr_est_db if rx.snr_est_db is not None else snr_db), info


def _frame_fields(infos: list[dict]) -> dict:
    if not infos or not infos[0]:
        return {}
    est = [i["snr_est_db"] for i in infos if i["snr_est_db"] is not None]
    return {"frames_ok_frac": float(sum(i["frames_ok"] for i in infos) / max(1, sum(i["frames_sent"] for i in infos))),
            "snr_est_db": float(np.mean(est)) if est else None}


def _semcom_rows(side: SemcomSide, decoders: list[str], images: list[np.ndarray], ratio: Fraction,
                 snrs: list[float], links: list[Link], score: Scorer, checkpoints: dict, log) -> list[dict]:
    rows = []
    for snr in snrs:
        air = side.encode(images, snr)
        for link in links:
            t0 = time.perf_counter()
            n = link.n_images
            got = [_through(link, air[i], snr, i) for i in range(n)]
            for dec in decoders:
                recs = side.decode([g[0] for g in got], [g[1] for g in got], [g[2] for g in got],
                                   [im.shape for im in images[:n]], dec, link.seed + int(round(snr * 100)))
                rows.append({"ratio": str(ratio), "snr_db": snr, "channel": link.channel, "engine": link.engine,
                             "subset": link.subset, "method": f"semcom-{dec}", "decoder": dec, "images": n,
                             **score(recs), **_frame_fields([g[3] for g in got]), **checkpoints})
            log(f"  ratio {ratio} semcom {','.join(decoders)} {link.channel}/{link.engine} SNR {snr:g} dB: "
                f"{time.perf_counter() - t0:.1f}s")
    return rows


# ---------------------------------------------------------------------- baseline side
def _baseline_receive(txs: list, llrs: list[np.ndarray], shapes: list[tuple]) -> tuple[list[np.ndarray], list[dict]]:
    """LDPC + codec decoding, images grouped by their block plan; outputs in image order."""
    from semcom.baseline import chain

    recs: list = [None] * len(llrs)
    infos: list = [None] * len(llrs)
    plans: dict[tuple, list[int]] = {}
    for j, t in enumerate(txs[:len(llrs)]):
        plans.setdefault(tuple(c.name for c in t.blocks), []).append(j)
    for idx in plans.values():
        res = chain.receive_images([llrs[j] for j in idx], txs[idx[0]].blocks, [shapes[j] for j in idx])
        for j, (img, info) in zip(idx, res):
            recs[j], infos[j] = img, info
    return recs, infos


def _baseline_row(ratio: str, scheme, txs: list, link: Link, snr: float, score: Scorer,
                  images: list[np.ndarray]) -> dict:
    from semcom.baseline import chain
    from semcom.baseline.phylink import Received, llr_of
    from semcom.baseline.source_codec import psnr

    n = link.n_images
    fit = float(np.mean([t.encoded.codec is not None for t in txs[:n]]))
    frames: list[dict] = []
    if fit == 0.0:  # nothing fits the budget: every image is the fallback whatever the channel
        recs, decoded = [t.encoded.decoded for t in txs[:n]], 0.0
    else:
        llrs = []
        for i, t in enumerate(txs[:n]):
            if link.engine == "symbols":
                llrs.append(chain.awgn_llr(t.symbols, scheme, snr, _awgn_rng(link.seed, i, snr)))
            else:
                y, nv, _, info = _through(link, t.bits, snr, i, kind="digital", modulation=scheme.modulation)
                llrs.append(llr_of(Received(y, nv, 0, 0, None), scheme.modulation))
                frames.append(info)
        recs, infos = _baseline_receive(txs, llrs, [im.shape for im in images[:n]])
        decoded = float(np.mean([i["decoded"] for i in infos]))
    return {"ratio": ratio, "snr_db": snr, "channel": link.channel, "engine": link.engine, "subset": link.subset,
            "method": "baseline", "scheme": scheme.name, "images": n, **score(recs), "decoded_frac": decoded,
            "codec_fit_frac": fit,
            "clean_psnr": float(np.mean([min(psnr(t.encoded.decoded, im), 100.0) for t, im in zip(txs, images[:n])])),
            **_frame_fields(frames)}


def _envelope(rows: list[dict], ratio: str, link: Link, snrs: list[float]) -> list[dict]:
    out = []
    for snr in snrs:
        cands = [r for r in rows if r["method"] == "baseline" and r["ratio"] == ratio and r["snr_db"] == snr
                 and r["channel"] == link.channel and r["engine"] == link.engine and r["subset"] == link.subset]
        if cands:
            out.append({**max(cands, key=lambda r: r["psnr"]), "method": "baseline-envelope"})
    return out


# ---------------------------------------------------------------------- the comparison
def compare(images: list[np.ndarray], snrs: list[float], ratios: list[Fraction], *, labels: np.ndarray | None = None,
            schemes=None, channels: tuple[str, ...] | list[str] = ("awgn",), fading: str = "rayleigh",
            gr_images: int = 0, decoders: tuple[str, ...] | list[str] = ("jscc",), jscc: dict[str, str] | None = None,
            consistency: dict[str, str] | None = None, classifier=None, seed: int = 0,
            cliff_db: float = DEFAULT_CLIFF_DB, log: Callable[[str], None] = print,
            perceptual: bool = False) -> dict[str, Any]:
    """Every row (see the module docstring), the budgets and notes. ``classifier``: a torch module
    or None; ``jscc``/``consistency``: explicit checkpoints per ratio key ``"1/6"`` (else found)."""
    from semcom.baseline import chain
    from semcom.baseline.source_codec import encode_to_budget

    schemes = list(schemes or chain.MCS)
    n_all = len(images)
    main = [Link(c, "symbols" if c == "awgn" else "numpy", n_all, False, fading, seed) for c in channels]
    n_gr = min(int(gr_images), n_all)
    check = [Link(c, e, n_gr, True, fading, seed) for c in channels for e in ("numpy", "gnuradio")] if n_gr else []
    score = Scorer(images, labels, classifier)
    # NIQE/spectrum cost ~0.4 s per large image: computed for semcom's rows and the envelope only
    score_p = Scorer(images, labels, classifier, perceptual=True) if perceptual else score
    rows: list[dict] = []
    budgets: dict[str, dict] = {}
    notes: list[str] = [FALLBACK_NOTE]
    notes.append(ACCURACY_NOTE if labels is not None and classifier is not None else
                 "accuracy omitted: " + ("no labels (not CIFAR-10 data)" if labels is None else "no classifier"))
    for ratio in ratios:
        rk = str(ratio)
        side, decs, ckpt, cm = _load_side(ratio, list(decoders), jscc or {}, consistency or {}, notes)
        n_syms = [side.num_symbols(im.shape) if side else int(ratio * 3 * im.shape[0] * im.shape[1]) for im in images]
        sizes = sorted(set(n_syms))
        budgets[rk] = {s.name: [s.budget_bytes(n) for n in sizes] for s in schemes}
        budgets[rk]["n_channel_symbols"] = sizes
        cache: dict[tuple[int, int], Any] = {}  # (image index, budget bytes) -> Encoded

        def enc(i: int, budget: int):
            if (i, budget) not in cache:
                cache[(i, budget)] = encode_to_budget(images[i], budget)
            return cache[(i, budget)]

        # baseline: every scheme on the full links, then the envelope
        txs_of = {}
        for scheme in schemes:
            t0 = time.perf_counter()
            txs = [chain.transmit_image(im, n, scheme, enc(i, scheme.budget_bytes(n)))
                   for i, (im, n) in enumerate(zip(images, n_syms))]
            txs_of[scheme.name] = txs
            for link in main:
                for snr in snrs:
                    rows.append(_baseline_row(rk, scheme, txs, link, snr, score, images))
            log(f"  ratio {rk} {scheme.name:12s} budget {budgets[rk][scheme.name]} B fit "
                f"{np.mean([t.encoded.codec is not None for t in txs]):.2f}  {time.perf_counter() - t0:.1f}s")
        for link in main:
            env_rows = _envelope(rows, rk, link, snrs)
            if perceptual:  # the envelope's scheme again (same seeded channel), scored with the perceptual metrics
                by_scheme = {s.name: s for s in schemes}
                for e in env_rows:
                    p = _baseline_row(rk, by_scheme[e["scheme"]], txs_of[e["scheme"]], link, e["snr_db"], score_p, images)
                    e.update({k: p[k] for k in ("niqe", "spec_abs", "spec_high")})
            rows += env_rows
        # capacity bound per channel (the image's own realisation)
        for link in main:
            for snr in snrs:
                recs = [enc(i, int(n * capacity_bits_per_symbol(link.channel, snr, i, fading, seed) // 8)).decoded
                        for i, n in enumerate(n_syms)]
                rows.append({"ratio": rk, "snr_db": snr, "channel": link.channel, "engine": "ideal", "subset": False,
                             "method": "capacity-bound", "images": n_all, **score(recs)})
        # GNU Radio check: the envelope scheme of the full run, first n_gr images, numpy and GNU Radio
        by_name = {s.name: s for s in schemes}
        for link in check:
            t0 = time.perf_counter()
            for snr in snrs:
                env = next(r for r in rows if r["method"] == "baseline-envelope" and r["ratio"] == rk
                           and r["snr_db"] == snr and r["channel"] == link.channel and not r["subset"])
                r = _baseline_row(rk, by_name[env["scheme"]], txs_of[env["scheme"]], link, snr, score, images)
                rows.append({**r, "method": "baseline-envelope"})
            log(f"  ratio {rk} baseline envelope {link.channel}/{link.engine} first {n_gr}: "
                f"{time.perf_counter() - t0:.1f}s")
        if side is not None and decs:
            info = {"checkpoint": ckpt, **({"consistency_checkpoint": cm} if cm and decs != ["jscc"] else {})}
            rows += _semcom_rows(side, decs, images, ratio, snrs, main + check, score_p, info, log)
    if n_gr:
        from semcom.baseline.phylink import close_gnuradio

        close_gnuradio()
    return {"rows": rows, "budgets_bytes": budgets, "notes": notes,
            "targets": targets(rows, cliff_db), "gr_check": gr_check(rows)}


# ---------------------------------------------------------------------- targets
def _semcom_methods(rows: list[dict]) -> list[str]:
    """The ``semcom-*`` methods in ``rows``: jscc first, then cm1, cm2, ... by steps."""
    def key(m: str) -> tuple[int, int]:
        d = m[len("semcom-"):]
        return (0, 0) if d == "jscc" else (1, int(d[2:]) if d[2:].isdigit() else 0)
    return sorted({r["method"] for r in rows if r["method"].startswith("semcom-")}, key=key)


def _curve(rows: list[dict], **sel) -> list[dict]:
    return sorted((r for r in rows if all(r.get(k) == v for k, v in sel.items())), key=lambda r: r["snr_db"])


def cliff(points: list[tuple[float, float]], cliff_db: float = DEFAULT_CLIFF_DB) -> dict:
    """``points`` (SNR dB, PSNR dB) -> ``{"cliff", "max_drop_db", "between_db"}``: the largest PSNR
    drop between adjacent SNR points, and whether some drop is a cliff: larger than ``cliff_db``
    *and* steeper than ``CLIFF_SLOPE`` dB per dB of SNR (a coarse grid alone makes no cliff)."""
    pts = sorted(points)
    drops = [(b[1] - a[1], (a[0], b[0])) for a, b in zip(pts, pts[1:])]
    if not drops:
        return {"cliff": False, "max_drop_db": 0.0, "between_db": None}
    d, where = max(drops)
    steep = any(x > cliff_db and x > CLIFF_SLOPE * (hi - lo) for x, (lo, hi) in drops)
    return {"cliff": bool(steep), "max_drop_db": round(float(d), 3), "between_db": list(where)}


def targets(rows: list[dict], cliff_db: float = DEFAULT_CLIFF_DB, max_snr: float = TARGET_MAX_SNR_DB) -> list[dict]:
    """Per ratio and channel (full runs): every semcom decoder against the envelope per SNR and the
    cliff of every curve (semcom decoders, envelope, fixed schemes, capacity bound)."""
    out = []
    full = [r for r in rows if not r.get("subset")]
    for rk in sorted({r["ratio"] for r in full}, key=lambda s: -Fraction(s)):
        for ch in [c for c in CHANNELS if any(r["channel"] == c and r["ratio"] == rk for r in full)]:
            sel = [r for r in full if r["ratio"] == rk and r["channel"] == ch]
            env = {r["snr_db"]: r for r in sel if r["method"] == "baseline-envelope"}
            entry: dict[str, Any] = {"ratio": rk, "channel": ch, "target_max_snr_db": max_snr, "cliff_db": cliff_db,
                                     "semcom": {}, "cliffs": {}}
            for m in _semcom_methods(sel):
                per = []
                for r in _curve(sel, method=m):
                    e = env.get(r["snr_db"])
                    if e is None:
                        continue
                    d = r["psnr"] - e["psnr"]
                    per.append({"snr_db": r["snr_db"], "semcom_psnr": round(r["psnr"], 3),
                                "envelope_psnr": round(e["psnr"], 3), "envelope_scheme": e["scheme"],
                                "diff_db": round(d, 3), "at_or_above": bool(d >= 0),
                                **({"accuracy_diff": round(r["accuracy"] - e["accuracy"], 4)}
                                   if r.get("accuracy") is not None and e.get("accuracy") is not None else {})})
                wins = [p for p in per if not p["at_or_above"]]
                entry["semcom"][m] = {
                    "per_snr": per,
                    "meets_target": all(p["at_or_above"] for p in per if p["snr_db"] <= max_snr),
                    "baseline_wins_at_db": [p["snr_db"] for p in wins],
                    "baseline_wins_by_db": {f"{p['snr_db']:g}": round(-p["diff_db"], 3) for p in wins},
                    "max_baseline_win_db": round(max((-p["diff_db"] for p in wins), default=0.0), 3)}
            curves = {m: _curve(sel, method=m) for m in sorted({r["method"] for r in sel}) if m != "baseline"}
            curves.update({f"baseline {s}": _curve(sel, method="baseline", scheme=s)
                           for s in sorted({r["scheme"] for r in sel if r["method"] == "baseline"})})
            for name, pts in curves.items():
                entry["cliffs"][name] = cliff([(r["snr_db"], r["psnr"]) for r in pts], cliff_db)
            out.append(entry)
    return out


def gr_check(rows: list[dict]) -> list[dict]:
    """GNU Radio vs numpy on the same images: per ratio, channel, SNR and method, both PSNRs."""
    sub = [r for r in rows if r.get("subset")]
    out = []
    for r in sub:
        if r["engine"] != "gnuradio":
            continue
        twin = next((q for q in sub if q["engine"] == "numpy" and all(
            q[k] == r[k] for k in ("ratio", "channel", "snr_db", "method", "images"))), None)
        if twin is None:
            continue
        out.append({"ratio": r["ratio"], "channel": r["channel"], "snr_db": r["snr_db"], "method": r["method"],
                    "scheme": r.get("scheme"), "images": r["images"], "numpy_psnr": twin["psnr"],
                    "gnuradio_psnr": r["psnr"], "diff_db": r["psnr"] - twin["psnr"],
                    "numpy_frames_ok_frac": twin.get("frames_ok_frac"),
                    "gnuradio_frames_ok_frac": r.get("frames_ok_frac")})
    return out


# ---------------------------------------------------------------------- report
def _f(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def _scheme_label(r: dict) -> str:
    """The envelope's scheme, or ``none decodes`` when every scheme showed the fallback image."""
    return "none decodes" if r.get("decoded_frac") == 0.0 else r["scheme"]


def summary_table(res: dict[str, Any]) -> str:
    """Markdown for the README: one table per ratio, a column group per channel (envelope with its
    scheme, each semcom decoder), cells ``PSNR (accuracy)``; the target verdicts; the GNU Radio check
    in one line."""
    rows, lines = res["rows"], []
    full = [r for r in rows if not r.get("subset")]
    tg = {(t["ratio"], t["channel"]): t for t in res.get("targets") or targets(rows)}
    for rk in sorted({r["ratio"] for r in full}, key=lambda s: -Fraction(s)):
        sel = [r for r in full if r["ratio"] == rk]
        chans = [c for c in CHANNELS if any(r["channel"] == c for r in sel)]
        sem = _semcom_methods(sel)
        acc = any(r.get("accuracy") is not None for r in sel)
        by = {(r["channel"], r["method"], r["snr_db"]): r for r in sel if r["method"] != "baseline"}
        head = ["SNR"] + [f"{c}: {h}" for c in chans for h in ["envelope"] + [m[7:] for m in sem]]
        lines += ["", f"k/n = {rk}: PSNR dB" + (" (classifier accuracy)" if acc else ""), "",
                  "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for snr in sorted({r["snr_db"] for r in sel}):
            cells = [f"{snr:g}"]
            for c in chans:
                for m in ["baseline-envelope"] + sem:
                    r = by.get((c, m, snr))
                    cell = "-" if r is None else f"{r['psnr']:.1f}" + (
                        f" ({r['accuracy']:.2f})" if acc and r.get("accuracy") is not None else "")
                    if r is not None and m == "baseline-envelope":
                        cell += f" {_scheme_label(r)}"
                    cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for c in chans:
            t = tg.get((rk, c))
            if not t:
                continue
            for m, s in t["semcom"].items():
                wins = ", ".join(f"{k} dB by {v:.2f} dB" for k, v in s["baseline_wins_by_db"].items())
                cl = t["cliffs"].get(m, {})
                lines.append(f"- {rk} {c}, {m[7:]}: at or above the envelope up to {t['target_max_snr_db']:g} dB: "
                             f"**{'yes' if s['meets_target'] else 'no'}**"
                             + (f"; the baseline wins at {wins}" if wins else "; the baseline never wins")
                             + f"; cliff: {'**yes**' if cl.get('cliff') else 'no'} (largest drop "
                             f"{cl.get('max_drop_db', 0):.1f} dB)")
            env = t["cliffs"].get("baseline-envelope")
            if env:
                lines.append(f"- {rk} {c}, baseline envelope cliff: {'**yes**' if env['cliff'] else 'no'} (largest "
                             f"drop {env['max_drop_db']:.1f} dB" + (f" between {env['between_db'][0]:g} and "
                                                                  f"{env['between_db'][1]:g} dB)" if env["between_db"] else ")"))
    gc = res.get("gr_check") or gr_check(rows)
    if gc:
        lines += ["", gr_summary(gc)]
    return "\n".join(lines).lstrip("\n")


def gr_summary(gc: list[dict], tol_db: float = 0.5) -> str:
    """One paragraph on the GNU Radio check: how many rows agree within ``tol_db`` per side, the others listed."""
    parts = []
    for side in ("baseline", "semcom"):
        sel = [g for g in gc if g["method"].startswith(side)]
        if not sel:
            continue
        ok = [g for g in sel if abs(g["diff_db"]) <= tol_db]
        typical = float(np.median([abs(g["diff_db"]) for g in sel]))
        parts.append(f"{side}: {len(ok)} of {len(sel)} rows within {tol_db:g} dB (median |difference| "
                     f"{typical:.2f} dB)")
    odd = [g for g in gc if abs(g["diff_db"]) > tol_db]
    n = gc[0]["images"]
    text = (f"GNU Radio flowgraph vs numpy PHY on the first {n} image{'s' if n > 1 else ''}, same channel and noise "
            f"samples: " + "; ".join(parts) + ".")
    if odd:
        text += " Apart: " + "; ".join(
            f"{g['ratio']} {g['channel']} {g['snr_db']:g} dB {g['method']}" + (f" {g['scheme']}" if g.get("scheme") else "")
            + f" (numpy {g['numpy_psnr']:.1f}, GNU Radio {g['gnuradio_psnr']:.1f} dB)" for g in odd) + \
            " - at a scheme's threshold one code block more or less decodes when the receivers' estimates " \
            "differ slightly (the headers differ: frame counter, stream id)."
    return text


def perceptual_table(res: dict[str, Any]) -> str:
    """Per ratio, channel and SNR: PSNR / NIQE / log-spectrum |distance| (dB) of the envelope and each
    semcom decoder; the originals' NIQE on top (lower NIQE = more natural; spectrum 0 = original's)."""
    full = [r for r in res["rows"] if not r.get("subset") and r.get("niqe") is not None]
    methods = ["baseline-envelope"] + _semcom_methods(full)
    head = "| ratio | channel | SNR | " + " | ".join(m.replace("semcom-", "").replace("baseline-", "") for m in methods) + " |"
    out = [f"PSNR dB / NIQE / spectrum |d| dB; originals' NIQE {res.get('reference_niqe', float('nan')):.2f}", "",
           head, "|" + " --- |" * (3 + len(methods))]
    for rk in sorted({r["ratio"] for r in full}, key=lambda s: -Fraction(s)):
        for ch in [c for c in CHANNELS if any(r["channel"] == c and r["ratio"] == rk for r in full)]:
            for snr in sorted({r["snr_db"] for r in full if r["ratio"] == rk and r["channel"] == ch}):
                cells = []
                for m in methods:
                    r = next((r for r in full if (r["ratio"], r["channel"], r["snr_db"], r["method"]) == (rk, ch, snr, m)),
                             None)
                    cells.append("-" if r is None else f"{r['psnr']:.1f} / {r['niqe']:.1f} / {r['spec_abs']:.1f}")
                out.append(f"| {rk} | {ch} | {snr:g} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def format_table(res: dict[str, Any]) -> str:
    """Markdown: ``summary_table``, then per ratio and channel PSNR (envelope, capacity, semcom decoders
    and their margin over the envelope), SSIM/MS-SSIM and accuracy, the targets and cliffs; then the
    GNU Radio check row by row."""
    lines = ["#### Summary", "", summary_table(res), ""]
    if any(r.get("niqe") is not None for r in res["rows"]):
        lines += ["#### Perceptual", "", perceptual_table(res), ""]
    lines.append("#### Details")
    rows = res["rows"]
    full = [r for r in rows if not r.get("subset")]
    tg = {(t["ratio"], t["channel"]): t for t in res.get("targets") or targets(rows)}
    for rk in sorted({r["ratio"] for r in full}, key=lambda s: -Fraction(s)):
        for ch in [c for c in CHANNELS if any(r["channel"] == c and r["ratio"] == rk for r in full)]:
            sel = [r for r in full if r["ratio"] == rk and r["channel"] == ch]
            sem = _semcom_methods(sel)
            n = max(r["images"] for r in sel)
            lines += ["", f"**k/n = {rk}, channel {ch}** ({n} images; PSNR dB, margin = semcom - envelope)", ""]
            head = ["SNR", "envelope (scheme)", "capacity"] + [f"{m[7:]} | margin" for m in sem]
            lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * (2 + len(sem) * 2 + 1)]
            by = {(r["method"], r["snr_db"]): r for r in sel if r["method"] != "baseline"}
            for snr in sorted({r["snr_db"] for r in sel}):
                env, cap = by.get(("baseline-envelope", snr)), by.get(("capacity-bound", snr))
                cells = [f"{snr:g}", f"{_f(env and env['psnr'])} ({_scheme_label(env)})" if env else "-",
                         _f(cap and cap["psnr"])]
                for m in sem:
                    s = by.get((m, snr))
                    cells += [_f(s and s["psnr"]), f"{s['psnr'] - env['psnr']:+.2f}" if s and env else "-"]
                lines.append("| " + " | ".join(cells) + " |")
            metric = "ms_ssim" if any(r.get("ms_ssim") is not None for r in sel) else "ssim"
            has_acc = any(r.get("accuracy") is not None for r in sel)
            head = ["SNR", f"envelope {metric}"] + [f"{m[7:]} {metric}" for m in sem]
            if has_acc:
                head += ["envelope acc."] + [f"{m[7:]} acc." for m in sem]
            lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
            for snr in sorted({r["snr_db"] for r in sel}):
                rs = [by.get(("baseline-envelope", snr))] + [by.get((m, snr)) for m in sem]
                cells = [f"{snr:g}"] + [_f(r and r.get(metric), ".3f") for r in rs]
                if has_acc:
                    cells += [_f(r and r.get("accuracy"), ".3f") for r in rs]
                lines.append("| " + " | ".join(cells) + " |")
            t = tg.get((rk, ch))
            if t:
                lines.append("")
                for m, s in t["semcom"].items():
                    wins = ", ".join(f"{k} dB by {v:.2f}" for k, v in s["baseline_wins_by_db"].items()) or "nowhere"
                    lines.append(f"- {m}: at or above the envelope at every SNR <= {t['target_max_snr_db']:g} dB: "
                                 f"**{'yes' if s['meets_target'] else 'no'}**; the baseline wins at {wins}")
                cl = t["cliffs"]
                show = [k for k in cl if k.startswith("semcom-") or k == "baseline-envelope"]
                lines.append(f"- cliff (PSNR drop > {t['cliff_db']:g} dB and > 1 dB/dB between adjacent SNRs): " + "; ".join(
                    f"{k} {'**yes**' if cl[k]['cliff'] else 'no'} (max drop {cl[k]['max_drop_db']:.1f} dB"
                    + (f", {cl[k]['between_db'][0]:g}-{cl[k]['between_db'][1]:g} dB)" if cl[k]["between_db"] else ")")
                    for k in show))
                fixed = [k for k in cl if k.startswith("baseline ") and cl[k]["cliff"]]
                lines.append(f"- fixed schemes with a cliff: {len(fixed)} of "
                             f"{sum(k.startswith('baseline ') for k in cl)}")
    gc = res.get("gr_check") or gr_check(rows)
    if gc:
        lines += ["", f"**GNU Radio flowgraph vs numpy PHY** (same {gc[0]['images']} images and channel "
                      "configuration, awgn = the OFDM PHY with a flat channel; PSNR dB)", "",
                  "| k/n | channel | SNR | method | numpy | GNU Radio | difference |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for g in gc:
            m = g["method"] + (f" ({g['scheme']})" if g.get("scheme") else "")
            lines.append(f"| {g['ratio']} | {g['channel']} | {g['snr_db']:g} | {m} | {g['numpy_psnr']:.2f} | "
                         f"{g['gnuradio_psnr']:.2f} | {g['diff_db']:+.2f} |")
    return "\n".join(lines).lstrip("\n")


_STYLES = {"baseline-envelope": dict(color="k", lw=2, label="baseline envelope"),
           "capacity-bound": dict(color="k", ls="--", lw=1, label="codec at capacity")}
_SEMCOM_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange")


def plot(rows: list[dict], path: str) -> str | None:
    """PSNR (and accuracy, for CIFAR-10) vs SNR: one column per ratio, one row per channel (and metric).
    Grey: fixed schemes; black: envelope; dashed: capacity bound; colours: semcom decoders; open
    markers / crosses: numpy / GNU Radio on the ``--gr`` subset. Returns a message when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not available: plot skipped (apt install python3-matplotlib)"
    ratios = sorted({r["ratio"] for r in rows}, key=lambda s: -Fraction(s))
    chans = [c for c in CHANNELS if any(r["channel"] == c for r in rows)]
    metrics = ["psnr"] + (["accuracy"] if any(r.get("accuracy") is not None for r in rows) else [])
    panels = [(c, m) for c in chans for m in metrics]
    fig, axes = plt.subplots(len(panels), len(ratios), figsize=(6 * len(ratios), 4.2 * len(panels)), squeeze=False)
    sem = _semcom_methods(rows)
    for col, rk in enumerate(ratios):
        for row, (ch, metric) in enumerate(panels):
            ax = axes[row][col]
            sel = [r for r in rows if r["ratio"] == rk and r["channel"] == ch and r.get(metric) is not None]
            full = [r for r in sel if not r.get("subset")]
            for name in sorted({r["scheme"] for r in full if r["method"] == "baseline"}):
                pts = [(r["snr_db"], r[metric]) for r in _curve(full, method="baseline", scheme=name)]
                ax.plot(*zip(*pts), color="0.8", lw=0.8)
            styles = dict(_STYLES, **{m: dict(color=c, lw=2, marker="o", ms=4, label=f"semcom {m[7:]}")
                                      for m, c in zip(sem, _SEMCOM_COLORS)})
            for m, st in styles.items():
                pts = [(r["snr_db"], r[metric]) for r in _curve(full, method=m)]
                if pts:
                    ax.plot(*zip(*pts), **st)
            for r in (r for r in sel if r.get("subset")):
                c = styles.get(r["method"], {}).get("color", "k")
                ax.plot(r["snr_db"], r[metric], ls="none", color=c, ms=7,
                        **(dict(marker="x") if r["engine"] == "gnuradio" else dict(marker="s", mfc="none")))
            if any(r.get("subset") for r in sel):
                n = next(r["images"] for r in sel if r.get("subset"))
                ax.plot([], [], "ks", mfc="none", label=f"numpy PHY, first {n}")
                ax.plot([], [], "kx", label=f"GNU Radio, first {n}")
            ax.set_title(f"k/n = {rk}, {ch} (grey: fixed LDPC+QAM schemes)", fontsize=10)
            ax.set_xlabel("SNR Es/N0 (dB)")
            ax.set_ylabel({"psnr": "PSNR (dB)", "accuracy": "classifier accuracy"}[metric])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------- CLI
def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand (``func=run_compare``) to an argparse subparsers object."""
    p = subparsers.add_parser("compare", help="semcom vs classical baseline (codec + LDPC + QAM), same symbols",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 folder/npz or a folder of PNG/JPEG (any size)")
    p.add_argument("--limit", type=int, default=20, help="number of images (default 20)")
    p.add_argument("--snr", default="0:2:20", help="SNRs in dB: start:step:stop or a,b,c (default 0:2:20)")
    p.add_argument("--ratio", default="1/6,1/24", help="bandwidth ratios k/n (default 1/6,1/24)")
    p.add_argument("--schemes", default="", help="comma list like 16qam-1/2 (default: all)")
    p.add_argument("--channel", default="awgn", help=f"comma list of {', '.join(CHANNELS)} (default awgn)")
    p.add_argument("--fading", default="rayleigh", choices=("none", "rayleigh", "rician"),
                   help="fading of the indoor/outdoor profiles (default rayleigh, one realisation per image)")
    p.add_argument("--gr", type=int, default=0, metavar="N",
                   help="also send the first N images of both sides through the GNU Radio flowgraph")
    p.add_argument("--decoders", default="jscc,cm1,cm2",
                   help="semcom decoders: jscc, cm1, cm2, ... (cmN only with a consistency checkpoint; "
                        "default jscc,cm1,cm2)")
    p.add_argument("--jscc", action="append", default=[], metavar="RATIO=PATH", help="JSCC checkpoint per ratio")
    p.add_argument("--consistency", action="append", default=[], metavar="RATIO=PATH",
                   help="consistency checkpoint per ratio (default models/checkpoints/consistency-<n>_<d>"
                        ".safetensors, else runs/consistency*<n>_<d>*/ or runs/cm-<n>_<d>*/best.safetensors)")
    p.add_argument("--classifier", default=str(_ROOT / "models/checkpoints/classifier.safetensors"),
                   help="CIFAR-10 classifier for the accuracy column ('none': no accuracy)")
    p.add_argument("--cliff-db", type=float, default=DEFAULT_CLIFF_DB,
                   help=f"cliff: PSNR drop larger than this (and than 1 dB per dB of SNR) between adjacent "
                        f"SNRs (default {DEFAULT_CLIFF_DB:g})")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0: torch's default; 1 is faster on a busy 2-core machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perceptual", action="store_true", help="also NIQE and the log-spectrum distance (images of "
                   "at least 96 x 96; models/perceptual.py), in the JSON rows and a table")
    p.add_argument("--json", default="", help="write rows, targets and notes to this JSON file")
    p.add_argument("--plot", default="", help="write the PSNR (and accuracy) vs SNR plot to this PNG")
    p.add_argument("--markdown", default="", help="write the tables (markdown) to this file")
    p.add_argument("--from-json", default="", metavar="RUN.json",
                   help="no run: the tables (--markdown) and plot (--plot) again from an earlier --json")
    p.set_defaults(func=run_compare)
    return p


def _write_reports(res: dict[str, Any], args: argparse.Namespace) -> None:
    table = format_table(res)
    print(table)
    for n in res.get("notes", []):
        print(f"note: {n}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
        print(f"wrote {args.markdown}")
    if args.plot:
        msg = plot(res["rows"], args.plot)
        print(msg or f"wrote {args.plot}")


def run_compare(args: argparse.Namespace) -> int:
    """CLI entry: returns 0, or 2 with a message on bad input."""
    from semcom.baseline import chain
    if args.from_json:  # tables and plot again from an earlier run (targets with this --cliff-db)
        try:
            res = json.loads(Path(args.from_json).read_text())
            res["targets"] = targets(res["rows"], args.cliff_db)
            res["gr_check"] = gr_check(res["rows"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"error: --from-json {args.from_json}: not a bench compare JSON ({type(e).__name__}: {e})")
            return 2
        _write_reports(res, argparse.Namespace(**{**vars(args), "json": ""}))
        return 0
    try:
        snrs, ratios = parse_snrs(args.snr), parse_ratios(args.ratio)
        channels, decoders = parse_channels(args.channel), parse_decoders(args.decoders)
        if args.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {args.limit}")
        if args.gr < 0:
            raise ValueError(f"--gr must be >= 0, got {args.gr}")
        if not args.cliff_db > 0:
            raise ValueError(f"--cliff-db must be > 0, got {args.cliff_db}")
        if args.threads < 0:
            raise ValueError(f"--threads must be >= 0, got {args.threads}")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        schemes = None
        if args.schemes:
            by_name = {s.name: s for s in chain.MCS}
            bad = [n for n in args.schemes.split(",") if n not in by_name]
            if bad:
                raise ValueError(f"--schemes: unknown {bad}; valid: {sorted(by_name)}")
            schemes = [by_name[n] for n in args.schemes.split(",")]
        jscc = parse_ratio_paths(args.jscc, "--jscc")
        consistency = parse_ratio_paths(args.consistency, "--consistency")
        images, labels, desc = load_images(args.data, args.limit)
        clf_path = args.classifier if labels is not None and args.classifier != "none" else ""
        if clf_path and not Path(clf_path).is_file():
            raise ValueError(f"--classifier: {clf_path} not found (or pass --classifier none)")
        classifier = load_classifier(clf_path)
    except (ValueError, OSError) as e:
        print(f"error: {e}")
        return 2
    print(f"data: {desc}; SNRs {snrs}; ratios {[str(r) for r in ratios]}; channels {channels}; decoders {decoders}")
    t0 = time.perf_counter()
    res = compare(images, snrs, ratios, labels=labels, schemes=schemes, channels=channels, fading=args.fading,
                  gr_images=args.gr, decoders=decoders, jscc=jscc, consistency=consistency, classifier=classifier,
                  seed=args.seed, cliff_db=args.cliff_db, perceptual=args.perceptual)
    if args.perceptual:
        res["reference_niqe"] = Scorer(images, perceptual=True)(images)["niqe"]
    res["config"] = {"data": desc, "snr_db": snrs, "ratios": [str(r) for r in ratios], "channels": channels,
                     "fading": args.fading, "gr_images": args.gr, "decoders": decoders, "seed": args.seed,
                     "cliff_db": args.cliff_db, "classifier": clf_path or None,
                     "accuracy_clean": Scorer(images, labels, classifier)(images)["accuracy"],
                     "seconds": round(time.perf_counter() - t0, 1)}
    _write_reports(res, args)
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
