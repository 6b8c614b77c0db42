"""OFDM receiver, pure numpy reference: detection, sync, channel/noise estimation, equalisation.

Example::

    spec = FrameSpec()
    frames, stats = receive(iq, spec)                # whole buffer
    rx = StreamingReceiver(spec)                     # or chunk by chunk (identical result)
    frames = rx.process(chunk) + ... + rx.flush()

Per frame (``FrameDemodulator.demodulate``):

1. fractional CFO from the Schmidl & Cox plateau (``sync.fractional_cfo``), unless given;
2. even integer CFO from the training spectrum (``sync.integer_cfo``); a weak differential
   correlation rejects the candidate (``stats.sync_fail``);
3. fine timing on the training symbols (``sync.fine_timing``); every FFT window then starts
   ``sync.cp_backoff`` samples inside the CP;
4. residual CFO from the phase between training repetitions; the whole frame is de-rotated once
   by the total CFO;
5. channel from the averaged training symbols, denoised in the delay domain
   (``chanest.DelayDomainEstimator``); N0 from the spread between the repetitions;
6. header: pilot phase tracking, zero forcing, LLRs, de-interleaving, Viterbi, CRC; version,
   ``spec_id``, payload kind and length are checked;
7. the decoded header is re-modulated and used as extra training: the channel is re-estimated
   from training + header and N0 from all their residuals;
8. pilot phase tracking over header + payload (``equalize.track_phase``, no decision feedback)
   and zero forcing; noise variance per symbol ``(N0 + channel error) / |H_k|^2``.

SNR convention: Es/N0 per payload symbol (``CONTRIBUTING.md``): ``snr_db`` is
``mean_k |H_k|^2 / N0`` over the data carriers.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import header as hdr
from .chanest import DelayDomainEstimator, noise_from_repeats
from .equalize import phase_grid, track_phase
from .frame import HEADER_BITS, FrameSpec
from .header import HeaderFields
from .modulation import demodulate_llr
from .sync import (cp_backoff, find_regions, fine_timing, fractional_cfo, integer_cfo, metric, mix,
                   derotate, mix_windows, plateau_start, sc_metric)
from .tx import FrameTransmitter

__all__ = ["RxFrame", "RxStats", "FrameDemodulator", "StreamingReceiver", "receive", "genie_equalize"]


@dataclass
class RxFrame:
    """One received frame.

    ``payload`` complex64 [n_payload] equalised payload symbols (QAM symbols for a digital
    payload); ``noise_var`` float32 [n_payload] their noise variance; ``noise_var_carrier``
    float32 [n_data] per data carrier; ``snr_db`` estimated Es/N0; ``start`` absolute index of
    the frame's first sample (CP of the SC preamble) in the stream fed to the receiver; ``cfo``
    total CFO removed (subcarrier spacings; only what was left when the caller passed an
    already-corrected stream); ``header_symbols`` complex64 [n_header_symbols * n_data];
    ``llr`` float32 [n_payload * bps] (positive = bit 0) and ``bits`` uint8 for digital payloads.
    """

    header: HeaderFields
    payload: np.ndarray
    noise_var: np.ndarray
    noise_var_carrier: np.ndarray
    snr_db: float
    start: int
    cfo: float
    header_symbols: np.ndarray
    llr: np.ndarray | None
    bits: np.ndarray | None
    kind: str
    modulation: str | None
    n_taps: int = 0

    def meta(self) -> dict:
        """JSON-safe dict: scalar receiver fields plus every header field."""
        d = {"start": int(self.start), "cfo": float(self.cfo), "snr_db": float(self.snr_db),
             "kind": self.kind, "modulation": self.modulation, "n_taps": int(self.n_taps)}
        d.update(self.header.as_dict())
        return d


@dataclass
class RxStats:
    """Receiver counters (ints).

    ``samples`` fed; ``detections`` Schmidl & Cox candidates examined; ``sync_fail`` candidates
    whose training correlation was too weak (noise, interference); ``frames_ok`` delivered;
    ``header_crc_fail``; ``spec_mismatch`` (header of another ``FrameSpec``); ``bad_length``
    (payload above the maximum, unknown payload kind); ``truncated`` (frame cut by the end of the
    buffer/stream); ``nonfinite_samples`` NaN/Inf samples replaced by 0; ``dropped_overflow``
    candidates dropped because the receive buffer hit its bound.
    """

    samples: int = 0
    detections: int = 0
    sync_fail: int = 0
    frames_ok: int = 0
    header_crc_fail: int = 0
    spec_mismatch: int = 0
    bad_length: int = 0
    truncated: int = 0
    nonfinite_samples: int = 0
    dropped_overflow: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _clean(x: np.ndarray) -> tuple[np.ndarray, int]:
    """complex128 copy with NaN/Inf samples set to 0, and how many there were."""
    x = np.array(x, dtype=np.complex128, copy=True)
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad:
        x[bad] = 0
    return x, n_bad


def _take(samples: np.ndarray, a: int, b: int) -> tuple[np.ndarray, int]:
    """Cleaned complex128 copy of ``samples[a:b]``, zero-padded where the range leaves the buffer."""
    out = np.zeros(b - a, dtype=np.complex128)
    lo, hi = max(a, 0), min(b, samples.size)
    n_bad = 0
    if hi > lo:
        out[lo - a:hi - a], n_bad = _clean(samples[lo:hi])
    return out, n_bad


@dataclass
class _Front:
    """Everything known after the header: local start, CFO, spectra and estimates."""

    header: HeaderFields
    kind: str
    modulation: str | None
    start: int
    cfo: float
    y: np.ndarray          # [n_training + n_header_symbols, fft_len] spectra
    phi: np.ndarray
    beta: np.ndarray
    n0: float


class FrameDemodulator:
    """Demodulates one frame of a ``FrameSpec`` around a coarse start (see the module docstring).

    ``window``: symbols of the moving average on the tracked common phase; None (default) picks
    it per frame from the pilot noise and the measured phase noise (``equalize.auto_window``).
    """

    def __init__(self, spec: FrameSpec, window: int | None = None):
        self.spec = spec
        self.window = None if window is None else int(window)
        n, cp, sl = spec.fft_len, spec.cp_len, spec.symbol_len
        self.backoff = cp_backoff(spec)
        self.search = cp + cp // 2 + 4  # fine-timing search half width around the coarse start
        self.pre = cp + self.search + 2  # samples needed before the coarse start
        self.n_hdr = spec.n_header_symbols
        self.hdr_span = (spec.n_preamble_symbols + self.n_hdr) * sl + self.search + 1
        self.sync_span = spec.n_preamble_symbols * sl + self.search + 1
        used = np.asarray(spec.used_carriers)
        self.used_k, self.used_bins = used, spec.bin(used)
        self.data_k, self.data_bins = np.asarray(spec.data_carriers), spec.bin(spec.data_carriers)
        self.pilot_k, self.pilot_bins = np.asarray(spec.pilot_carriers), spec.bin(spec.pilot_carriers)
        self.pos_data = np.searchsorted(used, self.data_k)
        self.train = spec.training_freq()[self.used_bins].real  # [n_used] of +-1
        self.pilot_w = np.abs(np.asarray(spec.pilot_values)) ** 2
        self.est = DelayDomainEstimator(spec)
        self.tx = FrameTransmitter(spec)
        # pilot values of post-preamble symbols 0.. for the longest frame (+ a period of slack)
        n_long = self.n_hdr + spec.n_payload_ofdm_symbols(spec.max_payload_symbols) + 127
        self._pilot_table = spec.pilot_matrix(n_long)  # the polarity sequence has period 127
        pairs = int(np.sum(np.diff(used) == 1)) * spec.n_training
        self.q_min = float(min(0.5, 2.5 / math.sqrt(max(pairs, 1))))
        # fine-timing peak over energy: ~ln(width)/(N n_training) for noise, SNR/(1+SNR) clean
        self.qt_min = float(min(0.08, 10.0 / (spec.fft_len * spec.n_training)))
        # FFT windows of the training symbols for the integer CFO, relative to the coarse start
        self._train_starts = cp // 2 + sl * (1 + np.arange(spec.n_training))

    # ------------------------------------------------------------------ sizes
    def body_len(self, n_payload: int) -> int:
        """Samples from the frame start to the end of its last OFDM symbol (guard excluded)."""
        s = self.spec
        return (s.n_preamble_symbols + self.n_hdr + s.n_payload_ofdm_symbols(n_payload)) * s.symbol_len

    def span(self, n_payload: int | None = None) -> int:
        """Samples needed after a coarse start: through the header, or the whole frame."""
        extra = 0 if n_payload is None else self.spec.n_payload_ofdm_symbols(n_payload) * self.spec.symbol_len
        return self.hdr_span + extra

    # ------------------------------------------------------------------ steps
    def _fft(self, x: np.ndarray, start: int, first: int, n_sym: int) -> np.ndarray:
        """Spectra of OFDM symbols ``first..first+n_sym-1`` of a frame at ``start``; [n_sym, fft_len]."""
        return self._spectra(x, start, first, n_sym, 0.0)

    def _spectra(self, x: np.ndarray, start: int, first: int, n_sym: int, cfo: float) -> np.ndarray:
        """``_fft`` of ``mix(x, cfo, fft_len)``, mixing only the samples in the FFT windows; complex128 [n_sym, N]."""
        s = self.spec
        starts = start + s.cp_len - self.backoff + s.symbol_len * np.arange(first, first + n_sym)
        return np.fft.fft(mix_windows(x, starts, s.fft_len, cfo, s.fft_len), axis=1, norm="ortho")

    def _sync(self, x: np.ndarray, c: int, cfo_frac: float | None) -> tuple[int, float] | None:
        """Local start and total CFO, or None when the training does not correlate."""
        s = self.spec
        n, cp, sl = s.fft_len, s.cp_len, s.symbol_len
        if cfo_frac is None:
            eps_f, _ = fractional_cfo(x, c, s)  # the caller (or the detector) vouches for the plateau
        else:
            eps_f = float(cfo_frac)
        ytr = np.fft.fft(mix_windows(x, c + self._train_starts, n, eps_f, n), axis=1, norm="ortho")
        m_int, q = integer_cfo(ytr, s)
        if q < self.q_min:
            return None
        eps = eps_f + m_int
        start, q_t = fine_timing(x, c, s, self.search, cfo=eps)
        if q_t < self.qt_min:  # no training-symbol path: noise or another frame layout
            return None
        if s.n_training >= 2:  # residual CFO from the phase advance between repetitions
            u = self._spectra(x, start, 1, s.n_training, eps)[:, self.used_bins]
            eps += float(np.angle(np.sum(u[1:] * np.conj(u[:-1])))) * n / (2 * np.pi * sl)
        return start, eps

    def _pilots(self, n_sym: int, first: int = 0) -> np.ndarray:
        """``spec.pilot_matrix(n_sym, first)`` from a cached table (read-only view); complex128 [n_sym, n_pilots]."""
        if first + n_sym <= self._pilot_table.shape[0]:
            return self._pilot_table[first:first + n_sym]
        return self._pilot_table[(first + np.arange(n_sym)) % 127]

    def _track(self, y: np.ndarray, h: np.ndarray, n0: float, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Phase tracking over post-preamble symbols ``y`` [n_sym, fft_len] against channel ``h`` [fft_len]."""
        hp = h[self.pilot_bins]
        pm = self._pilots(y.shape[0], first)
        hp = np.where(np.abs(hp) > 1e-150, hp, 1e-150)
        z = y[:, self.pilot_bins] / (hp[None, :] * pm)
        t_ref = -(self.spec.n_training + 1) / 2 - first  # centre of the training symbols
        return track_phase(z, np.abs(hp) ** 2 * self.pilot_w, self.pilot_k, self.window, n0, t_ref)

    def front(self, samples: np.ndarray, c: int, cfo_frac: float | None, stats: RxStats,
              max_payload: int) -> _Front | None:
        """Sync and header decoding around coarse start ``c``; counts rejections in ``stats``.

        First half of ``demodulate`` for callers that see the samples arrive (``StreamingReceiver``,
        GNU Radio's ``FrameDemodSink``): needs ``samples[c - pre : c + span()]``; returns the decoded
        header and estimates (``None`` if rejected), to hand to ``finish`` once ``span(n_payload)``
        samples after ``c`` are there.
        """
        s = self.spec
        if c + self.sync_span > samples.size:  # cannot even check the training
            stats.truncated += 1
            return None
        x, n_bad = _take(samples, c - self.pre, c + self.hdr_span)
        stats.nonfinite_samples += n_bad
        sync = self._sync(x, self.pre, cfo_frac)
        if sync is None:
            stats.sync_fail += 1
            return None
        start, eps = sync
        if c - self.pre + start + (s.n_preamble_symbols + self.n_hdr) * s.symbol_len > samples.size:
            stats.truncated += 1  # a real frame whose header is cut off
            return None
        y = self._spectra(x, start, 1, s.n_training + self.n_hdr, eps)  # [n_tr + n_hdr, N]
        ytr, yh = y[:s.n_training, self.used_bins], y[s.n_training:]
        h_ls = ytr.mean(axis=0) * self.train
        ones = np.ones(self.used_k.size)
        n0 = noise_from_repeats(ytr) if s.n_training >= 2 else self.est.residual_noise(h_ls, ones)
        n0 = max(n0, 1e-15 * float(np.mean(np.abs(h_ls) ** 2)) + 1e-300)
        ce = self.est.fit(h_ls, ones * s.n_training, n0)
        if ce.n_taps == 0:  # no path above the noise: not a frame
            stats.sync_fail += 1
            return None
        h1 = np.zeros(s.fft_len, dtype=np.complex128)
        h1[self.used_bins] = ce.h
        phi, beta = self._track(yh, h1, n0)
        hd = h1[self.data_bins]
        eq = yh[:, self.data_bins] / (hd[None, :] * phase_grid(phi, beta, self.data_k))
        nv = (n0 + ce.err_var[self.pos_data]) / np.maximum(np.abs(hd) ** 2, 1e-300)
        llr = demodulate_llr(eq.ravel(), s.header_modulation, np.tile(nv, self.n_hdr))
        bits = hdr.viterbi_decode(hdr.deinterleave(llr[:s.header_coded_bits]), HEADER_BITS)
        h = hdr.unpack(bits)
        if h is None:
            stats.header_crc_fail += 1
            return None
        if h.spec_id != s.spec_id:
            stats.spec_mismatch += 1
            return None
        try:
            kind, modulation = hdr.payload_kind_name(h.payload_kind)
        except hdr.HeaderError:
            stats.bad_length += 1
            return None
        if h.n_payload > max_payload:
            stats.bad_length += 1
            return None
        return _Front(h, kind, modulation, start, eps, y, phi, beta, n0)

    # ------------------------------------------------------------------ public
    def demodulate(self, samples: np.ndarray, coarse_start: int, cfo_frac: float | None = None,
                   stats: RxStats | None = None, *, max_payload: int | None = None) -> RxFrame | None:
        """Demodulate the frame near ``coarse_start`` in ``samples``; None if rejected (reason in ``stats``).

        ``samples`` complex [n] holding the whole frame; ``coarse_start`` the frame start to within
        about +-cp_len samples (e.g. the trigger of GNU Radio's ``ofdm_sync_sc_cfb``);
        ``cfo_frac``: fractional CFO in subcarrier spacings if already known; ``None`` estimates it
        from the SC preamble. When the caller already removed the fractional CFO (GNU Radio's
        ``frequency_modulator_fc`` after ``ofdm_sync_sc_cfb``), pass ``cfo_frac=0.0``: only the
        integer and residual parts are then estimated (and reported in ``RxFrame.cfo``).
        ``max_payload`` (default ``spec.max_payload_symbols``) bounds ``n_payload``.
        """
        s = self.spec
        stats = stats if stats is not None else RxStats()
        samples = np.asarray(samples).ravel()
        c = int(coarse_start)
        limit = s.max_payload_symbols if max_payload is None else min(max_payload, s.max_payload_symbols)
        f = self.front(samples, c, cfo_frac, stats, limit)
        if f is None:
            return None
        return self.finish(samples, c, f, stats)

    def _payload_spectra(self, samples: np.ndarray, a: int, f: _Front, n_sym: int, end: int,
                         stats: RxStats) -> np.ndarray:
        """Spectra of the ``n_sym`` payload symbols, CFO removed; complex128 [n_sym, N].

        ``samples[a:]`` is the window ``front`` saw. The FFT windows are read in place (a strided
        view) and de-rotated by ``sync.derotate`` (a ramp times a per-symbol phase).
        Non-finite samples after the header window are counted (as before) and every non-finite
        sample in the windows reads as 0.
        """
        s = self.spec
        n, sl = s.fft_len, s.symbol_len
        lo = a + self.pre + self.hdr_span  # first sample after the header window of ``front``
        if end > lo:
            n_bad = int(np.count_nonzero(~np.isfinite(samples[max(lo, 0):end])))
            stats.nonfinite_samples += n_bad
        w0 = a + f.start + s.cp_len - self.backoff + (s.n_preamble_symbols + self.n_hdr) * sl
        if n_sym == 0:
            return np.zeros((0, n), dtype=np.complex128)
        if w0 >= 0 and np.isfinite(samples[w0:end]).all():
            src, at = samples, w0
        else:  # rare: cleaned, zero-padded copy
            src, _ = _take(samples, w0, w0 + n_sym * sl)
            at = 0
        win = as_strided(src[at:], shape=(n_sym, n), strides=(sl * src.strides[0], src.strides[0]), writeable=False)
        pos = (w0 - a) + sl * np.arange(n_sym)  # window starts as indices of the window ``front`` saw
        return np.fft.fft(derotate(win, pos, f.cfo, n), axis=1, norm="ortho")

    def finish(self, samples: np.ndarray, c: int, f: _Front, stats: RxStats) -> RxFrame | None:
        """Payload part of ``demodulate`` once ``front`` accepted the header.

        ``samples`` hold the same samples around ``c`` as those given to ``front`` (possibly a
        longer buffer, same indexing) through the end of the frame.
        """
        s = self.spec
        a = c - self.pre
        n_pay, n_sym = f.header.n_payload, s.n_payload_ofdm_symbols(f.header.n_payload)
        end = a + f.start + self.body_len(n_pay)
        if end > samples.size:
            stats.truncated += 1
            return None
        yp = self._payload_spectra(samples, a, f, n_sym, end, stats)  # [n_sym, N]
        # known header = extra training: re-estimate channel and N0 from training + header
        ytr, yh = f.y[:s.n_training, self.used_bins], f.y[s.n_training:]
        known = np.zeros((self.n_hdr, s.fft_len), dtype=np.complex128)
        known[:, self.data_bins] = self.tx.header_symbols(f.header).reshape(self.n_hdr, s.n_data)
        known[:, self.pilot_bins] = self._pilots(self.n_hdr, 0)
        xu = known[:, self.used_bins]
        yhu = yh[:, self.used_bins] / phase_grid(f.phi, f.beta, self.used_k)
        w = s.n_training + np.sum(np.abs(xu) ** 2, axis=0)  # [n_used]
        h_ls = (ytr.sum(axis=0) * self.train + np.sum(yhu * np.conj(xu), axis=0)) / w
        ce = self.est.fit(h_ls, w, f.n0)
        rss = np.sum(np.abs(ytr - ce.h * self.train) ** 2) + np.sum(np.abs(yhu - ce.h * xu) ** 2)
        dof = max(1, (s.n_training + self.n_hdr) * self.used_k.size - ce.n_taps)
        n0 = max(float(rss / dof), 1e-15 * float(np.mean(np.abs(ce.h) ** 2)) + 1e-300)
        err = ce.err_var * (n0 / f.n0)
        h2 = np.zeros(s.fft_len, dtype=np.complex128)
        h2[self.used_bins] = ce.h
        # track and equalise header + payload together
        y_all = np.concatenate([yh, yp])
        phi, beta = self._track(y_all, h2, n0)
        hd = h2[self.data_bins]
        eq = y_all[:, self.data_bins] / (hd[None, :] * phase_grid(phi, beta, self.data_k))
        p_h = np.abs(hd) ** 2
        nvc = ((n0 + err[self.pos_data]) / np.maximum(p_h, 1e-300)).astype(np.float32)
        payload = eq[self.n_hdr:].ravel()[:n_pay].astype(np.complex64)
        noise_var = np.tile(nvc, n_sym)[:n_pay]
        llr = bits = None
        if f.kind == "digital":
            llr = demodulate_llr(payload, f.modulation, noise_var).astype(np.float32)
            bits = (llr < 0).astype(np.uint8)
        snr_db = float(10 * np.log10(max(float(np.mean(p_h)), 1e-300) / n0))
        stats.frames_ok += 1
        return RxFrame(header=f.header, payload=payload, noise_var=noise_var, noise_var_carrier=nvc,
                       snr_db=snr_db, start=a + f.start, cfo=f.cfo,
                       header_symbols=eq[:self.n_hdr].ravel().astype(np.complex64), llr=llr, bits=bits,
                       kind=f.kind, modulation=f.modulation, n_taps=ce.n_taps)

    _front = front  # older private names of the two steps
    _finish = finish


