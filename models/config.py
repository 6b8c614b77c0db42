"""Typed hyper-parameters of the semantic codec. Every invalid field raises ``ConfigError``
naming it; configs round-trip through plain dicts (JSON) so checkpoints carry them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

from .definitions import parse_ratio

__all__ = ["ConfigError", "JSCCConfig", "ChannelConfig", "UNetConfig", "ClassifierConfig", "jscc_preset",
           "unet_preset", "classifier_preset", "config_from_dict", "config_to_dict"]


class ConfigError(ValueError):
    """An invalid model/channel parameter; the message names the field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


def _check_positive_ints(prefix: str, **values: Any) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{prefix}.{name}", f"must be a positive integer, got {v!r}")


def _check_snr_range(prefix: str, lo: float, hi: float) -> None:
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float))) or lo > hi:
        raise ConfigError(f"{prefix}.snr_min_db", f"need snr_min_db <= snr_max_db, got {lo!r}, {hi!r}")


@dataclass(frozen=True)
class JSCCConfig:
    """SNR-adaptive JSCC encoder/decoder.

    The encoder pixel-unshuffles by 2, then halves the resolution ``len(channels) - 1`` times,
    so the stride is ``2 ** len(channels)``; each ``stride x stride`` patch (``3 * stride**2``
    real values) becomes ``latent_channels`` reals, i.e. ``latent_channels / 2`` complex symbols.
    """

    ratio: str = "1/6"                    # k/n as a fraction string
    channels: tuple[int, ...] = (64, 128)  # feature width per resolution level
    blocks: int = 2                        # residual blocks per level
    snr_min_db: float = 0.0                # conditioning range (SNR is normalized with it)
    snr_max_db: float = 20.0
    gdn: bool = False                      # GDN after each encoder level, IGDN before each decoder level
    # Rate-adaptive latent: the network's latent is sized for ``base_ratio`` ("" = ``ratio``) and a
    # lower ``ratio`` transmits its leading ``latent_channels`` channels; the decoder sees the
    # untransmitted ones as erased (reliability 0). One set of weights serves every ratio <= base.
    base_ratio: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not isinstance(self.gdn, bool):
            raise ConfigError("jscc.gdn", f"must be true or false, got {self.gdn!r}")
        try:
            parse_ratio(self.ratio)
        except ValueError as e:
            raise ConfigError("jscc.ratio", str(e)) from None
        if self.base_ratio:
            try:
                base = parse_ratio(self.base_ratio)
            except ValueError as e:
                raise ConfigError("jscc.base_ratio", str(e)) from None
            if parse_ratio(self.ratio) > base:
                raise ConfigError("jscc.ratio", f"{self.ratio} exceeds the model's base_ratio {self.base_ratio}")
            lat = Fraction(6) * base * self.stride ** 2
            if lat.denominator != 1:
                raise ConfigError("jscc.base_ratio", f"{self.base_ratio} with stride {self.stride} gives a "
                                  f"non-integer latent width {lat}")
        if not self.channels:
            raise ConfigError("jscc.channels", "needs at least one level")
        _check_positive_ints("jscc", blocks=self.blocks, **{f"channels[{i}]": c for i, c in enumerate(self.channels)})
        _check_snr_range("jscc", self.snr_min_db, self.snr_max_db)
        lat = Fraction(6) * parse_ratio(self.ratio) * self.stride ** 2
        if lat.denominator != 1:
            raise ConfigError("jscc.ratio", f"{self.ratio} with stride {self.stride} gives a non-integer "
                              f"latent width {lat}; use more/fewer levels in jscc.channels")

    @property
    def stride(self) -> int:
        """Images are padded to a multiple of this in height and width."""
        return 2 ** len(self.channels)

    @property
    def latent_channels(self) -> int:
        """Real latent channels transmitted at ``ratio``: ``2 * k / (H/stride * W/stride)``."""
        return self.channels_for(self.ratio)

    @property
    def latent_channels_max(self) -> int:
        """Real latent channels the network produces (those of ``base_ratio``, else ``ratio``)."""
        return self.channels_for(self.base_ratio or self.ratio)

    def channels_for(self, ratio: str | Fraction) -> int:
        """Real latent channels transmitted at ``ratio`` (raises ``ConfigError`` if it does not fit)."""
        lat = Fraction(6) * parse_ratio(ratio) * self.stride ** 2
        if lat.denominator != 1:
            raise ConfigError("jscc.ratio", f"{ratio} with stride {self.stride} gives a non-integer latent width {lat}")
        return int(lat)

    def with_ratio(self, ratio: str | Fraction) -> "JSCCConfig":
        """The same network at another transmitted ratio (must be <= base_ratio)."""
        if not self.base_ratio and parse_ratio(ratio) != parse_ratio(self.ratio):
            raise ConfigError("jscc.ratio", f"this model has a fixed ratio {self.ratio} (no base_ratio); "
                              f"it cannot run at {ratio}")
        return dataclasses.replace(self, ratio=str(parse_ratio(ratio)), base_ratio=self.base_ratio)


