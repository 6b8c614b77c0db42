"""Tiled inference: images of any size through the codec in bounded memory.

The networks are convolutional, so a large image runs as a grid of tiles: each tile's *core*
(``Tiling.tile`` pixels square) is computed with ``Tiling.halo`` pixels of context on every
side (clipped at the image border, where a tile pads exactly as the whole image does) and only
the core is kept, so every output pixel comes from one tile and no seam is blended. Cores and
halos are multiples of the strides, so every tile sees the downsampling grid of the whole
image. With halos as wide as the receptive field the convolutions would give the whole image's
result exactly; the halos here cover the effective receptive field, and the pooled statistics
(the JSCC attention's feature means, the UNet's GroupNorm) are those of the tile with its halo,
as in training on crops. Measured on the sample photo with small tiles (``tests/test_tiling.py``):
latent NMSE against the whole-image encoder about -33 dB, JSCC PSNR 0.2 dB *above* the
whole-image decoder's, the diffusion decoders within 0.3 dB of theirs, and no step in the error
at the tile borders.

* ``encode_image(jscc, img, snr_db)``: uint8 ``[H, W, 3]`` -> unit-power symbols ``[1, k]``
  (the raw latent is assembled tile by tile, then power-normalised over the whole image).
* ``decode_image(codec, y, nv, snr_db, size, decoder, seed)``: -> uint8 ``[H, W, 3]`` written
  tile by tile (no full-resolution float image). The diffusion decoders tile the JSCC estimate
  and the sampler together; their noise is drawn per ``NOISE_BLOCK`` square of the image
  (seeded by seed, draw and block position), so overlapping tiles see the same noise, whatever
  the tiling (another sample than the whole-image decoder's, with the same statistics). Posterior guidance runs per tile against the tile core's
  received symbols, with the whole image's latent normalisation (measured on the JSCC estimate
  in a first pass).

Images of at most ``Tiling.whole`` pixels run whole (``JSCC_TILING`` 1024x1024, ``UNET_TILING``
384x384: about 150 MB resp. 215 MB of activations on the CPU); the tiles keep a 4000x3000 photo
at a few hundred MB whatever its size. Call under ``torch.inference_mode()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np
import torch

from .decoders import SemanticCodec, parse_decoder, parse_decoder_spec
from .definitions import normalize_power, real_to_complex
from .edm import image_from_sample
from .guidance import guide, posterior_tau2
from .jscc import JSCC, pad_to_stride

__all__ = ["Tiling", "JSCC_TILING", "UNET_TILING", "NOISE_BLOCK", "encode_image", "decode_image", "block_noise",
           "tiled", "release_memory"]


@dataclass(frozen=True)
class Tiling:
    """Cores of ``tile`` pixels with ``halo`` pixels of context; images of at most ``whole`` pixels run whole."""

    tile: int
    halo: int
    whole: int

    def __post_init__(self) -> None:
        if self.tile < 8 or self.halo < 0 or self.whole < 0:
            raise ValueError(f"tiling: need tile >= 8, halo >= 0, whole >= 0; got {self}")


JSCC_TILING = Tiling(tile=512, halo=64, whole=1024 * 1024)
UNET_TILING = Tiling(tile=192, halo=32, whole=384 * 384)
NOISE_BLOCK = 64  # side of the squares the tiled diffusion decoders draw their noise in (pixels)


_LIBC = None


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Tiles allocate activations of a few tens of MB; glibc's adaptive mmap threshold serves those
    from the heap once some were freed, and the heap then only grows with each tile shape.
    Trimming after every tile keeps the resident set at one tile's working set (measured on a
    4000x3000 image: a peak of about 440 MB instead of 660 MB), for a few ms per tile."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def tiled(height: int, width: int, tiling: Tiling) -> bool:
    """Whether an image of this size runs in tiles."""
    return height * width > tiling.whole


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _aligned(tiling: Tiling, stride: int, what: str) -> None:
    if tiling.tile % stride or tiling.halo % stride:
        raise ValueError(f"tiling of the {what}: tile {tiling.tile} and halo {tiling.halo} must be multiples of the "
                         f"stride {stride}")


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``[1, 3, h, w]`` in [0, 1] -> uint8 ``[h, w, 3]`` (the rounding ``CodecRuntime.decode`` uses)."""
    return (img[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().byte().cpu().numpy()


# ---------------------------------------------------------------------- encoder
def encode_image(jscc: JSCC, img: np.ndarray, snr_db: float, ratio=None, tiling: Tiling | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> unit-power symbols complex64 ``[1, k]`` (``JSCC.encode``, tile by tile when large;
    ``tiling`` default ``JSCC_TILING``)."""
    tiling = tiling or JSCC_TILING
    H, W = img.shape[:2]
    if not tiled(H, W, tiling):
        x = torch.from_numpy(np.array(img, np.uint8)).to(device).permute(2, 0, 1)[None].float() / 255.0
        z = jscc.encode(x, snr_db, ratio)
        del x
        release_memory()
        return z
    s = jscc.cfg.stride
    _aligned(tiling, s, "JSCC encoder")
    c, h, w = jscc.latent_shape(H, W, ratio)
    ph, pw = h * s - H, w * s - W
    if ph or pw:  # the whole image's padding (pad_to_stride), on the uint8 image
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect" if ph < H and pw < W else "edge")
    snr = jscc._snr_in(snr_db, 1, torch.device(device))
    z = torch.empty(1, c, h, w, device=device)
    t, m = tiling.tile // s, tiling.halo // s
    for y0, y1 in _spans(h, t):
        for x0, x1 in _spans(w, t):
            a0, a1, b0, b1 = max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)
            part = np.ascontiguousarray(img[a0 * s:a1 * s, b0 * s:b1 * s])
            x = torch.from_numpy(part).to(device).permute(2, 0, 1)[None].float() / 255.0
            z[:, :, y0:y1, x0:x1] = jscc.encoder(x, snr)[:, :c, y0 - a0:y1 - a0, x0 - b0:x1 - b0]
            del x, part
            release_memory()
    z = normalize_power(real_to_complex(z.flatten(1)))
    release_memory()
    return z


# ---------------------------------------------------------------------- decoders
def _estimate(jscc: JSCC, planes: tuple[torch.Tensor, torch.Tensor], snr: torch.Tensor,
              box: tuple[int, int, int, int], halo: int) -> torch.Tensor:
    """The JSCC decoder's image over pixel box ``(y0, y1, x0, x1)``: ``[1, 3, y1 - y0, x1 - x0]`` in [0, 1].

    Decodes the latent squares covering the box plus ``halo`` latent pixels (clipped)."""
    s = jscc.cfg.stride
    h, w = planes[0].shape[-2:]
    y0, y1, x0, x1 = box
    a0, a1 = max(0, y0 // s - halo), min(h, -(-y1 // s) + halo)
    b0, b1 = max(0, x0 // s - halo), min(w, -(-x1 // s) + halo)
    feat = jscc.decode_features(planes[0][..., a0:a1, b0:b1], planes[1][..., a0:a1, b0:b1])
    out = jscc.decoder(feat, snr)
    return out[..., y0 - a0 * s:y1 - a0 * s, x0 - b0 * s:x1 - b0 * s]


def _block_seed(seed: int, draw: int, by: int, bx: int) -> int:
    return int(np.random.SeedSequence([int(seed) % (1 << 64), draw, by, bx]).generate_state(1, np.uint64)[0])


def block_noise(seed: int, draw: int, box: tuple[int, int, int, int], block: int = NOISE_BLOCK) -> torch.Tensor:
    """Standard normal noise ``[1, 3, y1 - y0, x1 - x0]`` of pixel box ``(y0, y1, x0, x1)`` for draw ``draw``.

    Drawn per ``block`` x ``block`` square of the image from its own generator, so any box
    gives the same values at the same pixels."""
    y0, y1, x0, x1 = box
    out = torch.empty(1, 3, y1 - y0, x1 - x0)
    for by in range(y0 // block, -(-y1 // block)):
        for bx in range(x0 // block, -(-x1 // block)):
            g = torch.Generator().manual_seed(_block_seed(seed, draw, by, bx))
            n = torch.randn(3, block, block, generator=g)
            a0, a1 = max(y0, by * block), min(y1, (by + 1) * block)
            b0, b1 = max(x0, bx * block), min(x1, (bx + 1) * block)
            out[0, :, a0 - y0:a1 - y0, b0 - x0:b1 - x0] = n[:, a0 - by * block:a1 - by * block,
                                                            b0 - bx * block:b1 - bx * block]
    return out


def _boxes(H: int, W: int, tiling: Tiling):
    """``(core, region)`` pixel boxes ``(y0, y1, x0, x1)``: the core and the core with its halo (clipped)."""
    m = tiling.halo
    for y0, y1 in _spans(H, tiling.tile):
        for x0, x1 in _spans(W, tiling.tile):
            yield (y0, y1, x0, x1), (max(0, y0 - m), min(H, y1 + m), max(0, x0 - m), min(W, x1 + m))


def _crop(t: torch.Tensor, core: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> torch.Tensor:
    return t[..., core[0] - region[0]:core[1] - region[0], core[2] - region[2]:core[3] - region[2]]


def decode_image(codec: SemanticCodec, y: torch.Tensor, nv: torch.Tensor, snr_db: float, size: tuple[int, int],
                 decoder: str = "jscc", seed: int = 0, jscc_tiling: Tiling | None = None,
                 unet_tiling: Tiling | None = None) -> np.ndarray:
    """Symbols ``y`` ``[1, k]`` + noise variance ``nv`` ``[1, k]`` -> uint8 ``[H, W, 3]`` (whole or in tiles).

    ``decoder`` as ``SemanticCodec.decode`` (knobs included); ``seed`` seeds the diffusion
    decoders' noise (whole image: ``torch.Generator().manual_seed(seed)``, as before); the
    tilings default to ``JSCC_TILING`` and ``UNET_TILING``."""
    jscc_tiling, unet_tiling = jscc_tiling or JSCC_TILING, unet_tiling or UNET_TILING
    H, W = size
    name, knobs = parse_decoder_spec(decoder)
    kind, _ = parse_decoder(name)
    if not tiled(H, W, jscc_tiling if kind == "jscc" else unet_tiling):
        out = to_uint8(codec.decode(y, nv, snr_db, size, decoder, generator=torch.Generator().manual_seed(seed)))
        release_memory()
        return out
    jscc = codec.jscc
    s = jscc.cfg.stride
    _aligned(jscc_tiling, s, "JSCC decoder")
    planes = jscc.decode_planes(y, nv, size)
    snr = jscc._snr_in(snr_db, 1, y.device)
    halo = jscc_tiling.halo // s
    out = np.empty((H, W, 3), np.uint8)
    if kind == "jscc":
        for core, _ in _boxes(H, W, jscc_tiling):
            out[core[0]:core[1], core[2]:core[3]] = to_uint8(_estimate(jscc, planes, snr, core, halo))
            release_memory()
        del planes
        release_memory()
        return out
    codec.diffusion_model(name)  # a clear error when it is not loaded
    model_stride = 2 ** (len(codec.diffusion_model(name).net.cfg.channels) - 1)
    _aligned(unet_tiling, math.lcm(s, model_stride), "diffusion decoder")
    guided = kind == "cm" and codec.guided(knobs)
    scale = _latent_scale(jscc, planes, snr, (H, W), jscc_tiling) if guided else None
    for core, region in _boxes(H, W, unet_tiling):
        est = _estimate(jscc, planes, snr, region, halo)
        post = _tile_guidance(codec, y, nv, size, snr_db, scale, core, region, est, knobs) if guided else None
        img = codec.refine(est, snr_db, name, lambda i, r=region: block_noise(seed, i, r), knobs, post)
        out[core[0]:core[1], core[2]:core[3]] = to_uint8(_crop(img, core, region))
        del est, img, post
        release_memory()
    del planes
    release_memory()
    return out


# ---------------------------------------------------------------------- guidance in tiles
def _latent_scale(jscc: JSCC, planes, snr: torch.Tensor, size: tuple[int, int], tiling: Tiling) -> float:
    """``1 / rms`` of the encoder's latent of the JSCC estimate over the whole image (tile by tile):
    the power normalisation the guided encoder applies."""
    s, c = jscc.cfg.stride, planes[0].shape[1]
    halo = tiling.halo // s
    total, count = 0.0, 0
    for core, region in _boxes(*size, tiling):
        est = _estimate(jscc, planes, snr, region, halo)
        z = jscc.encoder(pad_to_stride(est, s)[0], snr)[:, :c]
        oy, ox = (core[0] - region[0]) // s, (core[2] - region[2]) // s
        zc = z[..., oy:oy + -(-(core[1] - core[0]) // s), ox:ox + -(-(core[3] - core[2]) // s)]
        total += float(zc.double().square().sum())
        count += zc.numel()
        del est, z, zc
        release_memory()
    return 1.0 / math.sqrt(max(total / max(count // 2, 1), 1e-12))


def _tile_guidance(codec: SemanticCodec, y, nv, size, snr_db, scale: float, core, region, est, knobs):
    """``post(x0, sigma)`` for one tile: ``guide`` against the received symbols of the tile core's latent."""
    jscc = codec.jscc
    cfg = codec.diffusion_model("cm1").net.cfg
    s = jscc.cfg.stride
    c = jscc.latent_shape(*size)[0]
    ly0, ly1 = core[0] // s, -(-core[1] // s)
    lx0, lx1 = core[2] // s, -(-core[3] // s)
    oy, ox = ly0 - region[0] // s, lx0 - region[2] // s
    jscc.requires_grad_(False)
    with torch.inference_mode(False):
        finite = torch.isfinite(nv)
        w = torch.where(finite, (2.0 / nv.clamp_min(1e-12)).sqrt(), torch.zeros_like(nv))  # as measurement_residual
        y0 = torch.where(finite, y, torch.zeros_like(y))
        yr = torch.view_as_real(y0).reshape(1, c, *jscc.latent_shape(*size)[1:])[..., ly0:ly1, lx0:lx1].clone()
        wr = w.repeat_interleave(2, dim=1).reshape(yr.shape[0], c, *jscc.latent_shape(*size)[1:])
        wr = wr[..., ly0:ly1, lx0:lx1].clone()
        cond = (est * 2.0 - 1.0).clone()
        snr = jscc._snr_in(torch.as_tensor(float(snr_db)).clone(), 1, y.device)

        def residual(sample: torch.Tensor) -> torch.Tensor:
            img = (image_from_sample(sample, cond, cfg.residual) + 1.0) / 2.0
            z = jscc.encoder(pad_to_stride(img, s)[0], snr)[:, :c] * scale
            return ((yr - z[..., oy:oy + yr.shape[-2], ox:ox + yr.shape[-1]]) * wr).flatten(1)
        anchor = torch.zeros_like(cond) if cfg.residual else cond

    def post(x0: torch.Tensor, sigma: float) -> torch.Tensor:
        with torch.inference_mode(False):
            return guide(x0.clone(), residual, posterior_tau2(sigma, cfg.sigma_data), knobs.guidance_steps,
                         knobs.guidance, anchor, knobs.anchor)
    return post
