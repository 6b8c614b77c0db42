"""Samplers: short pure functions with one signature, ``sample_x(model, x, sigmas, generator=None)``.

``model(x, sigma)`` maps a noisy batch ``x`` ``[B, ...]`` at noise level ``sigma`` ``[B]`` to
an estimate of the clean data (bind conditioning with a closure). ``x`` is the starting
noise already scaled by ``sigmas[0]``; ``sigmas`` is a decreasing 1-D float tensor.
"""

from __future__ import annotations

import torch

__all__ = ["karras_sigmas", "sample_euler", "sample_heun", "sample_consistency", "consistency_sigmas"]


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """EDM's noise levels: ``n`` values from ``sigma_max`` down to ``sigma_min``, then 0. ``[n + 1]``."""
    if n < 1:
        raise ValueError(f"need at least one sampling step, got {n}")
    ramp = torch.linspace(0, 1, n) if n > 1 else torch.zeros(1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sig, torch.zeros(1)]).float()


def _full(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.to(x.device).expand(x.shape[0])


def sample_euler(model, x: torch.Tensor, sigmas: torch.Tensor, generator=None) -> torch.Tensor:
    """Euler steps of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - model(x, _full(s, x))) / s
        x = x + (s_next - s) * d
    return x


def sample_heun(model, x: torch.Tensor, sigmas: torch.Tensor, generator=None) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic Heun, 2nd order): ``2 * len(sigmas) - 3`` model calls."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - model(x, _full(s, x))) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:  # trapezoidal correction, except for the last step to sigma = 0
            d_next = (x_next - model(x_next, _full(s_next, x))) / s_next
            x_next = x + (s_next - s) * 0.5 * (d + d_next)
        x = x_next
    return x


def consistency_sigmas(nfe: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Noise levels for ``nfe`` consistency evaluations: sigma_max then a Karras spread. ``[nfe]``."""
    return karras_sigmas(nfe + 1, sigma_min, sigma_max, rho)[:nfe] if nfe > 1 else torch.tensor([float(sigma_max)])


def sample_consistency(model, x: torch.Tensor, sigmas: torch.Tensor, generator=None,
                       sigma_min: float = 0.002, post=None, noise=None) -> torch.Tensor:
    """Consistency multistep sampling: ``len(sigmas)`` model calls (Song et al. 2023, Alg. 1).

    Jump to the data with ``model`` (a consistency function), re-noise to the next level, repeat.
    ``post(x0, sigma) -> x0``, if given, corrects every jump before the re-noising (posterior
    guidance, ``guidance.py``); ``sigma`` is the level the jump started from. ``noise(i)``, if
    given, supplies the standard normal re-noising of step ``i`` (1, 2, ...; shape of ``x``)
    instead of ``generator`` (the tiled decoder draws it by image position).
    """
    x0 = model(x, _full(sigmas[0], x))
    if post is not None:
        x0 = post(x0, float(sigmas[0]))
    for i, s in enumerate(sigmas[1:], start=1):
        z = (noise(i) if noise is not None else torch.randn(x.shape, generator=generator)).to(x.device)
        x0 = model(x0 + (s ** 2 - sigma_min ** 2).clamp_min(0).sqrt() * z, _full(s, x))
        if post is not None:
            x0 = post(x0, float(s))
    return x0
