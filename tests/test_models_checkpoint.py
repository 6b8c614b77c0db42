"""Safetensors checkpoints with the config in the metadata: round trip and clear errors."""

import pytest
import torch

from semcom.models.checkpoint import (CheckpointError, load_model, load_training_state, read_metadata,
                                      save_model, save_training_state)
from semcom.models.config import jscc_preset
from semcom.models.jscc import JSCC


def _model(ratio="1/6"):
    torch.manual_seed(0)
    m = JSCC(jscc_preset("tiny", ratio))
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return m.eval()


def test_round_trip_same_outputs(tmp_path):
    m = _model()
    path = tmp_path / "m.safetensors"
    save_model(path, "jscc", m, m.cfg, {"step": 7})
    m2, cfg, info = load_model(path, kind="jscc", expect_config=m.cfg)
    assert cfg == m.cfg and info == {"step": 7}
    assert read_metadata(path)["config"]["ratio"] == "1/6"
    img = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m.encode(img, 5.0), m2.encode(img, 5.0))
    assert b"pickle" not in path.read_bytes()[:200]


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors.*not a readable safetensors"):
        load_model(bad)
    m = _model()
    good = tmp_path / "good.safetensors"
    save_model(good, "jscc", m, m.cfg)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="trunc.safetensors"):
        load_model(trunc)
    with pytest.raises(CheckpointError, match="file not found"):
        load_model(tmp_path / "nope.safetensors")


def test_mismatched_config_and_kind(tmp_path):
    m = _model()
    path = tmp_path / "m.safetensors"
    save_model(path, "jscc", m, m.cfg)
    with pytest.raises(CheckpointError, match=r"m\.safetensors: config mismatch in ratio"):
        load_model(path, expect_config=jscc_preset("tiny", "1/24"))
    with pytest.raises(CheckpointError, match="expected 'unet'"):
        load_model(path, kind="unet")
    # weights that do not fit the config in the metadata
    other = _model("1/24")
    path2 = tmp_path / "wrong.safetensors"
    save_model(path2, "jscc", other, m.cfg)
    with pytest.raises(CheckpointError, match=r"wrong\.safetensors: model tensor"):
        load_model(path2)


def test_training_state_round_trip(tmp_path):
    m = _model()
    ema = _model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m.encode(torch.rand(1, 3, 32, 32), 1.0).abs().sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(9)
    path = tmp_path / "state.safetensors"
    save_training_state(path, "jscc", m.cfg, m, ema, opt, 12, {"best": 3.5}, g.get_state())
    m2, ema2 = JSCC(m.cfg), JSCC(m.cfg)
    opt2 = torch.optim.AdamW(m2.parameters(), lr=1e-3)
    step, info, rng = load_training_state(path, "jscc", m.cfg, m2, ema2, opt2)
    assert step == 12 and info["best"] == 3.5
    assert torch.equal(rng, g.get_state())
    for a, b in zip(m.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[i]["exp_avg"], s2[i]["exp_avg"]) for i in s1)
    with pytest.raises(CheckpointError, match="config differs"):
        load_training_state(path, "jscc", jscc_preset("tiny", "1/24"), m2, ema2, opt2)


def test_nan_weights_are_refused(tmp_path):
    m = _model()
    with torch.no_grad():
        m.decoder.head.weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_model(path, "jscc", m, m.cfg)
    with pytest.raises(CheckpointError, match=r"nan\.safetensors: tensor decoder\.head\.weight holds 1 non-finite"):
        load_model(path)


def test_garbled_tensor_bytes_fail_the_content_hash(tmp_path):
    m = _model()
    path = tmp_path / "m.safetensors"
    save_model(path, "jscc", m, m.cfg)
    data = bytearray(path.read_bytes())
    data[-40:-20] = bytes(20)  # header intact, last tensor's bytes changed
    bad = tmp_path / "garbled.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"garbled\.safetensors: content hash mismatch"):
        load_model(bad)


def test_rate_adaptive_export_and_diffusion_pairing(tmp_path):
    from semcom.models.checkpoint import check_pairing, export_ratio, read_raw_metadata

    torch.manual_seed(0)
    m = JSCC(jscc_preset("tiny", "1/6", base_ratio="1/6")).eval()
    src = tmp_path / "ra.safetensors"
    save_model(src, "jscc", m, m.cfg)
    low = export_ratio(src, "1/24", tmp_path / "jscc-1_24.safetensors")
    m24, cfg24, info = load_model(low, kind="jscc")
    assert cfg24.ratio == "1/24" and cfg24.base_ratio == "1/6" and info["exported_from"] == "ra.safetensors"
    img = torch.rand(1, 3, 32, 32)
    with torch.no_grad():  # the same weights: the 1/24 model sends the 1/6 model's leading channels
        assert torch.equal(m24.encode(img, 5.0), m.encode(img, 5.0, ratio="1/24"))
    sha = read_raw_metadata(low)["semcom.sha256"]
    check_pairing("cm.safetensors", {"ratio": "1/24", "jscc_sha256": sha}, low, "1/24")
    with pytest.raises(CheckpointError, match=r"cm\.safetensors: was trained for ratio 1/24 .* runs at 1/6"):
        check_pairing("cm.safetensors", {"ratio": "1/24", "jscc_sha256": sha}, src, "1/6")
    with pytest.raises(CheckpointError, match=r"cm\.safetensors: pairs with another JSCC model .*jscc-1_24"):
        check_pairing("cm.safetensors", {"ratio": "1/24", "jscc_sha256": "0" * 64}, low, "1/24")
    fixed = tmp_path / "fixed.safetensors"
    save_model(fixed, "jscc", _model(), _model().cfg)
    with pytest.raises(CheckpointError, match="not rate-adaptive"):
        export_ratio(fixed, "1/24", tmp_path / "x.safetensors")
