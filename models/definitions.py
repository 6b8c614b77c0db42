"""The two definitions every model, channel and benchmark shares: bandwidth ratio and SNR.

**Bandwidth ratio** ``k/n``: complex channel symbols per real source value. An RGB image of
``H x W`` pixels has ``n = 3 * H * W`` real values and is sent as ``k = n * ratio`` complex
symbols. Images are padded to the encoder's stride, so ``n`` counts the *padded* image (the
effective ratio of an unpadded image is ``k / (3 * H * W)``; :func:`effective_ratio`).

**SNR** = Es/N0 per complex channel symbol, the PHY's convention (``blocks/phy/snr.py``,
``CONTRIBUTING.md``): the encoder emits unit average power per complex symbol
(Es = 1), complex noise has variance ``N0 = 10 ** (-snr_db / 10)``, i.e. ``N0 / 2`` on I and on
Q. After zero-forcing equalization of a subcarrier with gain ``H`` the noise variance of that
symbol is ``N0 / |H|^2``. Torch only; no gnuradio, no numpy-only PHY import.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

__all__ = [
    "parse_ratio", "source_size", "num_symbols", "effective_ratio",
    "noise_variance", "snr_db_from_noise_variance",
    "normalize_power", "real_to_complex", "complex_to_real",
]


def parse_ratio(text: str | Fraction | float) -> Fraction:
    """Parse a bandwidth ratio such as ``"1/6"`` into a Fraction in (0, 1].

    Raises ``ValueError`` naming ``ratio`` for malformed or out-of-range input.
    """
    try:
        r = Fraction(text) if not isinstance(text, float) else Fraction(text).limit_denominator(10_000)
    except (ValueError, ZeroDivisionError, TypeError) as e:
        raise ValueError(f"ratio: cannot parse {text!r} as a fraction like '1/6' ({e})") from None
    if not 0 < r <= 1:
        raise ValueError(f"ratio: must be in (0, 1], got {text!r}")
    return r


def source_size(height: int, width: int) -> int:
    """``n``: real source values of an RGB image of ``height x width`` pixels."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    return 3 * height * width


def num_symbols(height: int, width: int, ratio: str | Fraction) -> int:
    """``k = n * ratio`` complex symbols for an (already padded) image; must be an integer."""
    k = source_size(height, width) * parse_ratio(ratio)
    if k.denominator != 1:
        raise ValueError(f"ratio: {ratio} of n={source_size(height, width)} is not an integer symbol count")
    return int(k)


def effective_ratio(k: int, height: int, width: int) -> float:
    """The ratio actually spent on an unpadded ``height x width`` image sent as ``k`` symbols."""
    return k / source_size(height, width)


def noise_variance(snr_db: float | torch.Tensor) -> float | torch.Tensor:
    """Complex noise variance N0 for unit-power symbols at ``snr_db`` (Es/N0 in dB)."""
    if isinstance(snr_db, torch.Tensor):
        return torch.pow(10.0, -snr_db / 10.0)
    return 10.0 ** (-float(snr_db) / 10.0)


def snr_db_from_noise_variance(n0: float | torch.Tensor) -> float | torch.Tensor:
    """Inverse of :func:`noise_variance`: Es/N0 in dB for unit-power symbols."""
    if isinstance(n0, torch.Tensor):
        return -10.0 * torch.log10(n0)
    return -10.0 * math.log10(float(n0))


def normalize_power(z: torch.Tensor) -> torch.Tensor:
    """Scale each row of complex symbols ``z`` ``[B, k]`` to unit average power (mean |z|^2 = 1)."""
    if not z.is_complex():
        raise ValueError("normalize_power expects complex symbols [B, k]")
    power = z.real.square().add(z.imag.square()).mean(dim=1, keepdim=True)  # [B, 1]
    return z * torch.rsqrt(power.clamp_min(1e-12))


def real_to_complex(v: torch.Tensor) -> torch.Tensor:
    """Real values ``[B, 2k]`` -> complex symbols ``[B, k]`` (pairs (2i, 2i+1) are I and Q)."""
    if v.shape[-1] % 2:
        raise ValueError(f"real_to_complex needs an even number of values, got {v.shape[-1]}")
    return torch.view_as_complex(v.float().reshape(*v.shape[:-1], -1, 2).contiguous())


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    """Complex symbols ``[B, k]`` -> real values ``[B, 2k]`` (inverse of :func:`real_to_complex`)."""
    return torch.view_as_real(z).reshape(*z.shape[:-1], -1)
