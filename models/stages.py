"""What each training stage trains, its loss and its evaluation (the loop is in ``train.py``).

A stage exposes: ``kind`` and ``config`` (for checkpoints), ``model`` (trainable module),
``loss(generator, step) -> scalar``, ``evaluate(ema_model) -> {metric: value}``,
``key_metric`` (higher is better; picks ``best.safetensors``), ``export(ema) -> module`` (what
a shipped checkpoint holds) and ``epoch`` (fractional epochs seen).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .channel import Channel
from .checkpoint import load_model, read_metadata, read_raw_metadata
from .classifier import Classifier
from .config import ChannelConfig, JSCCConfig, classifier_preset, config_from_dict, jscc_preset, unet_preset
from .consistency import ConsistencyFunction, consistency_distillation_loss
from .data import BatchSampler, CropSampler, load_cifar10, load_image_folders_uint8, synthetic_images
from .edm import EDMDenoiser, diffusion_target, edm_loss, image_from_sample
from .jscc import JSCC
from .metrics import psnr
from .samplers import consistency_sigmas, karras_sigmas, sample_consistency, sample_heun
from .unet import UNet

__all__ = ["build_stage", "JSCCStage", "TeacherStage", "ConsistencyStage", "ClassifierStage", "load_images", "EVAL_SNRS_DB"]

EVAL_SNRS_DB = (0.0, 5.0, 10.0, 15.0, 20.0)


def is_cifar_folder(path: str) -> bool:
    """True when ``path`` is a CIFAR-10 folder (holds ``train.npz``), else it names image folder(s)."""
    return (Path(path) / "train.npz").is_file()


def load_images(opts, g: torch.Generator):
    """Training sampler and a fixed evaluation set for ``opts``.

    CIFAR-10 (``opts.data`` holds ``train.npz``): whole 32x32 images, evaluation on the test
    split as uint8 ``[N, 3, 32, 32]``. Image folders (comma-separated): decoded once, random
    ``opts.crop`` crops (default 64) with flips; evaluation on whole images of
    ``opts.eval_data`` (default: the training folders) as a list of uint8 ``[3, H, W]``.
    """
    if not opts.synthetic and not is_cifar_folder(opts.data):
        train = load_image_folders_uint8(opts.data)
        evals = load_image_folders_uint8(opts.eval_data or opts.data, limit=opts.eval_images)
        return CropSampler(train, opts.batch, opts.crop or 64, g), evals, None
    if opts.synthetic:
        x = synthetic_images(opts.synthetic, seed=opts.seed)
        y = x.float().mean(dim=(2, 3)).argmax(dim=1)  # a learnable label: the dominant colour
        return (BatchSampler(x, min(opts.batch, len(x)), g, crop_pad=opts.crop_pad, labels=y),
                x[: opts.eval_images], y[: opts.eval_images])
    x, y = load_cifar10(opts.data, "train")
    xt, yt = load_cifar10(opts.data, "test", limit=opts.eval_images)
    return BatchSampler(x, opts.batch, g, crop_pad=opts.crop_pad, labels=y), xt, yt


def autocast(amp: str):
    """The training precision context: bf16 CPU/GPU autocast or nothing (fp32)."""
    if amp == "bf16":
        return torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _batches(images, batch: int):
    """uint8 ``[N, 3, H, W]`` tensor, or a list of ``[3, H, W]`` of mixed sizes -> float batches."""
    if isinstance(images, torch.Tensor):
        for i in range(0, len(images), batch):
            yield images[i: i + batch].float() / 255.0
        return
    by_size: dict[tuple[int, int], list[torch.Tensor]] = {}
    for im in images:
        by_size.setdefault(tuple(im.shape[-2:]), []).append(im)
    for group in by_size.values():
        for i in range(0, len(group), max(1, batch // 16)):
            yield torch.stack(group[i: i + max(1, batch // 16)]).float() / 255.0


@torch.no_grad()
def jscc_psnr(model: JSCC, images, snr_db: float, fading: bool = False,
              erasures: bool = False, batch: int = 250, seed: int = 1,
              channel_cfg: ChannelConfig | None = None, ratio: str | None = None) -> float:
    """Mean per-image PSNR (dB) of ``model`` on uint8 ``images`` (a batch tensor or a list of
    differently sized images) through a seeded channel, at ``ratio`` (default: the model's)."""
    channel = Channel(channel_cfg or ChannelConfig())
    g = torch.Generator().manual_seed(seed)
    vals = []
    for x in _batches(images, batch):
        x = x.to(_device(model))
        out = model(x, channel, torch.full((len(x),), float(snr_db)), g, ratio=ratio, fading=fading,
                    erasures=erasures)
        vals.append(psnr(out, x).cpu())
    return torch.cat(vals).mean().item()


def _centre_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of ``[3, H, W]`` (smaller sides are kept whole, then replicate-padded)."""
    H, W = img.shape[-2:]
    y0, x0 = max(0, (H - size) // 2), max(0, (W - size) // 2)
    out = img[:, y0: y0 + size, x0: x0 + size]
    if out.shape[-2:] != (size, size):
        out = F.pad(out[None].float(), (0, size - out.shape[-1], 0, size - out.shape[-2]),
                    mode="replicate")[0].to(img.dtype)
    return out


class JSCCStage:
    """MSE training of the SNR-adaptive JSCC through the mixed training channel."""

    kind = "jscc"
    key_metric = "psnr_awgn_10"

    def _init_config(self, path: str, preset: JSCCConfig) -> JSCCConfig:
        """The config of ``--init``'s checkpoint when it is a rate-adaptive JSCC serving every training ratio
        (e.g. specialising the 1/6..1/48 network to 1/24 and 1/48); else ``preset`` (checked on load)."""
        meta = read_metadata(path)
        if meta["kind"] != "jscc" or not meta["config"].get("base_ratio"):
            return preset
        cfg = config_from_dict(JSCCConfig, meta["config"], "jscc")
        bad = [r for r in self.ratios if Fraction(r) > Fraction(cfg.base_ratio)]
        if bad:
            raise ValueError(f"--init {path}: a rate-adaptive model for ratios up to {cfg.base_ratio} cannot "
                             f"train at {', '.join(bad)}")
        return dataclasses.replace(cfg, ratio=cfg.base_ratio)

    def __init__(self, opts, g: torch.Generator):
        self.opts = opts
        self.ratios = opts.ratios
        if len(self.ratios) > 1:  # one rate-adaptive network; the config names the largest ratio
            self.config = jscc_preset(opts.preset, self.ratios[0], base_ratio=self.ratios[0])
        else:
            self.config = jscc_preset(opts.preset, self.ratios[0])
        overrides: dict[str, Any] = {}
        if opts.channels:
            overrides["channels"] = tuple(int(c) for c in opts.channels.split(","))
        if opts.blocks:
            overrides["blocks"] = opts.blocks
        if opts.gdn >= 0:
            overrides["gdn"] = bool(opts.gdn)
        if overrides:
            self.config = dataclasses.replace(self.config, **overrides)
        if opts.init:  # a warm start keeps the architecture of its checkpoint
            self.config = self._init_config(opts.init, self.config)
        self.model = JSCC(self.config)
        self.channel = Channel(ChannelConfig(p_fading=opts.p_fading, p_erasure_image=opts.p_erasure))
        self.sampler, self.eval_x, _ = load_images(opts, g)

    @property
    def epoch(self) -> float:
        return self.sampler.epoch + self.sampler._pos / len(self.sampler.images)

    def ratio_at(self, step: int) -> str:
        """A rate-adaptive run trains its ratios in turn, one per step."""
        return self.ratios[step % len(self.ratios)]

    def loss(self, g: torch.Generator, step: int) -> torch.Tensor:
        x, _ = self.sampler.next()
        x = x.to(_device(self.model))
        if self.model.training and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        snr = self.channel.sample_snr(len(x), g)
        ratio = self.ratio_at(step) if len(self.ratios) > 1 else None
        with autocast(self.opts.amp):
            out = self.model(x, self.channel, snr, g, ratio=ratio, fading=None, erasures=None)
        return (out.float() - x).square().mean()

    def evaluate(self, ema: JSCC) -> dict[str, float]:
        if len(self.ratios) > 1:  # per ratio; the key metric is their mean at AWGN 10 dB
            m: dict[str, Any] = {}
            for r in self.ratios:
                tag = r.replace("/", "_")
                for s in (0.0, 10.0, 20.0):
                    m[f"psnr_{tag}_awgn_{s:g}"] = jscc_psnr(ema, self.eval_x, s, ratio=r)
                m[f"psnr_{tag}_fading_10"] = jscc_psnr(ema, self.eval_x, 10.0, fading=True, ratio=r)
            m["psnr_awgn_10"] = sum(m[f"psnr_{r.replace('/', '_')}_awgn_10"] for r in self.ratios) / len(self.ratios)
            return m
        m = {f"psnr_awgn_{s:g}": jscc_psnr(ema, self.eval_x, s) for s in EVAL_SNRS_DB}
        m["psnr_fading_10"] = jscc_psnr(ema, self.eval_x, 10.0, fading=True)
        m["psnr_fading_erasure_10"] = jscc_psnr(
            ema, self.eval_x, 10.0, fading=True, erasures=True,
            channel_cfg=ChannelConfig(p_erasure_frame=0.25))
        return m

    def export(self, ema: JSCC) -> JSCC:
        return ema


class _DiffusionStage:
    """Shared by the teacher and consistency stages: a frozen JSCC supplies the conditioning."""

    sample_eval_images = 64  # sampling is expensive on CPU: evaluate on a small fixed subset
    sample_eval_images_folder = 16  # of photos (128 x 128 centre crops)

    def __init__(self, opts, g: torch.Generator):
        if not opts.jscc:
            raise ValueError(f"stage {opts.stage} needs --jscc CHECKPOINT (a trained JSCC model)")
        self.opts = opts
        self.jscc, self.jscc_cfg, _ = load_model(opts.jscc, kind="jscc")
        self.jscc.requires_grad_(False)
        # A rate-adaptive JSCC and several --ratio values: one diffusion model conditioned on the
        # estimates of each ratio in turn (one per step); it then pairs with each of them.
        self.ratios = opts.ratios if len(opts.ratios) > 1 else [self.jscc_cfg.ratio]
        if len(self.ratios) > 1 and not self.jscc_cfg.base_ratio:
            raise ValueError(f"--ratio {opts.ratio}: several ratios need a rate-adaptive JSCC checkpoint, "
                             f"{opts.jscc} is fixed at {self.jscc_cfg.ratio}")
        for r in self.ratios:
            self.jscc_cfg.with_ratio(r)  # each must fit the JSCC model
        # the pairing every saved checkpoint records (checked when a codec loads it)
        self.pairing = {"ratio": self.ratios[0], "ratios": self.ratios, "jscc": Path(opts.jscc).name,
                        "jscc_sha256": read_raw_metadata(opts.jscc).get("semcom.sha256")}
        self.channel = Channel(ChannelConfig(p_fading=opts.p_fading, p_erasure_image=opts.p_erasure))
        self.sampler, self.eval_x, _ = load_images(opts, g)
        if isinstance(self.eval_x, list):  # whole photos: a fixed set of centre crops keeps sampling affordable
            c = 2 * (opts.crop or 64)
            crops = [_centre_crop(im, c) for im in self.eval_x[: self.sample_eval_images_folder]]
            self.eval_x = torch.stack(crops)
        self._step_ratio = self.ratios[0]

    @property
    def epoch(self) -> float:
        return self.sampler.epoch + self.sampler._pos / len(self.sampler.images)

    @torch.no_grad()
    def condition(self, x: torch.Tensor, snr: torch.Tensor, g: torch.Generator, ratio: str | None = None,
                  **kw) -> torch.Tensor:
        """The JSCC estimate through the channel, scaled to [-1, 1]: ``[B, 3, H, W]``."""
        return self.jscc(x, self.channel, snr, g, ratio=ratio, **kw) * 2.0 - 1.0

    def batch(self, g: torch.Generator, step: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, _ = self.sampler.next()
        x = x.to(_device(self.jscc))
        snr = self.channel.sample_snr(len(x), g)
        ratio = self.ratios[step % len(self.ratios)]
        return x * 2.0 - 1.0, self.condition(x, snr, g, ratio=ratio, fading=None, erasures=None), snr

    def eval_set(self, snr_db: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluation images, their JSCC estimate at the last (lowest) ratio, and the SNR."""
        g = torch.Generator().manual_seed(1)
        x = (self.eval_x[: self.sample_eval_images].float() / 255.0).to(_device(self.jscc))
        snr = torch.full((len(x),), snr_db)
        return x, self.condition(x, snr, g, ratio=self.ratios[-1]), snr

    def export(self, ema):
        return ema


class TeacherStage(_DiffusionStage):
    """EDM denoiser conditioned on the JSCC estimate and the SNR."""

    kind = "teacher"
    key_metric = "neg_eval_loss"
    eval_steps = 10  # Karras/Heun steps (19 network evaluations)

    def __init__(self, opts, g: torch.Generator):
        super().__init__(opts, g)
        self.config = unet_preset(opts.preset)
        self.model = EDMDenoiser(UNet(self.config), self.config.sigma_data)

    def loss(self, g: torch.Generator, step: int) -> torch.Tensor:
        with autocast(self.opts.amp):
            x, cond, snr = self.batch(g, step)
            return edm_loss(self.model, diffusion_target(x, cond, self.config.residual), cond, snr, g).float()

    @torch.no_grad()
    def evaluate(self, ema: EDMDenoiser) -> dict[str, float]:
        m: dict[str, float] = {}
        x, cond, snr = self.eval_set(10.0)
        g = torch.Generator().manual_seed(2)
        x0 = diffusion_target(x * 2 - 1, cond, self.config.residual)
        m["neg_eval_loss"] = -sum(edm_loss(ema, x0, cond, snr, g).item() for _ in range(4)) / 4
        sig = karras_sigmas(self.eval_steps, self.config.sigma_min, self.config.sigma_max)
        noise = (torch.randn(x.shape, generator=g) * sig[0]).to(x.device)
        out = image_from_sample(sample_heun(lambda v, s: ema(v, s, cond, snr), noise, sig), cond,
                                self.config.residual)
        m["psnr_jscc_10"] = psnr((cond + 1) / 2, x).mean().item()
        m["psnr_teacher_10"] = psnr((out + 1) / 2, x).mean().item()
        return m


class ConsistencyStage(_DiffusionStage):
    """Consistency distillation of a teacher checkpoint (student initialized from the teacher)."""

    kind = "consistency"
    key_metric = "psnr_cm1_10"
    n_steps = 18          # discretization of [sigma_min, sigma_max] (CD on CIFAR-10: N = 18)
    target_decay = 0.95   # EMA of the stop-gradient target network

    def __init__(self, opts, g: torch.Generator):
        super().__init__(opts, g)
        if not opts.teacher:
            raise ValueError("stage consistency needs --teacher CHECKPOINT (a trained teacher)")
        self.teacher, self.config, _ = load_model(opts.teacher, kind="teacher")
        self.teacher.requires_grad_(False)
        self.model = ConsistencyFunction(UNet(self.config), self.config.sigma_data, self.config.sigma_min)
        self.model.net.load_state_dict(self.teacher.net.state_dict())
        self.target = copy.deepcopy(self.model).requires_grad_(False)

    def loss(self, g: torch.Generator, step: int) -> torch.Tensor:
        if step:  # the previous optimizer step is done: move the target towards the student
            with torch.no_grad():
                for pt, ps in zip(self.target.parameters(), self.model.parameters()):
                    pt.lerp_(ps, 1 - self.target_decay)
        with autocast(self.opts.amp):
            x, cond, snr = self.batch(g, step)
            x0 = diffusion_target(x, cond, self.config.residual)
            return consistency_distillation_loss(self.model, self.target, self.teacher, x0, cond, snr,
                                                 self.n_steps, self.config.sigma_max, g).float()

    @torch.no_grad()
    def evaluate(self, ema: ConsistencyFunction) -> dict[str, float]:
        m: dict[str, float] = {}
        x, cond, snr = self.eval_set(10.0)
        m["psnr_jscc_10"] = psnr((cond + 1) / 2, x).mean().item()
        for nfe in (1, 2):
            g = torch.Generator().manual_seed(2)
            sig = consistency_sigmas(nfe, self.config.sigma_min, self.config.sigma_max)
            noise = (torch.randn(x.shape, generator=g) * sig[0]).to(x.device)
            out = sample_consistency(lambda v, s: ema(v, s, cond, snr), noise, sig, g, self.config.sigma_min)
            out = image_from_sample(out, cond, self.config.residual)
            m[f"psnr_cm{nfe}_10"] = psnr((out + 1) / 2, x).mean().item()
        return m


class ClassifierStage:
    """Cross-entropy training of the evaluation classifier on clean images (flip + crop)."""

    kind = "classifier"
    key_metric = "accuracy"

    def __init__(self, opts, g: torch.Generator):
        self.config = classifier_preset(opts.preset)
        self.model = Classifier(self.config)
        self.sampler, self.eval_x, self.eval_y = load_images(opts, g)
        self.sampler.crop_pad = max(opts.crop_pad, 4)

    @property
    def epoch(self) -> float:
        return self.sampler.epoch + self.sampler._pos / len(self.sampler.images)

    def loss(self, g: torch.Generator, step: int) -> torch.Tensor:
        x, y = self.sampler.next()
        dev = _device(self.model)
        return F.cross_entropy(self.model(x.to(dev)), y.to(dev), label_smoothing=0.1)

    @torch.no_grad()
    def evaluate(self, ema: Classifier) -> dict[str, float]:
        correct = 0
        for i in range(0, len(self.eval_x), 500):
            logits = ema((self.eval_x[i: i + 500].float() / 255.0).to(_device(ema))).cpu()
            correct += (logits.argmax(1) == self.eval_y[i: i + 500]).sum().item()
        return {"accuracy": correct / len(self.eval_x)}

    def export(self, ema: Classifier) -> Classifier:
        return ema


def build_stage(opts, g: torch.Generator):
    stages = {"jscc": JSCCStage, "teacher": TeacherStage, "consistency": ConsistencyStage,
              "classifier": ClassifierStage}
    if opts.stage not in stages:
        raise ValueError(f"stage {opts.stage!r} is not available yet (have: {', '.join(stages)})")
    return stages[opts.stage](opts, g)
