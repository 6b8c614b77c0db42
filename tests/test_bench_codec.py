"""`semcom bench codec`: batch-1 decode latency per decoder and size, with the issue's target ratio."""

import json

import pytest

torch = pytest.importorskip("torch")

from semcom.cli import main  # noqa: E402
from semcom.models.checkpoint import save_model  # noqa: E402
from semcom.models.config import jscc_preset, unet_preset  # noqa: E402
from semcom.models.consistency import ConsistencyFunction  # noqa: E402
from semcom.models.jscc import JSCC  # noqa: E402
from semcom.models.unet import UNet  # noqa: E402


def test_bench_codec_rows_targets_and_skips(tmp_path, capsys, monkeypatch):
    import semcom.imagelink

    monkeypatch.setattr(semcom.imagelink, "find_extra_checkpoint", lambda kind, ratio: None)  # no shipped teacher
    torch.manual_seed(0)
    jcfg, ucfg = jscc_preset("tiny", "1/24"), unet_preset("tiny")
    save_model(tmp_path / "j.safetensors", "jscc", JSCC(jcfg), jcfg)
    save_model(tmp_path / "c.safetensors", "consistency", ConsistencyFunction(UNet(ucfg)), ucfg)
    out = tmp_path / "lat.json"
    rc = main(["bench", "codec", "--ratio", "1/24", "--jscc", str(tmp_path / "j.safetensors"),
               "--consistency", str(tmp_path / "c.safetensors"), "--decoders", "jscc,cm1,teacher",
               "--sizes", "32x32,40x24", "--repeats", "2", "--threads", "1", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [(r["width"], r["height"], r["decoder"]) for r in rows] == [
        (32, 32, "jscc"), (32, 32, "cm1"), (40, 24, "jscc"), (40, 24, "cm1")]
    assert all(r["runs"] == 2 and 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for r in rows)
    assert [r["nfe"] for r in rows] == [1, 2, 1, 2]
    cm32 = rows[1]
    assert cm32["target_ms"] == 10.0 and cm32["target_ratio"] == pytest.approx(10.0 / cm32["median_ms"])
    assert all(r["target_ms"] is None for r in rows if r is not cm32)
    assert "skipping teacher" in text and "decode latency, batch 1" in text


def test_bench_codec_bad_sizes(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "codec", "--sizes", "32by32"])
    assert "--sizes" in capsys.readouterr().err
