"""Metrics (PSNR, SSIM, MS-SSIM, Fréchet distance), the classifier, the decoders and `semcom eval`."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from semcom.cli import main
from semcom.models.checkpoint import save_model
from semcom.models.classifier import Classifier
from semcom.models.config import UNetConfig, classifier_preset, jscc_preset, unet_preset
from semcom.models.consistency import ConsistencyFunction
from semcom.models.decoders import SemanticCodec, parse_decoder
from semcom.models.edm import EDMDenoiser, diffusion_target, image_from_sample
from semcom.models.evaluate import evaluate, format_table
from semcom.models.jscc import JSCC
from semcom.models.metrics import frechet_distance, ms_ssim, psnr, ssim
from semcom.models.unet import UNet


def test_psnr_ssim_known_values():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert torch.all(ssim(x, x) > 0.9999)
    noisy = x + 0.1 * torch.randn_like(x)
    assert psnr(noisy, x).mean().item() == pytest.approx(20.0, abs=0.6)  # mse ~ 0.01 (a bit less: clamping)
    worse = x + 0.3 * torch.randn_like(x)
    assert 0 < ssim(worse, x).mean() < ssim(noisy, x).mean() < 0.999
    big = torch.rand(1, 3, 176, 180)
    assert ms_ssim(big, big).item() == pytest.approx(1.0, abs=1e-4)
    assert ms_ssim(big + 0.05 * torch.randn_like(big), big).item() < 1.0
    with pytest.raises(ValueError, match="176"):
        ms_ssim(x, x)


def test_frechet_distance_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g)
    b = torch.randn(20000, 3, generator=g) * 2 + 1
    # closed form: |1|^2 * 3 + 3 * (1 + 4 - 2*2) = 6
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def _codec():
    torch.manual_seed(0)
    j = JSCC(jscc_preset("tiny", "1/6")).eval()
    t = EDMDenoiser(UNet(unet_preset("tiny"))).eval()
    c = ConsistencyFunction(UNet(unet_preset("tiny"))).eval()
    return SemanticCodec(j, t, c, teacher_steps=3)


def test_decoders_and_nfe():
    codec = _codec()
    assert parse_decoder("cm4") == ("cm", 4)
    with pytest.raises(ValueError, match="decoder"):
        parse_decoder("cm0")
    assert [codec.nfe(d) for d in ("jscc", "teacher", "cm1", "cm2")] == [1, 6, 2, 3]
    x = torch.rand(2, 3, 40, 24)
    y = codec.encode(x, 5.0)
    nv = torch.full(y.shape, 0.3)
    for d in ("jscc", "teacher", "cm1", "cm2"):
        out = codec.decode(y, nv, 5.0, (40, 24), d, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_residual_diffusion_decoders_centre_on_the_jscc_estimate():
    """A residual model generates x - estimate. A zero network (the UNet's output layer is
    zero-initialized) is the exact denoiser of the prior N(0, sigma_data^2): the 1-step
    consistency decoder then returns the JSCC estimate (up to the tiny c_skip(sigma_max) term),
    and the teacher's ODE samples estimate + N(0, sigma_data^2), i.e. spread 0.1 in [0, 1]
    units. A whole-image model with the same network returns flat grey."""
    torch.manual_seed(0)
    j = JSCC(jscc_preset("tiny", "1/6")).eval()
    cfg = UNetConfig(channels=(8, 16), blocks=1, emb_dim=16, residual=True, sigma_data=0.2, sigma_max=10.0)
    whole = dataclasses.replace(cfg, residual=False)
    codec = SemanticCodec(j, EDMDenoiser(UNet(cfg), 0.2).eval(), ConsistencyFunction(UNet(cfg), 0.2).eval(),
                          teacher_steps=18)
    plain = SemanticCodec(j, None, ConsistencyFunction(UNet(whole), 0.2).eval())
    x = torch.rand(4, 3, 32, 32)
    y = codec.encode(x, 10.0)
    nv = torch.full(y.shape, 0.1)
    est = codec.decode(y, nv, 10.0, (32, 32), "jscc")
    g = torch.Generator().manual_seed(0)
    assert (codec.decode(y, nv, 10.0, (32, 32), "cm1:g=0:s=0", g) - est).abs().max() < 0.01  # the plain sampler
    spread = (codec.decode(y, nv, 10.0, (32, 32), "teacher", g) - est).std().item()
    assert spread == pytest.approx(0.1, rel=0.15)
    flat = plain.decode(y, nv, 10.0, (32, 32), "cm1:g=0:s=0", g)
    assert (flat - 0.5).abs().max() < 0.01  # the whole-image model ignores the estimate: mid-grey
    t = torch.randn(2, 3, 8, 8)
    c = torch.randn(2, 3, 8, 8)
    assert torch.allclose(image_from_sample(diffusion_target(t, c, True), c, True), t)
    assert torch.equal(diffusion_target(t, c, False), t)


def test_evaluate_rows_mixed_sizes_and_labels():
    codec = _codec()
    clf = Classifier(classifier_preset("tiny")).eval()
    imgs = torch.rand(6, 3, 32, 32)
    rows = evaluate(codec, imgs, [0.0, 10.0], ["jscc", "cm1"], ["awgn", "fading"],
                    labels=torch.arange(6) % 10, classifier=clf, batch=4)
    assert len(rows) == 8 and all(0 <= r["accuracy"] <= 1 and r["feature_fd"] >= 0 for r in rows)
    assert "PSNR" in format_table(rows)
    rows = evaluate(codec, [torch.rand(3, 20, 28), torch.rand(3, 33, 17)], [5.0], ["jscc"])
    assert rows[0]["images"] == 2 and rows[0]["accuracy"] is None and rows[0]["ssim"] is not None


def test_cli_eval_on_folder(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(24, 40), (35, 21)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    codec = _codec()
    ck = tmp_path / "j.safetensors"
    save_model(ck, "jscc", codec.jscc, codec.jscc.cfg)
    out = tmp_path / "o.json"
    rc = main(["eval", "--jscc", str(ck), "--data", str(folder), "--snr", "0,20", "--json", str(out),
               "--plot", str(tmp_path / "o.png")])
    assert rc == 0 and (tmp_path / "o.png").stat().st_size > 1000
    rows = json.loads(out.read_text())["rows"]
    assert [r["snr_db"] for r in rows] == [0.0, 20.0]
    assert main(["eval", "--jscc", str(ck), "--data", str(folder), "--decoder", "cm1"]) == 2
    assert "consistency" in capsys.readouterr().err
