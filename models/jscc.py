"""SNR-adaptive deep JSCC: image -> k unit-power complex symbols -> image.

Encoder: pixel-unshuffle by 2, then residual stages at decreasing resolution, each followed
by an ADJSCC-style attention/feature module (channel gains predicted from the pooled features
and the SNR), a final conv to ``latent_channels`` and per-image power normalization.
Decoder: mirror image. It sees the received symbols *and* their per-symbol noise variance
``nv`` as two inputs per real latent value: the LMMSE-shrunk value ``y / (1 + nv)`` and the
reliability ``1 / (1 + nv)`` (0 for an erased symbol, whose ``nv`` is ``inf``), so fading and
erasures are visible to it. Its SNR conditioning is the average (estimated) SNR.
Any ``H x W`` works: inputs are padded (reflect) to the stride and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import JSCCConfig
from .definitions import complex_to_real, normalize_power, real_to_complex

__all__ = ["JSCC", "JSCCEncoder", "JSCCDecoder", "ResBlock", "SNRAttention", "GDN", "pad_to_stride"]


def pad_to_stride(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` ``[B, C, H, W]`` at bottom/right to multiples of ``stride``."""
    H, W = x.shape[-2:]
    ph, pw = (-H) % stride, (-W) % stride
    if ph or pw:
        mode = "reflect" if ph < H and pw < W else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (H, W)


class ResBlock(nn.Module):
    """``x + conv(act(conv(act(x))))``; the second conv starts at zero so the block starts as identity."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class SNRAttention(nn.Module):
    """ADJSCC attention-feature module: per-channel gains from [mean-pooled features, SNR]."""

    def __init__(self, c: int):
        super().__init__()
        hidden = max(16, c // 4)
        self.mlp = nn.Sequential(nn.Linear(c + 1, hidden), nn.SiLU(), nn.Linear(hidden, c))

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, C, H, W]``, ``snr`` ``[B]`` normalized to about [0, 1]."""
        ctx = torch.cat([x.mean(dim=(2, 3)), snr[:, None]], dim=1)  # [B, C+1]
        return x * torch.sigmoid(self.mlp(ctx))[:, :, None, None] * 2.0


class GDN(nn.Module):
    """Generalized divisive normalization (Balle et al. 2016): ``x / sqrt(beta + gamma @ x^2)``.

    ``inverse=True`` multiplies instead (IGDN, for the decoder). ``x`` ``[B, C, H, W]``.
    beta and gamma are kept positive by squaring (with a small floor on beta); initialised so
    that the layer is close to ``x / sqrt(1 + 0.1 x^2)``.
    """

    def __init__(self, c: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(c))
        self.gamma = nn.Parameter(torch.eye(c) * 0.1 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta.square() + 1e-6
        gamma = self.gamma.square()[:, :, None, None]  # [C, C, 1, 1]
        norm = torch.sqrt(F.conv2d(x.square(), gamma, beta))
        return x * norm if self.inverse else x / norm


class _Stage(nn.Module):
    def __init__(self, c: int, blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(c) for _ in range(blocks)])
        self.af = SNRAttention(c)

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        return self.af(self.blocks(x), snr)


