"""Source coding of the classical baseline: Pillow's JPEG, JPEG 2000, WebP and AVIF under a bit budget.

AVIF (AV1 intra, the class of BPG/HEVC intra that papers compare with) needs Pillow >= 11.3
built with libavif (PyPI wheels are); :func:`available_codecs` leaves it out where Pillow lacks
it. Its ISOBMFF container (~300 bytes of boxes) is sent whole, which costs it at the smallest
budgets.

For one image and a budget of ``budget_bytes`` (container included), ``encode_to_budget`` tries
each codec, binary-searches the largest quality whose container fits, and keeps the codec whose
decoded image has the best PSNR. ``decode`` never raises on a damaged bitstream: a truncated or
corrupted stream gives whatever Pillow's decoder shows (``ImageFile.LOAD_TRUNCATED_IMAGES`` lets
JPEG/JPEG 2000 return the part decoded so far, the rest grey), and when nothing decodes it
returns the **fallback image: uniform grey 128** (``FALLBACK_VALUE``) of the expected size.

Container (what the receiver needs to pick the decoder)::

    byte 0       codec id (CODECS index + 1; 0 = nothing sent)
    varint       payload length in bytes (LEB128, 1-3 bytes)
    payload      the codec bitstream

WebP is sent without its 20-byte RIFF/``VP8 `` chunk header (sizes the receiver rebuilds from
the length); JPEG 2000 as a raw codestream (``no_jp2``). Images: uint8 ``[H, W, 3]`` RGB.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["CODECS", "FALLBACK_VALUE", "Encoded", "encode", "encode_to_budget", "pack", "unpack",
           "decode", "decode_container", "psnr", "fallback_image", "available_codecs"]

CODECS = ("jpeg", "jpeg2000", "webp", "avif")  # the index + 1 is the id on the air: append only
FALLBACK_VALUE = 128  # a failed decode shows a uniform grey image
_QUALITY = {"jpeg": (1, 95), "webp": (0, 100), "jpeg2000": (1, 130), "avif": (0, 100)}  # searched integer range
AVIF_SPEED = 6  # libavif encoder speed 0 (slowest, best) .. 10; 6 keeps the rate search under a second


def available_codecs() -> tuple[str, ...]:
    """The codecs this Pillow can encode and decode (AVIF needs Pillow >= 11.3 with libavif)."""
    Image, _ = _pil()
    from PIL import features
    out = []
    for c in CODECS:
        if c == "avif":
            try:
                ok = bool(features.check("avif"))
            except Exception:  # noqa: BLE001 - older Pillow: unknown feature
                ok = False
            if not ok:
                continue
        out.append(c)
    return tuple(out)


def _pil():
    try:
        from PIL import Image, ImageFile
    except ImportError:
        raise ImportError("the baseline source codec needs Pillow (Debian python3-pil)") from None
    return Image, ImageFile


def _check_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        raise ValueError(f"image must be uint8 [H, W, 3], got {img.dtype} {img.shape}")
    return img


def fallback_image(shape: tuple[int, ...]) -> np.ndarray:
    """Uniform grey ``FALLBACK_VALUE`` image of ``shape`` (H, W, 3); uint8."""
    return np.full(shape, FALLBACK_VALUE, np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (peak 255); inf when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


# ---------------------------------------------------------------------- raw codecs
def encode(img: np.ndarray, codec: str, quality: int) -> bytes:
    """Codec bitstream of ``img`` at integer ``quality`` (higher = better, larger), as sent.

    JPEG: Pillow quality 1..95 (optimized Huffman tables). WebP: lossy quality 0..100, method 6,
    RIFF header stripped. AVIF: quality 0..100, speed ``AVIF_SPEED``, 4:2:0. JPEG 2000: ``quality`` 1..130 maps to a compression ratio
    ``4000 * 0.94**quality`` (3760 down to 1.3; irreversible 9/7 wavelet, raw codestream): down to
    a few hundred bytes for a 768x512 image, where JPEG and WebP stop at about 5 kB.
    """
    Image, _ = _pil()
    im = Image.fromarray(_check_image(img))
    buf = io.BytesIO()
    if codec == "jpeg":
        im.save(buf, "JPEG", quality=int(quality), optimize=True)
        return buf.getvalue()
    if codec == "webp":
        im.save(buf, "WEBP", quality=int(quality), method=6)
        data = buf.getvalue()
        if data[12:16] != b"VP8 ":  # lossy simple format expected
            return data
        return data[20:]
    if codec == "avif":
        if "avif" not in available_codecs():
            raise ValueError("codec avif: this Pillow has no AVIF support (needs Pillow >= 11.3 with libavif)")
        im.save(buf, "AVIF", quality=int(quality), speed=AVIF_SPEED, subsampling="4:2:0")
        return buf.getvalue()
    if codec == "jpeg2000":
        ratio = 4000.0 * 0.94 ** int(quality)
        im.save(buf, "JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True, no_jp2=True)
        return buf.getvalue()
    raise ValueError(f"codec: unknown {codec!r}; valid: {CODECS}")


def _restore(codec: str, payload: bytes) -> bytes:
    if codec == "webp":
        chunk = struct.pack("<4sI", b"VP8 ", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
        return struct.pack("<4sI4s", b"RIFF", 4 + len(chunk), b"WEBP") + chunk
    return payload


def decode(payload: bytes, codec: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """Decode a (possibly truncated/corrupted) bitstream -> (uint8 [H, W, 3], decoded_ok).

    Never raises for damaged data: what Pillow decodes is returned (resized to ``shape`` if the
    damaged header announced another size); when nothing decodes, ``fallback_image(shape)``
    with ``decoded_ok = False``.
    """
    Image, ImageFile = _pil()
    if codec not in CODECS:
        return fallback_image(shape), False
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(_restore(codec, bytes(payload)))) as im:
            if im.size[0] * im.size[1] > 64 * shape[0] * shape[1] + 4096:  # corrupted size field
                return fallback_image(shape), False
            im.load()
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != tuple(shape):
            arr = np.asarray(Image.fromarray(arr).resize((shape[1], shape[0])))
        return arr.astype(np.uint8), True
    except Exception:  # noqa: BLE001 - any decoder failure on damaged data is a lost image
        return fallback_image(shape), False
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


# ---------------------------------------------------------------------- container
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pack(codec: str, payload: bytes) -> bytes:
    """Container: codec id byte + LEB128 length + payload."""
    if codec not in CODECS:
        raise ValueError(f"codec: unknown {codec!r}; valid: {CODECS}")
    return bytes([CODECS.index(codec) + 1]) + _varint(len(payload)) + payload


def unpack(data: bytes) -> tuple[str | None, bytes]:
    """Inverse of ``pack`` on possibly damaged data: (codec or None, payload, possibly shorter)."""
    data = bytes(data)
    if not data or not 1 <= data[0] <= len(CODECS):
        return None, b""
    n, shift, i = 0, 0, 1
    while i < len(data) and i <= 4:
        n |= (data[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not data[i - 1] & 0x80:
            return CODECS[data[0] - 1], data[i:i + n]
    return None, b""


def decode_container(data: bytes, shape: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """``unpack`` then ``decode``; an empty/unknown container gives the fallback image."""
    codec, payload = unpack(data)
    if codec is None or not payload:
        return fallback_image(shape), False
    return decode(payload, codec, shape)


# ---------------------------------------------------------------------- rate control
@dataclass
class Encoded:
    """Result of ``encode_to_budget``: ``data`` the container bytes (b"" if nothing fits),
    ``codec``/``quality`` chosen (None if nothing fits), ``decoded`` uint8 [H, W, 3] the error-free
    reconstruction (fallback if nothing fits), ``psnr`` of it in dB."""

    data: bytes
    codec: str | None
    quality: int | None
    decoded: np.ndarray
    psnr: float


def _fit(img: np.ndarray, codec: str, budget: int) -> tuple[int, bytes] | None:
    """Largest quality whose container fits ``budget`` bytes (binary search; size ~ monotone)."""
    lo, hi = _QUALITY[codec]
    best = None
    c = pack(codec, encode(img, codec, lo))
    if len(c) > budget:
        return None
    best = (lo, c)
    lo += 1
    while lo <= hi:
        mid = (lo + hi) // 2
        c = pack(codec, encode(img, codec, mid))
        if len(c) <= budget:
            best, lo = (mid, c), mid + 1
        else:
            hi = mid - 1
    return best


def encode_to_budget(img: np.ndarray, budget_bytes: int, codecs: tuple[str, ...] | None = None) -> Encoded:
    """Best container (by PSNR) of ``img`` that fits ``budget_bytes``; see ``Encoded``.

    ``codecs``: those to try (default: :func:`available_codecs`)."""
    img = _check_image(img)
    codecs = available_codecs() if codecs is None else codecs
    best = Encoded(b"", None, None, fallback_image(img.shape), psnr(fallback_image(img.shape), img))
    for codec in codecs:
        r = _fit(img, codec, int(budget_bytes))
        if r is None:
            continue
        q, data = r
        rec, ok = decode_container(data, img.shape)
        p = psnr(rec, img)
        if ok and p > best.psnr:
            best = Encoded(data, codec, q, rec, p)
    return best
