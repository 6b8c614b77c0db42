"""Images over the semcom link: what the semantic encoder/decoder blocks share.

* **Images**: ``load_image`` (file -> uint8 ``[H, W, 3]``, clear errors for a missing, corrupt,
  too small or too large file), ``sample_image`` (matplotlib's bundled ``grace_hopper.jpg`` when
  the installed matplotlib ships it, else a deterministic synthetic scene), ``image_paths``.
* **Stream descriptor**: every image is sent as one short *descriptor frame* followed by the
  analog payload frames, all with the same ``stream_id``. The descriptor (``Descriptor``: codec
  id, image size, bandwidth ratio, SNR hint, symbol count, interleaver seed) is 22 bytes with a
  CRC-16, K=7 convolutionally coded (the header's code) and sent as BPSK on an analog payload,
  so the receiver decodes it with soft LLRs from the per-symbol noise variance. Its frame has
  header flag bit 1 (``DESCRIPTOR_FLAG``) set.
* **Codec runtime** (``CodecRuntime``, torch imported lazily): the shipped JSCC checkpoint
  (``find_checkpoint``), optional consistency / teacher checkpoints, the codec id, the fixed
  interleaver the codec was trained with (air slot ``i`` carries symbol ``perm[i]``,
  ``semcom.models.channel.interleaver``), encode uint8 image -> air-order complex64 symbols and
  decode air-order symbols + noise variance -> uint8 image.
* **References** (``REFERENCES``): an in-process registry ``stream_id -> (image, send time)``
  that the encoder fills and the decoder reads, so a loopback run gets PSNR/SSIM and end-to-end
  latency per image (a two-process link has no reference: those fields are then absent).

No GNU Radio import here; torch only inside ``CodecRuntime`` and ``image_metrics``.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from semcom.blocks.phy import header as hdr

__all__ = ["ImageError", "load_image", "sample_image", "synthetic_image", "image_paths", "Descriptor",
           "DESCRIPTOR_FLAG", "encode_descriptor", "decode_descriptor", "DESCRIPTOR_SYMBOLS",
           "find_checkpoint", "find_extra_checkpoint", "checkpoint_ratio", "extra_checkpoints", "decoder_names",
           "CodecRuntime", "ReferenceRegistry", "REFERENCES",
           "image_metrics", "save_png", "MIN_SIDE", "MAX_PIXELS"]

MIN_SIDE = 8                 # smallest image side accepted (pixels)
MAX_PIXELS = 4096 * 4096     # largest image accepted (pixels)
DESCRIPTOR_FLAG = 0x02       # header flags bit 1: this frame carries a stream descriptor
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class ImageError(ValueError):
    """An image that cannot be sent (names the file and the problem)."""


# ---------------------------------------------------------------------- images
def check_image(img: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an RGB image array: uint8 ``[H, W, 3]`` (float in [0, 1] is converted); returns it contiguous."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageError(f"{what}: expected an RGB array [H, W, 3], got shape {a.shape}")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ImageError(f"{what}: expected uint8 or float in [0, 1], got {a.dtype}")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{what}: {w}x{h} is too small (each side must be >= {MIN_SIDE} pixels)")
    if h * w > MAX_PIXELS:
        raise ImageError(f"{what}: {w}x{h} is too large (at most {MAX_PIXELS} pixels)")
    if h > 0xFFFF or w > 0xFFFF:
        raise ImageError(f"{what}: {w}x{h}: sides must fit in 16 bits")
    return np.ascontiguousarray(a)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file -> uint8 ``[H, W, 3]`` (RGB). Raises ``ImageError`` naming the file."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageError(f"{p}: {im.width}x{im.height} is too large (at most {MAX_PIXELS} pixels)")
            a = np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{p}: not a readable image ({e})") from None
    return check_image(a, str(p))


def image_paths(spec: str | list | tuple) -> list[Path]:
    """Files named by ``spec``: a path, a folder (its image files, sorted), or a comma-separated / list of them."""
    items = spec if isinstance(spec, (list, tuple)) else [s for s in str(spec).split(",")]
    out: list[Path] = []
    for s in items:
        s = str(s).strip()
        if not s:
            continue
        p = Path(s).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ImageError(f"{p}: folder holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise ImageError(f"{p}: image file or folder not found")
    return out


def synthetic_image(height: int = 256, width: int = 384, seed: int = 0) -> np.ndarray:
    """A deterministic natural-looking scene (sky gradient, sun, hills, textured ground); uint8 ``[H, W, 3]``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    yn, xn = y / height, x / width
    img = np.zeros((height, width, 3), np.float32)
    img[..., 0] = 0.35 + 0.4 * yn
    img[..., 1] = 0.55 + 0.3 * yn
    img[..., 2] = 0.95 - 0.2 * yn
    sun = np.exp(-(((xn - 0.75) ** 2 + (yn - 0.22) ** 2) / 0.004))
    img += sun[..., None] * np.array([1.0, 0.85, 0.3], np.float32)
    for k, (amp, freq, base, col) in enumerate(((0.08, 3.0, 0.55, (0.25, 0.45, 0.2)),
                                                 (0.06, 5.0, 0.68, (0.2, 0.35, 0.12)))):
        ridge = base + amp * np.sin(2 * np.pi * freq * xn + k) + 0.02 * np.sin(2 * np.pi * 17 * xn)
        mask = yn > ridge
        tex = 0.08 * rng.standard_normal((height, width)).astype(np.float32)
        for c in range(3):
            img[..., c] = np.where(mask, col[c] + tex * (1.0 - 0.5 * c / 2) + 0.15 * (yn - ridge), img[..., c])
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def sample_image() -> tuple[np.ndarray, str]:
    """The bundled sample: ``(uint8 [H, W, 3], name)``; matplotlib's ``grace_hopper.jpg`` (512x600)
    when installed (Debian ``python3-matplotlib``), else ``synthetic_image()``. Never downloads."""
    try:
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if p.is_file():
            return load_image(p), str(p)
    except (ImportError, ImageError):
        pass
    return synthetic_image(), "synthetic (semcom.imagelink.synthetic_image)"