@dataclass
class _Candidate:
    first: int        # absolute metric indices of the detected run
    last: int
    coarse: int | None = None
    front: _Front | None = None  # accepted header, waiting for the payload samples


class StreamingReceiver:
    """Stateful receiver: feed chunks of any size, get each frame exactly once.

    Every decision depends only on the samples around a frame, at absolute positions, so the
    frames returned are identical whatever the chunking (``receive`` is this class fed once).
    Memory is bounded by about two maximal frames. ``max_frame_payload`` lowers the payload limit
    below ``spec.max_payload_symbols`` (larger frames count as ``bad_length``).
    ``flush()`` ends the stream: a frame cut by the end counts as ``truncated``.

    Detection threshold (``spec.sc_threshold``): the Schmidl & Cox plateau is about
    ``(snr / (1 + snr))**2``, so 0.5 would detect only from about 4-5 dB Es/N0; the default 0.2 reaches
    about 0-2 dB. Noise crossings are rejected by the training checks (``sync_fail``) at well
    under a millisecond each: with 1e6 noise samples at N=64, 0.2 gives ~170 candidates and 0.15
    ~900, none delivered.
    """

    _BLOCK = 1 << 16  # metric computed in blocks of this many window starts

    def __init__(self, spec: FrameSpec, max_frame_payload: int | None = None):
        self.spec = spec
        self.demod = FrameDemodulator(spec)
        mp = spec.max_payload_symbols if max_frame_payload is None else int(max_frame_payload)
        if mp < 0:
            raise ValueError(f"max_frame_payload must be >= 0, got {max_frame_payload}")
        self.max_payload = min(mp, spec.max_payload_symbols)
        self.stats = RxStats()
        self._gap = spec.fft_len // 2
        self._max_run = 2 * spec.symbol_len  # a longer run is a tone/periodic interferer: cut it
        self._min_count = 2
        self._keep = self.demod.pre + 2 * spec.symbol_len
        self._cap = 2 * (self.demod.span(self.max_payload) + self._keep) + (self._BLOCK + spec.fft_len)
        self._reset(0)

    def _reset(self, base: int) -> None:
        self._buf = np.zeros(0, dtype=np.complex64)
        self._base = base
        self._scan = base
        self._open: list[int] | None = None  # [first, last, count]
        self._cands: deque[_Candidate] = deque()
        self._next_allowed = base - (1 << 62)

    # ------------------------------------------------------------------ detection
    def _close(self) -> None:
        f, l, cnt = self._open
        self._open = None
        if cnt >= self._min_count:
            self._cands.append(_Candidate(f, l))

    def _detect(self, final: bool) -> None:
        n, thr = self.spec.fft_len, self.spec.sc_threshold
        d_end = self._base + self._buf.size - n + 1
        while self._scan < d_end:
            d_a, d_b = self._scan, min(d_end, self._scan + self._BLOCK)
            seg = self._buf[d_a - self._base:d_b - 1 + n - self._base]
            p, r = sc_metric(seg, n)
            for f, l, cnt in find_regions(metric(p, r) > thr, self._gap):
                f, l = f + d_a, l + d_a
                if self._open is not None and f - self._open[1] <= self._gap:
                    self._open[1], self._open[2] = l, self._open[2] + cnt
                else:
                    if self._open is not None:
                        self._close()
                    self._open = [f, l, cnt]
                if self._open[1] - self._open[0] > self._max_run:
                    self._close()
            self._scan = d_b
        if self._open is not None and (final or self._scan - 1 - self._open[1] > self._gap):
            self._close()

    # ------------------------------------------------------------------ decoding
    def _local(self, a: int, b: int) -> np.ndarray:
        """Copy of absolute samples [a, b) (zero outside what the buffer holds)."""
        out = np.zeros(b - a, dtype=np.complex64)
        lo, hi = max(a, self._base), min(b, self._base + self._buf.size)
        if hi > lo:
            out[lo - a:hi - a] = self._buf[lo - self._base:hi - self._base]
        return out

    def _decode(self, final: bool) -> list[RxFrame]:
        out: list[RxFrame] = []
        dm, total = self.demod, self._base + self._buf.size
        while self._cands:
            c = self._cands[0]
            if c.coarse is None:
                if c.last < self._next_allowed:  # the coarse start (<= last) is inside a delivered frame
                    self._cands.popleft()
                    continue
                x = self._local(c.first, c.last + self.spec.fft_len)
                c.coarse = c.first + plateau_start(x, 0, c.last - c.first, self.spec)
                if c.coarse < self._next_allowed:  # inside a frame already delivered
                    self._cands.popleft()
                    continue
                self.stats.detections += 1
            a = c.coarse - dm.pre
            if c.front is None:
                if total < c.coarse + dm.span() and not final:
                    break
                x = self._local(a, min(c.coarse + dm.span(), total))
                c.front = dm.front(x, dm.pre, None, self.stats, self.max_payload)
                if c.front is None:
                    self._cands.popleft()
                    continue
            end = c.coarse + dm.span(c.front.header.n_payload)  # conservative: the frame ends before this
            if total < end and not final:
                break
            self._cands.popleft()
            # at the end of the stream the frame may still be whole: the demodulator checks its
            # real end (samples past it are never used, so the result does not depend on this)
            scratch = RxStats()
            frame = dm.finish(self._local(a, min(end, total)), dm.pre, c.front, scratch)
            if frame is None:
                self.stats.truncated += scratch.truncated
                continue
            frame.start += a
            self.stats.frames_ok += 1
            self._next_allowed = frame.start + dm.body_len(frame.header.n_payload) - self.spec.cp_len
            out.append(frame)
        return out

    def _trim(self) -> None:
        keep = self._scan - self.spec.fft_len
        if self._open is not None:
            keep = min(keep, self._open[0])
        if self._cands:
            keep = min(keep, self._cands[0].first, self._cands[0].coarse or self._cands[0].first)
        keep -= self._keep
        if self._buf.size > self._cap:  # bound memory: give up the oldest pending candidates
            while self._cands and self._base + self._buf.size - self._cands[0].first > self._cap // 2:
                self._cands.popleft()
                self.stats.dropped_overflow += 1
            keep = max(keep, self._base + self._buf.size - self._cap // 2)
        drop = keep - self._base
        if drop > 0 and (drop >= self._BLOCK or 2 * drop >= self._buf.size):
            self._buf = self._buf[drop:].copy()
            self._base += drop

    # ------------------------------------------------------------------ public
    def process(self, samples: np.ndarray) -> list[RxFrame]:
        """Feed complex samples (any length, NaN/Inf counted and zeroed); returns completed frames."""
        x = np.asarray(samples).ravel()
        if x.size == 0:
            return []
        bad = ~np.isfinite(x)
        if bad.any():
            x = x.copy()
            x[bad] = 0
            self.stats.nonfinite_samples += int(bad.sum())
        self.stats.samples += x.size
        self._buf = np.concatenate([self._buf, x.astype(np.complex64)])
        self._detect(final=False)
        frames = self._decode(final=False)
        self._trim()
        return frames

    def flush(self) -> list[RxFrame]:
        """End of stream: decode what can be, count cut frames as truncated, reset the buffer."""
        self._detect(final=True)
        frames = self._decode(final=True)
        self._reset(self._base + self._buf.size)
        return frames


def receive(samples: np.ndarray, spec: FrameSpec) -> tuple[list[RxFrame], RxStats]:
    """Receive every frame in a whole buffer; same result as ``StreamingReceiver`` fed in chunks."""
    rx = StreamingReceiver(spec)
    frames = rx.process(samples)
    frames += rx.flush()
    return frames, rx.stats


def genie_equalize(samples: np.ndarray, spec: FrameSpec, start: int, cfo: float, h_true_freq: np.ndarray,
                   n_payload: int) -> np.ndarray:
    """Reference equaliser knowing timing, CFO and channel exactly (for implementation-loss benchmarks).

    ``samples`` complex [n]; ``start`` the true index of the frame's first sample; ``cfo`` in
    subcarrier spacings, applied by the channel as ``samples[n] *= exp(2j*pi*cfo*n/fft_len)`` with
    ``n`` the index in ``samples``; ``h_true_freq`` the channel response ``H[k] = sum_l h_l
    exp(-2j*pi*k*l/fft_len)`` (taps ``h_l`` at delay ``l`` samples after ``start``), complex
    [fft_len] in natural bin order or [n_data] on the data carriers. Uses the receiver's FFT
    window (``cp_backoff`` samples inside the CP). Returns complex64 [n_payload] payload symbols.
    """
    dm = FrameDemodulator(spec)
    n_sym = spec.n_payload_ofdm_symbols(n_payload)
    h = np.asarray(h_true_freq, dtype=np.complex128).ravel()
    if h.size == spec.fft_len:
        h = h[dm.data_bins]
    elif h.size != spec.n_data:
        raise ValueError(f"h_true_freq: need {spec.fft_len} or {spec.n_data} values, got {h.size}")
    h = h * np.exp(-2j * np.pi * dm.data_k * dm.backoff / spec.fft_len)  # window starts early
    x = np.asarray(samples).ravel()
    end = start + dm.body_len(n_payload)
    if start < 0 or end > x.size:
        raise ValueError(f"frame [{start}, {end}) does not fit in {x.size} samples")
    xs, _ = _clean(x[start:end])
    xs = mix(xs, cfo, spec.fft_len, start)
    y = dm._fft(xs, 0, spec.n_preamble_symbols + dm.n_hdr, n_sym)[:, dm.data_bins]
    return (y / h[None, :]).ravel()[:n_payload].astype(np.complex64)