@dataclass(frozen=True)
class ChannelConfig:
    """Training channel (see ``channel.py``). Probabilities are per image / per frame."""

    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    p_fading: float = 0.3          # probability an image goes through multipath instead of AWGN
    n_subcarriers: int = 48        # data carriers per OFDM symbol (frequency-first mapping)
    n_taps: int = 8                # multipath taps (exponential power-delay profile)
    tap_decay: float = 0.5         # per-tap power decay in the PDP (1/e-fold per 1/decay taps)
    fft_len: int = 64              # FFT size the taps are transformed with
    symbols_per_frame: int = 480   # complex symbols per radio frame (one fading/erasure block)
    p_erasure_image: float = 0.2   # probability an image suffers frame erasures at all
    p_erasure_frame: float = 0.25  # given that, probability each frame is lost
    interleave: bool = True        # spread symbols across subcarriers/frames with a fixed permutation
    interleave_seed: int = 1234

    def __post_init__(self) -> None:
        _check_snr_range("channel", self.snr_min_db, self.snr_max_db)
        for name in ("p_fading", "p_erasure_image", "p_erasure_frame"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"channel.{name}", f"must be a probability in [0, 1], got {v!r}")
        _check_positive_ints("channel", n_subcarriers=self.n_subcarriers, n_taps=self.n_taps,
                             fft_len=self.fft_len, symbols_per_frame=self.symbols_per_frame)
        if self.n_subcarriers > self.fft_len:
            raise ConfigError("channel.n_subcarriers", f"{self.n_subcarriers} exceeds fft_len {self.fft_len}")
        if self.n_taps > self.fft_len:
            raise ConfigError("channel.n_taps", f"{self.n_taps} exceeds fft_len {self.fft_len}")
        if not self.tap_decay > 0:
            raise ConfigError("channel.tap_decay", f"must be > 0, got {self.tap_decay!r}")


@dataclass(frozen=True)
class UNetConfig:
    """Conditional UNet denoiser for the diffusion decoders (see ``unet.py``)."""

    channels: tuple[int, ...] = (64, 128)  # width per resolution level (len-1 downsamplings)
    blocks: int = 2                        # residual blocks per level
    emb_dim: int = 128                     # sigma/SNR embedding width
    cond_channels: int = 3                 # conditioning image channels (the JSCC estimate)
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    # Noise levels, in units of the data scaled to [-1, 1] (EDM / consistency models).
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    # Residual diffusion: the model generates ``x - cond`` (the detail the JSCC estimate misses)
    # instead of ``x``; sigma_data is then the residual's spread, far below 0.5. A weak or
    # undertrained model then falls back towards the JSCC estimate, never to an unrelated image.
    residual: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ConfigError("unet.channels", "needs at least one level")
        if not isinstance(self.residual, bool):
            raise ConfigError("unet.residual", f"must be true or false, got {self.residual!r}")
        _check_positive_ints("unet", blocks=self.blocks, emb_dim=self.emb_dim, cond_channels=self.cond_channels,
                             **{f"channels[{i}]": c for i, c in enumerate(self.channels)})
        _check_snr_range("unet", self.snr_min_db, self.snr_max_db)
        for name in ("sigma_data", "sigma_min", "sigma_max"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"unet.{name}", f"must be > 0, got {v!r}")
        if self.sigma_min >= self.sigma_max:
            raise ConfigError("unet.sigma_min", f"must be < sigma_max ({self.sigma_max}), got {self.sigma_min}")

    @property
    def stride(self) -> int:
        return 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class ClassifierConfig:
    """CIFAR-10 ResNet for the evaluation metrics (see ``classifier.py``)."""

    channels: tuple[int, ...] = (32, 64, 128)  # width per stage; each later stage halves the resolution
    blocks: int = 2                            # residual blocks per stage
    num_classes: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ConfigError("classifier.channels", "needs at least one stage")
        _check_positive_ints("classifier", blocks=self.blocks, num_classes=self.num_classes,
                             **{f"channels[{i}]": c for i, c in enumerate(self.channels)})