def save_png(img: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(img, np.uint8)).save(p)
    return p


# ---------------------------------------------------------------------- descriptor
_DESC_FMT = ">2sBBHHBHhIH2x"  # magic, version, codec_id, height, width, ratio num, ratio den, snr cB, k, seed, pad
_DESC_MAGIC = b"SI"
_DESC_VERSION = 1
_DESC_BYTES = struct.calcsize(_DESC_FMT)  # 20
DESCRIPTOR_BITS = 8 * _DESC_BYTES + 16  # + CRC-16
DESCRIPTOR_SYMBOLS = 2 * (DESCRIPTOR_BITS + 6)  # rate 1/2, K=7 tail: one BPSK symbol per coded bit


@dataclass(frozen=True)
class Descriptor:
    """What the receiver needs to decode one image stream (sent in the stream's descriptor frame).

    ``ratio`` a Fraction k/n; ``snr_hint_db`` the SNR the encoder was told (0.01 dB steps);
    ``n_symbols`` complex payload symbols; ``interleave_seed`` the codec's fixed interleaver.
    """

    codec_id: int
    height: int
    width: int
    ratio: Fraction
    snr_hint_db: float
    n_symbols: int
    interleave_seed: int

    def as_dict(self) -> dict[str, Any]:
        return {"codec_id": self.codec_id, "height": self.height, "width": self.width, "ratio": str(self.ratio),
                "snr_hint_db": self.snr_hint_db, "n_symbols": self.n_symbols,
                "interleave_seed": self.interleave_seed}


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))


