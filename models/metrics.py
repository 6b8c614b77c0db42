"""Image quality metrics on float images ``[B, 3, H, W]`` in [0, 1]."""

from __future__ import annotations

import torch

__all__ = ["psnr"]


def psnr(x: torch.Tensor, ref: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0) after clamping ``x`` to [0, 1]: float ``[B]``."""
    if x.shape != ref.shape:
        raise ValueError(f"psnr: shapes differ {tuple(x.shape)} vs {tuple(ref.shape)}")
    mse = (x.clamp(0, 1) - ref).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse + eps)
