"""EDM preconditioning (Karras et al. 2022) as a wrapper, so any backbone becomes a denoiser.

``D(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma), cond, snr)``
with data scaled to [-1, 1] of standard deviation ``sigma_data``. Training weights each noise
level by ``lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2`` so the network's
effective target has unit variance everywhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["EDMDenoiser", "edm_loss", "sample_training_sigmas", "diffusion_target", "image_from_sample"]


def diffusion_target(x: torch.Tensor, cond: torch.Tensor, residual: bool) -> torch.Tensor:
    """What the diffusion model generates: the image ``x`` (``[B, 3, H, W]`` in [-1, 1]) or, for a
    residual model, ``x - cond`` (``cond``: the JSCC estimate in [-1, 1])."""
    return x - cond if residual else x


def image_from_sample(x0: torch.Tensor, cond: torch.Tensor, residual: bool) -> torch.Tensor:
    """Inverse of ``diffusion_target``: a generated sample back to an image in [-1, 1] (unclamped)."""
    return x0 + cond if residual else x0


class EDMDenoiser(nn.Module):
    """``forward(x [B, 3, H, W], sigma [B], cond [B, C, H, W], snr_db [B]) -> D(x; sigma)`` (x0 estimate)."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        sd2 = self.sigma_data ** 2
        s = sigma.float().reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)  # [B, 1, 1, 1]
        c_skip = sd2 / (s ** 2 + sd2)
        c_out = s * self.sigma_data / (s ** 2 + sd2).sqrt()
        c_in = 1.0 / (s ** 2 + sd2).sqrt()
        c_noise = s.log().flatten() / 4.0
        return c_skip * x + c_out * self.net(c_in * x, c_noise, cond, snr_db)


def sample_training_sigmas(batch: int, generator: torch.Generator | None = None,
                           p_mean: float = -1.2, p_std: float = 1.2) -> torch.Tensor:
    """EDM's log-normal training noise levels, ``[batch]`` float32."""
    return torch.exp(p_mean + p_std * torch.randn(batch, generator=generator))


def edm_loss(denoiser: EDMDenoiser, x0: torch.Tensor, cond: torch.Tensor, snr_db: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Weighted denoising loss on clean samples ``x0`` (scalar).

    The log-normal noise levels are centred relative to ``sigma_data`` (EDM's ``P_mean = -1.2``
    is for ``sigma_data = 0.5``), so a residual model with a small ``sigma_data`` trains on
    noise levels that matter for it."""
    p_mean = -1.2 + math.log(denoiser.sigma_data / 0.5)
    sigma = sample_training_sigmas(x0.shape[0], generator, p_mean=p_mean).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    sd = denoiser.sigma_data
    weight = (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2  # [B]
    d = denoiser(x0 + sigma[:, None, None, None] * noise, sigma, cond, snr_db)
    return (weight[:, None, None, None] * (d - x0).square()).mean()
