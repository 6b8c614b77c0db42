"""Bandwidth ratio / SNR definitions and config validation (models/definitions.py, config.py)."""

from fractions import Fraction

import pytest
import torch

from semcom.models.config import ChannelConfig, ConfigError, JSCCConfig, jscc_preset, config_from_dict
from semcom.models.definitions import (complex_to_real, noise_variance, normalize_power, num_symbols,
                                       parse_ratio, real_to_complex, snr_db_from_noise_variance)


def test_ratio_and_symbol_count():
    assert parse_ratio("1/6") == Fraction(1, 6)
    # n = 3*H*W real values, k = n * ratio complex symbols
    assert num_symbols(32, 32, "1/6") == 512
    assert num_symbols(32, 32, "1/24") == 128
    for bad in ("0", "3/2", "abc", "1/0"):
        with pytest.raises(ValueError, match="ratio"):
            parse_ratio(bad)
    with pytest.raises(ValueError, match="integer"):
        num_symbols(1, 1, "1/6")


def test_snr_convention():
    assert noise_variance(10.0) == pytest.approx(0.1)
    assert noise_variance(0.0) == pytest.approx(1.0)
    assert snr_db_from_noise_variance(noise_variance(7.5)) == pytest.approx(7.5)
    t = torch.tensor([0.0, 20.0])
    assert torch.allclose(noise_variance(t), torch.tensor([1.0, 0.01]))


def test_unit_power_and_real_complex_round_trip():
    v = torch.randn(3, 20) * 5
    z = real_to_complex(v)
    assert z.shape == (3, 10) and z.dtype == torch.complex64
    assert torch.equal(complex_to_real(z), v)
    p = normalize_power(z).abs().square().mean(dim=1)
    assert torch.allclose(p, torch.ones(3), atol=1e-5)


def test_config_validation_names_field():
    with pytest.raises(ConfigError, match="jscc.ratio"):
        JSCCConfig(ratio="1/7")  # 6 * 1/7 * 16 is not an integer latent width
    with pytest.raises(ConfigError, match=r"jscc.channels\[1\]"):
        JSCCConfig(channels=(8, 0))
    with pytest.raises(ConfigError, match="channel.p_fading"):
        ChannelConfig(p_fading=1.5)
    with pytest.raises(ConfigError, match="jscc.bogus"):
        config_from_dict(JSCCConfig, {"bogus": 1}, "jscc")
    assert jscc_preset("cpu", "1/6").latent_channels == 16
    assert jscc_preset("cpu", "1/24").stride == 8
    with pytest.raises(ConfigError, match="preset"):
        jscc_preset("huge", "1/6")
