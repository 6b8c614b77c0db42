"""The training channel: SNR convention, fading with known noise variance, erasures."""

import math

import torch

from semcom.models.channel import Channel, multipath_gains
from semcom.models.config import ChannelConfig
from semcom.models.definitions import normalize_power, real_to_complex


def _symbols(b=8, k=4096, seed=0):
    g = torch.Generator().manual_seed(seed)
    return normalize_power(real_to_complex(torch.randn(b, 2 * k, generator=g)))


def test_awgn_measured_noise_power_matches_snr():
    x = _symbols()
    ch = Channel(ChannelConfig(interleave=False))
    for snr in (0.0, 10.0, 20.0):
        y, nv = ch(x, torch.full((8,), snr), torch.Generator().manual_seed(1))
        n0 = 10 ** (-snr / 10)
        assert torch.allclose(nv, torch.full_like(nv, n0))
        w = y - x
        assert abs(w.abs().square().mean().item() / n0 - 1) < 0.03      # complex variance N0
        assert abs(w.real.square().mean().item() / (n0 / 2) - 1) < 0.04  # N0/2 per real dim


def test_fading_noise_variance_is_per_symbol_and_honest():
    x = _symbols(b=16, k=2048)
    ch = Channel(ChannelConfig())
    y, nv = ch(x, torch.full((16,), 10.0), torch.Generator().manual_seed(2), fading=True)
    assert torch.isfinite(nv).all() and nv.std() > 0  # SNR varies across subcarriers
    normalized = (y - x) / nv.sqrt()
    assert abs(normalized.abs().square().mean().item() - 1) < 0.03
    g = multipath_gains(2000, 1, ChannelConfig(), torch.Generator().manual_seed(3))
    assert abs(g.mean().item() - 1) < 0.05  # unit average power: SNR is the average Es/N0


def test_erasures_zeros_and_infinite_variance_spread_by_interleaver():
    x = _symbols(b=4, k=1920)
    cfg = ChannelConfig(symbols_per_frame=480, p_erasure_frame=0.5)
    y, nv = Channel(cfg)(x, torch.full((4,), 10.0), torch.Generator().manual_seed(4), erasures=True)
    lost = torch.isinf(nv)
    assert lost.any() and (~lost).any()
    assert torch.all(y[lost] == 0) and not torch.isnan(y).any()
    # interleaved: lost symbols are not one contiguous run in symbol order
    row = lost[lost.any(dim=1)][0]
    runs = (row[1:] != row[:-1]).sum().item()
    assert runs > 10
    cfg2 = ChannelConfig(symbols_per_frame=480, p_erasure_frame=0.5, interleave=False)
    _, nv2 = Channel(cfg2)(x, torch.full((4,), 10.0), torch.Generator().manual_seed(4), erasures=True)
    row2 = torch.isinf(nv2)[0].view(-1, 480)
    assert torch.all(row2.all(dim=1) | (~row2).all(dim=1))  # whole frames lost


def test_gradient_flows_and_seeded():
    x = _symbols(b=2, k=256).requires_grad_(True)
    ch = Channel()
    y, _ = ch(x, torch.tensor([5.0, 15.0]), torch.Generator().manual_seed(5), fading=None, erasures=None)
    y.abs().square().sum().backward()
    assert x.grad is not None and torch.isfinite(torch.view_as_real(x.grad)).all()
    a = ch(x.detach(), 5.0, torch.Generator().manual_seed(6), fading=True, erasures=True)
    b = ch(x.detach(), 5.0, torch.Generator().manual_seed(6), fading=True, erasures=True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not math.isnan(a[0].abs().sum().item())
