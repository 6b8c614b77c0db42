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


def _tiny_codec(residual=True):
    from semcom.models.config import UNetConfig, jscc_preset
    from semcom.models.consistency import ConsistencyFunction
    from semcom.models.decoders import SemanticCodec
    from semcom.models.jscc import JSCC
    from semcom.models.unet import UNet

    torch.manual_seed(0)
    ucfg = UNetConfig(channels=(8, 16), blocks=1, emb_dim=16, residual=residual, sigma_data=0.2, sigma_max=10.0)
    cm = ConsistencyFunction(UNet(ucfg), ucfg.sigma_data, ucfg.sigma_min).eval()
    return SemanticCodec(JSCC(jscc_preset("tiny", "1/6", base_ratio="1/6")).eval(), consistency=cm)


def test_decoder_spec_knobs_and_their_errors():
    import pytest

    from semcom.models.decoders import DecodeKnobs, parse_decoder_spec

    name, k = parse_decoder_spec("cm2:g=1:k=2:s=0.5")
    assert name == "cm2" and k == DecodeKnobs(guidance=1.0, guidance_steps=2, start_sigma=0.5)
    assert parse_decoder_spec("cm1", DecodeKnobs(0.5, 1))[1] == DecodeKnobs(0.5, 1)  # defaults from the caller
    # a bare name is the measured setting for photos: guided (1 step), SDEdit from the JSCC estimate
    bare = parse_decoder_spec("cm1")[1]
    assert bare == DecodeKnobs() and bare.guidance > 0 and bare.guidance_steps >= 1 and bare.start_sigma > 0
    assert parse_decoder_spec("cm1" + DecodeKnobs(0.0, 1, 0.0).suffix())[1] == DecodeKnobs(0.0, 1, 0.0)
    for bad, msg in (("cm2:x=1", "knob 'x=1'"), ("cm2:g=abc", "not a number"), ("jscc:g=1", "consistency decoders"),
                     ("cm2:k=5", "guidance_steps: must be 0..3"), ("cm2:g=2", "guidance: must be in")):
        with pytest.raises(ValueError, match=msg):
            parse_decoder_spec(bad)


def test_start_sigma_zero_returns_the_jscc_estimate_and_guidance_changes_the_sample():
    codec = _tiny_codec()
    from semcom.models.channel import Channel

    x = torch.rand(1, 3, 32, 32)
    y, nv = Channel()(codec.encode(x, 5.0), torch.tensor([5.0]), torch.Generator().manual_seed(1))
    est = codec.decode(y, nv, 5.0, (32, 32), "jscc")
    assert torch.equal(codec.decode(y, nv, 5.0, (32, 32), "cm2:s=0.001"), est)   # at sigma_min: the estimate
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = codec.decode(y, nv, 5.0, (32, 32), "cm2:g=0:s=0", g())  # the plain sampler
    guided = codec.decode(y, nv, 5.0, (32, 32), "cm2:g=1:k=2:s=0", g())
    assert plain.shape == guided.shape == (1, 3, 32, 32) and not torch.equal(plain, guided)
    # guidance moves the sample towards agreement with the received symbols
    @torch.no_grad()
    def misfit(img):
        return float(((codec.encode(img, 5.0) - y).abs() ** 2 / nv).sum())
    assert misfit(guided) < misfit(plain)


def test_guided_decoding_works_under_inference_mode():
    """Receivers and benchmarks decode under torch.inference_mode; guidance still gets its gradients."""
    codec = _tiny_codec()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        from semcom.models.channel import Channel

        y, nv = Channel()(codec.encode(x, 5.0), torch.tensor([5.0]), torch.Generator().manual_seed(1))
        out = codec.decode(y, nv, torch.tensor([5.0]), (32, 32), "cm2:g=1:k=2", torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = codec.decode(y.clone(), nv.clone(), torch.tensor([5.0]), (32, 32), "cm2:g=1:k=2",
                           torch.Generator().manual_seed(0))
    assert torch.allclose(out, ref, atol=1e-5)
