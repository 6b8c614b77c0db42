"""A partial config means the documented defaults: a missing section or field of a YAML file is the
value ``hw_configs/loopback.yaml`` documents (its comments say every key has that default), so a file
with only a ``model:`` section runs at 10 dB, not without noise. A channel profile name means the same
channel everywhere (``--channel indoor`` = ``--set channel.profile=indoor`` = ``ChannelConfig``);
raising the TX safety cap from the command line needs ``--allow-high-tx-gain`` and is printed; errors
in a ``--set`` value name ``--set`` and the key, not the config file."""

import argparse
from pathlib import Path

import pytest
import yaml

from semcom.config import (SECTIONS, ConfigError, add_config_arguments, config_from_args, load_config,
                           yaml_load)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = ROOT / "hw_configs" / "loopback.yaml"  # "every key has a default": the documented values


def _documented() -> dict:
    return yaml_load(DOCUMENTED.read_text())


def _write(tmp_path, d, name="partial.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


def test_every_section_is_documented():
    assert set(_documented()) == set(SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_missing_section_means_documented_default(tmp_path, section):
    full = _documented()
    part = {k: v for k, v in full.items() if k != section}
    want = load_config(_write(tmp_path, full, "full.yaml"))
    got = load_config(_write(tmp_path, part))
    assert getattr(got, section) == getattr(want, section), section


@pytest.mark.parametrize("key", [f"{s}.{k}" for s, d in yaml_load(DOCUMENTED.read_text()).items() for k in d])
def test_missing_field_means_documented_default(tmp_path, key):
    section, name = key.split(".")
    full = _documented()
    part = {s: {k: v for k, v in d.items() if (s, k) != (section, name)} for s, d in full.items()}
    want = load_config(_write(tmp_path, full, "full.yaml"))
    got = load_config(_write(tmp_path, part))
    assert getattr(got, section) == getattr(want, section), key


def _loopback_args(*argv):
    from semcom.commands import loopback

    p = argparse.ArgumentParser()
    loopback.add_parser(p)
    return p.parse_args(list(argv))


def test_model_only_file_keeps_the_noise(tmp_path):
    """`semcom loopback --config model_only.yaml` runs at the help's 10 dB; `phy zmq-rx` adds noise."""
    from semcom.commands.loopback import _channel_overrides

    p = _write(tmp_path, {"model": {"decoder": "jscc"}})
    args = _loopback_args("--config", str(p))
    cfg = config_from_args(args, _channel_overrides(args))
    assert cfg.channel.snr_db == 10.0
    assert load_config(p).channel.noise_variance() > 0  # zmq-rx / phy channel: the config's channel
    assert load_config(None).channel.snr_db == 10.0
    assert load_config(None, ["channel.snr_db=null"]).channel.noise_variance() == 0  # explicit: no noise


@pytest.mark.parametrize("name", ["indoor", "outdoor"])
def test_profile_name_is_one_channel(name):
    """`--channel NAME`, `--set channel.profile=NAME`, the library and the benches: the same channel."""
    from semcom.bench_compare import link_config
    from semcom.blocks.phy.channel import ChannelConfig
    from semcom.commands.loopback import _channel_overrides

    by_set = load_config(None, [f"channel.profile={name}"]).channel
    args = _loopback_args("--channel", name)
    by_flag = config_from_args(args, _channel_overrides(args)).channel
    assert by_set == by_flag and by_set.fading == "rayleigh"
    assert ChannelConfig(profile=name).fading == "rayleigh"
    assert ChannelConfig.from_dict(link_config(name, 10.0, 0)).fading == "rayleigh"
    assert ChannelConfig(profile="flat").fading == "none"  # no multipath, nothing to fade
    assert load_config(None, [f"channel.profile={name}", "channel.fading=none"]).channel.fading == "none"


PLUTO = ROOT / "hw_configs" / "pluto.yaml"  # tx_gain_max_db: -10


def _cfg_args(*argv):
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("value", ["0", "null"])
def test_raising_tx_cap_needs_a_flag(value, capsys):
    with pytest.raises(ConfigError) as ei:
        config_from_args(_cfg_args("--config", str(PLUTO), "--set", f"radio.tx_gain_max_db={value}"))
    msg = str(ei.value)
    assert msg.startswith("--set") and "radio.tx_gain_max_db" in msg and "--allow-high-tx-gain" in msg
    cfg = config_from_args(_cfg_args("--config", str(PLUTO), "--set", f"radio.tx_gain_max_db={value}",
                                     "--set", "radio.tx_gain_db=0", "--allow-high-tx-gain"))
    assert cfg.radio.tx_gain_db == 0.0
    err = capsys.readouterr().err
    assert "tx_gain_max_db" in err and "-10" in err and "--allow-high-tx-gain" in err


def test_lowering_tx_cap_needs_no_flag(capsys):
    cfg = config_from_args(_cfg_args("--config", str(PLUTO), "--set", "radio.tx_gain_max_db=-30",
                                     "--set", "radio.tx_gain_db=-40"))
    assert cfg.radio.tx_gain_max_db == -30.0 and capsys.readouterr().err == ""


@pytest.mark.parametrize("override, field", [
    ("channel.snr_db=loud", "channel.snr_db"),
    ("frame.fft_len=65", "frame.fft_len"),
    ("channel.bogus=1", "channel.bogus"),
    ("nosuch.key=1", "nosuch"),
    ("channel.snr_db", None),
])
def test_set_errors_name_set_not_the_file(tmp_path, override, field):
    p = _write(tmp_path, {"frame": {"fft_len": 64}})
    with pytest.raises(ConfigError) as ei:
        load_config(p, [override])
    msg = str(ei.value)
    assert msg.startswith("--set") and str(p) not in msg, msg
    if field:
        assert field in msg


def test_file_errors_still_name_the_file(tmp_path):
    p = _write(tmp_path, {"channel": {"snr_db": "loud"}})
    with pytest.raises(ConfigError) as ei:
        load_config(p, ["channel.cfo=0.1"])
    assert str(ei.value).startswith(f"{p}: channel.snr_db: ")
