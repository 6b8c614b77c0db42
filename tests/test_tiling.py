"""Tiled codec inference (``semcom.models.tiling``): large images in bounded memory, close to the whole-image result."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from semcom.blocks.phy.snr import complex_awgn, noise_variance  # noqa: E402
from semcom.imagelink import (CodecRuntime, find_checkpoint, find_extra_checkpoint, image_metrics,  # noqa: E402
                              sample_image)
from semcom.models import tiling  # noqa: E402
from semcom.models.tiling import Tiling, block_noise, decode_image, encode_image  # noqa: E402

SNR = 10.0


@pytest.fixture(scope="module")
def codec():
    cm, teacher = find_extra_checkpoint("consistency", "1/24"), find_extra_checkpoint("teacher", "1/24")
    if cm is None or teacher is None:
        pytest.skip("no shipped 1/24 diffusion checkpoints")
    return CodecRuntime(find_checkpoint("1/24"), cm, teacher, threads=1)


def _channel(z: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    n0 = noise_variance(SNR)
    y = z + torch.from_numpy(complex_awgn(z.shape[1], n0, np.random.default_rng(seed)))[None]
    return y, torch.full(y.shape, n0)


def _seam_excess(img: np.ndarray, ref: np.ndarray, step: int) -> float:
    """Mean |error step| across the tile borders (rows and columns at multiples of ``step``) over the
    mean error step elsewhere: about 1 without seams."""
    e = img.astype(np.float64) - ref.astype(np.float64)
    dy, dx = np.abs(np.diff(e, axis=0)).mean(axis=(1, 2)), np.abs(np.diff(e, axis=1)).mean(axis=(0, 2))
    at_y, at_x = np.arange(step - 1, dy.size, step), np.arange(step - 1, dx.size, step)
    return float(np.mean(np.r_[dy[at_y], dx[at_x]]) / np.mean(np.r_[np.delete(dy, at_y), np.delete(dx, at_x)]))


def test_tiled_jscc_matches_the_whole_image(codec):
    img, _ = sample_image()  # 600x512 photo (or the synthetic scene)
    img = img[:448, :384]
    small = Tiling(tile=128, halo=64, whole=0)  # 12 tiles
    with torch.inference_mode():
        z_whole = encode_image(codec.codec.jscc, img, SNR, tiling=Tiling(128, 64, whole=10 ** 9))
        z_tiled = encode_image(codec.codec.jscc, img, SNR, tiling=small)
        assert z_tiled.shape == z_whole.shape
        assert float((z_tiled - z_whole).abs().square().mean()) < 0.01  # latent NMSE (unit power): below -20 dB
        y, nv = _channel(z_tiled)
        whole = decode_image(codec.codec, y, nv, SNR, img.shape[:2], "jscc")
        tiled = decode_image(codec.codec, y, nv, SNR, img.shape[:2], "jscc", jscc_tiling=small)
    p_whole, p_tiled = image_metrics(whole, img)["psnr"], image_metrics(tiled, img)["psnr"]
    assert abs(p_tiled - p_whole) < 0.5, (p_tiled, p_whole)
    assert image_metrics(tiled, whole)["psnr"] > 38.0
    assert _seam_excess(tiled, img, 128) < 1.3  # no seams at the tile borders


def test_block_noise_is_a_function_of_the_pixel():
    a = block_noise(7, 1, (0, 100, 30, 200))
    b = block_noise(7, 1, (40, 170, 0, 90))
    assert a.shape == (1, 3, 100, 170) and b.shape == (1, 3, 130, 90)
    assert torch.equal(a[..., 40:, :60], b[..., :60, 30:])  # the overlap: rows 40..99, columns 30..89
    assert not torch.equal(block_noise(7, 2, (0, 100, 30, 200)), a)  # another draw
    assert not torch.equal(block_noise(8, 1, (0, 100, 30, 200)), a)  # another seed
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1.0) < 0.05


@pytest.mark.parametrize("decoder", ["cm1", "cm2", "cm1:g=1:k=1", "teacher"])
def test_tiled_diffusion_decoders_match_the_whole_image(codec, decoder):
    img = sample_image()[0][64:256, 96:256]  # 192x160
    jt, ut = Tiling(64, 64, whole=0), Tiling(64, 32, whole=0)  # 9 UNet tiles
    with torch.inference_mode():
        y, nv = _channel(encode_image(codec.codec.jscc, img, SNR))
        whole = decode_image(codec.codec, y, nv, SNR, img.shape[:2], decoder, seed=3)
        tiled = decode_image(codec.codec, y, nv, SNR, img.shape[:2], decoder, seed=3, jscc_tiling=jt, unet_tiling=ut)
        again = decode_image(codec.codec, y, nv, SNR, img.shape[:2], decoder, seed=3, jscc_tiling=jt, unet_tiling=ut)
    assert tiled.shape == img.shape and np.array_equal(tiled, again)  # deterministic for a seed
    p_whole, p_tiled = image_metrics(whole, img)["psnr"], image_metrics(tiled, img)["psnr"]
    assert abs(p_tiled - p_whole) < 1.0, (decoder, p_tiled, p_whole)  # another sample, the same quality
    assert _seam_excess(tiled, img, 64) < 1.5, decoder


def test_codec_runtime_tiles_large_images(codec, monkeypatch):
    img = sample_image()[0][:200, :176]
    ref_sym = codec.encode(img, SNR)
    ref = codec.decode(ref_sym, np.full(ref_sym.size, 0.1, np.float32), SNR, img.shape[:2])
    monkeypatch.setattr(tiling, "JSCC_TILING", Tiling(64, 64, whole=64 * 64))  # now "large"
    sym = codec.encode(img, SNR)
    out = codec.decode(sym, np.full(sym.size, 0.1, np.float32), SNR, img.shape[:2])
    assert sym.shape == ref_sym.shape and sym.dtype == np.complex64
    assert abs(np.mean(np.abs(sym) ** 2) - 1.0) < 1e-3  # unit power over the whole image
    assert image_metrics(out, ref)["psnr"] > 30.0


_MEMORY_CHILD = r"""
import resource, sys, numpy as np, torch
from semcom.bench_memory import peak_rss_mb  # VmHWM: this process image's own peak
from semcom.imagelink import CodecRuntime, find_checkpoint, image_metrics, sample_image
codec = CodecRuntime(find_checkpoint("1/24"), threads=1)
img = np.tile(sample_image()[0][:512, :512], (3, 4, 1))  # 2048x1536
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1e6
base = rss_mb()
z = codec.encode(img, 10.0)
out = codec.decode(z, np.full(z.size, 0.1, np.float32), 10.0, img.shape[:2])
m = image_metrics(out, img)
print(peak_rss_mb() - base, m["psnr"])
"""


def test_large_image_peak_memory_is_bounded():
    """A 2048x1536 photo through encode, JSCC decode and the metrics: the peak resident memory above
    the loaded codec stays under 350 MB (whole-image inference needed about 700 MB here; with tiles
    it does not grow with the image size)."""
    r = subprocess.run([sys.executable, "-c", _MEMORY_CHILD], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    growth, psnr = (float(v) for v in r.stdout.split())
    assert psnr > 20.0
    assert growth < 350.0, f"peak {growth:.0f} MB above the loaded codec"
