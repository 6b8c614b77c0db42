"""One encoder, several decoders chosen at run time.

``jscc``    the JSCC decoder (MSE-trained, 1 network evaluation, deterministic);
``teacher`` EDM Heun sampling conditioned on the JSCC estimate (``2 * steps - 1`` evaluations);
``cmN``     the consistency model with N evaluations (``cm1``, ``cm2``, ``cm4``, ...).
The diffusion decoders refine the JSCC estimate: the JSCC decoder's output (in [-1, 1]) and
the SNR condition the denoiser, which samples an image from noise.

The consistency decoder's fidelity-realism knob (:class:`DecodeKnobs`): ``guidance`` (strength
0-1 of the channel-consistent posterior guidance, ``guidance.py``), ``guidance_steps`` (K = 0-3
gradient steps after each jump) and ``start_sigma`` (SDEdit: start from the JSCC estimate
noised to this level instead of pure noise at sigma_max; at or below sigma_min the output *is*
the JSCC estimate). The defaults (``knobs.py``) are the setting measured on photos, guidance 1,
one step, start 0.3: a bare ``cm1`` is that; ``cm2:g=0:s=0`` is the plain sampler from pure noise
and ``cm2:s=0`` (guided, from pure noise) the realism setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from .checkpoint import check_pairing, load_model
from .knobs import DecodeKnobs
from .edm import image_from_sample
from .guidance import guide, measurement_residual, posterior_tau2
from .runtime import channels_last
from .jscc import JSCC
from .samplers import consistency_sigmas, karras_sigmas, sample_consistency, sample_heun

__all__ = ["SemanticCodec", "parse_decoder", "parse_decoder_spec", "DecodeKnobs"]


_KNOB_KEYS = {"g": "guidance", "k": "guidance_steps", "s": "start_sigma", "a": "anchor"}


def parse_decoder_spec(spec: str, default: "DecodeKnobs | None" = None) -> tuple[str, "DecodeKnobs"]:
    """``"cm2:g=1:k=2:s=0.5"`` -> ("cm2", DecodeKnobs(guidance=1, guidance_steps=2, start_sigma=0.5)).

    Keys: ``g`` guidance strength, ``k`` guidance steps, ``s`` start sigma, ``a`` anchor weight;
    unnamed ones keep ``default``'s values. Knobs apply to consistency decoders only.
    """
    name, *parts = spec.strip().split(":")
    parse_decoder(name)
    knobs = dict(vars(default or DecodeKnobs()))
    for part in parts:
        key, eq, val = part.partition("=")
        if not eq or key not in _KNOB_KEYS:
            raise ValueError(f"decoder {spec!r}: knob {part!r} is not key=value with key one of "
                             f"{', '.join(f'{k} ({v})' for k, v in _KNOB_KEYS.items())}")
        try:
            knobs[_KNOB_KEYS[key]] = int(val) if key == "k" else float(val)
        except ValueError:
            raise ValueError(f"decoder {spec!r}: {key}={val!r} is not a number") from None
    if parts and not name.startswith("cm"):
        raise ValueError(f"decoder {spec!r}: knobs apply to the consistency decoders (cmN) only")
    return name, DecodeKnobs(**knobs)


def _start_sigma(knobs: DecodeKnobs, cfg) -> float:
    """The consistency sampler's start level: ``knobs.start_sigma``, 0 meaning ``cfg.sigma_max`` (pure noise)."""
    return float(knobs.start_sigma) or cfg.sigma_max


def parse_decoder(name: str) -> tuple[str, int]:
    """``"jscc"`` -> ("jscc", 0); ``"teacher"`` -> ("teacher", 0); ``"cm2"`` -> ("cm", 2)."""
    name = name.split(":")[0]
    if name in ("jscc", "teacher"):
        return name, 0
    m = re.fullmatch(r"cm([1-9][0-9]*)", name)
    if not m:
        raise ValueError(f"decoder: unknown {name!r} (jscc, teacher, cm1, cm2, cm4, ...)")
    return "cm", int(m.group(1))


