"""Gray-mapped QAM constellations (BPSK to 64-QAM), unit average power, hard and soft demapping.

Bit order: the first bit of each group is the most significant; I carries the first half of
the bits, Q the second half (BPSK: I only). All functions are pure numpy.
"""

from __future__ import annotations

import numpy as np

from .frame import BITS_PER_SYMBOL, MODULATIONS

__all__ = ["constellation", "modulate", "demodulate_hard", "demodulate_llr", "bits_per_symbol"]


def bits_per_symbol(modulation: str) -> int:
    if modulation not in BITS_PER_SYMBOL:
        raise ValueError(f"unknown modulation {modulation!r}; valid: {MODULATIONS}")
    return BITS_PER_SYMBOL[modulation]


def _gray_pam(m_bits: int) -> np.ndarray:
    """Amplitude levels of a Gray-coded 2**m_bits-PAM indexed by the bit pattern value; [2**m]."""
    m = 1 << m_bits
    levels = np.arange(-(m - 1), m, 2, dtype=np.float64)  # natural order of positions
    out = np.empty(m)
    for pos in range(m):
        gray = pos ^ (pos >> 1)
        out[gray] = levels[pos]
    return out


def constellation(modulation: str) -> np.ndarray:
    """Points indexed by the integer value of their bit group (MSB first); complex128 [2**bps], unit power."""
    bps = bits_per_symbol(modulation)
    if bps == 1:
        pts = np.array([1.0, -1.0], dtype=np.complex128)  # bit 0 -> +1
        return pts
    half = bps // 2
    pam = _gray_pam(half)
    idx = np.arange(1 << bps)
    pts = pam[idx >> half] + 1j * pam[idx & ((1 << half) - 1)]
    return pts / np.sqrt(np.mean(np.abs(pts) ** 2))


def modulate(bits: np.ndarray, modulation: str) -> np.ndarray:
    """Map bits to symbols.

    Input: ``bits`` uint8/bool [n_bits], n_bits a multiple of the bits per symbol.
    Output: complex64 [n_bits // bps].
    """
    bps = bits_per_symbol(modulation)
    bits = np.asarray(bits, dtype=np.uint8).ravel()
    if bits.size % bps:
        raise ValueError(f"{bits.size} bits is not a multiple of {bps} bits per {modulation} symbol")
    groups = bits.reshape(-1, bps)
    weights = 1 << np.arange(bps - 1, -1, -1)
    idx = groups @ weights
    return constellation(modulation)[idx].astype(np.complex64)


def demodulate_hard(symbols: np.ndarray, modulation: str) -> np.ndarray:
    """Nearest-point decisions; uint8 bits [n_symbols * bps]."""
    bps = bits_per_symbol(modulation)
    pts = constellation(modulation)
    s = np.asarray(symbols).ravel()
    idx = np.argmin(np.abs(s[:, None] - pts[None, :]), axis=1)
    bits = (idx[:, None] >> np.arange(bps - 1, -1, -1)) & 1
    return bits.astype(np.uint8).ravel()


def demodulate_llr(symbols: np.ndarray, modulation: str, noise_var: np.ndarray | float) -> np.ndarray:
    """Max-log LLRs, positive meaning bit 0; float64 [n_symbols * bps].

    ``noise_var`` is the complex noise variance per symbol (scalar or [n_symbols]).
    """
    bps = bits_per_symbol(modulation)
    pts = constellation(modulation)
    s = np.asarray(symbols).ravel()
    nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), s.shape)
    d2 = np.abs(s[:, None] - pts[None, :]) ** 2  # [n, M]
    idx = np.arange(pts.size)
    llr = np.empty((s.size, bps))
    for b in range(bps):
        mask = ((idx >> (bps - 1 - b)) & 1).astype(bool)
        llr[:, b] = (d2[:, mask].min(axis=1) - d2[:, ~mask].min(axis=1)) / np.maximum(nv, 1e-12)
    return llr.ravel()