def encode_descriptor(d: Descriptor) -> np.ndarray:
    """Descriptor -> BPSK symbols complex64 ``[DESCRIPTOR_SYMBOLS]`` (unit power; bit 0 -> +1)."""
    body = struct.pack(_DESC_FMT, _DESC_MAGIC, _DESC_VERSION, d.codec_id, d.height, d.width,
                       d.ratio.numerator, d.ratio.denominator, int(round(d.snr_hint_db * 100)),
                       d.n_symbols, d.interleave_seed)
    bits = _bits(body)
    bits = np.concatenate([bits, _bits(hdr.crc16(bits).to_bytes(2, "big"))])
    coded = hdr.conv_encode(bits)
    return (1.0 - 2.0 * coded).astype(np.complex64)


def decode_descriptor(y: np.ndarray, noise_var: np.ndarray | float) -> Descriptor | None:
    """Received descriptor symbols (+ per-symbol noise variance) -> Descriptor, or None (CRC/format fails)."""
    y = np.asarray(y, np.complex64).ravel()
    if y.size != DESCRIPTOR_SYMBOLS:
        return None
    nv = np.broadcast_to(np.asarray(noise_var, np.float64), y.shape)
    llr = np.where(np.isfinite(nv), 4.0 * y.real / np.maximum(nv, 1e-6), 0.0)
    bits = hdr.viterbi_decode(llr, DESCRIPTOR_BITS)
    body, crc = bits[:-16], bits[-16:]
    if hdr.crc16(body) != int.from_bytes(np.packbits(crc).tobytes(), "big"):
        return None
    magic, ver, cid, h, w, num, den, snr_cb, k, seed = struct.unpack(_DESC_FMT, np.packbits(body).tobytes())
    if magic != _DESC_MAGIC or ver != _DESC_VERSION or num == 0 or den == 0 or h == 0 or w == 0:
        return None
    return Descriptor(cid, h, w, Fraction(num, den), snr_cb / 100.0, k, seed)


# ---------------------------------------------------------------------- checkpoints
def _repo_dirs() -> tuple[Path, Path]:
    import semcom.models as m

    pkg = Path(m.__path__[0])
    return pkg / "checkpoints", pkg.parent / "runs"


def ratio_tag(ratio: str | Fraction) -> str:
    r = Fraction(str(ratio))
    return f"{r.numerator}_{r.denominator}"


def find_checkpoint(ratio: str | Fraction = "1/6", explicit: str | None = None) -> Path:
    """The JSCC checkpoint: ``explicit`` if given, else ``models/checkpoints/jscc-<n>_<d>.safetensors``,
    else a local training run ``runs/jscc-<n>_<d>-cpu/best.safetensors``. Raises FileNotFoundError telling how to train."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"model checkpoint {p}: not found")
        return p
    tag = ratio_tag(ratio)
    shipped, runs = _repo_dirs()
    for p in [shipped / f"jscc-{tag}.safetensors", *sorted(runs.glob(f"jscc-{tag}*/best.safetensors"))]:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"no JSCC checkpoint for ratio {ratio}: none in {shipped} (jscc-{tag}.safetensors) nor in "
        f"{runs}/jscc-{tag}*/best.safetensors. Train one with `semcom train jscc --ratio {ratio} --preset cpu "
        f"--out runs/jscc-{tag}-cpu` or pass --set model.checkpoint=PATH")


def find_extra_checkpoint(kind: str, ratio: str | Fraction) -> Path | None:
    """A shipped/run ``consistency`` or ``teacher`` checkpoint paired with ``ratio`` (None if there is none)."""
    tag = ratio_tag(ratio)
    shipped, runs = _repo_dirs()
    cands = [shipped / f"{kind}-{tag}.safetensors", *sorted(shipped.glob(f"{kind}*{tag}*.safetensors")),
             *sorted(runs.glob(f"{kind}*{tag}*/best.safetensors"))]
    return next((p for p in cands if p.is_file()), None)


def shipped_ratios(kind: str) -> list[str]:
    """Ratios with a shipped ``models/checkpoints/<kind>-<n>_<d>.safetensors``, largest first."""
    shipped, _ = _repo_dirs()
    out = []
    for p in shipped.glob(f"{kind}-*_*.safetensors"):
        n, _, d = p.stem[len(kind) + 1:].partition("_")
        if n.isdigit() and d.isdigit() and int(d):
            out.append(Fraction(int(n), int(d)))
    return [str(r) for r in sorted(set(out), reverse=True)]


def checkpoint_ratio(path: str | Path) -> Fraction | None:
    """The bandwidth ratio recorded in a JSCC checkpoint's config (safetensors metadata; no tensor
    is read, no torch import); None when the file is not a readable JSCC checkpoint (loading it
    then reports why)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        if meta.get("semcom.kind") != "jscc":
            return None
        return Fraction(str(json.loads(meta["semcom.config"])["ratio"]))
    except Exception:  # noqa: BLE001 - safetensors raises several types for a corrupt header
        return None