@dataclass
class SemanticCodec:
    """The JSCC encoder/decoder plus optional diffusion decoders sharing its latent."""

    jscc: JSCC
    teacher: nn.Module | None = None
    consistency: nn.Module | None = None
    teacher_steps: int = 10

    def __post_init__(self) -> None:
        channels_last(self.jscc, self.teacher, self.consistency)  # ~2x faster batch-1 CPU decoding

    @classmethod
    def from_checkpoints(cls, jscc: str, teacher: str = "", consistency: str = "",
                         teacher_steps: int = 10) -> "SemanticCodec":
        j, jcfg, _ = load_model(jscc, kind="jscc")
        t = c = None
        if teacher:
            t, _, tinfo = load_model(teacher, kind="teacher")
            check_pairing(teacher, tinfo, jscc, jcfg.ratio)
        if consistency:
            c, _, cinfo = load_model(consistency, kind="consistency")
            check_pairing(consistency, cinfo, jscc, jcfg.ratio)
        return cls(j, t, c, teacher_steps)

    def encode(self, img: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] -> unit-power symbols ``[B, k]`` complex64."""
        return self.jscc.encode(img, snr_db)

    def nfe(self, decoder: str, knobs: DecodeKnobs | None = None) -> int:
        """Network evaluations of ``decoder`` (the JSCC decoder pass counts as one)."""
        kind, n = parse_decoder(decoder)
        return 1 + {"jscc": 0, "teacher": 2 * self.teacher_steps - 1, "cm": n}[kind]
        # (a guided jump adds 2 encoder passes per gradient step; they are not UNet evaluations)

    @torch.no_grad()
    def decode(self, y: torch.Tensor, nv: torch.Tensor, snr_db: torch.Tensor | float,
               size: tuple[int, int], decoder: str = "jscc",
               generator: torch.Generator | None = None, knobs: DecodeKnobs | None = None) -> torch.Tensor:
        """Received symbols ``y`` ``[B, k]`` + noise variance ``nv`` ``[B, k]`` -> images ``[B, 3, H, W]`` in [0, 1].

        ``decoder`` may carry knobs (``"cm2:g=1:k=1"``, :func:`parse_decoder_spec`); ``knobs``
        gives the defaults for the ones it does not name (default: :class:`DecodeKnobs`)."""
        decoder, knobs = parse_decoder_spec(decoder, knobs)
        kind, n = parse_decoder(decoder)
        est = self.jscc.decode(y, nv, snr_db, size)
        if kind == "jscc":
            return est
        model = self.diffusion_model(decoder)
        post = None
        if kind == "cm" and self.guided(knobs):
            post = self._guidance(y, nv, snr_db, size, est * 2.0 - 1.0, model.net.cfg, knobs)
        return self.refine(est, snr_db, decoder, lambda i: torch.randn(est.shape, generator=generator), knobs, post)

    def diffusion_model(self, decoder: str) -> nn.Module:
        """The teacher or consistency model that ``decoder`` runs (ValueError when it is not loaded)."""
        kind, _ = parse_decoder(decoder)
        model = self.teacher if kind == "teacher" else self.consistency
        if model is None:
            raise ValueError(f"decoder {decoder!r} needs a {'teacher' if kind == 'teacher' else 'consistency'} "
                             "checkpoint")
        return model

    def guided(self, knobs: DecodeKnobs) -> bool:
        """Whether the (loaded) consistency decoder runs posterior guidance with these knobs."""
        cfg = self.diffusion_model("cm1").net.cfg
        return knobs.guidance > 0 and knobs.guidance_steps > 0 and _start_sigma(knobs, cfg) > cfg.sigma_min

    @torch.no_grad()
    def refine(self, est: torch.Tensor, snr_db: torch.Tensor | float, decoder: str, noise, knobs: DecodeKnobs,
               post=None) -> torch.Tensor:
        """The diffusion decoders' part: JSCC estimate ``est`` ``[B, 3, H, W]`` in [0, 1] -> image in [0, 1].

        ``noise(i)``: standard normal ``[B, 3, H, W]`` of draw ``i`` (0: the start, 1, 2, ...: the
        consistency sampler's re-noising); ``post``: the guidance correction (``_guidance``) or None.
        """
        kind, n = parse_decoder(decoder)
        model = self.diffusion_model(decoder)
        B = est.shape[0]
        snr = torch.as_tensor(snr_db, dtype=torch.float32).expand(B)
        cond = est * 2.0 - 1.0
        cfg = model.net.cfg
        denoise = lambda x, s: model(x, s, cond, snr)  # noqa: E731
        if kind == "teacher":
            sig = karras_sigmas(self.teacher_steps, cfg.sigma_min, cfg.sigma_max)
            x0 = sample_heun(denoise, noise(0).to(est.device) * sig[0], sig)
        else:
            start = _start_sigma(knobs, cfg)
            if start <= cfg.sigma_min:
                return est  # SDEdit from (almost) no noise: the JSCC estimate itself
            sig = consistency_sigmas(n, cfg.sigma_min, min(start, cfg.sigma_max))
            # SDEdit start: the JSCC estimate (residual 0, or the estimate itself) plus noise at sig[0]
            origin = torch.zeros_like(cond) if (cfg.residual or not knobs.start_sigma) else cond
            x = origin + noise(0).to(est.device) * sig[0]
            x0 = sample_consistency(denoise, x, sig, None, cfg.sigma_min, post=post, noise=noise)
        return ((image_from_sample(x0, cond, cfg.residual) + 1.0) / 2.0).clamp(0, 1)

    def _guidance(self, y, nv, snr_db, size, cond, cfg, knobs: DecodeKnobs):
        """``post(x0, sigma)`` for :func:`sample_consistency`: K guided steps through the frozen encoder.

        Guidance needs autograd: it runs outside ``torch.inference_mode`` (a caller's inference
        tensors are copied into normal ones first)."""
        self.jscc.requires_grad_(False)
        with torch.inference_mode(False):
            y, nv, cond = y.clone(), nv.clone(), cond.clone()
            snr = torch.as_tensor(snr_db, dtype=torch.float32).clone()

            def encode(sample: torch.Tensor) -> torch.Tensor:
                img = (image_from_sample(sample, cond, cfg.residual) + 1.0) / 2.0
                return self.jscc.encode(img, snr)
            residual = measurement_residual(encode, y, nv)
            anchor = torch.zeros_like(cond) if cfg.residual else cond  # the JSCC estimate in sample space

        def post(x0: torch.Tensor, sigma: float) -> torch.Tensor:
            with torch.inference_mode(False):
                return guide(x0.clone(), residual, posterior_tau2(sigma, cfg.sigma_data), knobs.guidance_steps,
                             knobs.guidance, anchor, knobs.anchor)
        return post
