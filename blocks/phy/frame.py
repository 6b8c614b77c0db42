"""The frame description: one object shared by transmitter, receiver, simulator and decoder.

A frame on air is a burst of OFDM symbols, each ``fft_len + cp_len`` samples long::

    | SC preamble | training x n_training | header x n_header_symbols | payload x n | guard |

* **SC preamble** (Schmidl & Cox): a PN QPSK sequence on the *even* used carriers only, so
  the symbol consists of two identical halves in time; used for detection, coarse timing and
  the fractional CFO (range +-1 subcarrier spacing).
* **training**: a PN BPSK sequence on all used carriers (data + pilot), repeated
  ``n_training`` times back to back (each with its own CP); used for the integer CFO, fine
  timing, the channel estimate and the noise-variance estimate.
* **header**: ``HEADER_BITS`` bits (see ``header.py``), rate-1/2 convolutionally coded,
  interleaved and BPSK or QPSK modulated on the data carriers.
* **payload**: analog complex symbols (unit average power) or QAM symbols on the data carriers.
* pilots on every header/payload OFDM symbol: ``pilot_values`` times a +-1 polarity that
  follows a PN sequence over the OFDM symbol index (802.11a style).
* **guard**: ``guard_len`` zero samples after each frame.

Carrier index convention: a carrier ``k`` runs from ``-fft_len/2`` to ``fft_len/2 - 1``; its
FFT bin in natural (unshifted) order is ``k % fft_len``.

Power / SNR convention (see ``snr.py``): the OFDM modulator uses the *unitary* inverse DFT
(``numpy.fft.ifft(..., norm="ortho")``), so a unit-power symbol on a subcarrier stays a unit-power
symbol after the receiver's unitary DFT, and complex AWGN of variance ``N0`` per time sample
becomes noise of variance ``N0`` on every subcarrier. Hence Es/N0 of a payload symbol is
``1 / N0`` for a unit-gain channel.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["FrameSpec", "FrameSpecError", "PAYLOAD_KINDS", "MODULATIONS", "HEADER_MODULATIONS"]

PAYLOAD_KINDS = ("analog", "digital")
MODULATIONS = ("bpsk", "qpsk", "16qam", "64qam")
HEADER_MODULATIONS = ("bpsk", "qpsk")
BITS_PER_SYMBOL = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6}

# Number of information bits in the header, CRC included (see header.py).
HEADER_BITS = 136
# Constraint length of the header's convolutional code (K=7, 802.11 polynomials 133/171).
HEADER_CODE_K = 7


class FrameSpecError(ValueError):
    """An invalid frame parameter; the message names the field."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"frame.{field_name}: {message}")


