"""SNR-adaptive JSCC: shapes, symbol count, unit power, erasure robustness, determinism."""

import pytest
import torch

from semcom.models.channel import Channel
from semcom.models.config import jscc_preset
from semcom.models.definitions import num_symbols
from semcom.models.jscc import JSCC


@pytest.mark.parametrize("ratio", ["1/6", "1/24"])
@pytest.mark.parametrize("size", [(32, 32), (40, 24), (19, 37)])
def test_shapes_symbols_and_unit_power(ratio, size):
    torch.manual_seed(0)
    m = JSCC(jscc_preset("tiny", ratio)).eval()
    s = m.cfg.stride
    img = torch.rand(2, 3, *size)
    with torch.no_grad():
        x = m.encode(img, torch.tensor([0.0, 20.0]))
        padded = (-(-size[0] // s) * s, -(-size[1] // s) * s)
        assert x.shape == (2, num_symbols(*padded, ratio)) and x.dtype == torch.complex64
        assert torch.allclose(x.abs().square().mean(dim=1), torch.ones(2), atol=1e-5)
        y, nv = Channel()(x, 10.0, torch.Generator().manual_seed(0), fading=True, erasures=True)
        out = m.decode(y, nv, 10.0, size)
    assert out.shape == (2, 3, *size) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_all_erased_is_graceful():
    m = JSCC(jscc_preset("tiny", "1/6")).eval()
    k = m.num_symbols(32, 32)
    y = torch.zeros(1, k, dtype=torch.complex64)
    nv = torch.full((1, k), float("inf"))
    with torch.no_grad():
        out = m.decode(y, nv, 5.0, (32, 32))
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="expected symbols"):
        m.decode(y[:, :-1], nv[:, :-1], 5.0, (32, 32))


def test_seeded_determinism():
    def run():
        torch.manual_seed(3)
        m = JSCC(jscc_preset("tiny", "1/6"))
        g = torch.Generator().manual_seed(4)
        return m(torch.rand(2, 3, 32, 32, generator=g), Channel(), torch.tensor([3.0, 9.0]), g,
                 fading=None, erasures=None)
    assert torch.equal(run(), run())


def test_snr_conditioning_changes_the_code():
    torch.manual_seed(1)
    m = JSCC(jscc_preset("tiny", "1/6")).eval()
    for p in m.parameters():  # make the residual branches active
        torch.nn.init.normal_(p, std=0.1)
    img = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(m.encode(img, 0.0), m.encode(img, 20.0))


def test_rate_adaptive_model_serves_every_ratio_below_its_base():
    from semcom.models.config import ConfigError

    m = JSCC(jscc_preset("tiny", "1/6", base_ratio="1/6")).eval()
    img = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        full = m.encode(img, 5.0)                       # [2, k(1/6)]
        for r, div in (("1/12", 2), ("1/24", 4), ("1/48", 8)):
            z = m.encode(img, 5.0, ratio=r)
            assert z.shape == (2, full.shape[1] // div) == (2, m.num_symbols(32, 48, r))
            assert torch.allclose(z.abs().square().mean(1), torch.ones(2), atol=1e-5)  # unit power per image
            out = m.decode(z, torch.full(z.shape, 0.1), 5.0, (32, 48), ratio=r)
            assert out.shape == img.shape and bool(((out >= 0) & (out <= 1)).all())
        # fewer symbols: the untransmitted channels are decoded as erased, which is what nv = inf means
        z24 = m.encode(img, 5.0, ratio="1/24")
        pad = torch.zeros_like(full)
        nv = torch.full(full.shape, float("inf"))
        k24 = z24.shape[1]
        c24, h, w = m.latent_shape(32, 48, "1/24")
        # symbol order is channel-major, so the 1/24 symbols are the leading ones of the 1/6 latent
        pad[:, :k24], nv[:, :k24] = z24, 0.1
        a = m.decode(z24, torch.full(z24.shape, 0.1), 5.0, (32, 48), ratio="1/24")
        b = m.decode(pad, nv, 5.0, (32, 48))
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ConfigError, match="exceeds the model's base_ratio"):
        m.encode(img, 5.0, ratio="1/3")
    fixed = JSCC(jscc_preset("tiny", "1/6"))
    with pytest.raises(ConfigError, match="fixed ratio 1/6"):
        fixed.encode(img, 5.0, ratio="1/24")
