"""Loopback channel simulator: timing offset, multipath / block fading, SRO, CFO, phase noise, AWGN.

Pure numpy, streaming and seeded: ``ChannelSimulator.apply`` may be called on consecutive chunks
of a stream and gives the same samples as one call on the whole stream (noise included: every
random quantity comes from its own generator, consumed in sample order).

Order of the impairments (each acts on the output of the previous one)::

    timing offset -> multipath / fading (FIR) -> SRO -> CFO -> phase noise -> AWGN

Conventions (units)
-------------------
* ``snr_db``: Es/N0 per complex payload symbol as defined in ``snr.py``: complex AWGN of variance
  ``N0 = 1 / undb(snr_db)`` per output sample. The noise level is *not* measured from the
  signal (a frame holds guards and a preamble); it is defined for unit-power payload symbols
  and a unit-average-power channel. ``None``: no noise.
* ``cfo``: carrier frequency offset in subcarrier spacings ``sample_rate / fft_len``; the output
  is multiplied by ``exp(j 2 pi cfo / fft_len * m)`` with ``m`` the output sample index.
* ``timing_offset``: delay in samples (>= 0, may be fractional) applied before everything else:
  the stream starts with that many zeros. The integer part is a delay line; the fractional part
  is folded into the multipath FIR as a windowed-sinc fractional delay (see *Fractional delays*).
* ``sro_ppm``: sample-rate offset. Positive = the receiver's clock is fast, so the signal is
  stretched: output sample ``m`` is the input interpolated at time ``m / (1 + sro_ppm * 1e-6)``
  and a buffer of ``n`` samples becomes about ``n * (1 + sro_ppm * 1e-6)`` samples.
* ``phase_noise``: Wiener (random-walk) phase noise with a two-sided 3 dB Lorentzian linewidth
  ``phase_noise`` in Hz: the phase increment per sample is Gaussian with variance
  ``2 pi phase_noise / sample_rate`` rad^2, so the phase variance grows linearly with time.
* ``profile``: tapped delay line defined in seconds, mapped to ``sample_rate``:

  - ``flat``: one path.
  - ``indoor``: ITU-R M.1225 Indoor office, channel A (6 paths, 0-310 ns, rms spread 37 ns;
    the ITU table quotes 35 ns).
  - ``outdoor``: ITU-R M.1225 Outdoor-to-indoor and pedestrian, channel B (6 paths, 0-3.7 us,
    rms spread 633 ns); at 2 MS/s it spans 7.4 samples plus the interpolation kernel, inside a
    16-sample CP.
  - ``custom``: ``delays`` (seconds) and ``powers_db``.

  Path powers are normalised to unit total *average* power, so ``snr_db`` is the average
  received Es/N0.
* ``fading``: ``auto`` (the default: ``rayleigh`` for the ``indoor`` and ``outdoor`` profiles, which
  the ITU tables define as Rayleigh-fading paths, ``none`` for ``flat`` and ``custom``; so a profile
  name means the same channel in the config, the CLI and the benchmarks), ``none`` (static taps,
  path amplitudes ``sqrt(power)`` with zero phase, the tap vector normalised to unit energy), ``rayleigh`` (every path gain ``CN(0, power)``) or
  ``rician`` (the first path has a fixed line-of-sight part of phase 0 and K-factor
  ``k_factor_db``; the others are Rayleigh). Block fading: a new independent realisation every
  ``block_len`` samples (0 = one realisation for the whole stream). Blocks are counted on the
  *input* time axis: input sample ``i`` belongs to block ``i // block_len``, and every output
  sample in which that delayed input sample arrives on the earliest tap uses that block's taps.
  So frames fed at multiples of ``block_len`` (e.g. ``block_len`` = frame length) each see one
  realisation, whatever the timing offset.

Fractional delays
-----------------
A path at delay ``tau`` samples contributes ``g * k(n - tau)`` to tap ``n``, where ``k`` is a
Kaiser-windowed sinc of half-length ``FIR_HALF = 4`` samples (beta 3). The kernel is kept short on
purpose: the whole response (outdoor profile at 2 MS/s: 7.4 samples + 2 x 4) then fits a 16-sample
CP, so a receiver aligned on the earliest tap sees no inter-symbol interference. The price is a
non-flat response of a fractional delay near the band edge (up to about -1.5 dB at 0.41 of the
sample rate); it is part of the channel that is exposed, so a genie receiver is exact. Taps at
negative ``n`` are cut (the channel is causal): up to ``FIR_HALF`` samples of the integer timing
offset are moved into the FIR to give the precursors room, so a fractional timing offset is clean
once ``timing_offset >= FIR_HALF``; below that, fractional paths lose part of their precursors.
Integer delays are exact unit impulses. SRO uses a longer kernel (half-length ``RESAMPLER_HALF =
8``, beta 6, amplitude error below 1.2e-3 up to 0.37 of the sample rate).

The channel actually applied is exposed for genie receivers: ``impulse_response(i)`` and
``frequency_response(fft_len, i)`` for the block holding input sample ``i`` (``last_taps`` for the
latest block), ``tap_offset`` (delay of tap 0 in samples), ``first_delay`` (delay of the earliest
non-zero tap: where a genie receiver puts its FFT windows) and ``delay_span``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .snr import complex_awgn, noise_variance

__all__ = ["ChannelConfig", "ChannelConfigError", "ChannelSimulator", "simulate", "PROFILES", "PROFILE_NAMES",
           "FADINGS", "FADING_AUTO", "interp_kernel", "rms_delay_spread"]

# Tapped delay lines: (delays in seconds, powers in dB), ITU-R M.1225 tables.
PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "flat": ((0.0,), (0.0,)),
    "indoor": ((0.0, 50e-9, 110e-9, 170e-9, 290e-9, 310e-9), (0.0, -3.0, -10.0, -18.0, -26.0, -32.0)),
    "outdoor": ((0.0, 200e-9, 800e-9, 1200e-9, 2300e-9, 3700e-9), (0.0, -0.9, -4.9, -8.0, -7.8, -23.9)),
}
PROFILE_NAMES = ("flat", "indoor", "outdoor", "custom")
FADINGS = ("none", "rayleigh", "rician")
FADING_AUTO = {"flat": "none", "indoor": "rayleigh", "outdoor": "rayleigh", "custom": "none"}  # fading "auto"
FIR_HALF, FIR_BETA = 4, 3.0  # fractional-delay kernel of the multipath FIR: half-length (samples), Kaiser beta
RESAMPLER_HALF, RESAMPLER_BETA = 8, 6.0  # SRO interpolation kernel
_MAX_TAPS = 4096  # longest FIR the simulator accepts (delay spread + kernel), in samples
_HISTORY_BLOCKS = 1024  # fading realisations kept for impulse_response()


class ChannelConfigError(ValueError):
    """An invalid channel parameter; the message reads ``channel.<field>: <problem>``."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        super().__init__(f"channel.{field_name}: {message}")


