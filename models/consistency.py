"""Consistency models (Song et al. 2023): ``f(x, sigma)`` maps any point of a probability-flow
trajectory to its origin, so 1 network evaluation decodes; more evaluations refine.

Parameterization: ``f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, ...)`` with

    c_skip = sigma_data^2 / ((sigma - sigma_min)^2 + sigma_data^2)
    c_out  = (sigma - sigma_min) sigma_data / sqrt(sigma^2 + sigma_data^2)

so at ``sigma = sigma_min`` c_skip is exactly 1 and c_out exactly 0: the boundary condition
``f(x, sigma_min) = x`` holds by construction, bit for bit.

Training by **consistency distillation** from an EDM teacher: for adjacent Karras noise
levels ``s_n < s_{n+1}``, ``x_{n+1} = x0 + s_{n+1} z``, one Heun step of the teacher's
probability-flow ODE gives ``x_n``, and the student is pulled towards the (stop-gradient)
target network's output at ``x_n`` with the pseudo-Huber distance of improved CT.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .samplers import karras_sigmas

__all__ = ["ConsistencyFunction", "pseudo_huber", "consistency_distillation_loss"]


class ConsistencyFunction(nn.Module):
    """``forward(x [B, 3, H, W], sigma [B], cond, snr_db [B]) -> f(x, sigma)`` (x0 estimate)."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5, sigma_min: float = 0.002):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sigma_min = float(sigma_min)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        sd = self.sigma_data
        s = sigma.float().reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)  # [B, 1, 1, 1]
        c_skip = sd ** 2 / ((s - self.sigma_min) ** 2 + sd ** 2)
        c_out = (s - self.sigma_min) * sd / (s ** 2 + sd ** 2).sqrt()
        c_in = 1.0 / (s ** 2 + sd ** 2).sqrt()
        return c_skip * x + c_out * self.net(c_in * x, s.log().flatten() / 4.0, cond, snr_db)


def pseudo_huber(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Improved-CT distance ``sqrt(|a-b|^2 + c^2) - c``, ``c = 0.00054 sqrt(dim)``; per sample ``[B]``."""
    c = 0.00054 * math.sqrt(a[0].numel())
    return ((a - b).flatten(1).square().sum(dim=1) + c * c).sqrt() - c


def consistency_distillation_loss(student: ConsistencyFunction, target: ConsistencyFunction, teacher: nn.Module,
                                  x0: torch.Tensor, cond: torch.Tensor, snr_db: torch.Tensor,
                                  n_steps: int, sigma_max: float, generator: torch.Generator | None = None
                                  ) -> torch.Tensor:
    """Mean pseudo-Huber consistency loss over a batch of clean images ``x0`` in [-1, 1]."""
    B = x0.shape[0]
    sig = karras_sigmas(n_steps, student.sigma_min, sigma_max)[:-1].flip(0)  # ascending [n_steps]
    n = torch.randint(0, n_steps - 1, (B,), generator=generator)
    s_lo, s_hi = sig[n].to(x0.device), sig[n + 1].to(x0.device)  # [B]
    z = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_hi = x0 + s_hi[:, None, None, None] * z
    with torch.no_grad():  # one Heun step of the teacher's ODE from s_hi to s_lo
        bc = lambda v: v[:, None, None, None]  # noqa: E731
        d_hi = (x_hi - teacher(x_hi, s_hi, cond, snr_db)) / bc(s_hi)
        x_eul = x_hi + bc(s_lo - s_hi) * d_hi
        d_lo = (x_eul - teacher(x_eul, s_lo, cond, snr_db)) / bc(s_lo)
        x_lo = x_hi + bc(s_lo - s_hi) * 0.5 * (d_hi + d_lo)
        y = target(x_lo, s_lo, cond, snr_db)
    f = student(x_hi, s_hi, cond, snr_db)
    weight = 1.0 / (s_hi - s_lo)  # improved-CT weighting: small gaps matter more
    return (weight * pseudo_huber(f, y)).mean() / weight.mean()
