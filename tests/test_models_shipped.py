"""The checkpoints shipped in models/checkpoints load, are small, and beat a trivial decoder."""

from pathlib import Path

import pytest
import torch

from semcom.models.channel import Channel
from semcom.models.checkpoint import load_model, read_metadata
from semcom.models.data import synthetic_images
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
    x = synthetic_images(16, 32, 32, seed=5).float() / 255.0
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        trivial = psnr(torch.full_like(x, 0.5), x).mean().item()  # a decoder that ignores the channel
        low = psnr(model(x, Channel(), torch.full((16,), 0.0), g), x).mean().item()
        high = psnr(model(x, Channel(), torch.full((16,), 20.0), g), x).mean().item()
    assert low > trivial + 5.0 and high > low  # learned, and uses the SNR it is given
