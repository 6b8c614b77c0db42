"""Differentiable training channel matching what the PHY's receiver hands the decoder.

The receiver equalizes each subcarrier without decision feedback, so every complex symbol
arrives as ``y = x + w`` with ``w ~ CN(0, nv)`` and a *known* per-symbol noise variance
``nv = N0 / |H_k|^2`` (``N0`` from the SNR convention in ``definitions.py``). Three effects:

* **AWGN**: ``|H| = 1`` everywhere, ``nv = N0``.
* **Multipath (OFDM)**: per radio frame a random multipath channel with an exponential
  power-delay profile normalized to unit total power (so the SNR is the *average* Es/N0);
  its DFT gives the subcarrier gains, symbols fill subcarriers frequency-first.
* **Erasures**: a lost radio frame means a run of symbols never arrives; they are returned
  as ``y = 0`` with ``nv = inf`` (the decoder turns ``nv`` into a reliability ``1/(1+nv)``).

An optional fixed interleaver (a seeded permutation) maps symbol ``perm[i]`` to air slot ``i``
so one faded subcarrier or lost frame is spread over the whole image. Gradients flow to ``x``.
"""

from __future__ import annotations

import math

import torch

from .config import ChannelConfig
from .definitions import noise_variance

__all__ = ["Channel", "awgn", "complex_noise", "multipath_gains", "interleaver"]


def complex_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """CN(0, 1) samples: variance 1/2 on I and on Q. complex64."""
    # drawn on the CPU (where the training generator lives), then moved: the same samples on any device
    re_im = torch.randn(*shape, 2, generator=generator).to(device) * math.sqrt(0.5)
    return torch.view_as_complex(re_im)


def awgn(x: torch.Tensor, snr_db: torch.Tensor, generator: torch.Generator | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """AWGN on unit-power symbols ``x`` ``[B, k]`` complex at per-image ``snr_db`` ``[B]``.

    Returns ``(y [B, k] complex64, nv [B, k] float32)`` with ``nv = N0`` everywhere.
    """
    n0 = noise_variance(snr_db.float()).unsqueeze(1).expand(x.shape).contiguous()  # [B, k]
    y = x + complex_noise(tuple(x.shape), generator, x.device) * n0.sqrt()
    return y, n0


def multipath_gains(batch: int, n_frames: int, cfg: ChannelConfig,
                    generator: torch.Generator | None = None, device: torch.device | str = "cpu"
                    ) -> torch.Tensor:
    """|H_k|^2 per frame and data subcarrier: ``[batch, n_frames, n_subcarriers]`` float32.

    Taps ``h_l ~ CN(0, p_l)``, ``p_l ~ exp(-decay * l)`` normalized to sum 1, so E|H_k|^2 = 1.
    Data subcarriers are the ``n_subcarriers`` carriers nearest DC, DC excluded.
    """
    p = torch.exp(-cfg.tap_decay * torch.arange(cfg.n_taps, dtype=torch.float32, device=device))
    p = p / p.sum()
    taps = complex_noise((batch, n_frames, cfg.n_taps), generator, device) * p.sqrt()  # [B, F, L]
    H = torch.fft.fft(taps, n=cfg.fft_len, dim=-1)  # [B, F, fft_len]
    half = cfg.n_subcarriers // 2
    carriers = [k for k in range(-half, cfg.n_subcarriers - half + 1) if k != 0][: cfg.n_subcarriers]
    bins = torch.tensor([k % cfg.fft_len for k in carriers], device=device)
    return H[..., bins].abs().square()  # [B, F, n_sc]


def interleaver(k: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The fixed permutation: air slot ``i`` carries symbol ``perm[i]``. int64 ``[k]``."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(k, generator=g).to(device)


class Channel:
    """The training channel: ``channel(x, snr_db) -> (y, nv)``.

    Input ``x`` ``[B, k]`` complex unit-power symbols, ``snr_db`` ``[B]`` float (average Es/N0).
    ``fading`` / ``erasures`` override the config's random mixture: ``True`` forces,
    ``False`` disables, ``None`` samples with ``cfg.p_fading`` / ``cfg.p_erasure_image``.
    Output ``y`` ``[B, k]`` complex64 and ``nv`` ``[B, k]`` float32 (``inf`` where erased).
    """

    def __init__(self, cfg: ChannelConfig | None = None):
        self.cfg = cfg or ChannelConfig()
        self._perm_cache: dict[tuple[int, str], torch.Tensor] = {}

    def _perm(self, k: int, device: torch.device) -> torch.Tensor:
        key = (k, str(device))
        if key not in self._perm_cache:
            self._perm_cache[key] = interleaver(k, self.cfg.interleave_seed, device)
        return self._perm_cache[key]

    def sample_snr(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform SNR in dB over the config's range, ``[batch]`` float32."""
        u = torch.rand(batch, generator=generator)
        return self.cfg.snr_min_db + u * (self.cfg.snr_max_db - self.cfg.snr_min_db)

    def __call__(self, x: torch.Tensor, snr_db: torch.Tensor | float,
                 generator: torch.Generator | None = None, fading: bool | None = False,
                 erasures: bool | None = False) -> tuple[torch.Tensor, torch.Tensor]:
        if not x.is_complex() or x.dim() != 2:
            raise ValueError(f"channel input must be complex [B, k], got {tuple(x.shape)} {x.dtype}")
        B, k = x.shape
        dev = x.device
        snr_db = torch.as_tensor(snr_db, dtype=torch.float32).to(dev).expand(B)
        cfg = self.cfg
        F = -(-k // cfg.symbols_per_frame)  # frames per image (last one may be short)

        # Per-symbol power gain |H|^2 in air order, then moved to symbol order.
        gain = torch.ones(B, k, device=dev)
        use_fading = self._draw(B, fading, cfg.p_fading, generator, dev)
        if use_fading.any():
            g = multipath_gains(B, F, cfg, generator, dev)  # [B, F, n_sc]
            slot = torch.arange(F * cfg.symbols_per_frame, device=dev)
            g = g[:, slot // cfg.symbols_per_frame, slot % cfg.n_subcarriers][:, :k]  # [B, k] air order
            gain = torch.where(use_fading[:, None], g.clamp_min(1e-6), gain)
        lost = torch.zeros(B, k, dtype=torch.bool, device=dev)
        use_erasure = self._draw(B, erasures, cfg.p_erasure_image, generator, dev)
        if use_erasure.any():
            frame_lost = torch.rand(B, F, generator=generator).to(dev) < cfg.p_erasure_frame  # [B, F]
            lost = (frame_lost[:, torch.arange(k, device=dev) // cfg.symbols_per_frame]
                    & use_erasure[:, None])
        if cfg.interleave:
            perm = self._perm(k, dev)
            gain_s, lost_s = torch.empty_like(gain), torch.empty_like(lost)
            gain_s[:, perm], lost_s[:, perm] = gain, lost
            gain, lost = gain_s, lost_s

        n0 = noise_variance(snr_db)[:, None]  # [B, 1]
        nv = n0 / gain  # [B, k]
        y = x + complex_noise((B, k), generator, dev) * nv.sqrt()
        y = torch.where(lost, torch.zeros_like(y), y)
        nv = torch.where(lost, torch.full_like(nv, math.inf), nv)
        return y, nv

    @staticmethod
    def _draw(batch: int, force: bool | None, p: float, generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
        if force is None:
            return (torch.rand(batch, generator=generator) < p).to(device)
        return torch.full((batch,), bool(force), dtype=torch.bool, device=device)
