"""Posterior guidance: in closed form (linear encoder, Gaussian prior) it reaches the posterior mean."""

import math

import torch

from semcom.models.guidance import guide, measurement_residual, posterior_tau2


def _linear_problem(n=12, k=4, nv_val=0.3, tau2=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(2, k, n, generator=g) / math.sqrt(n)            # Re and Im rows
    prior_mean = torch.randn(1, n, generator=g)
    x_true = prior_mean + math.sqrt(tau2) * torch.randn(1, n, generator=g)
    encode = lambda x: torch.complex(x @ A[0].T, x @ A[1].T)        # noqa: E731  [B, k]
    nv = torch.full((1, k), nv_val)
    w = torch.complex(torch.randn(1, k, generator=g), torch.randn(1, k, generator=g)) * math.sqrt(nv_val / 2)
    y = encode(x_true) + w
    M = torch.cat([A[0], A[1]])                                      # [2k, n] on [Re; Im]
    yr = torch.cat([y.real, y.imag], 1)[0]
    S = tau2 * M @ M.T + (nv_val / 2) * torch.eye(2 * k)
    post = prior_mean[0] + tau2 * M.T @ torch.linalg.solve(S, yr - M @ prior_mean[0])
    return encode, y, nv, prior_mean, post


def test_guidance_converges_to_the_gaussian_posterior_mean():
    encode, y, nv, mu, post = _linear_problem()
    res = measurement_residual(encode, y, nv)
    out = guide(mu, res, tau2=0.5, steps=300)
    assert torch.allclose(out[0], post, atol=1e-3), (out[0] - post).abs().max()
    # fewer steps move towards it monotonically
    d = [float((guide(mu, res, 0.5, steps=s)[0] - post).norm()) for s in (0, 1, 3, 10)]
    assert d[0] > d[1] > d[2] > d[3]


def test_erased_symbols_weigh_nothing_and_strength_zero_is_identity():
    encode, y, nv, mu, _ = _linear_problem()
    nv_erased = torch.full_like(nv, math.inf)
    res = measurement_residual(encode, y, nv_erased)
    assert torch.equal(res(mu), torch.zeros(1, 2 * y.shape[1]))
    assert torch.allclose(guide(mu, res, 0.5, steps=5), mu)          # nothing measured: stay at the prior
    assert torch.equal(guide(mu, measurement_residual(encode, y, nv), 0.5, steps=3, strength=0.0), mu)


def test_posterior_tau2_limits():
    assert posterior_tau2(1e6, 0.2) == __import__("pytest").approx(0.04)
    assert posterior_tau2(1e-4, 0.2) < 1e-7
