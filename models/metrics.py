"""Image quality metrics on float images ``[B, 3, H, W]`` in [0, 1], and the Fréchet distance.

* :func:`psnr`: per-image PSNR in dB, peak 1.
* :func:`ssim`: per-image SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01,
  K2 0.03), averaged over RGB channels, valid-window convolution. Images with a side below 11 px
  use the largest odd window that fits (sigma scaled by ``size / 11``), so the value stays finite
  (it is then not comparable with the 11x11 figure of larger images).
* :func:`ms_ssim`: 5-scale MS-SSIM (Wang et al. 2003 weights) for images whose shorter side is
  at least :data:`MS_SSIM_MIN_SIDE`; smaller images raise ``ValueError`` (use SSIM).
* :func:`frechet_distance`: between two Gaussian fits of feature sets; with the features of
  the classifier trained here it is the "classifier-feature FD", *not* FID (no Inception weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "ms_ssim", "frechet_distance", "MS_SSIM_MIN_SIDE"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = 11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1)  # 176: the window still fits at the coarsest scale


def _check(x: torch.Tensor, ref: torch.Tensor, name: str) -> None:
    if x.shape != ref.shape or x.dim() != 4:
        raise ValueError(f"{name}: need two [B, C, H, W] batches of one shape, got {tuple(x.shape)} "
                         f"and {tuple(ref.shape)}")


def psnr(x: torch.Tensor, ref: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0) after clamping ``x`` to [0, 1]: float ``[B]``."""
    _check(x, ref, "psnr")
    mse = (x.clamp(0, 1) - ref).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse + eps)


def _window(c: int, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()  # [C, 1, 11, 11]


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, size: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and mean contrast-structure term (``size`` x ``size`` window): two ``[B]`` tensors."""
    c = x.shape[1]
    w = _window(c, size, 1.5 * size / 11).to(x.device)
    conv = lambda v: F.conv2d(v, w, groups=c)  # noqa: E731
    mx, my = conv(x), conv(y)
    sxx = conv(x * x) - mx * mx
    syy = conv(y * y) - my * my
    sxy = conv(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of ``x`` (clamped to [0, 1]) against ``ref``: float ``[B]``, finite for any size.

    The window is 11x11 (sigma 1.5); a side below 11 px shrinks it to the largest odd size that fits
    (9x9 for a 9x9 image, sigma scaled alike; 1x1 compares single pixels)."""
    _check(x, ref, "ssim")
    side = min(x.shape[-2:])
    if side < 1:
        raise ValueError(f"ssim: empty images {tuple(x.shape[-2:])}")
    size = 11 if side >= 11 else side - (1 - side % 2)  # largest odd window <= side
    return _ssim_terms(x.clamp(0, 1).float(), ref.float(), size)[0]


def ms_ssim(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image 5-scale MS-SSIM: float ``[B]``. Needs a shorter side >= ``MS_SSIM_MIN_SIDE``."""
    _check(x, ref, "ms_ssim")
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"ms_ssim: shorter side must be >= {MS_SSIM_MIN_SIDE}, got {tuple(x.shape[-2:])}")
    x, ref = x.clamp(0, 1).float(), ref.float()
    out = torch.ones(x.shape[0], device=x.device)
    for i, wgt in enumerate(MS_SSIM_WEIGHTS):
        s, cs = _ssim_terms(x, ref)
        last = i == len(MS_SSIM_WEIGHTS) - 1
        out = out * (s if last else cs).clamp_min(1e-6) ** wgt
        if not last:
            x, ref = F.avg_pool2d(x, 2), F.avg_pool2d(ref, 2)
    return out


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`` of features ``[N, D]``."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance: need two [N>=2, D] feature sets, got {tuple(a.shape)}, {tuple(b.shape)}")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)

    def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh((m + m.T) / 2)
        return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T

    ra = sqrtm_psd(sa)
    cross = sqrtm_psd(ra @ sb @ ra)
    return float((mu_a - mu_b).square().sum() + torch.trace(sa + sb - 2 * cross))
