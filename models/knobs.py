"""The consistency decoder's run-time knob (no torch: the application's config imports it).

``guidance`` (strength 0-1 of the channel-consistent posterior guidance, ``guidance.py``),
``guidance_steps`` (K gradient steps after each jump), ``start_sigma`` (SDEdit start level; 0 =
sigma_max, pure noise) and ``anchor`` (pull towards the JSCC estimate during guidance). Decoder
names carry differences from the defaults as a suffix: ``cm2:g=0:s=0``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DecodeKnobs"]


@dataclass(frozen=True)
class DecodeKnobs:
    """Run-time settings of the consistency decoder (``models.decoders``): the fidelity-realism knob.

    The defaults are the measured setting for photos (README, "Diffusion decoders"): within 1 dB
    of the JSCC decoder's PSNR with a lower NIQE and spectrum distance. ``g=0:s=0`` is the plain
    sampler from pure noise; ``k=1:s=0`` (pure noise, guided) the realism setting.
    """

    guidance: float = 1.0        # strength in [0, 1]; 0 = unguided
    guidance_steps: int = 1      # K gradient steps per jump, 0..3
    start_sigma: float = 0.3     # 0 = sigma_max (pure noise); else SDEdit start level (<= sigma_min: the JSCC estimate)
    anchor: float = 0.0          # weight of the pull towards the JSCC estimate during guidance

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.guidance) <= 1.0:
            raise ValueError(f"guidance: must be in [0, 1], got {self.guidance}")
        if isinstance(self.guidance_steps, bool) or not 0 <= int(self.guidance_steps) <= 3:
            raise ValueError(f"guidance_steps: must be 0..3, got {self.guidance_steps}")
        if not float(self.start_sigma) >= 0.0:
            raise ValueError(f"start_sigma: must be >= 0 (0 = sigma_max), got {self.start_sigma}")
        if not float(self.anchor) >= 0.0:
            raise ValueError(f"anchor: must be >= 0, got {self.anchor}")

    def suffix(self) -> str:
        """The decoder-name suffix (``":g=0:s=0"``) of the knobs that differ from the defaults ("" when none)."""
        d = DecodeKnobs()
        out = ""
        if self.guidance != d.guidance:
            out += f":g={self.guidance:g}"
        if self.guidance > 0 and self.guidance_steps != d.guidance_steps:
            out += f":k={self.guidance_steps}"
        if self.start_sigma != d.start_sigma:
            out += f":s={self.start_sigma:g}"
        if self.anchor != d.anchor:
            out += f":a={self.anchor:g}"
        return out