class JSCCEncoder(nn.Module):
    """Image ``[B, 3, H, W]`` in [0, 1] (H, W multiples of the stride) -> latent ``[B, L, H/s, W/s]``."""

    def __init__(self, cfg: JSCCConfig):
        super().__init__()
        ch = cfg.channels
        self.stem = nn.Conv2d(12, ch[0], 3, padding=1)
        self.stages = nn.ModuleList([_Stage(c, cfg.blocks) for c in ch])
        self.downs = nn.ModuleList([nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(ch[:-1], ch[1:])])
        self.norms = nn.ModuleList([GDN(c) for c in ch]) if cfg.gdn else None
        self.head = nn.Conv2d(ch[-1], cfg.latent_channels_max, 3, padding=1)

    def forward(self, img: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        h = self.stem(F.pixel_unshuffle(img * 2.0 - 1.0, 2))
        for i, stage in enumerate(self.stages):
            if i:
                h = self.downs[i - 1](h)
            if self.norms is not None:
                h = self.norms[i](h)
            h = stage(h, snr)
        return self.head(F.silu(h))


class JSCCDecoder(nn.Module):
    """(shrunk symbols, reliability) ``[B, 2L, h, w]`` -> image ``[B, 3, h*s, w*s]`` in [0, 1]."""

    def __init__(self, cfg: JSCCConfig):
        super().__init__()
        ch = cfg.channels[::-1]
        self.stem = nn.Conv2d(2 * cfg.latent_channels_max, ch[0], 3, padding=1)
        self.stages = nn.ModuleList([_Stage(c, cfg.blocks) for c in ch])
        self.ups = nn.ModuleList([nn.Conv2d(a, 4 * b, 3, padding=1) for a, b in zip(ch[:-1], ch[1:])])
        self.norms = nn.ModuleList([GDN(c, inverse=True) for c in ch]) if cfg.gdn else None
        self.head = nn.Conv2d(ch[-1], 12, 3, padding=1)

    def forward(self, feat: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        h = self.stem(feat)
        for i, stage in enumerate(self.stages):
            if i:
                h = F.pixel_shuffle(self.ups[i - 1](h), 2)
            h = stage(h, snr)
            if self.norms is not None:
                h = self.norms[i](h)
        return torch.sigmoid(F.pixel_shuffle(self.head(F.silu(h)), 2))


class JSCC(nn.Module):
    """Encoder + decoder with the symbol interface the PHY uses.

    * :meth:`encode` image ``[B, 3, H, W]`` float in [0, 1], ``snr_db`` ``[B]`` ->
      symbols ``[B, k]`` complex64 with unit average power per image.
    * :meth:`decode` symbols ``[B, k]`` complex, ``nv`` ``[B, k]`` float (``inf`` = erased),
      ``snr_db`` ``[B]``, image size ``(H, W)`` -> image ``[B, 3, H, W]`` in [0, 1].

    A rate-adaptive model (``cfg.base_ratio`` set) runs at ``cfg.ratio`` unless a call names
    another ``ratio`` (<= base): the encoder sends the leading latent channels, the decoder
    treats the rest as erased.
    """

    def __init__(self, cfg: JSCCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = JSCCEncoder(cfg)
        self.decoder = JSCCDecoder(cfg)

    def _snr_in(self, snr_db: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
        snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device).expand(batch)
        span = max(self.cfg.snr_max_db - self.cfg.snr_min_db, 1e-6)
        return (snr - self.cfg.snr_min_db) / span

    def _channels(self, ratio) -> int:
        return self.cfg.latent_channels if ratio is None else self.cfg.with_ratio(ratio).latent_channels

    def latent_shape(self, height: int, width: int, ratio=None) -> tuple[int, int, int]:
        """Transmitted latent ``(channels, h, w)`` for an image of this size at ``ratio``."""
        s = self.cfg.stride
        return self._channels(ratio), -(-height // s), -(-width // s)

    def num_symbols(self, height: int, width: int, ratio=None) -> int:
        """k for an image of this size (after padding to the stride)."""
        c, h, w = self.latent_shape(height, width, ratio)
        return c * h * w // 2

    def encode(self, img: torch.Tensor, snr_db: torch.Tensor | float, ratio=None) -> torch.Tensor:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f"encode expects images [B, 3, H, W], got {tuple(img.shape)}")
        x, _ = pad_to_stride(img.float(), self.cfg.stride)
        z = self.encoder(x, self._snr_in(snr_db, x.shape[0], x.device))  # [B, L_max, h, w]
        z = z[:, : self._channels(ratio)]  # [B, L, h, w]
        return normalize_power(real_to_complex(z.flatten(1)))

    def decode_planes(self, y: torch.Tensor, nv: torch.Tensor, size: tuple[int, int], ratio=None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's inputs as latent maps: (LMMSE-shrunk values, reliabilities), each ``[B, c, h, w]``."""
        B = y.shape[0]
        c, h, w = self.latent_shape(*size, ratio=ratio)
        if y.shape != (B, c * h * w // 2) or nv.shape != y.shape:
            raise ValueError(f"decode: expected symbols and nv of shape {(B, c * h * w // 2)} for image "
                             f"{size}, got {tuple(y.shape)} and {tuple(nv.shape)}")
        rel = 1.0 / (1.0 + nv.float())  # [B, k], 0 where nv = inf (erased)
        y = torch.where(torch.isfinite(nv), y, torch.zeros_like(y))
        shrunk = complex_to_real(y * rel)  # [B, 2k]
        rel2 = rel.repeat_interleave(2, dim=1)  # [B, 2k]: I and Q share the reliability
        return shrunk.reshape(B, c, h, w), rel2.reshape(B, c, h, w)

    def decode_features(self, shrunk: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
        """``decode_planes`` (or a spatial crop of them) -> decoder input ``[B, 2 * latent_channels_max, h, w]``."""
        B, c, h, w = shrunk.shape
        pad = self.cfg.latent_channels_max - c
        if not pad:
            return torch.cat([shrunk, rel], dim=1)
        # channels this ratio does not send: value 0, reliability 0 (as if erased)
        zeros = shrunk.new_zeros(B, pad, h, w)
        return torch.cat([shrunk, zeros, rel, zeros], dim=1)

    def decode(self, y: torch.Tensor, nv: torch.Tensor, snr_db: torch.Tensor | float,
               size: tuple[int, int], ratio=None) -> torch.Tensor:
        feat = self.decode_features(*self.decode_planes(y, nv, size, ratio))
        out = self.decoder(feat, self._snr_in(snr_db, y.shape[0], y.device))
        return out[..., : size[0], : size[1]]

    def forward(self, img: torch.Tensor, channel, snr_db: torch.Tensor,
                generator: torch.Generator | None = None, ratio=None, **channel_kw) -> torch.Tensor:
        """End-to-end pass through ``channel`` (a :class:`~.channel.Channel`-like callable)."""
        x = self.encode(img, snr_db, ratio)
        y, nv = channel(x, snr_db, generator=generator, **channel_kw)
        return self.decode(y, nv, snr_db, tuple(img.shape[-2:]), ratio)
