"""One validated configuration for the CLI, the GRC flowgraphs and scripts.

A YAML file (see ``hw_configs/loopback.yaml``) has up to five sections, each validated into a
typed object; unknown keys, wrong types and out-of-range values raise ``ConfigError`` naming
the file and the field, e.g. ``hw_configs/x.yaml: channel.snr_db: must be a number``::

    frame:    FrameSpec            (semcom.blocks.phy.frame)
    channel:  ChannelConfig        (semcom.blocks.phy.channel)
    radio:    RadioConfig          sample rate, centre frequency, device, gains, ZMQ address
    model:    ModelConfig          semantic codec: checkpoint, codec id, ratio, decoder, NFE
    link:     LinkConfig           streaming receiver chunking and stream time-outs

Every section is optional; a missing one takes its defaults (there is no second copy of a
default anywhere else: the dataclasses below and ``FrameSpec``/``ChannelConfig`` hold them; the one
exception is ``channel.snr_db``, ``DEFAULT_SNR_DB`` = 10 dB here, where the bare simulator's
``ChannelConfig`` means no noise: ``snr_db: null`` asks for that). ``hw_configs/loopback.yaml``
writes every default out.

Command-line overrides ``section.key=value`` (value parsed as a YAML scalar or flow
sequence, so ``5`` is an int, ``5.0`` a float, ``[1, 2]`` a list, ``null`` None) are applied on
top of the file before validation::

    cfg = load_config("hw_configs/loopback.yaml", ["channel.snr_db=5", "frame.fft_len=128"])

An error caused by an override names ``--set`` and the key (``--set: channel.snr_db: must be a
number, got 'loud'``), not the file. An override that raises the TX safety cap
``radio.tx_gain_max_db`` above the file's (or lifts it with ``null``) is refused unless
``allow_high_tx_gain`` (``--allow-high-tx-gain``) is given, and is then printed on stderr.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import yaml

from semcom.blocks.phy.frame import FrameSpec, FrameSpecError
from semcom.models.knobs import DecodeKnobs

# Symbols per random test stream (demos, campaigns, tx/zmq-tx): one full frame of the default
# frame description, derived here so there is no second copy of that default.
RANDOM_STREAM_SYMBOLS: int = FrameSpec().max_payload_symbols
# channel.snr_db when a config does not give it (Es/N0 in dB; ``null`` in a file = no noise).
DEFAULT_SNR_DB: float = 10.0

__all__ = ["Config", "ConfigError", "RadioConfig", "ModelConfig", "LinkConfig", "load_config",
           "config_from_dict", "parse_override", "apply_overrides", "SECTIONS", "yaml_load",
           "add_config_arguments", "config_from_args", "with_model", "model_from_args", "MODEL_FLAGS",
           "add_knob_arguments",
           "NFE_MAX", "DEFAULT_SNR_DB"]

SECTIONS = ("frame", "channel", "radio", "model", "link")


class ConfigError(ValueError):
    """An invalid configuration; ``str()`` reads ``<file>: <section>.<key>: <problem>``."""

    def __init__(self, field_name: str, message: str, source: str | None = None):
        self.field = field_name
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field_name}: {message}" if field_name else f"{where}{message}")

    def with_source(self, source: str | None) -> "ConfigError":
        """The same error attributed to the file ``source``."""
        return ConfigError(self.field, self.message, source)


# ---------------------------------------------------------------------- small typed checks
def _number(section: str, name: str, v: Any, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{section}.{name}", f"must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ConfigError(f"{section}.{name}", f"must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ConfigError(f"{section}.{name}", f"must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise ConfigError(f"{section}.{name}", f"must be <= {hi:g}, got {v:g}")
    return v


def _integer(section: str, name: str, v: Any, *, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{section}.{name}", f"must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise ConfigError(f"{section}.{name}", f"must be {lo}..{hi}, got {v}")
    return int(v)


def _string(section: str, name: str, v: Any, *, choices: Sequence[str] | None = None,
            allow_none: bool = False) -> str | None:
    if v is None and allow_none:
        return None
    if not isinstance(v, str):
        raise ConfigError(f"{section}.{name}", f"must be a string, got {v!r}")
    if choices is not None and v not in choices:
        raise ConfigError(f"{section}.{name}", f"must be one of {', '.join(choices)}; got {v!r}")
    return v


def _section_from_dict(cls, section: str, d: Any):
    """Build a section dataclass from a mapping; unknown keys are errors naming the key."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(section, f"must be a mapping of keys to values, got {type(d).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in d:
        if key not in names:
            raise ConfigError(f"{section}.{key}", f"unknown key (valid keys: {', '.join(names)})")
    return cls(**d)


# ---------------------------------------------------------------------- minimal sections
RADIO_DEVICES = ("loopback", "zmq", "pluto", "uhd", "file", "fake_pluto", "fake_uhd")


@dataclass(frozen=True)
class RadioConfig:
    """Front end. ``sample_rate`` in samples/s, ``center_freq`` in Hz, gains in dB.

    ``device``: ``loopback`` (channel simulator), ``zmq`` (two processes over gr-zeromq),
    ``pluto``, ``uhd`` or ``file`` (SigMF recordings); ``fake_pluto`` / ``fake_uhd`` are the
    test doubles of ``semcom.radio.fakes`` (same checks as the real device). ``uri`` is the device
    address (``ip:192.168.2.1``, UHD args); ``zmq_address`` the TX->RX ZMQ endpoint.

    Hardware fields (checked against the device's ranges by ``semcom.radio.limits``, which
    documents the units and ranges): ``model``/``daughterboard`` (USRP), ``rf_bandwidth``,
    ``tx_gain_max_db`` (safety cap), ``rx_agc``, ``buffer_size``, ``tx_antenna``/``rx_antenna``,
    ``clock_source``/``time_source``, ``pluto_x8_fir``, ``tx_peak``, ``tx_ramp_s``/``tx_ramp_steps``
    (TX gain ramp), ``rx_settle_s`` (AGC settle time discarded at RX start).
    """

    device: str = "loopback"
    uri: str | None = None
    sample_rate: float = 2e6
    center_freq: float = 2.45e9
    tx_gain_db: float = -10.0
    rx_gain_db: float = 40.0
    zmq_address: str = "tcp://127.0.0.1:5555"
    model: str | None = None
    daughterboard: str | None = None
    rf_bandwidth: float | None = None
    tx_gain_max_db: float | None = None
    rx_agc: str = "manual"
    buffer_size: int = 32768
    tx_antenna: str | None = None
    rx_antenna: str | None = None
    clock_source: str | None = None
    time_source: str | None = None
    pluto_x8_fir: bool = False
    tx_peak: float = 0.5
    tx_ramp_s: float = 0.2
    tx_ramp_steps: int = 5
    rx_settle_s: float = 0.05

    def __post_init__(self) -> None:
        s = "radio"
        object.__setattr__(self, "device", _string(s, "device", self.device, choices=RADIO_DEVICES))
        object.__setattr__(self, "uri", _string(s, "uri", self.uri, allow_none=True))
        object.__setattr__(self, "sample_rate", _number(s, "sample_rate", self.sample_rate, lo=1e3, hi=1e9))
        object.__setattr__(self, "center_freq", _number(s, "center_freq", self.center_freq, lo=0.0, hi=1e11))
        object.__setattr__(self, "tx_gain_db", _number(s, "tx_gain_db", self.tx_gain_db, lo=-100.0, hi=100.0))
        object.__setattr__(self, "rx_gain_db", _number(s, "rx_gain_db", self.rx_gain_db, lo=-100.0, hi=100.0))
        addr = _string(s, "zmq_address", self.zmq_address)
        if not addr.startswith(("tcp://", "ipc://", "inproc://")):
            raise ConfigError("radio.zmq_address", f"must be a ZMQ endpoint like tcp://127.0.0.1:5555, got {addr!r}")
        object.__setattr__(self, "zmq_address", addr)
        from semcom.radio.limits import check_radio  # noqa: PLC0415 (hardware fields and device ranges)

        for name, value in check_radio(self).items():
            object.__setattr__(self, name, value)


# Decoder names (``semcom.models.decoders.parse_decoder``'s rule, checked here without torch):
# ``jscc``, ``teacher``, ``cm<N>`` (N >= 1 consistency evaluations), ``consistency`` (= ``cm<nfe>``);
# ``auto`` alone = jscc, plus consistency when its checkpoint is given or shipped for the ratio.
# A consistency decoder may carry its knobs: ``cm2:g=1:k=2:s=0.5`` (``models.decoders.parse_decoder_spec``).
_DECODER_RE = re.compile(r"jscc|teacher|(?:consistency|cm[1-9][0-9]*)(?::[gksa]=[0-9.eE+-]+)*")
NFE_MAX = 16  # consistency-model evaluations accepted in model.nfe


def _ratio(section: str, name: str, v: Any) -> str:
    """A bandwidth ratio k/n in (0, 1] (``"1/6"``, ``1``, ``0.5``) -> its canonical fraction string ``"1/6"``.

    The rule of ``semcom.models.definitions.parse_ratio`` (which imports torch), checked here without it.
    """
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ConfigError(f"{section}.{name}", f"must be a fraction like '1/6', got {v!r}")
    try:
        r = Fraction(v).limit_denominator(10_000) if isinstance(v, float) else Fraction(str(v).strip())
    except (ValueError, ZeroDivisionError) as e:
        raise ConfigError(f"{section}.{name}", f"cannot parse {v!r} as a fraction like '1/6' ({e})") from None
    if not 0 < r <= 1:
        raise ConfigError(f"{section}.{name}", f"must be in (0, 1], got {v!r}")
    return str(r)


def _decoders(section: str, name: str, v: Any) -> str:
    """Comma-separated decoder names (see ``_DECODER_RE``), or ``auto`` alone; returned without blanks."""
    if not isinstance(v, str):
        raise ConfigError(f"{section}.{name}", f"must be a string like 'jscc' or 'jscc,consistency', got {v!r}")
    names = [d.strip() for d in v.split(",") if d.strip()]
    if not names:
        raise ConfigError(f"{section}.{name}", "must name at least one decoder (jscc, consistency, cmN, teacher, auto)")
    if names != ["auto"]:
        for d in names:
            if not _DECODER_RE.fullmatch(d):
                raise ConfigError(f"{section}.{name}", f"unknown {d!r} (jscc, consistency, cm1, cm2, ..., "
                                                       f"teacher; or auto alone)")
    return ",".join(names)


@dataclass(frozen=True)
class ModelConfig:
    """Semantic codec.

    ``checkpoint``: JSCC checkpoint path (None: the shipped/trained one for ``ratio``);
    ``codec_id`` sent in every frame header (0..255; 0: derived from the checkpoint);
    ``device`` for torch (``cpu``, ``cuda`` or ``auto``);
    ``ratio``: bandwidth ratio k/n (fraction string, canonical ``"1/6"``) selecting the shipped
    checkpoint when ``checkpoint`` is None (a checkpoint carries its own ratio, which then wins);
    ``decoder``: comma-separated ``jscc``, ``consistency`` (= ``cm<nfe>``), ``cmN``, ``teacher``,
    or ``auto`` (jscc, plus consistency when its checkpoint is given or shipped for the ratio);
    ``nfe``: consistency-model evaluations of ``consistency`` (1..16);
    ``guidance`` (0..1), ``guidance_steps`` (0..3) and ``start_sigma`` (>= 0, 0 = sigma_max): the
    consistency decoder's fidelity-realism knob (``models.decoders.DecodeKnobs``), applied to every
    consistency decoder that does not name its own (``cm2:g=0:s=0``); default 1 / 1 / 0.3, the
    setting measured on photos (``g=0:s=0`` is the plain sampler from pure noise);
    ``consistency``/``teacher``: diffusion checkpoint paths (None: the shipped/trained one for the
    JSCC checkpoint's ratio, if any, when a decoder needs it).

    Command-line flags (``--ratio``, ``--decoder``, ``--nfe``, ``--consistency``, ``--teacher``)
    and GNU Radio block parameters override these (``with_model``).
    """

    checkpoint: str | None = None
    codec_id: int = 0
    device: str = "cpu"
    ratio: str = "1/6"
    decoder: str = "auto"
    nfe: int = 1
    consistency: str | None = None
    teacher: str | None = None
    # Defaults: the measured knob for photos (models.knobs.DecodeKnobs; README, "Diffusion decoders").
    guidance: float = DecodeKnobs.guidance
    guidance_steps: int = DecodeKnobs.guidance_steps
    start_sigma: float = DecodeKnobs.start_sigma

    @property
    def knob_suffix(self) -> str:
        """``":g=..:k=..:s=.."`` for the knobs that differ from the defaults ("" when none)."""
        return DecodeKnobs(self.guidance, self.guidance_steps, self.start_sigma).suffix()

    def __post_init__(self) -> None:
        s = "model"
        object.__setattr__(self, "checkpoint", _string(s, "checkpoint", self.checkpoint, allow_none=True))
        object.__setattr__(self, "codec_id", _integer(s, "codec_id", self.codec_id, lo=0, hi=255))
        object.__setattr__(self, "device", _string(s, "device", self.device, choices=("cpu", "cuda", "auto")))
        object.__setattr__(self, "ratio", _ratio(s, "ratio", self.ratio))
        object.__setattr__(self, "decoder", _decoders(s, "decoder", self.decoder))
        object.__setattr__(self, "nfe", _integer(s, "nfe", self.nfe, lo=1, hi=NFE_MAX))
        object.__setattr__(self, "consistency", _string(s, "consistency", self.consistency, allow_none=True))
        object.__setattr__(self, "teacher", _string(s, "teacher", self.teacher, allow_none=True))
        for name, lo, hi in (("guidance", 0.0, 1.0), ("start_sigma", 0.0, 80.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"{s}.{name}", f"must be a number in [{lo:g}, {hi:g}], got {v!r}")
            object.__setattr__(self, name, float(v))
        object.__setattr__(self, "guidance_steps", _integer(s, "guidance_steps", self.guidance_steps, lo=0, hi=3))


@dataclass(frozen=True)
class LinkConfig:
    """Link layer. ``rx_chunk_samples``: samples handed to the streaming receiver per call
    (bounds memory when decoding long recordings); ``stream_timeout_s``: an incomplete stream is
    handed out with its missing chunks marked after this long; ``stream_id``: id of the first
    stream sent (0..65535)."""

    rx_chunk_samples: int = 1 << 16
    stream_timeout_s: float = 2.0
    stream_id: int = 0

    def __post_init__(self) -> None:
        s = "link"
        object.__setattr__(self, "rx_chunk_samples",
                           _integer(s, "rx_chunk_samples", self.rx_chunk_samples, lo=1, hi=1 << 26))
        object.__setattr__(self, "stream_timeout_s",
                           _number(s, "stream_timeout_s", self.stream_timeout_s, lo=0.0, lo_open=True, hi=3600.0))
        object.__setattr__(self, "stream_id", _integer(s, "stream_id", self.stream_id, lo=0, hi=0xFFFF))


# ---------------------------------------------------------------------- the whole config
def _channel_from_dict(d: Any, frame: FrameSpec | None = None, radio: "RadioConfig | None" = None):
    """The ``channel`` section. Its ``fft_len`` (unit of ``cfo``) and ``sample_rate`` (unit of the
    profile delays) come from ``frame.fft_len`` and ``radio.sample_rate``; they may be repeated
    in the section only with the same value."""
    from semcom.blocks.phy.channel import ChannelConfig, ChannelConfigError  # noqa: PLC0415

    if d is not None and not isinstance(d, dict):
        raise ConfigError("channel", f"must be a mapping of keys to values, got {type(d).__name__}")
    d = dict(d or {})
    d.setdefault("snr_db", DEFAULT_SNR_DB)  # a missing field is the documented 10 dB, not "no noise"
    for key, owner, value in (("fft_len", "frame.fft_len", frame.fft_len if frame else None),
                              ("sample_rate", "radio.sample_rate", radio.sample_rate if radio else None)):
        if value is None:
            continue
        if key in d and d[key] != value:
            raise ConfigError(f"channel.{key}", f"{d[key]!r} differs from {owner} ({value!r}); it follows "
                                                f"{owner}, leave it out")
        d[key] = value
    try:
        return ChannelConfig.from_dict(d)
    except ChannelConfigError as e:
        raise ConfigError(f"channel.{e.field}" if e.field else "channel",
                          str(e).partition(": ")[2]) from None
    except (ValueError, TypeError) as e:
        raise ConfigError("channel", str(e)) from None


def _frame_from_dict(d: Any) -> FrameSpec:
    if d is not None and not isinstance(d, dict):
        raise ConfigError("frame", f"must be a mapping of keys to values, got {type(d).__name__}")
    try:
        return FrameSpec.from_dict(d or {})
    except FrameSpecError as e:
        raise ConfigError(f"frame.{e.field}", str(e)[len(f"frame.{e.field}: "):]) from None
    except (ValueError, TypeError) as e:
        raise ConfigError("frame", str(e)) from None


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; ``source`` is the file it came from (or None)."""

    frame: FrameSpec = field(default_factory=FrameSpec)
    channel: Any = None  # ChannelConfig (None: defaults following frame.fft_len and radio.sample_rate)
    radio: RadioConfig = field(default_factory=RadioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.channel is None:
            object.__setattr__(self, "channel", _channel_from_dict({}, self.frame, self.radio))

    @classmethod
    def from_dict(cls, d: dict | None, source: str | None = None) -> "Config":
        """Validate a mapping (a parsed YAML file); errors name ``source`` and the field."""
        try:
            return _config_from_dict(d, source)
        except ConfigError as e:
            raise e.with_source(source) from None

    def to_dict(self) -> dict[str, Any]:
        """YAML/JSON-safe mapping; ``Config.from_dict(c.to_dict())`` rebuilds an equal config."""
        channel = self.channel.to_dict()
        for key in ("fft_len", "sample_rate"):  # follow frame.fft_len / radio.sample_rate
            channel.pop(key, None)
        return {
            "frame": self.frame.to_dict(),
            "channel": channel,
            "radio": dataclasses.asdict(self.radio),
            "model": dataclasses.asdict(self.model),
            "link": dataclasses.asdict(self.link),
        }

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


def _config_from_dict(d: Any, source: str | None) -> Config:
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError("", f"top level must be a mapping with sections {', '.join(SECTIONS)}; "
                              f"got {type(d).__name__}")
    for key in d:
        if key not in SECTIONS:
            raise ConfigError(str(key), f"unknown section (valid sections: {', '.join(SECTIONS)})")
    frame = _frame_from_dict(d.get("frame"))
    radio = _section_from_dict(RadioConfig, "radio", d.get("radio"))
    return Config(frame=frame,
                  channel=_channel_from_dict(d.get("channel"), frame, radio),
                  radio=radio,
                  model=_section_from_dict(ModelConfig, "model", d.get("model")),
                  link=_section_from_dict(LinkConfig, "link", d.get("link")),
                  source=source)


def config_from_dict(d: dict | None, source: str | None = None) -> Config:
    """Same as ``Config.from_dict``."""
    return Config.from_dict(d, source)


# ---------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``2e6`` / ``1e-3`` as floats (YAML 1.2; PyYAML's 1.1 rules
    need a dot and a sign, ``2.0e+6``, and would hand a sample rate over as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML text as the config files are read (safe loader; ``2e6`` is a float). Raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


# ---------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """``"channel.snr_db=5"`` -> ``(["channel", "snr_db"], 5)``; the value is parsed as YAML."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError("", f"override {text!r} must look like section.key=value")
    key, _, raw = text.partition("=")
    path = [p.strip() for p in key.strip().split(".")]
    if len(path) < 2 or any(not p for p in path):
        raise ConfigError(key.strip(), f"override {text!r} must look like section.key=value")
    if path[0] not in SECTIONS:
        raise ConfigError(path[0], f"unknown section in override {text!r} (valid sections: {', '.join(SECTIONS)})")
    try:
        value = yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(key.strip(), f"cannot parse value {raw!r}: {e}") from None
    return path, value


def apply_overrides(d: dict | None, overrides: Sequence[str] | None) -> dict:
    """Return a copy of the raw mapping ``d`` with ``section.key=value`` overrides applied."""
    import copy

    out = copy.deepcopy(d) if d else {}
    for text in overrides or ():
        path, value = parse_override(text)
        node = out
        for i, p in enumerate(path[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(".".join(path[:i + 1]), f"is not a mapping; cannot apply override {text!r}")
            node = nxt
        node[path[-1]] = value
    return out


# ---------------------------------------------------------------------- files
def _blame(field_name: str, labelled: Sequence[tuple[str, str]]) -> str | None:
    """The label of the last override whose key is ``field_name`` (or holds it / lies inside it)."""
    if not field_name:
        return None
    for text, label in reversed(labelled):
        key = text.partition("=")[0].strip()
        if key == field_name or key.startswith(field_name + ".") or field_name.startswith(key + "."):
            return label
    return None


_NOTED: set[str] = set()


def _check_tx_cap(file_raw: dict, source: str | None, cfg: Config, labelled: Sequence[tuple[str, str]],
                  allow: bool) -> None:
    """Refuse (or, with ``allow``, print once on stderr) overrides raising the file's ``radio.tx_gain_max_db``."""
    radio = file_raw.get("radio")
    cap = radio.get("tx_gain_max_db") if isinstance(radio, dict) else None
    if isinstance(cap, bool) or not isinstance(cap, (int, float)):
        return  # no cap in the file (the device maximum): an override can only lower it
    new = cfg.radio.tx_gain_max_db
    if new is not None and new <= cap:
        return
    label = _blame("radio.tx_gain_max_db", labelled) or "--set"
    to = "the device maximum (null)" if new is None else f"{new:g} dB"
    what = f"raises the TX safety cap of {source} from {cap:g} dB to {to}"
    if not allow:
        raise ConfigError("radio.tx_gain_max_db", f"{what}; add --allow-high-tx-gain to confirm", label)
    note = f"semcom: --allow-high-tx-gain: {label} radio.tx_gain_max_db {what}"
    if note not in _NOTED:
        _NOTED.add(note)
        print(note, file=sys.stderr, flush=True)


def load_config(path: str | Path | None = None, overrides: Sequence[str] | None = None, *,
                allow_high_tx_gain: bool = False, option_overrides: Sequence[str] = (),
                override_source: str = "--set") -> Config:
    """Read and validate a YAML config; ``path=None`` gives the defaults (plus overrides).

    ``overrides`` (``section.key=value``, the ``--set`` of the command line) then
    ``option_overrides`` (the same, derived from other command-line options such as ``--snr``)
    are applied on top of the file. ``allow_high_tx_gain``: accept overrides that raise the file's
    TX safety cap ``radio.tx_gain_max_db`` (printed on stderr); without it they are an error.

    Raises ``ConfigError`` (a ``ValueError``) naming the file for a missing/unreadable file, a
    YAML syntax error, and (with the field) for every invalid entry; an entry made invalid by an
    override names ``override_source`` (``--set``) instead of the file, or "command-line option".
    """
    source = None if path is None else str(path)
    raw: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("", "config file not found" if not p.exists() else "not a regular file", source)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("", f"cannot read config file: {e}", source) from None
        try:
            raw = yaml_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise ConfigError("", f"invalid YAML{where}: {getattr(e, 'problem', None) or e}", source) from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("", f"top level must be a mapping with sections {', '.join(SECTIONS)}; "
                                  f"got {type(raw).__name__}", source)
    labelled = ([(o, override_source) for o in overrides or ()]
                + [(o, "command-line option") for o in option_overrides or ()])
    merged = raw
    for text, label in labelled:
        try:
            merged = apply_overrides(merged, [text])
        except ConfigError as e:
            raise e.with_source(label) from None
    try:
        cfg = Config.from_dict(merged, source)
    except ConfigError as e:
        raise e.with_source(_blame(e.field, labelled) or source) from None
    if labelled:
        _check_tx_cap(raw, source, cfg, labelled, allow_high_tx_gain)
    return cfg


# ---------------------------------------------------------------------- command-line helpers
def add_config_arguments(parser) -> None:
    """Add ``--config FILE`` and repeatable ``--set section.key=value`` to an argparse parser."""
    parser.add_argument("--config", "-c", metavar="YAML", default=None,
                        help="configuration file (see hw_configs/loopback.yaml); default: built-in defaults")
    parser.add_argument("--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="override one config entry, e.g. --set channel.snr_db=5 --set frame.fft_len=128 "
                             "(value parsed as YAML; repeatable)")
    parser.add_argument("--allow-high-tx-gain", action="store_true",
                        help="let --set raise the TX safety cap radio.tx_gain_max_db of the config file "
                             "(refused without this flag; printed when used)")


def config_from_args(args, extra_overrides: Sequence[str] = ()) -> Config:
    """The validated config named by ``args.config`` with ``args.overrides`` (``--set``), then
    ``extra_overrides`` (derived from the command's other options); ``args.allow_high_tx_gain``
    lets ``--set`` raise the TX safety cap (see ``load_config``)."""
    return load_config(getattr(args, "config", None), list(getattr(args, "overrides", None) or []),
                       option_overrides=list(extra_overrides),
                       allow_high_tx_gain=bool(getattr(args, "allow_high_tx_gain", False)))


# ---------------------------------------------------------------------- the model section from flags
MODEL_FLAGS = ("ratio", "decoder", "nfe", "consistency", "teacher", "guidance", "guidance_steps",
               "start_sigma")  # flags of loopback/tx/rx, model fields


def add_knob_arguments(group) -> None:
    """``--guidance``, ``--guidance-steps``, ``--start-sigma``: the consistency decoder's knob as flags
    (None = the config's ``model`` section; read by ``model_from_args``)."""
    group.add_argument("--guidance", type=float, default=None,
                       help=f"consistency decoders: posterior-guidance strength 0..1 (default: model.guidance, "
                            f"{DecodeKnobs.guidance:g}; 0 = unguided)")
    group.add_argument("--guidance-steps", type=int, default=None,
                       help=f"guidance gradient steps per jump 0..3 (default: model.guidance_steps, {DecodeKnobs.guidance_steps})")
    group.add_argument("--start-sigma", type=float, default=None,
                       help=f"SDEdit start level of the consistency decoders, 0 = pure noise (default: "
                            f"model.start_sigma, {DecodeKnobs.start_sigma:g})")


def with_model(cfg: Config, **values: Any) -> Config:
    """``cfg`` with the ``model`` fields given in ``values`` replaced; ``None`` keeps the config's.

    This is how explicit settings win over the file: command-line flags (``model_from_args``) and
    GNU Radio block parameters (which pass ``None`` for an empty/0 parameter). The result is
    validated like the file (``ConfigError`` naming ``model.<field>``). Precedence, highest first:
    explicit flag / block parameter, ``--set model.<field>=...``, the YAML file, ``ModelConfig``'s default.
    """
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise TypeError(f"with_model: unknown model field(s) {', '.join(unknown)}")
    changes = {k: v for k, v in values.items() if v is not None}
    if not changes:
        return cfg
    return cfg.replace(model=dataclasses.replace(cfg.model, **changes))  # errors name the field, not the file


def model_from_args(cfg: Config, args) -> Config:
    """``cfg`` with the flags ``--ratio``/``--decoder``/``--nfe``/``--consistency``/``--teacher`` that were given
    (attributes of ``args`` that exist and are not None) in its ``model`` section (see ``with_model``)."""
    return with_model(cfg, **{k: getattr(args, k, None) for k in MODEL_FLAGS})