def _wants(decoders: str | list[str]) -> tuple[bool, bool]:
    """(needs a consistency checkpoint, needs a teacher) for decoder names / a comma-separated spec."""
    names = [d.strip() for d in (decoders.split(",") if isinstance(decoders, str) else decoders)]
    return (any(d in ("auto", "consistency") or d.startswith("cm") for d in names), "teacher" in names)


def extra_checkpoints(ratio: str | Fraction, decoders: str | list[str], consistency: str | Path | None = "",
                      teacher: str | Path | None = "") -> tuple[str, str]:
    """``(consistency, teacher)`` checkpoint paths for ``decoders`` ("" = none).

    A given path is kept; else, when a decoder needs it (``auto``/``consistency``/``cmN``:
    consistency, ``teacher``: teacher), the shipped/trained one paired with ``ratio``
    (``find_extra_checkpoint``). ``ratio`` must be the JSCC checkpoint's own ratio
    (``checkpoint_ratio``), not a configured default: a 1/24 codec needs 1/24 diffusion models.
    """
    want_cm, want_teacher = _wants(decoders)
    out = []
    for kind, given, wanted in (("consistency", consistency, want_cm), ("teacher", teacher, want_teacher)):
        out.append(str(given or (find_extra_checkpoint(kind, ratio) if wanted else "") or ""))
    return out[0], out[1]


def decoder_names(decoders: str | list[str], nfe: int, has_consistency: bool, knobs: str = "") -> list[str]:
    """Decoder names to run: ``auto`` -> ``jscc`` (+ ``cm<nfe>`` when ``has_consistency``);
    ``consistency`` -> ``cm<nfe>``; ``jscc``, ``cmN``, ``teacher`` as given ("" / [] = auto).
    ``knobs`` (``ModelConfig.knob_suffix``, e.g. ``":g=1:k=1"``) is appended to every consistency
    decoder that names no knobs of its own."""
    names = [d.strip() for d in (decoders.split(",") if isinstance(decoders, str) else decoders) if d.strip()]
    if isinstance(nfe, bool) or int(nfe) < 1:
        raise ValueError(f"nfe: must be >= 1, got {nfe}")
    if not names or names == ["auto"]:
        names = ["jscc", "consistency"] if has_consistency else ["jscc"]
    out = []
    for d in names:
        base, _, own = d.partition(":")
        if base == "consistency":
            base = f"cm{int(nfe)}"
        if base.startswith("cm"):
            d = base + (":" + own if own else knobs)
        out.append(d)
    return out


