"""OFDM (de)modulation of resource grids: unitary DFT, cyclic prefix. Pure numpy.

Grids are in natural FFT bin order (carrier ``k`` at bin ``k % fft_len``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ofdm_modulate", "ofdm_demodulate", "papr_db"]


def ofdm_modulate(grid: np.ndarray, cp_len: int) -> np.ndarray:
    """Frequency grid -> time samples with cyclic prefix.

    Input: ``grid`` complex [n_symbols, fft_len]. Output: complex64 [n_symbols * (fft_len + cp_len)].
    Uses the unitary inverse DFT, so per-subcarrier energy is preserved (see ``snr.py``).
    """
    grid = np.atleast_2d(grid)
    t = np.fft.ifft(grid, axis=1, norm="ortho")  # [n_symbols, fft_len]
    t = np.concatenate([t[:, grid.shape[1] - cp_len:], t], axis=1)  # [n_symbols, fft_len + cp_len]
    return t.ravel().astype(np.complex64)


def ofdm_demodulate(samples: np.ndarray, fft_len: int, cp_len: int, n_symbols: int,
                    start: int = 0, cp_backoff: int = 0) -> np.ndarray:
    """Time samples -> frequency grid, dropping the cyclic prefix.

    ``start`` is the first sample of the first symbol (its CP). ``cp_backoff`` takes the FFT
    window that many samples early (inside the CP), which the channel estimate absorbs as a
    linear phase; it protects against inter-symbol interference from early paths.
    Output: complex128 [n_symbols, fft_len].
    """
    sym_len = fft_len + cp_len
    x = np.asarray(samples)[start:start + n_symbols * sym_len]
    if x.size < n_symbols * sym_len:
        raise ValueError(f"need {n_symbols * sym_len} samples from {start}, have {x.size}")
    x = x.reshape(n_symbols, sym_len)[:, cp_len - cp_backoff:cp_len - cp_backoff + fft_len]
    return np.fft.fft(x, axis=1, norm="ortho")


def papr_db(x: np.ndarray) -> float:
    """Peak-to-average power ratio of the non-zero part of a signal, in dB."""
    p = np.abs(np.asarray(x)) ** 2
    p = p[p > 0]
    if p.size == 0:
        return 0.0
    return float(10 * np.log10(p.max() / p.mean()))
