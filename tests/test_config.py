"""The YAML configuration: every shipped file loads; bad keys, types and values raise errors that
name the file and the field; command-line overrides are typed. The model section (ratio, decoder,
NFE, diffusion checkpoints) reaches its readers: flags > --set > file > default for `semcom tx`,
empty block parameters take the config, and the automatic diffusion-checkpoint lookup follows the
JSCC checkpoint's own ratio."""

from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from semcom.blocks.phy.channel import ChannelConfig
from semcom.blocks.phy.frame import FrameSpec
from semcom.config import (Config, ConfigError, LinkConfig, ModelConfig, RadioConfig, load_config,
                           model_from_args, parse_override, with_model)

ROOT = Path(__file__).resolve().parents[1]
HW_CONFIGS = sorted((ROOT / "hw_configs").glob("*.yaml")) + sorted((ROOT / "hw_configs").glob("*.yml"))


def test_hw_configs_exist():
    assert any(p.name == "loopback.yaml" for p in HW_CONFIGS)


@pytest.mark.parametrize("path", HW_CONFIGS, ids=lambda p: p.name)
def test_every_hw_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg.frame, FrameSpec) and isinstance(cfg.channel, ChannelConfig)
    assert isinstance(cfg.radio, RadioConfig) and isinstance(cfg.model, ModelConfig)
    assert isinstance(cfg.link, LinkConfig)
    assert cfg.source == str(path)
    # the channel's units follow the frame and the radio
    assert cfg.channel.fft_len == cfg.frame.fft_len and cfg.channel.sample_rate == cfg.radio.sample_rate
    # round trip through a plain mapping
    assert Config.from_dict(cfg.to_dict()) == cfg.replace(source=None)


def test_loopback_values():
    cfg = load_config(ROOT / "hw_configs" / "loopback.yaml")
    raw = yaml.safe_load((ROOT / "hw_configs" / "loopback.yaml").read_text())
    assert cfg.frame.fft_len == raw["frame"]["fft_len"]
    assert cfg.channel.snr_db == raw["channel"]["snr_db"]
    assert cfg.radio.sample_rate == 2e6  # written "2e6": read as a float, not a string


def test_defaults_without_file():
    cfg = load_config(None)
    assert cfg.frame == FrameSpec() and cfg.source is None
    assert cfg.channel.fft_len == 64


def test_overrides_are_typed():
    cfg = load_config(ROOT / "hw_configs" / "loopback.yaml",
                      ["channel.snr_db=5", "frame.fft_len=128", "channel.profile=indoor", "channel.seed=null",
                       "frame.pilot_values=[1, 1, 1, 1, 1, 1, 1, -1]", "radio.sample_rate=1e6"])
    assert cfg.channel.snr_db == 5.0 and cfg.frame.fft_len == 128 and cfg.channel.profile == "indoor"
    assert cfg.channel.seed is None and cfg.frame.pilot_values[-1] == -1
    assert cfg.channel.fft_len == 128 and cfg.channel.sample_rate == 1e6
    assert parse_override("link.stream_id=7") == (["link", "stream_id"], 7)
    assert parse_override("model.checkpoint=a=b.pt") == (["model", "checkpoint"], "a=b.pt")