def classifier_preset(preset: str) -> ClassifierConfig:
    if preset == "cpu":
        return ClassifierConfig(channels=(32, 64, 128), blocks=2)
    if preset == "gpu":
        return ClassifierConfig(channels=(64, 128, 256), blocks=2)
    if preset == "tiny":
        return ClassifierConfig(channels=(8, 16), blocks=1)
    raise ConfigError("preset", f"unknown preset {preset!r} (cpu, gpu, tiny)")


# Widths of the rate-adaptive ``cpu`` preset (chosen by an equal-time study, models/checkpoints/README.md).
RATE_ADAPTIVE_CPU = (32, 64, 128)


def jscc_preset(preset: str, ratio: str, base_ratio: str = "") -> JSCCConfig:
    """``cpu``: ~1.7 M params, trains on a shared 2-core machine; ``gpu``: wider and deeper.

    Low ratios get one more level so the latent keeps >= 8 real channels. With ``base_ratio``
    the model is rate-adaptive (see :class:`JSCCConfig`): stride 8, GDN, one network for every
    ratio down to 1/48 (8 real latent channels at 1/48, 64 at 1/6).
    """
    r = parse_ratio(ratio)
    if base_ratio:
        b = str(parse_ratio(base_ratio))
        if preset == "cpu":
            return JSCCConfig(ratio=str(r), base_ratio=b, channels=RATE_ADAPTIVE_CPU, blocks=2, gdn=True)
        if preset == "gpu":
            return JSCCConfig(ratio=str(r), base_ratio=b, channels=(96, 192, 256), blocks=3, gdn=True)
        if preset == "tiny":
            return JSCCConfig(ratio=str(r), base_ratio=b, channels=(8, 16, 16), blocks=1, gdn=True)
        raise ConfigError("preset", f"unknown preset {preset!r} (cpu, gpu, tiny)")
    deep = r < Fraction(1, 12)
    if preset == "cpu":
        ch = (64, 128, 128) if deep else (64, 128)
        return JSCCConfig(ratio=str(r), channels=ch, blocks=2)
    if preset == "gpu":
        ch = (128, 256, 256) if deep else (128, 256)
        return JSCCConfig(ratio=str(r), channels=ch, blocks=4)
    if preset == "tiny":  # tests
        return JSCCConfig(ratio=str(r), channels=(8, 16, 16) if deep else (8, 16), blocks=1)
    raise ConfigError("preset", f"unknown preset {preset!r} (cpu, gpu, tiny)")


def unet_preset(preset: str) -> UNetConfig:
    """``cpu``: ~1.7 M params, sized for the 1-evaluation CPU latency target (32x32 in ~10 ms).

    ``cpu`` and ``gpu`` diffuse the residual ``x - cond`` in [-1, 1] units: its spread is
    ~0.1-0.25 for the shipped JSCC models over 0-20 dB (``sigma_data = 0.2``), so the noise
    range ends at ``sigma_max = 10`` (50 x sigma_data) instead of EDM's 80 for whole images.
    """
    if preset == "cpu":
        return UNetConfig(channels=(32, 64, 128), blocks=1, emb_dim=128, residual=True, sigma_data=0.2,
                          sigma_max=10.0)
    if preset == "gpu":
        return UNetConfig(channels=(128, 256, 256), blocks=3, emb_dim=256, residual=True, sigma_data=0.2,
                          sigma_max=10.0)
    if preset == "tiny":
        return UNetConfig(channels=(8, 16), blocks=1, emb_dim=16)
    raise ConfigError("preset", f"unknown preset {preset!r} (cpu, gpu, tiny)")


_C = TypeVar("_C")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_dict(cls: type[_C], d: dict[str, Any], where: str = "config") -> _C:
    """Build ``cls`` from a dict, rejecting unknown keys and wrong types with a named error."""
    if not isinstance(d, dict):
        raise ConfigError(where, f"expected a mapping, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(names)})")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    try:
        return cls(**kw)
    except TypeError as e:
        raise ConfigError(where, str(e)) from None
