"""Synchronisation: Schmidl & Cox detection, fractional/integer CFO, fine timing. Pure numpy.

All CFO values are in subcarrier spacings (``cfo * fs / fft_len`` Hz). A CFO ``eps`` multiplies
sample ``n`` by ``exp(2j*pi*eps*n/fft_len)``; ``mix`` undoes it.

Pipeline used by ``rx.FrameDemodulator``:

1. ``sc_metric`` / ``find_regions``: the Schmidl & Cox timing metric ``M(d) = |P(d)|^2 / R(d)^2``
   (half-symbol correlation ``P``, energy ``R`` of the whole window averaged over both halves, so
   ``0 <= M <= 1``), from cumulative sums; runs of ``M > threshold`` are candidate frames.
2. ``fractional_cfo``: ``angle(P) / pi`` summed over the plateau next to a coarse start.
3. ``integer_cfo``: even shift of the training symbol spectrum found by a *differential*
   correlation (product of adjacent carriers), which does not care about the channel phase or a
   timing error of a few samples.
4. ``fine_timing``: cross-correlation with the known training symbol; the first path above
   -10 dB of the strongest one within one CP before it is taken as the frame start.
"""

from __future__ import annotations

import functools

import numpy as np

from .frame import FrameSpec

__all__ = ["sc_metric", "find_regions", "fractional_cfo", "integer_cfo", "fine_timing", "mix", "mix_windows", "derotate",
           "cp_backoff", "max_integer_cfo"]


