"""Channel-consistent posterior guidance for the consistency decoder (DiffCom-style).

Decoding is posterior inference: the received symbols ``y`` are a measurement of the image
through the frozen JSCC encoder ``E`` and the channel, ``y = E(x) + w`` with
``w ~ CN(0, nv)`` per symbol (``nv = inf``: erased, weight 0). After each consistency jump
gives an estimate ``x_hat`` whose uncertainty is about ``tau^2 = sigma^2 sd^2 / (sigma^2 + sd^2)``
(``sd`` = sigma_data, so a jump from pure noise is as uncertain as the prior), the guided
estimate minimises

    L(x) = 1/2 || (y - E(x)) / sqrt(nv) ||^2 + 1/2 || x - x_hat ||^2 / tau^2
           (+ 1/2 lam || x - x_jscc ||^2 / tau^2, optional)

with ``K`` steepest-descent steps. Each step's length is the exact line search of the local
quadratic model, ``eta = |g|^2 / (g^T H g)`` with ``H g`` from one extra encoder evaluation
(a finite difference along ``g``), times ``strength``: no step size to tune, and for a linear
encoder and a Gaussian prior the iterates converge to the posterior mean (tested in closed form).

Shapes: sample-space tensors ``[B, 3, H, W]``; ``residual(x)`` returns the whitened residual
``(y - E(x)) / sqrt(nv)`` as reals ``[B, 2k]``.
"""

from __future__ import annotations

from typing import Callable

import torch

from .definitions import complex_to_real

__all__ = ["measurement_residual", "guide", "posterior_tau2"]


def posterior_tau2(sigma: float, sigma_data: float) -> float:
    """Variance of the clean sample given a sample at noise ``sigma`` under a prior of spread ``sigma_data``."""
    return sigma * sigma * sigma_data * sigma_data / (sigma * sigma + sigma_data * sigma_data)


def measurement_residual(encode: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, nv: torch.Tensor
                         ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> (y - encode(x)) / sqrt(nv)`` as reals ``[B, 2k]``; erased symbols (``nv = inf``) give 0.

    ``encode``: sample ``[B, ...]`` -> symbols ``[B, k]`` complex; ``y`` ``[B, k]`` complex,
    ``nv`` ``[B, k]`` float (per complex symbol, so I and Q each carry ``nv / 2``).
    """
    finite = torch.isfinite(nv)
    w = torch.where(finite, (2.0 / nv.clamp_min(1e-12)).sqrt(), torch.zeros_like(nv))  # [B, k]
    y0 = torch.where(finite, y, torch.zeros_like(y))
    w2 = w.repeat_interleave(2, dim=1)  # [B, 2k]

    def residual(x: torch.Tensor) -> torch.Tensor:
        # 1/2 |r|^2 = sum |y - E(x)|^2 / nv: the negative log-likelihood of CN(0, nv) noise
        return complex_to_real(y0 - encode(x)) * w2
    return residual


def guide(x_hat: torch.Tensor, residual: Callable[[torch.Tensor], torch.Tensor], tau2: float, steps: int,
          strength: float = 1.0, anchor: torch.Tensor | None = None, anchor_weight: float = 0.0) -> torch.Tensor:
    """``steps`` line-searched gradient steps on ``L`` (module docstring) from ``x_hat``; returns ``[B, ...]``.

    ``anchor``/``anchor_weight``: the optional pull towards the JSCC estimate. ``strength`` in
    [0, 1] scales every step (0: no guidance). Runs with gradients enabled even under ``no_grad``.
    """
    if steps <= 0 or strength <= 0:
        return x_hat
    if tau2 <= 0:
        raise ValueError(f"guidance: tau2 must be > 0, got {tau2}")
    B = x_hat.shape[0]
    dims = tuple(range(1, x_hat.dim()))
    x_hat = x_hat.detach()
    x = x_hat.clone()
    with torch.enable_grad():
        for _ in range(int(steps)):
            xg = x.detach().requires_grad_(True)
            r = residual(xg)  # [B, 2k]
            prior = (xg - x_hat).square().sum(dims) / (2 * tau2)
            if anchor is not None and anchor_weight > 0:
                prior = prior + anchor_weight * (xg - anchor).square().sum(dims) / (2 * tau2)
            loss = 0.5 * r.square().sum(1) + prior  # [B]
            (g,) = torch.autograd.grad(loss.sum(), xg)
            with torch.no_grad():
                gg = g.square().sum(dims)  # [B]
                # curvature along g: |J g|^2 (finite difference of the residual) + prior terms
                eps = 1e-3 / g.flatten(1).abs().amax(1).clamp_min(1e-12)  # [B]
                e = eps.reshape(B, *([1] * (x.dim() - 1)))
                jg = (residual(xg.detach() + e * g) - r.detach()) / eps[:, None]
                ghg = jg.square().sum(1) + gg * (1.0 + (anchor_weight if anchor is not None else 0.0)) / tau2
                eta = strength * gg / ghg.clamp_min(1e-20)
                x = x - eta.reshape(B, *([1] * (x.dim() - 1))) * g
    return x.detach()
