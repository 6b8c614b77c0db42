"""The checkpoints shipped in models/checkpoints load, are small, and beat a trivial decoder."""

from pathlib import Path

import pytest
import torch

from semcom.models.channel import Channel
from semcom.models.checkpoint import load_model, read_metadata
from semcom.models.metrics import psnr

CKPT_DIR = Path(__file__).resolve().parent.parent / "models" / "checkpoints"
SHIPPED = sorted(CKPT_DIR.glob("*.safetensors"))


def test_some_checkpoint_is_shipped():
    assert SHIPPED, f"no checkpoints in {CKPT_DIR}"


@pytest.mark.parametrize("ratio", ["1/6", "1/24"])
def test_loopback_finds_the_shipped_jscc_checkpoint(ratio):
    # the image loopback tests skip when no checkpoint is found; this makes sure that never happens silently
    from semcom.imagelink import find_checkpoint

    path = Path(find_checkpoint(ratio))
    assert path.resolve().parent == CKPT_DIR and path.exists()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_checkpoint_loads_and_is_small(path):
    assert path.stat().st_size <= 20 * 2 ** 20
    meta = read_metadata(path)
    model, cfg, info = load_model(path)
    assert meta["kind"] in ("jscc", "teacher", "consistency", "classifier") and "step" in info


@pytest.mark.parametrize("path", [p for p in SHIPPED if read_metadata(p)["kind"] == "jscc"], ids=lambda p: p.name)
def test_shipped_jscc_beats_trivial_decoder(path):
    torch.set_num_threads(1)
    model, cfg, _ = load_model(path, kind="jscc")
    x = _sample_crops(16, 64)  # natural-image crops: what the shipped models were trained on
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        trivial = psnr(torch.full_like(x, 0.5), x).mean().item()  # a decoder that ignores the channel
        low = psnr(model(x, Channel(), torch.full((16,), 0.0), g), x).mean().item()
        high = psnr(model(x, Channel(), torch.full((16,), 20.0), g), x).mean().item()
    assert low > trivial + 5.0 and high > low  # learned, and uses the SNR it is given


def _sample_crops(n: int = 16, side: int = 32) -> torch.Tensor:
    """``n`` natural-image crops ``[n, 3, side, side]`` in [0, 1]: the bundled photo (matplotlib's
    sample data, see ``semcom.imagelink.sample_image``) downscaled 4x, else synthetic images."""
    from semcom.imagelink import sample_image

    img, name = sample_image()
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255.0
    x = torch.nn.functional.avg_pool2d(x, 4)[0]
    H, W = x.shape[-2:]
    g = torch.Generator().manual_seed(3)
    ys = torch.randint(0, H - side + 1, (n,), generator=g)
    xs = torch.randint(0, W - side + 1, (n,), generator=g)
    return torch.stack([x[:, a:a + side, b:b + side] for a, b in zip(ys.tolist(), xs.tolist())])


def _detail(x: torch.Tensor) -> torch.Tensor:
    """Mean squared Laplacian per image ``[B]``: the high-frequency energy a blurry decoder loses."""
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(3, 1, 3, 3)
    return torch.nn.functional.conv2d(x, k, groups=3).square().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("path", [p for p in SHIPPED if read_metadata(p)["kind"] in ("teacher", "consistency")],
                         ids=lambda p: p.name)
def test_shipped_diffusion_decoder_restores_detail(path):
    """On natural-image crops at 5 dB the diffusion decoder's output has a high-frequency energy
    closer to the original's than the (blurry) JSCC estimate, and stays a faithful image
    (far above a grey guess, within 5 dB of the JSCC decoder's MSE-optimal PSNR)."""
    from semcom.models.decoders import SemanticCodec

    torch.set_num_threads(1)
    kind = read_metadata(path)["kind"]
    tag = path.stem.split("-", 1)[1]  # teacher-1_24 -> 1_24
    jscc = CKPT_DIR / f"jscc-{tag}.safetensors"
    codec = SemanticCodec.from_checkpoints(str(jscc), teacher=str(path) if kind == "teacher" else "",
                                           consistency=str(path) if kind == "consistency" else "")
    decoder = "teacher" if kind == "teacher" else "cm1"
    x = _sample_crops()
    s = torch.full((len(x),), 5.0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        y, nv = Channel()(codec.encode(x, s), s, g, fading=False)
        est = codec.decode(y, nv, s, (32, 32), "jscc")
        out = codec.decode(y, nv, s, (32, 32), decoder, torch.Generator().manual_seed(1))
    d_ref, d_est, d_out = _detail(x).mean(), _detail(est).mean(), _detail(out).mean()
    assert abs(torch.log(d_out / d_ref)) < abs(torch.log(d_est / d_ref)), (d_ref, d_est, d_out)
    trivial = psnr(torch.full_like(x, 0.5), x).mean()
    p_est, p_out = psnr(est, x).mean(), psnr(out, x).mean()
    assert p_out > trivial + 5.0 and p_out > p_est - 5.0, (trivial, p_est, p_out)