def cp_backoff(spec: FrameSpec) -> int:
    """Samples the FFT window starts inside the CP (the channel estimate absorbs the phase slope)."""
    return int(min(4, max(1, spec.cp_len // 8)))


def max_integer_cfo(spec: FrameSpec) -> int:
    """Largest even integer CFO searched: the guard band free on both sides (at least 2)."""
    used = np.asarray(spec.used_carriers)
    half = spec.fft_len // 2
    guard = int(min(half - 1 - used.max(), half + used.min()))
    return max(2, guard - guard % 2)


def mix(x: np.ndarray, cfo: float, fft_len: int, n0: int = 0) -> np.ndarray:
    """Remove a CFO: ``x[n] * exp(-2j*pi*cfo*(n0 + n)/fft_len)``; complex128 [len(x)]."""
    n = np.arange(x.size, dtype=np.float64) + n0
    return np.asarray(x, dtype=np.complex128) * np.exp(-2j * np.pi * cfo * n / fft_len)


def derotate(win: np.ndarray, starts: np.ndarray, cfo: float, fft_len: int) -> np.ndarray:
    """``mix`` applied to windows of a signal: ``win[m, i] * exp(-2j*pi*cfo*(starts[m] + i)/fft_len)``.

    ``win`` complex [n_win, length] (``win[m, i]`` is sample ``starts[m] + i``), ``starts`` [n_win].
    The exponential is factored into a per-window phase and a ramp (``n_win + length``
    exponentials instead of one per sample; equal to ``mix`` within ~1e-13). complex128 [n_win, length].
    """
    out = np.array(win, dtype=np.complex128)
    if cfo != 0.0:
        out *= np.exp(-2j * np.pi * cfo * np.arange(out.shape[1], dtype=np.float64) / fft_len)[None, :]
        out *= np.exp(-2j * np.pi * cfo * np.asarray(starts, dtype=np.float64) / fft_len)[:, None]
    return out


def mix_windows(x: np.ndarray, starts: np.ndarray, length: int, cfo: float, fft_len: int) -> np.ndarray:
    """``mix(x, cfo, fft_len)`` read at windows ``x[starts[m] : starts[m] + length]``; complex128 [n_win, length]."""
    starts = np.asarray(starts)
    return derotate(x[starts[:, None] + np.arange(length)[None, :]], starts, cfo, fft_len)


def sc_metric(x: np.ndarray, fft_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Schmidl & Cox correlation ``P`` and energy ``R`` for every window start.

    Input: complex [n] with ``n >= fft_len``. Output: ``P`` complex128 [n - fft_len + 1],
    ``R`` float64 [same] with ``P(d) = sum_{m<N/2} conj(x[d+m]) x[d+m+N/2]`` and
    ``R(d) = 0.5 * sum_{m<N} |x[d+m]|^2``; the metric is ``|P|^2 / R^2`` (<= 1).
    """
    x = np.asarray(x, dtype=np.complex128)
    half = fft_len // 2
    z = np.conj(x[:-half]) * x[half:]  # [n - half]
    cz = np.concatenate([[0], np.cumsum(z)])
    p = cz[half:] - cz[:-half]  # [n - 2 half + 1]
    ce = np.concatenate([[0.0], np.cumsum(x.real ** 2 + x.imag ** 2)])
    r = 0.5 * (ce[fft_len:] - ce[:-fft_len])
    return p, r


def metric(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``|P|^2 / R^2``, zero where the window holds no energy; float64."""
    den = r * r
    ok = den > 1e-300
    m = np.zeros(p.shape, dtype=np.float64)
    m[ok] = (p.real[ok] ** 2 + p.imag[ok] ** 2) / den[ok]
    return m


def find_regions(above: np.ndarray, gap: int) -> list[tuple[int, int, int]]:
    """Group indices where ``above`` is True into runs separated by more than ``gap`` samples.

    Returns ``[(first, last, count), ...]`` (indices into ``above``, ``count`` True samples).
    """
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[0], cut + 1])
    stops = np.concatenate([cut, [idx.size - 1]])
    return [(int(idx[a]), int(idx[b]), int(b - a + 1)) for a, b in zip(starts, stops)]


def plateau_start(x: np.ndarray, first: int, last: int, spec: FrameSpec) -> int:
    """Coarse frame start from a detected run ``[first, last]`` of the metric over ``x``.

    The centre of the samples within 90 % of the run's maximum is the middle of the CP-long
    plateau, so the start is that centre minus ``cp_len / 2`` (error well within +-cp_len).
    ``x`` must cover ``[first, last + fft_len)``.
    """
    p, r = sc_metric(x[first:last + spec.fft_len], spec.fft_len)
    m = metric(p, r)
    hi = np.flatnonzero(m >= 0.9 * m.max())
    centre = first + 0.5 * (hi[0] + hi[-1])
    return int(np.floor(centre - spec.cp_len / 2 + 0.5))


def fractional_cfo(x: np.ndarray, coarse: int, spec: FrameSpec) -> tuple[float, float]:
    """Fractional CFO (subcarrier spacings, in (-1, 1]) and plateau metric near ``coarse``.

    Sums ``P(d)`` over ``d`` in ``[coarse - cp, coarse + 2 cp]`` where ``M(d) >= 0.8 max M``.
    ``x`` must cover ``[coarse - cp_len, coarse + 2 cp_len + fft_len]``.
    """
    cp, n = spec.cp_len, spec.fft_len
    a = max(coarse - cp, 0)
    p, r = sc_metric(x[a:coarse + 2 * cp + n + 1], n)
    m = metric(p, r)
    if m.size == 0 or m.max() <= 0:
        return 0.0, 0.0
    sel = m >= 0.8 * m.max()
    return float(np.angle(p[sel].sum()) / np.pi), float(m.max())


@functools.lru_cache(maxsize=16)
def _int_cfo_tables(spec: FrameSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tables of ``integer_cfo``. Cached: do not modify.

    ``idx`` int64 [n_shift, n_pairs] bins of the lower carrier of each adjacent used-carrier pair
    at each shift and ``ref`` complex128 [n_pairs] their reference products ``conj(T[k+1] conj(T[k]))``
    (direct sums); ``ref_f``, ``ind_f`` complex128 [N] the conjugated DFTs (of the conjugates) of
    the reference products and of the pair indicator placed at the bin of the lower carrier (the
    same sums as circular correlations by FFT); ``shifts`` int64 [n_shift], even.
    """
    n = spec.fft_len
    used = np.asarray(spec.used_carriers)
    pair = np.flatnonzero(np.diff(used) == 1)  # adjacent used carriers (k, k+1)
    ka, kb = used[pair], used[pair + 1]
    t = spec.training_freq()
    ref = np.conj(t[kb % n] * np.conj(t[ka % n]))  # [n_pairs]
    ref_n = np.zeros(n, dtype=np.complex128)
    ref_n[ka % n] = ref
    ind = np.zeros(n, dtype=np.complex128)
    ind[ka % n] = 1.0
    lim = max_integer_cfo(spec)
    shifts = np.arange(-lim, lim + 1, 2)  # [n_shift]
    idx = (ka[None, :] + shifts[:, None]) % n  # [n_shift, n_pairs]
    return idx, ref, np.conj(np.fft.fft(np.conj(ref_n))), np.conj(np.fft.fft(ind)), shifts


def integer_cfo(y_train: np.ndarray, spec: FrameSpec) -> tuple[int, float]:
    """Even integer CFO from training spectra by differential correlation.

    Input: ``y_train`` complex [n_rep, fft_len], FFTs of the training symbols (fractional CFO
    removed, timing within a few samples). Output: (shift in subcarriers, normalised
    correlation quality in [0, 1]; about ``1/sqrt(pairs)`` for noise, near 1 for a clean frame).
    The product of adjacent bins ``Y[k+1] conj(Y[k])`` is formed once for every bin; each
    candidate shift then gathers it at the shifted pair positions, or, when shifts x pairs is
    large (wide guard bands at big N), all shifts come from one circular correlation by FFT.
    """
    idx, ref, ref_f, ind_f, shifts = _int_cfo_tables(spec)
    y = np.asarray(y_train)
    nxt = np.concatenate([y[:, 1:], y[:, :1]], axis=1)  # Y[k+1]
    d = np.sum(nxt * np.conj(y), axis=0)  # [N] summed over repetitions
    mag = np.sum(np.abs(nxt) * np.abs(y), axis=0)  # [N]
    if idx.size <= 8 * spec.fft_len:
        c = np.abs(d[idx] @ ref)  # [n_shift]
        norm = mag[idx].sum(axis=1)
    else:
        sel = shifts % spec.fft_len
        c = np.abs(np.fft.ifft(np.fft.fft(d) * ref_f)[sel]) * spec.fft_len
        norm = np.fft.ifft(np.fft.fft(mag) * ind_f)[sel].real * spec.fft_len
    best = int(np.argmax(c))
    q = float(c[best] / norm[best]) if norm[best] > 1e-12 * float(np.sum(mag)) else 0.0
    return int(shifts[best]), q


@functools.lru_cache(maxsize=16)
def training_time(spec: FrameSpec) -> np.ndarray:
    """Training symbol in time without CP; complex128 [fft_len] (unitary IDFT). Cached: do not modify."""
    return np.fft.ifft(spec.training_freq(), norm="ortho")


@functools.lru_cache(maxsize=16)
def _training_filter(spec: FrameSpec, nfft: int) -> np.ndarray:
    """Conjugated spectrum of the training symbol zero-padded to ``nfft``; complex128 [nfft]. Cached."""
    return np.conj(np.fft.fft(training_time(spec), nfft))


def fine_timing(x: np.ndarray, coarse: int, spec: FrameSpec, search: int, cfo: float = 0.0) -> tuple[int, float]:
    """Frame start refined by cross-correlating the training symbols; CFO already removed or ``cfo``.

    Searches starts ``coarse - search .. coarse + search``. The correlation magnitude is the
    channel's power delay profile; the start is the first sample within ``cp_len`` before the
    strongest path whose power exceeds 10 % of it, so an early weak path is kept inside the CP.
    ``x`` must cover ``[coarse - search, coarse + search + (1 + n_training) * symbol_len)``.
    ``cfo``: a CFO removed on the fly (``mix(x, cfo, fft_len)`` seen through the used samples only).
    Returns (start index into ``x``, quality: strongest path power over received energy, 1 when clean).
    All repetitions are correlated in one batched FFT.
    """
    n, cp, sl = spec.fft_len, spec.cp_len, spec.symbol_len
    t = training_time(spec)
    width = 2 * search + 1
    nfft = 1 << int(np.ceil(np.log2(width + n)))
    tf = _training_filter(spec, nfft)
    a = coarse - search + (1 + np.arange(spec.n_training)) * sl + cp
    segs = mix_windows(x, a, width + n - 1, cfo, n)  # [n_training, width + n - 1]
    corr = np.fft.ifft(np.fft.fft(segs, nfft, axis=1) * tf[None, :], axis=1)[:, :width]
    acc = np.zeros(width, dtype=np.complex128)
    for row in corr:
        acc += row
    energy = 0.0
    for e in np.sum(np.abs(segs[:, search:search + n]) ** 2, axis=1).tolist():
        energy += e
    pw = np.abs(acc) ** 2  # [width]
    peak = int(np.argmax(pw))
    lo = max(0, peak - cp)
    first = lo + int(np.flatnonzero(pw[lo:peak + 1] >= 0.1 * pw[peak])[0])
    q = float(pw[peak] / (spec.n_training * energy * np.sum(np.abs(t) ** 2))) if energy > 0 else 0.0
    return coarse - search + first, q