# ---------------------------------------------------------------------- codec
class CodecRuntime:
    """The semantic codec as the GNU Radio blocks use it (torch imported here, lazily).

    Parameters
    ----------
    checkpoint : JSCC checkpoint path (``find_checkpoint``).
    consistency, teacher : optional diffusion checkpoints ("" = none).
    codec_id : header codec id (1..255); 0 = derived from the checkpoint's kind + config (CRC-16 low byte, never 0).
    device : torch device ("cpu"; "auto" picks CUDA when available).
    threads : torch intra-op threads (0 = leave torch's default).
    """

    def __init__(self, checkpoint: str | Path, consistency: str | Path = "", teacher: str | Path = "",
                 codec_id: int = 0, device: str = "cpu", threads: int = 0):
        import torch

        from semcom.models.checkpoint import read_metadata
        from semcom.models.config import ChannelConfig
        from semcom.models.decoders import SemanticCodec

        if threads:
            torch.set_num_threads(int(threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.torch = torch
        self.device = torch.device(device)
        self.checkpoint = str(checkpoint)
        self.codec = SemanticCodec.from_checkpoints(str(checkpoint), str(teacher or ""), str(consistency or ""))
        for m in (self.codec.jscc, self.codec.teacher, self.codec.consistency):
            if m is not None:
                m.to(self.device).eval()
        meta = read_metadata(checkpoint)
        self.config = self.codec.jscc.cfg
        self.ratio = Fraction(str(self.config.ratio))
        if not codec_id:
            blob = json.dumps({"kind": meta.get("kind"), "config": meta.get("config")}, sort_keys=True)
            codec_id = (hdr.crc16(_bits(blob.encode())) & 0xFF) or 1
        if not 0 < int(codec_id) < 256:
            raise ValueError(f"codec_id: must be in 1..255, got {codec_id}")
        self.codec_id = int(codec_id)
        self.interleave_seed = ChannelConfig().interleave_seed  # the seed the shipped codecs were trained with
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        self.consistency_path = str(consistency or "")
        self.teacher_path = str(teacher or "")

    def describe(self) -> str:
        return f"JSCC ratio {self.ratio} ({Path(self.checkpoint).name}), codec id {self.codec_id}"

    def decoders(self) -> list[str]:
        """Decoder names this runtime can run (``jscc``, ``teacher``, ``cm1``/``cm2``/... )."""
        out = ["jscc"]
        if self.codec.teacher is not None:
            out.append("teacher")
        if self.codec.consistency is not None:
            out.append("cmN")
        return out

    def check_decoder(self, name: str) -> str:
        """Validate a decoder name (``jscc``, ``teacher``, ``cmN``, ``consistency`` = ``cm1``); returns the canonical name."""
        from semcom.models.decoders import parse_decoder, parse_decoder_spec

        name = "cm1" if name == "consistency" else name
        parse_decoder_spec(name)  # the name and its knobs, if any, are valid
        kind, _ = parse_decoder(name)
        for k, have in (("teacher", self.codec.teacher), ("cm", self.codec.consistency)):
            if kind == k and have is None:
                what = "teacher" if k == "teacher" else "consistency"
                shipped = shipped_ratios(what)
                raise ValueError(f"decoder {name!r}: no {what} checkpoint loaded for ratio {self.ratio} (give one: "
                                 f"--{what} PATH, or the decoder block's {what} parameter); shipped {what} models: "
                                 + (f"ratios {', '.join(shipped)} (--ratio {shipped[0]})" if shipped else "none"))
        return name

    def perm(self, k: int, seed: int | None = None) -> np.ndarray:
        """Interleaver int64 ``[k]``: air slot ``i`` carries symbol ``perm[i]``."""
        from semcom.models.channel import interleaver

        seed = self.interleave_seed if seed is None else int(seed)
        key = (k, seed)
        if key not in self._perms:
            self._perms[key] = interleaver(k, seed).numpy()
        return self._perms[key]

    def num_symbols(self, height: int, width: int) -> int:
        return self.codec.jscc.num_symbols(height, width)

    def encode(self, img: np.ndarray, snr_db: float) -> np.ndarray:
        """uint8 ``[H, W, 3]`` -> air-order unit-power symbols complex64 ``[k]`` (large images in tiles,
        ``semcom.models.tiling``)."""
        from semcom.models.tiling import encode_image

        with self.torch.inference_mode():
            z = encode_image(self.codec.jscc, np.asarray(img, np.uint8), float(snr_db), device=self.device)
            z = z[0].cpu().numpy().astype(np.complex64)  # [k]
        return z[self.perm(z.size)]

    def decode(self, y_air: np.ndarray, nv_air: np.ndarray, snr_db: float, size: tuple[int, int],
               decoder: str = "jscc", seed: int = 0, interleave_seed: int | None = None) -> np.ndarray:
        """Air-order received symbols complex ``[k]`` + noise variance float ``[k]`` (inf = erased) -> uint8 ``[H, W, 3]``
        (large images in tiles, ``semcom.models.tiling``: memory bounded whatever the size)."""
        t = self.torch
        y_air = np.asarray(y_air, np.complex64)
        p = self.perm(y_air.size, interleave_seed)
        y = np.empty_like(y_air)
        nv = np.empty(y_air.size, np.float32)
        y[p], nv[p] = y_air, np.asarray(nv_air, np.float32)
        from semcom.models.tiling import decode_image

        with t.inference_mode():
            yt = t.from_numpy(y)[None].to(self.device)
            nvt = t.from_numpy(nv)[None].to(self.device)
            return decode_image(self.codec, yt, nvt, float(snr_db), tuple(size), decoder, seed=int(seed))


def image_metrics(img: np.ndarray, ref: np.ndarray, band: int = 128) -> dict[str, float]:
    """PSNR (dB, peak 255) and SSIM of uint8 ``[H, W, 3]`` ``img`` against ``ref`` (same shape).

    Computed over bands of ``band`` rows (SSIM's valid 11x11 windows: bands overlap by 10 rows),
    so a large image needs no full-size float copies; the same values as one pass up to rounding."""
    import torch

    from semcom.models.metrics import ssim
    from semcom.models.tiling import release_memory

    if img.shape != ref.shape:
        raise ValueError(f"metrics: reconstructed {img.shape} and reference {ref.shape} differ in shape")

    def rows(a: np.ndarray, r0: int, r1: int):
        return torch.from_numpy(np.array(a[r0:r1], np.uint8)).permute(2, 0, 1)[None].float() / 255.0

    H = img.shape[0]
    sse, windows, ssim_sum = 0.0, 0, 0.0
    for r0 in range(0, H, band):
        r1 = min(H, r0 + band)
        a, b = rows(img, r0, r1), rows(ref, r0, r1)
        sse += float((a - b).square().sum(dtype=torch.float64))
        if min(img.shape[:2]) >= 11 and min(H, r1 + 10) - r0 >= 11:  # windows starting in rows r0..r1-1
            a, b = rows(img, r0, min(H, r1 + 10)), rows(ref, r0, min(H, r1 + 10))
            n = (a.shape[-2] - 10) * (a.shape[-1] - 10)
            ssim_sum += float(ssim(a, b)[0]) * n
            windows += n
        del a, b
        release_memory()  # the bands' float copies go back to the OS, not into a growing heap
    out = {"psnr": float(-10.0 * np.log10(sse / img.size + 1e-10))}  # models.metrics.psnr's eps
    if min(img.shape[:2]) >= 11:
        out["ssim"] = ssim_sum / windows
    else:  # smaller than SSIM's window: one pass, the window shrunk to fit (models.metrics.ssim)
        out["ssim"] = float(ssim(rows(img, 0, H), rows(ref, 0, H))[0])
    return out


# ---------------------------------------------------------------------- references
class ReferenceRegistry:
    """Thread-safe ``stream_id -> (uint8 image, monotonic send time, name)``, the last ``maxlen`` kept."""

    def __init__(self, maxlen: int = 256):
        self._d: OrderedDict[int, tuple[np.ndarray, float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.maxlen = maxlen

    def put(self, stream_id: int, img: np.ndarray, name: str = "", t_sent: float | None = None) -> None:
        with self._lock:
            self._d.pop(stream_id, None)
            self._d[stream_id] = (img, time.monotonic() if t_sent is None else t_sent, name)
            while len(self._d) > self.maxlen:
                self._d.popitem(last=False)

    def get(self, stream_id: int) -> tuple[np.ndarray, float, str] | None:
        with self._lock:
            return self._d.get(stream_id)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


REFERENCES = ReferenceRegistry()
