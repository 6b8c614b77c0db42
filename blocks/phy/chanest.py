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
        """
        sw = np.sqrt(np.asarray(weight, dtype=np.float64))
        y = np.asarray(h_ls, dtype=np.complex128) * sw  # whitened: noise variance n0 everywhere
        ap = self.a * sw[:, None]  # [n_used, n_cand], columns orthogonalised as taps get chosen
        norms = np.sum(ap.real ** 2 + ap.imag ** 2, axis=0)  # [n_cand]
        floor = 1e-9 * norms.max()
        r = y.copy()
        thr = max(self.gamma * n0, 1e-13 * float(np.sum(y.real ** 2 + y.imag ** 2)))
        chosen = np.zeros(self.delays.size, dtype=bool)
        for _ in range(self.delays.size):
            corr = r.conj() @ ap  # [n_cand], conj of ap^H r
            gain = np.where(chosen | (norms <= floor), 0.0,
                            (corr.real ** 2 + corr.imag ** 2) / np.maximum(norms, floor))
            j = int(np.argmax(gain))
            if gain[j] <= thr:
                break
            q = ap[:, j] / np.sqrt(norms[j])
            r -= q * (q.conj() @ r)
            proj = q.conj() @ ap  # [n_cand]
            ap -= np.outer(q, proj)
            norms = np.maximum(norms - (proj.real ** 2 + proj.imag ** 2), 0.0)  # ||ap_j||^2 after the update
            chosen[j] = True
        # a path between two sample instants leaks into the neighbouring taps (sinc tails below
        # the threshold): keep the direct neighbours of every chosen tap too and refit
        keep = chosen.copy()
        keep[1:] |= chosen[:-1]
        keep[:-1] |= chosen[1:]
        n_taps = int(keep.sum())
        if n_taps:
            a = self.a[:, keep] * sw[:, None]
            coef, *_ = np.linalg.lstsq(a, y, rcond=1e-9)
            r = y - a @ coef
        h = (y - r) / sw
        err = n0 * (n_taps / self.k.size) / np.asarray(weight, dtype=np.float64)
        dof = max(1, self.k.size - n_taps)
        return ChannelEstimate(h=h, err_var=err, n_taps=n_taps, residual=float(np.sum(np.abs(r) ** 2) / dof))