def interp_kernel(u: np.ndarray, half: int, beta: float) -> np.ndarray:
    """Kaiser-windowed sinc (half-length ``half`` samples) at offsets ``u`` (samples); 0 for ``|u| >= half``. float64."""
    u = np.asarray(u, dtype=np.float64)
    r = np.clip(1.0 - (u / half) ** 2, 0.0, None)
    return np.where(np.abs(u) < half, np.sinc(u) * np.i0(beta * np.sqrt(r)) / np.i0(beta), 0.0)


def rms_delay_spread(delays: np.ndarray, powers: np.ndarray) -> float:
    """RMS delay spread of a power-delay profile (same unit as ``delays``; powers linear)."""
    p = np.asarray(powers, dtype=np.float64)
    d = np.asarray(delays, dtype=np.float64)
    p = p / p.sum()
    mean = float(np.sum(p * d))
    return float(np.sqrt(max(np.sum(p * d ** 2) - mean ** 2, 0.0)))


_PHASES = 4096  # fractional positions tabulated for the SRO kernel (linear interpolation in between)
_TABLE: np.ndarray | None = None


def _resampler_kernel(frac: np.ndarray) -> np.ndarray:
    """SRO kernel weights of inputs ``j - L + 1 .. j + L`` for output times ``j + frac``; float64 [n, 2L].

    Tabulated on ``_PHASES`` fractional positions and linearly interpolated (error < 1e-7),
    as evaluating the Kaiser window per sample is slow.
    """
    global _TABLE
    offs = np.arange(-RESAMPLER_HALF + 1, RESAMPLER_HALF + 1)  # [2L]
    if _TABLE is None:
        ph = np.arange(_PHASES + 1) / _PHASES
        _TABLE = interp_kernel(ph[:, None] - offs[None, :], RESAMPLER_HALF, RESAMPLER_BETA)  # [P + 1, 2L]
    pos = np.asarray(frac) * _PHASES
    p0 = np.minimum(pos.astype(np.int64), _PHASES - 1)
    w = (pos - p0)[:, None]
    return (1.0 - w) * _TABLE[p0] + w * _TABLE[p0 + 1]