def _pn_bits(n: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random bits (uint8 0/1) from a fixed seed; shape [n]."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(0, 2, size=n, dtype=np.uint8)


def _polarity_sequence() -> np.ndarray:
    """The 127-long 802.11a pilot polarity sequence (scrambler x^7+x^4+1, all-ones seed); [127] of +-1."""
    state = [1] * 7
    out = []
    for _ in range(127):
        b = state[3] ^ state[6]  # taps x^4 and x^7
        out.append(b)
        state = [b] + state[:-1]
    return np.where(np.array(out) == 1, -1.0, 1.0)


def default_carriers(fft_len: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Default (data, pilot) carrier indices for ``fft_len`` (802.11a numerology at 64).

    Used carriers are ``1..half`` and ``-half..-1`` with ``half = floor(26 * fft_len / 64)``;
    DC stays empty. There are ``4 * fft_len // 64`` pilots, spread evenly and symmetrically.
    """
    if fft_len == 64:
        pilots = (-21, -7, 7, 21)
        used = [k for k in range(-26, 27) if k != 0]
    else:
        half = (26 * fft_len) // 64
        used = [k for k in range(-half, half + 1) if k != 0]
        n_p = 4 * fft_len // 64
        spacing = half / (n_p // 2)
        pos = sorted({int(spacing * (i + 0.5) + 0.5) for i in range(n_p // 2)})
        pilots = tuple(sorted([-p for p in pos] + pos))
    data = tuple(k for k in used if k not in pilots)
    return data, tuple(pilots)


@dataclass(frozen=True)
class FrameSpec:
    """Typed, validated description of one OFDM frame. Immutable; build once, share everywhere.

    Parameters
    ----------
    fft_len : int
        FFT size N, a power of two from 64 to 1024.
    cp_len : int
        Cyclic prefix in samples, ``0 < cp_len <= fft_len // 2``.
    data_carriers, pilot_carriers : tuple of int, optional
        Carrier indices in ``[-N/2, N/2)``, DC excluded, disjoint. Default: ``default_carriers``.
    pilot_values : tuple of complex
        Base pilot value per pilot carrier (multiplied by the per-symbol polarity). Default all 1
        but the last, -1 (802.11a).
    n_training : int
        Repetitions of the training symbol (1..4). Two allow a noise estimate from their difference.
    header_modulation : {"bpsk", "qpsk"}
    payload_kind : {"analog", "digital"}
        Default kind of the payload; the header of each frame carries the actual kind.
    payload_modulation : {"bpsk", "qpsk", "16qam", "64qam"}
        Constellation of digital payloads.
    max_payload_symbols : int
        Largest payload (complex symbols) in one frame; larger payloads are chunked.
    guard_len : int
        Zero samples appended after each frame.
    sc_threshold : float
        Schmidl & Cox timing-metric threshold for detection (0..1).
    seed : int
        Seed of the preamble and training PN sequences.
    """

    fft_len: int = 64
    cp_len: int = 16
    data_carriers: tuple[int, ...] | None = None
    pilot_carriers: tuple[int, ...] | None = None
    pilot_values: tuple[complex, ...] | None = None
    n_training: int = 2
    header_modulation: str = "bpsk"
    payload_kind: str = "analog"
    payload_modulation: str = "qpsk"
    max_payload_symbols: int = 3072
    guard_len: int = 160
    sc_threshold: float = 0.2
    seed: int = 0x5EC0

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        def _set(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("fft_len", "cp_len", "n_training", "max_payload_symbols", "guard_len", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise FrameSpecError(name, f"must be an integer, got {type(v).__name__} {v!r}")
            _set(name, int(v))
        n = self.fft_len
        if n < 64 or n > 1024 or n & (n - 1):
            raise FrameSpecError("fft_len", f"must be a power of two from 64 to 1024, got {n}")
        if not 0 < self.cp_len <= n // 2:
            raise FrameSpecError("cp_len", f"must be in 1..{n // 2} for fft_len {n}, got {self.cp_len}")
        if not 1 <= self.n_training <= 4:
            raise FrameSpecError("n_training", f"must be 1..4, got {self.n_training}")
        if not 1 <= self.max_payload_symbols <= 65535:
            raise FrameSpecError("max_payload_symbols", f"must be 1..65535, got {self.max_payload_symbols}")
        if not 0 <= self.guard_len <= 1 << 20:
            raise FrameSpecError("guard_len", f"must be 0..{1 << 20}, got {self.guard_len}")
        if not 0 <= self.seed < 1 << 32:
            raise FrameSpecError("seed", f"must be a 32-bit unsigned integer, got {self.seed}")
        if self.header_modulation not in HEADER_MODULATIONS:
            raise FrameSpecError("header_modulation", f"must be one of {HEADER_MODULATIONS}, got {self.header_modulation!r}")
        if self.payload_kind not in PAYLOAD_KINDS:
            raise FrameSpecError("payload_kind", f"must be one of {PAYLOAD_KINDS}, got {self.payload_kind!r}")
        if self.payload_modulation not in MODULATIONS:
            raise FrameSpecError("payload_modulation", f"must be one of {MODULATIONS}, got {self.payload_modulation!r}")
        try:
            thr = float(self.sc_threshold)
        except (TypeError, ValueError):
            raise FrameSpecError("sc_threshold", f"must be a number, got {self.sc_threshold!r}") from None
        if not 0.05 <= thr < 1.0:
            raise FrameSpecError("sc_threshold", f"must be in [0.05, 1), got {thr}")
        _set("sc_threshold", thr)

        d_def, p_def = default_carriers(n)
        data = d_def if self.data_carriers is None else self._carriers("data_carriers", self.data_carriers)
        pil = p_def if self.pilot_carriers is None else self._carriers("pilot_carriers", self.pilot_carriers)
        if set(data) & set(pil):
            raise FrameSpecError("pilot_carriers", f"overlap data carriers at {sorted(set(data) & set(pil))}")
        if len(data) < 8:
            raise FrameSpecError("data_carriers", f"need at least 8 data carriers, got {len(data)}")
        if len(pil) < 2:
            raise FrameSpecError("pilot_carriers", f"need at least 2 pilot carriers, got {len(pil)}")
        _set("data_carriers", tuple(sorted(data)))
        _set("pilot_carriers", tuple(sorted(pil)))
        if self.pilot_values is None:
            pv = tuple([1.0 + 0j] * (len(pil) - 1) + [-1.0 + 0j])
        else:
            try:
                pv = tuple(complex(v) for v in self.pilot_values)
            except (TypeError, ValueError):
                raise FrameSpecError("pilot_values", "must be a list of numbers") from None
            if len(pv) != len(pil):
                raise FrameSpecError("pilot_values", f"need {len(pil)} values (one per pilot carrier), got {len(pv)}")
            if any(abs(v) < 1e-6 or not math.isfinite(abs(v)) for v in pv):
                raise FrameSpecError("pilot_values", "must be finite and non-zero")
        _set("pilot_values", pv)

    def _carriers(self, name: str, value: Sequence[int]) -> tuple[int, ...]:
        try:
            ks = [int(k) for k in value]
        except (TypeError, ValueError):
            raise FrameSpecError(name, "must be a list of integers") from None
        if any(float(k) != float(v) for k, v in zip(ks, value)):
            raise FrameSpecError(name, "must be a list of integers")
        half = self.fft_len // 2
        bad = [k for k in ks if not -half <= k < half]
        if bad:
            raise FrameSpecError(name, f"indices {bad} outside [-{half}, {half}) for fft_len {self.fft_len}")
        if 0 in ks:
            raise FrameSpecError(name, "must not contain the DC carrier 0")
        if len(set(ks)) != len(ks):
            raise FrameSpecError(name, "contains duplicates")
        return tuple(ks)

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "FrameSpec":
        """Build from a mapping (e.g. the ``frame:`` section of a YAML config); unknown keys are errors."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise FrameSpecError(unknown[0], f"unknown key (valid keys: {', '.join(sorted(names))})")
        if d.get("pilot_values") is not None:
            pv = d["pilot_values"]
            if not isinstance(pv, (list, tuple)):
                raise FrameSpecError("pilot_values", "must be a list")
            d["pilot_values"] = tuple(complex(v) if not isinstance(v, (list, tuple)) else complex(v[0], v[1]) for v in pv)
        for key in ("data_carriers", "pilot_carriers"):
            if d.get(key) is not None:
                if not isinstance(d[key], (list, tuple)):
                    raise FrameSpecError(key, "must be a list of integers")
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe mapping; ``FrameSpec.from_dict(s.to_dict()) == s``."""
        d = dataclasses.asdict(self)
        d["data_carriers"] = list(self.data_carriers)
        d["pilot_carriers"] = list(self.pilot_carriers)
        d["pilot_values"] = [[v.real, v.imag] for v in self.pilot_values]
        return d

    def replace(self, **changes: Any) -> "FrameSpec":
        return dataclasses.replace(self, **changes)

    @functools.cached_property
    def spec_id(self) -> int:
        """16-bit fingerprint of every field that changes the waveform; carried in each header.

        A receiver configured with another frame description rejects the frame instead of
        delivering garbage (``max_payload_symbols``, ``guard_len`` and ``sc_threshold`` do not
        change how a frame is demodulated and are left out; nor do ``payload_kind`` and
        ``payload_modulation``, which each header announces itself). Computed once per instance (the
        spec is immutable; transmitter and receiver read it for every frame).
        """
        d = self.to_dict()
        for k in ("max_payload_symbols", "guard_len", "sc_threshold", "payload_kind", "payload_modulation"):
            d.pop(k)
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).digest()
        return int.from_bytes(h[:2], "big")

    # ------------------------------------------------------------------ derived sizes
    @property
    def symbol_len(self) -> int:
        """Samples per OFDM symbol, CP included."""
        return self.fft_len + self.cp_len

    @property
    def n_data(self) -> int:
        return len(self.data_carriers)

    @property
    def n_pilots(self) -> int:
        return len(self.pilot_carriers)

    @property
    def used_carriers(self) -> tuple[int, ...]:
        """Data and pilot carriers, sorted."""
        return tuple(sorted(self.data_carriers + self.pilot_carriers))

    @property
    def n_used(self) -> int:
        return self.n_data + self.n_pilots

    @property
    def n_preamble_symbols(self) -> int:
        """OFDM symbols before the header: the SC symbol and the training repetitions."""
        return 1 + self.n_training

    @property
    def header_coded_bits(self) -> int:
        """Coded header bits: rate 1/2 with K-1 tail bits."""
        return 2 * (HEADER_BITS + HEADER_CODE_K - 1)

    @property
    def n_header_symbols(self) -> int:
        bps = BITS_PER_SYMBOL[self.header_modulation]
        return math.ceil(self.header_coded_bits / (bps * self.n_data))

    def n_payload_ofdm_symbols(self, n_payload: int) -> int:
        """OFDM symbols needed for ``n_payload`` complex payload symbols."""
        return math.ceil(n_payload / self.n_data)

    def frame_len(self, n_payload: int) -> int:
        """Samples of one frame on air (guard included) for ``n_payload`` payload symbols."""
        n_sym = self.n_preamble_symbols + self.n_header_symbols + self.n_payload_ofdm_symbols(n_payload)
        return n_sym * self.symbol_len + self.guard_len

    def bin(self, carriers: Sequence[int]) -> np.ndarray:
        """FFT bins (natural order) of carrier indices; int64 [len(carriers)]."""
        return np.asarray(carriers, dtype=np.int64) % self.fft_len

    # ------------------------------------------------------------------ known sequences
    def sc_symbol_freq(self) -> np.ndarray:
        """Schmidl & Cox preamble in the frequency domain, natural bin order; complex128 [fft_len].

        QPSK PN values on even used carriers, scaled by sqrt(2) so the symbol has the same
        energy as a symbol with all used carriers at unit power.
        """
        even = [k for k in self.used_carriers if k % 2 == 0]
        bits = _pn_bits(2 * len(even), self.seed)
        vals = (1 - 2.0 * bits[0::2]) + 1j * (1 - 2.0 * bits[1::2])  # |v|^2 = 2
        x = np.zeros(self.fft_len, dtype=np.complex128)
        x[self.bin(even)] = vals
        return x

    def training_freq(self) -> np.ndarray:
        """Training symbol (BPSK PN on all used carriers), natural bin order; complex128 [fft_len]."""
        bits = _pn_bits(self.n_used, self.seed + 1)
        x = np.zeros(self.fft_len, dtype=np.complex128)
        x[self.bin(self.used_carriers)] = 1.0 - 2.0 * bits
        return x

    def pilot_polarity(self, n_symbols: int, first: int = 0) -> np.ndarray:
        """Polarity (+-1) of the pilots of header/payload OFDM symbols ``first .. first+n-1``; [n]."""
        seq = _polarity_sequence()
        return seq[(first + np.arange(n_symbols)) % seq.size]

    def pilot_matrix(self, n_symbols: int, first: int = 0) -> np.ndarray:
        """Pilot values of ``n_symbols`` OFDM symbols; complex128 [n_symbols, n_pilots]."""
        return self.pilot_polarity(n_symbols, first)[:, None] * np.asarray(self.pilot_values)[None, :]

    def __str__(self) -> str:  # short human summary
        return (f"FrameSpec(N={self.fft_len}, CP={self.cp_len}, {self.n_data} data + {self.n_pilots} pilots, "
                f"{self.n_training} training, header {self.header_modulation} x{self.n_header_symbols} sym, "
                f"max payload {self.max_payload_symbols}, guard {self.guard_len})")
