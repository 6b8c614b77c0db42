"""Channel and noise estimation from known OFDM symbols, denoised in the delay domain. Pure numpy.

The least-squares estimate on each used carrier (``Y / X``) carries the full noise ``N0 / W_k``
(``W_k`` = known-symbol energy accumulated on carrier ``k``). A channel that fits in the cyclic
prefix is a short impulse response, so the estimate is projected onto ``n_taps`` delays
``d`` (a model ``H[k] = sum_d h_d exp(-2j pi k d / N)``, fitted over the used carriers only, which
are not contiguous: DC null and guard bands make the plain IDFT wrong). Taps are chosen greedily
(orthogonal least squares) and kept only while the energy a tap explains is clearly above the
noise (``gamma * N0``, ``gamma = ln(n_candidates) + 4``); the direct neighbours of the chosen taps
are kept as well (a path between sampling instants leaks into them) and the kept taps are refitted
by least squares. An AWGN channel keeps about three taps and the estimate costs almost nothing
(``3 / n_used`` of the per-carrier error), a multipath channel keeps what it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .frame import FrameSpec
from .sync import cp_backoff

__all__ = ["ChannelEstimate", "DelayDomainEstimator", "noise_from_repeats", "tap_delays"]


def tap_delays(spec: FrameSpec) -> np.ndarray:
    """Candidate tap delays (samples, relative to the FFT window start); int64 [n_candidates].

    The window starts ``cp_backoff`` samples inside the CP, so paths between the detected start
    and the end of the CP sit at delays ``b .. cp_len + b``; three samples of slack each side.
    """
    b = cp_backoff(spec)
    d = np.arange(b - 3, spec.cp_len + b + 3)
    return d[: max(4, spec.n_used - 8)]


def noise_from_repeats(y: np.ndarray) -> float:
    """Noise variance from identical repeated symbols: ``y`` complex [n_rep >= 2, n_carriers]."""
    n_rep, n_c = y.shape
    dev = y - y.mean(axis=0, keepdims=True)
    return float(np.sum(dev.real ** 2 + dev.imag ** 2) / (n_c * (n_rep - 1)))


@dataclass
class ChannelEstimate:
    """A denoised channel on the used carriers.

    ``h`` complex128 [n_used] (order of ``spec.used_carriers``); ``err_var`` float64 [n_used],
    variance of the remaining estimation error; ``n_taps`` taps kept; ``residual`` noise-variance
    estimate from the fit residual (per unit weight).
    """

    h: np.ndarray
    err_var: np.ndarray
    n_taps: int
    residual: float


class DelayDomainEstimator:
    """Denoises per-carrier LS channel estimates of one ``FrameSpec`` (see module docstring)."""

    def __init__(self, spec: FrameSpec):
        self.spec = spec
        self.k = np.asarray(spec.used_carriers, dtype=np.float64)  # [n_used]
        self.delays = tap_delays(spec)
        self.a = np.exp(-2j * np.pi * np.outer(self.k, self.delays) / spec.fft_len)  # [n_used, n_cand]
        self.gamma = float(np.log(self.delays.size) + 4.0)
        self.bins = spec.bin(spec.used_carriers)  # [n_used] FFT bins of the used carriers
        self._delay_bins = self.delays % spec.fft_len
        # Gram matrix of the weighted columns: G[l, j] = sum_k w_k exp(-2j pi k (d_j - d_l) / N) = C[(d_j - d_l) % N]
        self._lag = (self.delays[None, :] - self.delays[:, None]) % spec.fft_len  # [n_cand, n_cand]

    def residual_noise(self, h_ls: np.ndarray, weight: np.ndarray) -> float:
        """Noise variance (per unit weight) from the residual of a fit with all candidate taps."""
        sw = np.sqrt(weight)
        y, a = h_ls * sw, self.a * sw[:, None]
        coef, *_ = np.linalg.lstsq(a, y, rcond=1e-6)
        r = y - a @ coef
        dof = max(1, self.k.size - self.delays.size)
        return float(np.sum(np.abs(r) ** 2) / dof)

    def fit(self, h_ls: np.ndarray, weight: np.ndarray, n0: float) -> ChannelEstimate:
        """Project ``h_ls`` (complex [n_used], noise variance ``n0 / weight``) onto selected taps.

        ``weight`` float [n_used] > 0 (known-symbol energy per carrier), ``n0`` noise variance per
        received sample. Returns the denoised estimate and its error variance per carrier.

        The greedy selection runs on the Gram matrix of the weighted columns ``a_j sqrt(w)``
        instead of the [n_used, n_cand] matrix (which made it O(N^2) per tap): the Gram matrix is
        Toeplitz over the delays (one FFT of the weights), the correlations ``a_j^H W h_ls`` are one
        FFT, and choosing a tap updates, for every candidate, its projection on the new
        orthonormal direction, its remaining norm and its correlation with the residual (the same
        orthogonal least squares as projecting the columns explicitly). The refit on the kept taps
        solves their small normal equations (``_refit``).
        """
        n = self.spec.fft_len
        w = np.asarray(weight, dtype=np.float64)
        h_ls = np.asarray(h_ls, dtype=np.complex128)
        sw = np.sqrt(w)
        y = h_ls * sw  # whitened: noise variance n0 everywhere
        grid = np.zeros(n, dtype=np.complex128)
        grid[self.bins] = w
        toeplitz = np.fft.fft(grid)  # C[m] = sum_k w_k exp(-2j pi k m / N)
        grid[self.bins] = np.conj(w * h_ls)
        z0 = np.conj(np.fft.fft(grid)[self._delay_bins])  # a_j^H W h_ls
        z = z0.copy()  # correlation of each column with the residual
        nc = self.delays.size
        norms = np.full(nc, toeplitz[0].real)  # squared norm of each column once the chosen ones are projected out
        floor = 1e-9 * norms.max()
        thr = max(self.gamma * n0, 1e-13 * float(np.sum(y.real ** 2 + y.imag ** 2)))
        chosen = np.zeros(nc, dtype=bool)
        active = norms > floor  # not chosen and not (numerically) in the span of the chosen ones
        proj = np.empty((min(nc, 8), nc), dtype=np.complex128)  # row i: q_i^H a_j, i-th chosen direction q_i
        for i in range(nc):
            gain = np.zeros(nc)
            np.divide(z.real ** 2 + z.imag ** 2, norms, out=gain, where=active)  # active: norms > floor
            j = int(np.argmax(gain))
            if gain[j] <= thr:
                break
            s = math.sqrt(float(norms[j]))
            p = toeplitz[self._lag[j]]  # q^H a for the new direction q, times s
            if i:
                p = p - np.conj(proj[:i, j]) @ proj[:i]
            p = p / s
            if i == proj.shape[0]:  # grown on demand: most channels need a few taps
                proj = np.concatenate([proj, np.empty_like(proj)])[:nc]
            proj[i] = p
            z -= np.conj(p) * (z[j] / s)
            norms -= p.real ** 2 + p.imag ** 2  # may dip below 0 by rounding: such columns are inactive
            chosen[j] = True
            active &= norms > floor
            active[j] = False
        # a path between two sample instants leaks into the neighbouring taps (sinc tails below
        # the threshold): keep the direct neighbours of every chosen tap too and refit
        keep = chosen.copy()
        keep[1:] |= chosen[:-1]
        keep[:-1] |= chosen[1:]
        n_taps = int(keep.sum())
        h = np.zeros(self.k.size, dtype=np.complex128)
        if n_taps:
            h = self._refit(keep, toeplitz, z0, sw, y)
        r = y - h * sw
        err = n0 * (n_taps / self.k.size) / w
        dof = max(1, self.k.size - n_taps)
        return ChannelEstimate(h=h, err_var=err, n_taps=n_taps, residual=float(np.sum(np.abs(r) ** 2) / dof))

    def _refit(self, keep: np.ndarray, toeplitz: np.ndarray, z0: np.ndarray, sw: np.ndarray,
               y: np.ndarray) -> np.ndarray:
        """Least-squares fit of the whitened ``y`` on the kept taps; the fitted channel, complex128 [n_used].

        Normal equations from the Toeplitz Gram matrix (eigen-decomposed, [n_keep, n_keep]) and the
        fitted response by one FFT of the tap vector. A badly conditioned set of taps (many
        adjacent delays next to the guard bands: condition number of the whitened columns above
        1e4, where squaring it would cost accuracy) is solved by ``lstsq`` on the columns instead,
        as singular values below 1e-9 of the largest are dropped there.
        """
        idx = np.flatnonzero(keep)
        lam, vec = np.linalg.eigh(toeplitz[self._lag[idx[:, None], idx[None, :]]])
        if lam[0] > 1e-8 * lam[-1]:
            coef = vec @ ((vec.conj().T @ z0[idx]) / lam)
            taps = np.zeros(self.spec.fft_len, dtype=np.complex128)
            taps[self._delay_bins[idx]] = coef  # distinct bins: delays span less than fft_len
            return np.fft.fft(taps)[self.bins]
        a = self.a[:, idx] * sw[:, None]
        coef, *_ = np.linalg.lstsq(a, y, rcond=1e-9)
        return (a @ coef) / sw
