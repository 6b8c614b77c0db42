"""``semcom_channel``: the loopback channel simulator as a GNU Radio hier block (complex in, complex out).

Built from the same ``ChannelConfig`` as the numpy ``ChannelSimulator`` (``semcom.blocks.phy.channel``),
with the same order of impairments and the same units::

    in -> timing offset -> multipath / fading -> SRO -> CFO -> phase noise -> (+) AWGN -> out

Which parts run where
---------------------
* **C++ (gr-blocks / gr-filter / gr-analog)**, used whenever they give the numpy model:

  - integer timing delay: ``blocks.delay``;
  - static multipath and the fractional timing offset (``fading: none``): ``filter.fir_filter_ccc``
    with the taps ``ChannelSimulator`` computes (output equal to numpy to float precision);
  - SRO: ``filter.mmse_resampler_cc`` with ``resamp_ratio = 1 / (1 + sro_ppm * 1e-6)`` (its 8-tap
    MMSE interpolator differs from numpy's windowed sinc by a few samples of latency and a small
    interpolation error: the stretch is the same, the samples are not bit-equal);
  - CFO: ``blocks.rotator_cc`` with ``phase_inc = 2 pi cfo / fft_len`` (``cfo`` in subcarrier
    spacings, as in numpy);
  - phase noise: ``analog.noise_source_f`` (Gaussian, amplitude = std of the phase increment
    ``sqrt(2 pi linewidth / sample_rate)``) -> ``analog.frequency_modulator_fc(1)`` (a phase
    accumulator: the Wiener walk) -> ``blocks.multiply_cc``;
  - AWGN: ``analog.noise_source_c(GR_GAUSSIAN, sqrt(N0))`` -> ``blocks.add_cc``. GNU Radio's
    complex Gaussian source of amplitude ``a`` has total variance ``a**2`` (``a**2 / 2`` on I and
    on Q; measured in ``tests/test_gr_channel.py``, for the constructor and ``set_amplitude``),
    so ``a = sqrt(N0)`` gives the convention of ``semcom.blocks.phy.snr`` (Es/N0 = 1/N0 per
    payload symbol). Beware: its ``amplitude()`` getter reads back ``a / sqrt(2)``.

* **Python** (``_ChannelFirBlock``, a ``gr.sync_block`` that runs the numpy ``ChannelSimulator``
  vectorised on each ``work()`` buffer): timing delay + multipath for ``fading: rayleigh | rician``.
  Block fading with a new realisation every ``block_len`` samples has no gr-channels equivalent
  (``fading_model`` / ``selective_fading_model`` are Jakes/Doppler models whose taps are not exposed),
  and a genie receiver needs the exact taps: ``semcom_channel.simulator.impulse_response(i)``.

``gr-channels``' ``channel_model`` was not used: in 3.10 it draws its noise from
``fastnoise_source_c`` (a pool of 8192 pre-drawn samples, re-used), applies the resampler before the
multipath filter and has no phase noise. The noise of this block comes from different generators
than numpy's, so outputs agree in distribution, not sample by sample (everything before the noise,
SRO aside, agrees sample by sample).

Live setters (GRC callbacks): ``set_snr_db``, ``set_cfo``, ``set_phase_noise``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gnuradio import analog, blocks, filter as gr_filter, gr

from semcom.blocks.phy.channel import ChannelConfig, ChannelSimulator

__all__ = ["semcom_channel"]


class _ChannelFirBlock(gr.sync_block):
    """Timing delay + block-fading multipath of ``ChannelSimulator`` (no SRO/CFO/noise), complex64 1:1."""

    def __init__(self, simulator: ChannelSimulator):
        gr.sync_block.__init__(self, name="semcom_channel_fading", in_sig=[np.complex64], out_sig=[np.complex64])
        self.simulator = simulator

    def work(self, input_items, output_items):
        x = input_items[0]
        output_items[0][:] = self.simulator.apply(x)
        return len(x)


def _resolve_config(config: ChannelConfig | dict | None, config_path: str, fields: dict[str, Any]) -> ChannelConfig:
    if config_path:
        from semcom.config import load_config  # noqa: PLC0415 (pyyaml only when a file is given)

        return load_config(config_path).channel
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, ChannelConfig):
        base = config.to_dict()
    else:
        base = dict(config)
    return ChannelConfig.from_dict({**base, **fields})


class semcom_channel(gr.hier_block2):  # noqa: N801 (GNU Radio block naming)
    """Loopback channel (complex64 in, complex64 out); see the module docstring.

    Parameters
    ----------
    config : ChannelConfig or dict, optional
        The channel; keyword arguments (``snr_db=..., cfo=..., ...``: the ``ChannelConfig`` fields)
        override single fields.
    config_path : str
        A semcom YAML config file; when not empty its ``channel:`` section is used (with
        ``fft_len`` / ``sample_rate`` following its frame and radio sections) and ``config`` and
        the keyword fields are ignored (GRC always passes them all).

    Attributes: ``config`` (the ``ChannelConfig`` in force, updated by the setters) and
    ``simulator``: the ``ChannelSimulator`` whose taps are applied (``impulse_response``,
    ``frequency_response``, ``first_delay``, ``tap_offset``; live for fading channels).
    """

    def __init__(self, config: ChannelConfig | dict | None = None, config_path: str = "", **fields: Any):
        gr.hier_block2.__init__(self, "semcom_channel",
                                gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        cfg = _resolve_config(config, config_path, fields)
        self.config = cfg
        # The simulator holding the multipath stage (its CFO/SRO/noise stages are not used here).
        self.simulator = ChannelSimulator(cfg.replace(snr_db=None, cfo=0.0, sro_ppm=0.0, phase_noise=0.0))
        seeds = np.random.SeedSequence(cfg.seed).generate_state(2, dtype=np.uint32)

        chain: list[Any] = []
        if cfg.fading != "none":
            self._fir_block = _ChannelFirBlock(self.simulator)
            chain.append(self._fir_block)
        else:
            if self.simulator.delay_samples:
                chain.append(blocks.delay(gr.sizeof_gr_complex, self.simulator.delay_samples))
            taps = self.simulator.last_taps
            if not (taps.size == 1 and taps[0] == 1):
                chain.append(gr_filter.fir_filter_ccc(1, [complex(t) for t in taps]))
        if cfg.sro_ppm != 0.0:
            chain.append(gr_filter.mmse_resampler_cc(0.0, 1.0 / (1.0 + cfg.sro_ppm * 1e-6)))
        self._rotator = blocks.rotator_cc(self._phase_inc(cfg.cfo))
        chain.append(self._rotator)
        self._pn_source = analog.noise_source_f(analog.GR_GAUSSIAN, self._pn_std(cfg.phase_noise), int(seeds[0]))
        self._pn_mod = analog.frequency_modulator_fc(1.0)
        self._pn_mix = blocks.multiply_cc()
        self._noise_amplitude = math.sqrt(cfg.noise_variance())
        self._noise = analog.noise_source_c(analog.GR_GAUSSIAN, self._noise_amplitude, int(seeds[1]))
        self._adder = blocks.add_cc()

        self.connect(self, *chain)
        self.connect(chain[-1], (self._pn_mix, 0))
        self.connect(self._pn_source, self._pn_mod, (self._pn_mix, 1))
        self.connect(self._pn_mix, (self._adder, 0))
        self.connect(self._noise, (self._adder, 1))
        self.connect(self._adder, self)

    # ---------------------------------------------------------------- unit mapping
    def _phase_inc(self, cfo: float) -> float:
        return 2.0 * math.pi * cfo / self.config.fft_len

    def _pn_std(self, linewidth_hz: float) -> float:
        return math.sqrt(2.0 * math.pi * linewidth_hz / self.config.sample_rate)

    # ---------------------------------------------------------------- live setters (validated)
    def set_snr_db(self, snr_db: float | None) -> None:
        """Es/N0 per payload symbol in dB (None: no noise); takes effect immediately."""
        self.config = self.config.replace(snr_db=snr_db)
        self._noise_amplitude = math.sqrt(self.config.noise_variance())
        self._noise.set_amplitude(self._noise_amplitude)

    def set_cfo(self, cfo: float) -> None:
        """CFO in subcarrier spacings; the phase stays continuous."""
        self.config = self.config.replace(cfo=cfo)
        self._rotator.set_phase_inc(self._phase_inc(self.config.cfo))

    def set_phase_noise(self, linewidth_hz: float) -> None:
        """Wiener phase-noise linewidth in Hz."""
        self.config = self.config.replace(phase_noise=linewidth_hz)
        self._pn_source.set_amplitude(self._pn_std(self.config.phase_noise))

    def noise_voltage(self) -> float:
        """Amplitude given to the complex noise source, ``sqrt(N0)``.

        (``noise_source_c.amplitude()`` reads back ``sqrt(N0 / 2)``, the per-dimension std, in
        GNU Radio 3.10, while the constructor and ``set_amplitude`` take the total std.)
        """
        return self._noise_amplitude
