"""The SNR convention of semcom, written down once. Pure numpy.

Definition
----------
**SNR = Es/N0 per complex payload symbol.**

* Payload symbols have unit average power, ``Es = E|s|^2 = 1``.
* The OFDM modulator (``ofdm.py``) uses the *unitary* inverse DFT and the receiver the unitary
  DFT, so a symbol of energy ``Es`` on a subcarrier comes out of the receiver's DFT with energy
  ``Es`` (times ``|H_k|^2`` for a channel ``H``).
* Complex AWGN of variance ``N0`` per time-domain sample (``N0/2`` on I and ``N0/2`` on Q)
  stays white complex noise of variance ``N0`` on every subcarrier after the unitary DFT.
* Hence, for a unit-gain channel, ``Es/N0 = 1/N0`` on every subcarrier:
  ``N0 = Es / 10**(snr_db / 10)``.
* Multipath profiles (``channel.py``) are normalised to unit total average power, so the SNR is
  the *average received* Es/N0; the per-symbol noise variance after zero-forcing equalisation is
  ``N0 / |H_k|^2``.

The noise level is *set from this definition*, never measured from the transmitted signal:
a frame also holds guard zeros, a preamble and pilots, so its mean sample power is not ``Es``.

:func:`complex_awgn` is the only place in the project that draws complex noise. Each of the real
and imaginary parts has standard deviation ``sqrt(N0/2)``, so ``E|w|^2 = N0`` (the classic 3 dB
error, ``N0`` per dimension, cannot happen if everyone calls it). GNU Radio's
``analog.noise_source_c(GR_GAUSSIAN, a)`` has the same convention with ``a = sqrt(N0)``
(total complex variance ``a**2``; checked by ``tests/test_gr_channel.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["db", "undb", "noise_variance", "complex_awgn", "add_awgn", "measured_snr_db"]


def db(x: float | np.ndarray) -> float | np.ndarray:
    """Power ratio -> decibels, ``10 * log10(x)``."""
    return 10.0 * np.log10(x)


def undb(x_db: float | np.ndarray) -> float | np.ndarray:
    """Decibels -> power ratio, ``10 ** (x_db / 10)``."""
    y = 10.0 ** (np.asarray(x_db, dtype=np.float64) / 10.0)
    return float(y) if y.ndim == 0 else y


def noise_variance(snr_db: float, es: float = 1.0) -> float:
    """Complex noise variance ``N0`` per time sample for ``Es/N0 = snr_db`` (dB); ``N0 = es / undb(snr_db)``."""
    snr_db = float(snr_db)
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    if not es > 0:
        raise ValueError(f"es must be > 0, got {es}")
    return float(es) / undb(snr_db)


def complex_awgn(n: int, n0: float, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian noise with ``E|w|^2 = n0``; complex64 [n].

    Real and imaginary parts are independent with standard deviation ``sqrt(n0 / 2)`` each.
    ``rng`` is consumed sequentially (``2 * n`` normals, real/imag interleaved), so drawing
    ``a`` then ``b`` samples equals drawing ``a + b`` at once.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not n0 >= 0:
        raise ValueError(f"n0 must be >= 0, got {n0}")
    g = rng.standard_normal(2 * int(n))  # [2n] float64: re0, im0, re1, im1, ...
    return (np.sqrt(n0 / 2.0) * g.view(np.complex128)).astype(np.complex64)


def add_awgn(x: np.ndarray, snr_db: float, rng: np.random.Generator, es: float = 1.0) -> np.ndarray:
    """``x`` plus complex AWGN of variance ``noise_variance(snr_db, es)`` per sample; complex64, same shape."""
    x = np.asarray(x)
    w = complex_awgn(x.size, noise_variance(snr_db, es), rng).reshape(x.shape)
    return (x + w).astype(np.complex64)


def measured_snr_db(reference: np.ndarray, received: np.ndarray) -> float:
    """``10 log10(mean|ref|^2 / mean|rx - ref|^2)`` over matching arrays (e.g. genie-demodulated symbols)."""
    ref = np.asarray(reference)
    rx = np.asarray(received)
    if ref.shape != rx.shape:
        raise ValueError(f"reference shape {ref.shape} != received shape {rx.shape}")
    if ref.size == 0:
        raise ValueError("empty input")
    err = float(np.mean(np.abs(rx.astype(np.complex128) - ref) ** 2))
    sig = float(np.mean(np.abs(ref.astype(np.complex128)) ** 2))
    if err == 0.0:
        return float("inf")
    return float(db(sig / err))
