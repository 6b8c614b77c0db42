"""Diffusion decoders: EDM preconditioning, UNet shapes, consistency boundary condition,
samplers against a closed-form Gaussian denoiser."""

import math

import pytest
import torch

from semcom.models.config import UNetConfig, unet_preset
from semcom.models.consistency import ConsistencyFunction, consistency_distillation_loss, pseudo_huber
from semcom.models.edm import EDMDenoiser, edm_loss
from semcom.models.samplers import (consistency_sigmas, karras_sigmas, sample_consistency, sample_euler,
                                    sample_heun)
from semcom.models.unet import UNet

MU, S = 0.3, 0.2  # data ~ N(MU, S^2) per dimension


def gaussian_denoiser(x, sigma):
    """The exact E[x0 | x0 + sigma z] for x0 ~ N(MU, S^2)."""
    s2 = sigma.reshape(-1, *([1] * (x.dim() - 1))) ** 2
    return MU + S ** 2 / (S ** 2 + s2) * (x - MU)


def gaussian_consistency(x, sigma, sigma_min=0.002):
    """The exact probability-flow map from level sigma to sigma_min for Gaussian data."""
    s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
    return MU + (x - MU) * math.sqrt(S ** 2 + sigma_min ** 2) / (S ** 2 + s ** 2).sqrt()


def _noise(sig0, n=20000, seed=0):
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed)) * sig0


def test_karras_sigmas():
    s = karras_sigmas(18, 0.002, 80.0)
    assert s.shape == (19,) and s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002) and s[-1] == 0
    assert torch.all(s[1:] < s[:-1])
    assert consistency_sigmas(1, 0.002, 80.0).tolist() == [80.0]
    assert consistency_sigmas(4, 0.002, 80.0).shape == (4,)


def test_samplers_converge_to_gaussian_statistics():
    def std_error(sampler, steps):
        sig = karras_sigmas(steps, 0.002, 80.0)
        out = sampler(gaussian_denoiser, _noise(sig[0]), sig)
        assert abs(out.mean().item() - MU) < 0.005
        return abs(out.std().item() - S)
    assert std_error(sample_heun, 40) < 0.005
    # Heun is second order: 2.5x more steps cut the error by well over 2.5x
    assert std_error(sample_heun, 100) < std_error(sample_heun, 40) / 4
    assert std_error(sample_euler, 100) < std_error(sample_euler, 40) < std_error(sample_euler, 18)
    assert std_error(sample_heun, 18) < std_error(sample_euler, 18)


@pytest.mark.parametrize("nfe", [1, 2, 4])
def test_consistency_sampler_with_exact_consistency_function(nfe):
    sig = consistency_sigmas(nfe, 0.002, 80.0)
    out = sample_consistency(gaussian_consistency, _noise(sig[0]), sig, torch.Generator().manual_seed(1))
    assert abs(out.mean().item() - MU) < 0.01
    assert abs(out.std().item() - S) < 0.01


def _unet(seed=0):
    torch.manual_seed(seed)
    net = UNet(unet_preset("tiny"))
    for p in net.parameters():  # non-zero everywhere so the boundary test is not trivial
        torch.nn.init.normal_(p, std=0.1)
    return net


def test_consistency_boundary_condition_exact():
    f = ConsistencyFunction(_unet(), sigma_data=0.5, sigma_min=0.002)
    x = torch.randn(3, 3, 32, 32)
    cond, snr = torch.randn(3, 3, 32, 32), torch.tensor([0.0, 10.0, 20.0])
    with torch.no_grad():
        assert torch.equal(f(x, torch.full((3,), 0.002), cond, snr), x)
        assert not torch.allclose(f(x, torch.full((3,), 1.0), cond, snr), x)


@pytest.mark.parametrize("size", [(32, 32), (40, 24), (17, 30)])
def test_unet_and_edm_shapes(size):
    net = _unet()
    d = EDMDenoiser(net, 0.5)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = d(x, torch.tensor([0.5, 5.0]), torch.rand(2, 3, *size), torch.tensor([1.0, 2.0]))
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_edm_preconditioning_limits():
    zero = UNet(UNetConfig(channels=(8,), blocks=1, emb_dim=8))  # output conv is zero-initialized
    d = EDMDenoiser(zero, 0.5)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        # with F = 0, D = c_skip x: identity at small sigma, ~0 (the data mean) at large sigma
        assert torch.allclose(d(x, torch.tensor([1e-4]), x, torch.zeros(1)), x, atol=1e-6)
        assert d(x, torch.tensor([1e3]), x, torch.zeros(1)).abs().max() < 1e-5


def test_losses_finite_and_trainable():
    g = torch.Generator().manual_seed(0)
    teacher = EDMDenoiser(_unet(1), 0.5)
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    cond, snr = x0 + 0.1 * torch.randn(4, 3, 16, 16), torch.full((4,), 10.0)
    loss = edm_loss(teacher, x0, cond, snr, g)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None for p in teacher.parameters())
    student = ConsistencyFunction(_unet(2), 0.5, 0.002)
    target = ConsistencyFunction(_unet(2), 0.5, 0.002)
    cd = consistency_distillation_loss(student, target, teacher, x0, cond, snr, 18, 80.0, g)
    cd.backward()
    assert torch.isfinite(cd) and cd > 0
    a = torch.randn(2, 3, 4, 4)
    assert torch.all(pseudo_huber(a, a) == 0)
