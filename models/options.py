"""Options of a training run (torch-free, so the CLI can build its parser without torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["TrainOptions", "DEFAULT_CIFAR10"]

# ../shared/data/cifar10 relative to the repository root (models/ lives one level below it).
DEFAULT_CIFAR10 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10"


@dataclass
class TrainOptions:
    stage: str                       # jscc | teacher | consistency | classifier
    out: str                         # run directory
    data: str = str(DEFAULT_CIFAR10)  # CIFAR-10 folder (train.npz/test.npz), or image folder(s), comma-separated
    eval_data: str = ""              # image folder(s) to evaluate on (default: CIFAR-10 test / the training folders)
    crop: int = 0                    # random crop size for image folders (0: 64); CIFAR-10 uses whole images
    ratio: str = "1/6"               # k/n; a comma-separated list (1/6,1/12,...) trains one rate-adaptive model
    channels: str = ""               # override the preset's JSCC widths, e.g. "32,64,128" (architecture studies)
    blocks: int = 0                  # override the preset's residual blocks per level (0: preset)
    gdn: int = -1                    # override the preset's GDN choice (1 on, 0 off, -1 preset)
    amp: str = "fp32"                # fp32 | bf16 (CPU autocast; needs avx512_bf16/amx to pay off)
    guard: float = 4.0               # collapse guard: roll back when the smoothed loss exceeds this x its best (0: off)
    guard_every: int = 200           # steps between the guard's in-memory snapshots
    preset: str = "cpu"              # cpu | gpu | tiny
    steps: int = 8000
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    lr_min_frac: float = 0.02        # cosine decays to lr * lr_min_frac at the last step
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    seed: int = 0
    threads: int = 1
    device: str = "cpu"              # cpu | cuda | auto (cuda when available); random numbers stay on the CPU
    ckpt_minutes: float = 5.0
    eval_every: int = 1000
    eval_images: int = 1000
    log_every: int = 50
    resume: bool = False
    synthetic: int = 0               # >0: train/eval on this many synthetic images (tests, smoke runs)
    crop_pad: int = 0
    p_fading: float = 0.3
    p_erasure: float = 0.2
    jscc: str = ""                   # frozen JSCC checkpoint (teacher/consistency stages)
    teacher: str = ""                # teacher checkpoint (consistency distillation)
    init: str = ""                   # warm start: weights of this checkpoint (same kind and config), not its state
    rewarm: int = 0                  # on --resume: ramp the lr up again over this many steps (use when
                                     # --steps grows: Adam's moments are tuned to the old, small lr)
    max_minutes: float = 0.0         # stop (after saving) once this wall time is spent; 0 = no limit
    stop_at: int = 0                 # stop (after saving) at this step, to --resume later; 0 = run to --steps
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "threads", "eval_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"--device must be cpu, cuda or auto, got {self.device!r}")
        if self.amp not in ("fp32", "bf16"):
            raise ValueError(f"--amp must be fp32 or bf16, got {self.amp!r}")
        if self.crop < 0:
            raise ValueError(f"--crop must be >= 0, got {self.crop}")
        if self.guard < 0 or (0 < self.guard <= 1):
            raise ValueError(f"--guard must be 0 (off) or > 1, got {self.guard}")

    @property
    def ratios(self) -> list[str]:
        """The ratios of ``ratio`` (one, or several for a rate-adaptive model), largest first."""
        from fractions import Fraction
        parts = [r.strip() for r in str(self.ratio).split(",") if r.strip()]
        if not parts:
            raise ValueError("--ratio is empty")
        try:
            return [str(r) for r in sorted({Fraction(p) for p in parts}, reverse=True)]
        except (ValueError, ZeroDivisionError) as e:
            raise ValueError(f"--ratio: cannot parse {self.ratio!r} ({e})") from None