# ---------------------------------------------------------------------- configuration
def _num(name: str, v: Any, *, lo: float | None = None, hi: float | None = None, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ChannelConfigError(name, f"must be a number, got {type(v).__name__} {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ChannelConfigError(name, f"must be finite, got {x}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise ChannelConfigError(name, f"must be in [{lo}, {hi}], got {x}")
    return x


def _int(name: str, v: Any, *, lo: int, hi: int, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ChannelConfigError(name, f"must be an integer, got {type(v).__name__} {v!r}")
    if not lo <= int(v) <= hi:
        raise ChannelConfigError(name, f"must be in {lo}..{hi}, got {v}")
    return int(v)


def _choice(name: str, v: Any, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise ChannelConfigError(name, f"must be one of {choices}, got {v!r}")
    return v


@dataclass(frozen=True)
class ChannelConfig:
    """Typed, validated channel description (see the module docstring for units and conventions).

    Parameters
    ----------
    snr_db : float or None
        Es/N0 per payload symbol in dB (-50..100); None = no noise.
    cfo : float
        Carrier frequency offset in subcarrier spacings (``sample_rate / fft_len``), |cfo| <= fft_len / 2.
    timing_offset : float
        Leading delay in samples, 0..1e7, may be fractional.
    sro_ppm : float
        Sample-rate offset in parts per million, |sro_ppm| <= 1e4; positive stretches the signal.
    phase_noise : float
        Wiener phase-noise linewidth in Hz (>= 0, at most ``sample_rate / 10``).
    profile : {"flat", "indoor", "outdoor", "custom"}
    delays, powers_db : tuple of float or None
        Path delays (seconds, >= 0) and powers (dB) of the ``custom`` profile; None otherwise.
    fading : {"auto", "none", "rayleigh", "rician"}
        ``auto`` (default) is resolved from the profile (``FADING_AUTO``: rayleigh for indoor/outdoor).
    k_factor_db : float
        Rician K-factor of the first path in dB (-30..40).
    block_len : int
        Fading coherence block in samples; 0 = one realisation for the whole stream.
    sample_rate : float
        Sample rate in Hz (maps profile delays and the phase-noise linewidth to samples).
    fft_len : int
        FFT size that defines the subcarrier spacing of ``cfo`` (the FrameSpec's ``fft_len``).
    seed : int or None
        Seed of every random draw (fading, phase noise, AWGN); None = fresh entropy.
    """

    snr_db: float | None = None
    cfo: float = 0.0
    timing_offset: float = 0.0
    sro_ppm: float = 0.0
    phase_noise: float = 0.0
    profile: str = "flat"
    delays: tuple[float, ...] | None = None
    powers_db: tuple[float, ...] | None = None
    fading: str = "auto"
    k_factor_db: float = 10.0
    block_len: int = 0
    sample_rate: float = 2e6
    fft_len: int = 64
    seed: int | None = 0

    def __post_init__(self) -> None:
        def _set(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        _set("snr_db", _num("snr_db", self.snr_db, lo=-50.0, hi=100.0, allow_none=True))
        _set("fft_len", _int("fft_len", self.fft_len, lo=2, hi=1 << 16))
        _set("cfo", _num("cfo", self.cfo, lo=-self.fft_len / 2, hi=self.fft_len / 2))
        _set("timing_offset", _num("timing_offset", self.timing_offset, lo=0.0, hi=1e7))
        _set("sro_ppm", _num("sro_ppm", self.sro_ppm, lo=-1e4, hi=1e4))
        _set("sample_rate", _num("sample_rate", self.sample_rate, lo=1.0, hi=1e11))
        _set("phase_noise", _num("phase_noise", self.phase_noise, lo=0.0, hi=self.sample_rate / 10))
        _set("profile", _choice("profile", self.profile, PROFILE_NAMES))
        _set("fading", _choice("fading", self.fading, ("auto",) + FADINGS))
        if self.fading == "auto":
            _set("fading", FADING_AUTO[self.profile])
        _set("k_factor_db", _num("k_factor_db", self.k_factor_db, lo=-30.0, hi=40.0))
        _set("block_len", _int("block_len", self.block_len, lo=0, hi=1 << 40))
        _set("seed", _int("seed", self.seed, lo=0, hi=(1 << 63) - 1, allow_none=True))
        if self.profile == "custom":
            for name in ("delays", "powers_db"):
                v = getattr(self, name)
                if not isinstance(v, (list, tuple)) or len(v) == 0:
                    raise ChannelConfigError(name, "the custom profile needs a non-empty list of numbers")
                _set(name, tuple(_num(name, x) for x in v))
            if len(self.delays) != len(self.powers_db):
                raise ChannelConfigError("powers_db", f"needs one power per delay ({len(self.delays)}), "
                                                      f"got {len(self.powers_db)}")
            if min(self.delays) < 0:
                raise ChannelConfigError("delays", "must be >= 0 seconds")
            if min(self.powers_db) < -200:
                raise ChannelConfigError("powers_db", "must be >= -200 dB")
        else:
            for name in ("delays", "powers_db"):
                if getattr(self, name) is not None:
                    raise ChannelConfigError(name, f"only allowed with profile 'custom' (profile is {self.profile!r})")
        span = (max(self.path_delays_s()) * self.sample_rate) + 2 * FIR_HALF + 1
        if span > _MAX_TAPS:
            raise ChannelConfigError("delays" if self.profile == "custom" else "sample_rate",
                                     f"delay spread spans {span:.0f} samples; at most {_MAX_TAPS}")

    # ---------------------------------------------------------------- profile
    def path_delays_s(self) -> tuple[float, ...]:
        """Path delays of the profile in seconds."""
        return self.delays if self.profile == "custom" else PROFILES[self.profile][0]

    def path_powers(self) -> np.ndarray:
        """Path powers of the profile, linear, normalised to sum 1; float64 [n_paths]."""
        p_db = self.powers_db if self.profile == "custom" else PROFILES[self.profile][1]
        p = 10.0 ** (np.asarray(p_db, dtype=np.float64) / 10.0)
        return p / p.sum()

    def noise_variance(self) -> float:
        """``N0`` per output sample (0 without noise)."""
        return 0.0 if self.snr_db is None else noise_variance(self.snr_db)

    # ---------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "ChannelConfig":
        """Build from a mapping (the ``channel:`` section of a YAML config); unknown keys are errors."""
        if d is not None and not isinstance(d, dict):
            raise ChannelConfigError("", f"must be a mapping, got {type(d).__name__}")
        d = dict(d or {})
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise ChannelConfigError(str(key), f"unknown key (valid keys: {', '.join(names)})")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """YAML/JSON-safe mapping; ``ChannelConfig.from_dict(c.to_dict()) == c``."""
        d = dataclasses.asdict(self)
        for key in ("delays", "powers_db"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    def replace(self, **changes: Any) -> "ChannelConfig":
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------- the simulator
class ChannelSimulator:
    """Streaming channel for one ``ChannelConfig`` (order and units: module docstring).

    ``apply(x)`` takes complex [n] and returns complex64 [m]: ``m == n`` without SRO; with SRO
    the resampler holds back the last ``RESAMPLER_HALF`` or so input samples until more input (or
    ``flush()``) arrives, and ``m`` follows the stretched rate. Consecutive calls continue the
    stream (CFO phase, phase-noise walk, FIR and resampler memories, fading blocks, RNGs), so
    any chunking of the input gives the same output.
    """

    def __init__(self, config: ChannelConfig | dict | None = None):
        if not isinstance(config, ChannelConfig):
            config = ChannelConfig.from_dict(config)
        self.config = cfg = config
        ss = np.random.SeedSequence(cfg.seed)
        fading_ss, pn_ss, awgn_ss = ss.spawn(3)
        self._fading_rng = np.random.Generator(np.random.PCG64(fading_ss))
        self._pn_rng = np.random.Generator(np.random.PCG64(pn_ss))
        self._awgn_rng = np.random.Generator(np.random.PCG64(awgn_ss))

        # Timing offset: integer delay line + fractional part (and up to FIR_HALF integer
        # samples of precursor room) inside the FIR.
        k_int = int(math.floor(cfg.timing_offset))
        frac = cfg.timing_offset - k_int
        pre = min(k_int, FIR_HALF) if frac > 0 else 0
        self.delay_samples = k_int - pre  # pure delay line length
        self.tap_offset = self.delay_samples  # delay (samples) of FIR tap 0 w.r.t. the input
        tau = np.asarray(cfg.path_delays_s()) * cfg.sample_rate + frac + pre  # [n_paths] samples
        n_taps = int(math.floor(tau.max())) + FIR_HALF + 1
        kern = interp_kernel(np.arange(n_taps)[None, :] - tau[:, None], FIR_HALF, FIR_BETA)  # [n_paths, n_taps]
        whole = np.abs(tau - np.round(tau)) < 1e-9  # integer delays: exact unit impulses
        kern[whole] = 0.0
        kern[np.flatnonzero(whole), np.round(tau[whole]).astype(np.int64)] = 1.0
        used = np.flatnonzero(np.any(kern != 0.0, axis=0))
        self._path_kernels = kern[:, :used.max() + 1]
        n_taps = self._path_kernels.shape[1]
        self.first_delay = self.tap_offset + int(used.min())  # earliest response, samples after the input
        self._path_powers = cfg.path_powers()  # [n_paths]
        energy = np.sum(self._path_powers * np.sum(self._path_kernels ** 2, axis=1))
        self._avg_norm = 1.0 / np.sqrt(energy)  # unit average tap energy under fading
        self._identity_fir = (cfg.fading == "none" and n_taps == 1)
        self._fir_hist = np.zeros(n_taps - 1, np.complex128)
        self._delay_hist = np.zeros(self.delay_samples, np.complex128)
        self._taps: OrderedDict[int, np.ndarray] = OrderedDict()  # block -> taps [n_taps]
        self._next_block = 0  # next fading block to draw
        self._n_fir = 0  # samples through the FIR so far

        # SRO resampler state
        self._ratio = 1.0 / (1.0 + cfg.sro_ppm * 1e-6)  # input samples per output sample
        self._rs_buf = np.zeros(RESAMPLER_HALF, np.complex128)  # inputs from index _rs_base on
        self._rs_base = -RESAMPLER_HALF  # zeros before the stream start
        self._rs_next = 0  # next output index
        self._n_out = 0  # samples out of the SRO stage (= output index of the next sample)
        self._pn_phase = 0.0
        self._pn_std = math.sqrt(2 * math.pi * cfg.phase_noise / cfg.sample_rate)
        self._n0 = cfg.noise_variance()

    # ---------------------------------------------------------------- channel knowledge
    def _block_taps(self, block: int) -> np.ndarray:
        """Tap vector of fading block ``block`` (drawing new realisations in block order)."""
        while self._next_block <= block:
            self._taps[self._next_block] = self._draw_taps()
            self._next_block += 1
            if len(self._taps) > _HISTORY_BLOCKS:
                self._taps.popitem(last=False)
        if block not in self._taps:
            raise KeyError(f"fading block {block} is no longer kept (last {_HISTORY_BLOCKS} blocks only)")
        return self._taps[block]

    def _draw_taps(self) -> np.ndarray:
        cfg, p = self.config, self._path_powers
        if cfg.fading == "none":
            h = np.sqrt(p) @ self._path_kernels
            return (h / np.linalg.norm(h)).astype(np.complex128)
        g = self._fading_rng.standard_normal(2 * p.size).view(np.complex128) * np.sqrt(p / 2)  # CN(0, p)
        if cfg.fading == "rician":
            k = 10.0 ** (cfg.k_factor_db / 10.0)
            g[0] = np.sqrt(p[0] * k / (k + 1)) + g[0] * np.sqrt(1 / (k + 1))  # LOS (phase 0) + scatter
        return (g @ self._path_kernels) * self._avg_norm

    def block_of(self, input_index: int) -> int:
        """Fading block of input sample ``input_index`` (index in the stream fed to ``apply``)."""
        return 0 if self.config.block_len == 0 else max(int(input_index), 0) // self.config.block_len

    def impulse_response(self, input_index: int | None = None) -> np.ndarray:
        """Taps applied around input sample ``input_index`` (default: the latest block); complex128 [n_taps].

        Tap ``n`` has delay ``tap_offset + n`` samples w.r.t. the input stream.
        """
        if input_index is None:
            return self.last_taps
        return self._block_taps(self.block_of(input_index)).copy()

    @property
    def delay_span(self) -> int:
        """Samples from the earliest to the latest tap, both included (ISI-free if <= cp_len + 1)."""
        return self.tap_offset + self._path_kernels.shape[1] - self.first_delay

    @property
    def last_taps(self) -> np.ndarray:
        """Taps of the latest fading block used (block 0 before any input); complex128 [n_taps]."""
        return self._block_taps(max(self._next_block - 1, 0)).copy()

    def frequency_response(self, fft_len: int, input_index: int | None = None, ref: int | None = None) -> np.ndarray:
        """Channel on the FFT bins (natural order) seen by a receiver whose FFT windows start ``ref`` samples late.

        ``H[k] = sum_n h[n] exp(-j 2 pi k (tap_offset + n - ref) / fft_len)``. ``ref`` defaults to
        ``first_delay`` (the earliest tap): a genie receiver takes each transmitted FFT window
        ``first_delay`` samples later and sees ``Y[k] = H[k] X[k]`` without inter-symbol
        interference when ``delay_span <= cp_len + 1``. Ignores CFO, SRO and phase noise.
        complex128 [fft_len].
        """
        ref = self.first_delay if ref is None else int(ref)
        h = self.impulse_response(input_index)
        n = self.tap_offset + np.arange(h.size) - ref
        k = np.arange(fft_len)
        return np.exp(-2j * np.pi * np.outer(k, n) / fft_len) @ h

    # ---------------------------------------------------------------- stages
    def _delay(self, x: np.ndarray) -> np.ndarray:
        if self.delay_samples == 0:
            return x
        ext = np.concatenate([self._delay_hist, x])
        self._delay_hist = ext[x.size:]
        return ext[:x.size]

    def _fir(self, x: np.ndarray) -> np.ndarray:
        if self._identity_fir or x.size == 0:
            if x.size:
                self._block_taps(self.block_of(self._n_fir + x.size - 1 - self.delay_samples))
            self._n_fir += x.size
            return x
        n, m_taps = x.size, self._fir_hist.size + 1
        ext = np.concatenate([self._fir_hist, x])  # [m_taps - 1 + n]
        idx = np.maximum(self._n_fir - self.delay_samples + np.arange(n), 0)  # input time of tap 0
        blocks = idx // self.config.block_len if self.config.block_len else np.zeros(n, np.int64)
        b0, b1 = int(blocks[0]), int(blocks[-1])
        table = np.stack([self._block_taps(b) for b in range(b0, b1 + 1)])  # [n_blocks, m_taps]
        rows = blocks - b0
        y = np.zeros(n, np.complex128)
        for m in range(m_taps):
            y += table[rows, m] * ext[m_taps - 1 - m:m_taps - 1 - m + n]
        self._fir_hist = ext[n:]
        self._n_fir += n
        return y

    def _resample(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        if self.config.sro_ppm == 0.0:
            return x
        buf = np.concatenate([self._rs_buf, x])  # sample j of the stream is buf[j - _rs_base]
        last = self._rs_base + buf.size - 1  # last input index available
        # output m needs inputs up to floor(m * ratio) + RESAMPLER_HALF (zeros once flushed)
        limit = last if final else last - RESAMPLER_HALF
        m_end = int(math.floor(limit / self._ratio)) + 1 if limit >= 0 else 0
        while m_end > 0 and math.floor(m_end * self._ratio) > limit:
            m_end -= 1  # guard against rounding
        while math.floor(m_end * self._ratio) <= limit:
            m_end += 1
        m = np.arange(self._rs_next, max(m_end, self._rs_next), dtype=np.int64)
        t = m * self._ratio  # [n_out] input time
        j = np.floor(t).astype(np.int64)
        offs = np.arange(-RESAMPLER_HALF + 1, RESAMPLER_HALF + 1)  # [2L]
        src = j[:, None] + offs[None, :]  # [n_out, 2L] input indices
        pos = src - self._rs_base
        if final:
            buf = np.concatenate([buf, np.zeros(2 * RESAMPLER_HALF, np.complex128)])
        kern = _resampler_kernel(t - j)  # [n_out, 2L]
        y = np.sum(buf[pos] * kern, axis=1) if m.size else np.zeros(0, np.complex128)
        self._rs_next = int(m[-1]) + 1 if m.size else self._rs_next
        # keep inputs from the first one the next output can need
        keep_from = int(math.floor(self._rs_next * self._ratio)) - RESAMPLER_HALF + 1
        drop = max(0, min(keep_from - self._rs_base, buf.size))
        self._rs_buf = buf[drop:]
        self._rs_base += drop
        return y

    def _post(self, y: np.ndarray) -> np.ndarray:
        """CFO, phase noise and AWGN on SRO-stage output samples ``_n_out ..``."""
        n = y.size
        cfg = self.config
        if n == 0:
            return y.astype(np.complex64)
        idx = self._n_out + np.arange(n, dtype=np.float64)
        if cfg.cfo != 0.0:
            y = y * np.exp(2j * np.pi * (cfg.cfo / cfg.fft_len) * idx)
        if self._pn_std > 0:
            phase = self._pn_phase + np.cumsum(self._pn_std * self._pn_rng.standard_normal(n))
            self._pn_phase = float(phase[-1])
            y = y * np.exp(1j * phase)
        if self._n0 > 0:
            y = y + complex_awgn(n, self._n0, self._awgn_rng)
        self._n_out += n
        return y.astype(np.complex64)

    # ---------------------------------------------------------------- public
    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Pass the next chunk of the stream through the channel; complex [n] -> complex64 [m]."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples must be 1-D, got shape {x.shape}")
        x = x.astype(np.complex128)
        return self._post(self._resample(self._fir(self._delay(x))))

    def flush(self) -> np.ndarray:
        """End of stream: the outputs the SRO resampler still holds (empty without SRO); complex64."""
        return self._post(self._resample(np.zeros(0, np.complex128), final=True))


def simulate(samples: np.ndarray, config: ChannelConfig | dict | None = None) -> np.ndarray:
    """Whole buffer through a fresh ``ChannelSimulator(config)`` (``apply`` + ``flush``); complex64."""
    sim = ChannelSimulator(config)
    return np.concatenate([sim.apply(samples), sim.flush()])
