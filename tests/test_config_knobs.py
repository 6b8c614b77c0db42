"""The consistency decoder's knobs in the config's model section and in decoder names (no torch)."""

import pytest

from semcom.config import ConfigError, ModelConfig, load_config
from semcom.imagelink import decoder_names


def test_model_section_knobs_validate_and_reach_decoder_names(tmp_path):
    m = ModelConfig(decoder="jscc,consistency", nfe=2, guidance=0.5, guidance_steps=2, start_sigma=0.5)
    assert m.knob_suffix == ":g=0.5:k=2:s=0.5"  # the knobs that differ from the defaults
    assert decoder_names(m.decoder, m.nfe, True, m.knob_suffix) == ["jscc", "cm2:g=0.5:k=2:s=0.5"]
    # a decoder's own knobs win over the section's
    assert decoder_names("cm1:g=0.7:k=1,cm4", 1, True, m.knob_suffix) == ["cm1:g=0.7:k=1", "cm4:g=0.5:k=2:s=0.5"]
    # the defaults (the measured setting) keep names as given; the plain sampler is spelled out
    assert ModelConfig().knob_suffix == "" and decoder_names("auto", 1, True) == ["jscc", "cm1"]
    assert ModelConfig(guidance=0.0, start_sigma=0.0).knob_suffix == ":g=0:s=0"
    for field, value, msg in (("guidance", 1.5, r"model\.guidance: must be a number in \[0, 1\]"),
                              ("guidance_steps", 4, r"model\.guidance_steps"),
                              ("start_sigma", -1, r"model\.start_sigma")):
        with pytest.raises(ConfigError, match=msg):
            ModelConfig(**{field: value})
    with pytest.raises(ConfigError, match=r"model\.decoder: unknown 'cm2:x=1'"):
        ModelConfig(decoder="cm2:x=1")
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  decoder: cm2\n  guidance: 0.5\n  guidance_steps: 1\n")
    cfg = load_config(p, ["model.start_sigma=0.3"])
    assert cfg.model.knob_suffix == ":g=0.5"  # guidance_steps 1 and start_sigma 0.3 are the defaults
