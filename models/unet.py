"""Small conditional UNet backbone for the diffusion / consistency decoders.

``UNet(x_in, c_noise, cond, snr_db) -> F`` is the raw network ``F`` of EDM; the
preconditioning (c_skip, c_out, c_in, c_noise) lives in ``edm.py`` / ``consistency.py``.
Conditioning: the JSCC decoder's estimate (``cond``, ``[B, 3, H, W]`` in [-1, 1]) is
concatenated to the input; the noise level ``c_noise`` and the SNR share one embedding that
scales and shifts every residual block (adaptive GroupNorm). Any ``H x W``: inputs are padded
to the stride and cropped back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import UNetConfig
from .jscc import pad_to_stride

__all__ = ["UNet", "fourier_embedding"]


def fourier_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a scalar per sample: ``[B]`` -> ``[B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    ang = t.float()[:, None] * freqs[None] * 100.0  # c_noise spans ~[-1.6, 1.1]: stretch it
    return torch.cat([ang.cos(), ang.sin()], dim=1)


def _groups(c: int) -> int:
    return math.gcd(c, 8)


class _EmbResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class UNet(nn.Module):
    """``forward(x [B, 3, H, W], c_noise [B], cond [B, cond_channels, H, W], snr_db [B]) -> [B, 3, H, W]``."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch, E = cfg.channels, cfg.emb_dim
        self.emb = nn.Sequential(nn.Linear(2 * E, E), nn.SiLU(), nn.Linear(E, E))
        self.stem = nn.Conv2d(3 + cfg.cond_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = []
        c = ch[0]
        for i, co in enumerate(ch):
            level = nn.ModuleList()
            for _ in range(cfg.blocks):
                level.append(_EmbResBlock(c, co, E))
                c = co
                skips.append(c)
            self.down.append(level)
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = _EmbResBlock(c, c, E)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, co in reversed(list(enumerate(ch))):
            level = nn.ModuleList()
            for _ in range(cfg.blocks):
                level.append(_EmbResBlock(c + skips.pop(), co, E))
                c = co
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor,
                snr_db: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        snr = (snr_db.float().expand(B) - self.cfg.snr_min_db) / max(self.cfg.snr_max_db - self.cfg.snr_min_db, 1e-6)
        E = self.cfg.emb_dim
        emb = self.emb(torch.cat([fourier_embedding(c_noise.expand(B), E), fourier_embedding(snr * 0.02, E)], 1))
        h, size = pad_to_stride(torch.cat([x, cond], dim=1), self.cfg.stride)
        h = self.stem(h)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.out(F.silu(self.out_norm(h)))
        return out[..., : size[0], : size[1]]