def _write(tmp_path, text, name="x.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, field, problem", [
    ("channel:\n  snr_db: ten\n", "channel.snr_db", "must be a number"),
    ("channel:\n  snr_db: [1]\n", "channel.snr_db", "must be a number"),
    ("channel:\n  profile: city\n", "channel.profile", "must be one of"),
    ("channel:\n  cfo: 40\n", "channel.cfo", ""),
    ("channel:\n  bogus: 1\n", "channel.bogus", "unknown key"),
    ("channel:\n  fft_len: 128\n", "channel.fft_len", "frame.fft_len"),
    ("channel: 5\n", "channel", "mapping"),
    ("frame:\n  fft_len: 100\n", "frame.fft_len", "power of two"),
    ("frame:\n  cp_len: 0\n", "frame.cp_len", ""),
    ("frame:\n  header_modulation: 8psk\n", "frame.header_modulation", ""),
    ("frame:\n  fftlen: 64\n", "frame.fftlen", "unknown key"),
    ("radio:\n  sample_rate: fast\n", "radio.sample_rate", "must be a number"),
    ("radio:\n  sample_rate: 0\n", "radio.sample_rate", ""),
    ("radio:\n  device: hackrf\n", "radio.device", "must be one of"),
    ("radio:\n  zmq_address: localhost\n", "radio.zmq_address", "ZMQ endpoint"),
    ("radio:\n  gain: 3\n", "radio.gain", "unknown key"),
    ("model:\n  codec_id: 300\n", "model.codec_id", "0..255"),
    ("model:\n  codec_id: true\n", "model.codec_id", "integer"),
    ("model:\n  device: tpu\n", "model.device", ""),
    ("model:\n  ratio: abc\n", "model.ratio", "fraction like '1/6'"),
    ("model:\n  ratio: 2\n", "model.ratio", "(0, 1]"),
    ("model:\n  ratio: 1/0\n", "model.ratio", "cannot parse"),
    ("model:\n  ratio: [1, 6]\n", "model.ratio", "fraction"),
    ("model:\n  decoder: vae\n", "model.decoder", "unknown 'vae'"),
    ("model:\n  decoder: jscc,cm0\n", "model.decoder", "unknown 'cm0'"),
    ("model:\n  decoder: auto,jscc\n", "model.decoder", "unknown 'auto'"),
    ("model:\n  decoder: 3\n", "model.decoder", "must be a string"),
    ("model:\n  nfe: 0\n", "model.nfe", "1..16"),
    ("model:\n  nfe: 17\n", "model.nfe", "1..16"),
    ("model:\n  nfe: 1.5\n", "model.nfe", "integer"),
    ("model:\n  consistency: 5\n", "model.consistency", "string"),
    ("model:\n  ratios: 1/6\n", "model.ratios", "unknown key"),
    ("link:\n  rx_chunk_samples: 0\n", "link.rx_chunk_samples", ""),
    ("link:\n  stream_timeout_s: -1\n", "link.stream_timeout_s", ""),
    ("link:\n  stream_id: 70000\n", "link.stream_id", ""),
    ("phy:\n  fft_len: 64\n", "phy", "unknown section"),
])
def test_bad_entries_name_file_and_field(tmp_path, text, field, problem):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: {field}: "), msg
    assert problem in msg
    assert ei.value.field == field and ei.value.source == str(p)


@pytest.mark.parametrize("text, problem", [
    ("frame: [unclosed\n", "invalid YAML"),
    ("- 1\n- 2\n", "top level must be a mapping"),
    ("just text\n", "top level must be a mapping"),
])
def test_bad_files(tmp_path, text, problem):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=problem) as ei:
        load_config(p)
    assert str(ei.value).startswith(str(p))


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(_write(tmp_path, "")).frame == FrameSpec()


@pytest.mark.parametrize("override, field", [
    ("channel.snr_db=loud", "channel.snr_db"),
    ("frame.fft_len=65", "frame.fft_len"),
    ("nosuch.key=1", "nosuch"),
    ("channel.snr_db", None),
    ("channel=3", None),
    ("frame.fft_len.x=1", "frame.fft_len"),
])
def test_bad_overrides(tmp_path, override, field):
    p = _write(tmp_path, "frame:\n  fft_len: 64\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, [override])
    if field:
        assert f": {field}: " in str(ei.value) or str(ei.value).startswith(f"--set: {field}:")
    assert str(ei.value).startswith("--set")  # the override is named, not the file


def test_model_section_values_are_canonical():
    """Ratios are stored as reduced fractions, decoder lists without blanks; every shipped config
    names the model fields (ratio, decoder, NFE, diffusion checkpoints)."""
    m = load_config(None, ["model.ratio=2/12", "model.decoder=jscc, cm2 ,teacher", "model.nfe=16"]).model
    assert (m.ratio, m.decoder, m.nfe) == ("1/6", "jscc,cm2,teacher", 16)
    assert load_config(None, ["model.ratio=1"]).model.ratio == "1"
    assert load_config(None, ["model.ratio=0.5"]).model.ratio == "1/2"
    for path in HW_CONFIGS:
        raw = yaml.safe_load(path.read_text())["model"]
        assert {"ratio", "decoder", "nfe", "consistency", "teacher"} <= set(raw), path.name
        assert load_config(path).model.ratio == str(raw["ratio"]), path.name


def test_model_flags_override_set_and_file(tmp_path):
    """Precedence: explicit flag > --set > file > built-in default; a flag left out (None) keeps the rest."""
    import argparse

    p = _write(tmp_path, "model:\n  ratio: 1/24\n  decoder: jscc\n  nfe: 2\n")
    assert ModelConfig().ratio == "1/6"
    cfg = load_config(p)
    assert (cfg.model.ratio, cfg.model.decoder, cfg.model.nfe) == ("1/24", "jscc", 2)
    cfg = load_config(p, ["model.nfe=4", "model.decoder=consistency"])
    assert (cfg.model.ratio, cfg.model.decoder, cfg.model.nfe) == ("1/24", "consistency", 4)
    args = argparse.Namespace(ratio="1/6", decoder=None, nfe=8, consistency="cm.safetensors", teacher=None)
    out = model_from_args(cfg, args)
    assert (out.model.ratio, out.model.decoder, out.model.nfe) == ("1/6", "consistency", 8)
    assert out.model.consistency == "cm.safetensors" and out.model.teacher is None
    assert out.frame == cfg.frame and out.source == cfg.source
    assert model_from_args(cfg, argparse.Namespace()) is cfg  # a command without these flags
    with pytest.raises(ConfigError, match=r"^model\.nfe: must be 1\.\.16, got 0$"):
        with_model(cfg, nfe=0)
    with pytest.raises(ConfigError, match="model.ratio: must be in"):
        model_from_args(cfg, argparse.Namespace(ratio="3/2"))
    with pytest.raises(TypeError, match="ratios"):
        with_model(cfg, ratios="1/6")


# ---------------------------------------------------------------------- the model section reaches its readers
def _need_checkpoints(*ratios: str) -> None:
    pytest.importorskip("torch")
    from semcom.imagelink import find_checkpoint

    for r in ratios:
        try:
            find_checkpoint(r)
        except FileNotFoundError as e:
            pytest.skip(str(e))


def test_tx_ratio_from_set_or_flag(tmp_path, capsys):
    """`semcom tx --set model.ratio=1/24` selects the 1/24 checkpoint as `--ratio 1/24` does; the flag wins."""
    import json

    from semcom.cli import main
    from semcom.imagelink import save_png, synthetic_image

    _need_checkpoints("1/6", "1/24")
    img = save_png(synthetic_image(32, 32, seed=1), tmp_path / "a.png")

    def dry_run(*extra: str) -> tuple[dict, dict]:
        assert main(["tx", "-c", str(ROOT / "hw_configs" / "pluto.yaml"), "--image", str(img), "--dry-run",
                     *extra]) == 0
        resolved, _, plan = capsys.readouterr().out.partition("# plan (dry run: no device touched)\n")
        return yaml.safe_load(resolved)["model"], json.loads(plan)

    for extra, ratio in (((), "1/6"), (("--set", "model.ratio=1/24"), "1/24"), (("--ratio", "1/24"), "1/24"),
                         (("--set", "model.ratio=1/24", "--ratio", "1/6"), "1/6")):
        model, plan = dry_run(*extra)
        assert model["ratio"] == ratio and plan["ratio"] == ratio, extra
        assert plan["checkpoint"].endswith(f"jscc-{ratio.replace('/', '_')}.safetensors"), extra
        assert plan["images"][0]["symbols"] == 32 * 32 * 3 // int(ratio.split("/")[1]), extra


def test_diffusion_checkpoints_follow_the_jscc_checkpoints_ratio(monkeypatch, capsys):
    """model.checkpoint is a 1/24 JSCC while model.ratio stays 1/6: the consistency/teacher checkpoints
    looked up automatically are the 1/24 ones (rx, loopback, the decoder block)."""
    import semcom.imagelink as il
    from semcom.cli import main
    from semcom.radio.images import CodecSet

    _need_checkpoints("1/24")
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(il, "find_extra_checkpoint", lambda kind, ratio: asked.append((kind, str(ratio))))
    ckpt = str(il.find_checkpoint("1/24"))
    assert il.checkpoint_ratio(ckpt) == Fraction(1, 24)
    cfg = load_config(None, [f"model.checkpoint={ckpt}", "model.decoder=jscc,teacher"])
    assert cfg.model.ratio == "1/6"
    with pytest.raises(ValueError, match="no teacher checkpoint"):
        CodecSet(cfg)
    assert asked == [("teacher", "1/24")]
    asked.clear()
    assert main(["loopback", "--set", f"model.checkpoint={ckpt}", "--decoder", "jscc,cm2", "--out", ""]) == 2
    assert "no consistency checkpoint" in capsys.readouterr().err
    assert asked == [("consistency", "1/24")]
    pytest.importorskip("gnuradio")
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder

    asked.clear()
    dec = semcom_semantic_decoder(config=cfg.replace(model=ModelConfig(checkpoint=ckpt)))  # decoder auto
    assert asked == [("consistency", "1/24")] and dec.decoders == ["jscc"] and dec.codec.ratio == Fraction(1, 24)


def test_semantic_blocks_take_the_config_unless_their_parameter_is_set(tmp_path):
    """Empty block parameters (GRC variables left empty / 0) take model.ratio / decoder / nfe / consistency."""
    pytest.importorskip("gnuradio")
    _need_checkpoints("1/6", "1/24")
    from semcom.blocks.gr.semantic_decoder import semcom_semantic_decoder
    from semcom.blocks.gr.semantic_encoder import semcom_semantic_encoder
    from semcom.models.checkpoint import save_model
    from semcom.models.config import unet_preset
    from semcom.models.consistency import ConsistencyFunction
    from semcom.models.unet import UNet

    assert semcom_semantic_encoder(config=str(_write(tmp_path, "model:\n  ratio: 1/24\n"))).codec.ratio == Fraction(1, 24)
    enc = semcom_semantic_encoder(config=str(_write(tmp_path, "model:\n  ratio: 1/24\n")), ratio="1/6")
    assert enc.codec.ratio == Fraction(1, 6)
    ucfg = unet_preset("tiny")
    cm = tmp_path / "cm.safetensors"
    save_model(cm, "consistency", ConsistencyFunction(UNet(ucfg), ucfg.sigma_data, ucfg.sigma_min), ucfg)
    p = _write(tmp_path, f"model:\n  decoder: jscc,consistency\n  nfe: 3\n  consistency: {cm}\n", "cm.yaml")
    dec = semcom_semantic_decoder(config=str(p))
    assert dec.decoders == ["jscc", "cm3"] and dec.codec.consistency_path == str(cm)
    assert semcom_semantic_decoder(config=str(p), codec=dec.codec, decoders="consistency", nfe=2).decoders == ["cm2"]
    with pytest.raises(ConfigError, match="model.nfe: must be 1..16"):
        semcom_semantic_decoder(config=str(p), codec=dec.codec, nfe=17)
