"""Image data: the CIFAR-10 arrays in ``../shared/data/cifar10`` and folders of PNG/JPEG images.

Images are float32 tensors ``[3, H, W]`` (batches ``[B, 3, H, W]``) in [0, 1], RGB.
CIFAR-10 files (see ``../shared/data/README.md``): ``{train,test}.npz`` with ``x`` uint8
``[N, 32, 32, 3]`` and ``y`` uint8 ``[N]``; rows are sorted by class, so always shuffle.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .options import DEFAULT_CIFAR10

__all__ = ["DEFAULT_CIFAR10", "load_cifar10", "load_image_folder", "augment", "BatchSampler", "synthetic_images",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_cifar10(root: str | os.PathLike = DEFAULT_CIFAR10, split: str = "train",
                 limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``root/{split}.npz`` -> ``(x uint8 [N, 3, 32, 32], y int64 [N])``.

    ``limit`` keeps a class-balanced, deterministic subset of the first ``limit`` images of a
    fixed shuffle (the file is class-sorted). Raises ``FileNotFoundError``/``ValueError``
    naming the file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(root) / f"{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 file not found: {path} (pass --data pointing at the folder "
                                "holding train.npz/test.npz)")
    try:
        with np.load(path) as d:
            x, y = d["x"], d["y"]
    except (KeyError, OSError, ValueError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 npz with arrays x and y ({e})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3 or len(y) != len(x):
        raise ValueError(f"{path}: expected x uint8 [N, H, W, 3] and y [N], got x {x.dtype} {x.shape}, "
                         f"y {y.shape}")
    order = np.random.default_rng(0).permutation(len(x))
    if limit is not None:
        order = order[:limit]
    xt = torch.from_numpy(np.ascontiguousarray(x[order].transpose(0, 3, 1, 2)))
    return xt, torch.from_numpy(y[order].astype(np.int64))


def load_image_folder(root: str | os.PathLike, limit: int | None = None) -> list[torch.Tensor]:
    """All PNG/JPEG files under ``root`` (sorted, recursive) as float ``[3, H, W]`` in [0, 1]."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading image folders needs Pillow (pip install pillow)") from None
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{root}: no {'/'.join(IMAGE_SUFFIXES)} images found")
    out = []
    for p in files[:limit]:
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise ValueError(f"{p}: cannot read image ({e})") from None
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0)
    return out


def augment(x: torch.Tensor, generator: torch.Generator | None = None, flip: bool = True,
            crop_pad: int = 0) -> torch.Tensor:
    """Random horizontal flip and random crop (after reflect padding) of a batch ``[B, C, H, W]``."""
    B, _, H, W = x.shape
    if flip:
        m = torch.rand(B, generator=generator) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    if crop_pad > 0:
        xp = F.pad(x, (crop_pad,) * 4, mode="reflect")
        dy = torch.randint(0, 2 * crop_pad + 1, (B,), generator=generator)
        dx = torch.randint(0, 2 * crop_pad + 1, (B,), generator=generator)
        rows = (dy[:, None] + torch.arange(H))[:, None, :, None]  # [B, 1, H, 1]
        cols = (dx[:, None] + torch.arange(W))[:, None, None, :]  # [B, 1, 1, W]
        x = xp[torch.arange(B)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    return x


class BatchSampler:
    """Endless shuffled batches of float images in [0, 1] from a uint8 ``[N, 3, H, W]`` tensor.

    Deterministic given the generator; epochs reshuffle. ``crop`` takes random ``crop x crop``
    patches (for folders of large images stacked to one size, or to train on patches).
    """

    def __init__(self, images: torch.Tensor, batch: int, generator: torch.Generator,
                 flip: bool = True, crop_pad: int = 0, labels: torch.Tensor | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"BatchSampler expects uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        if batch <= 0 or batch > len(images):
            raise ValueError(f"batch must be in 1..{len(images)}, got {batch}")
        self.images, self.labels, self.batch, self.g = images, labels, batch, generator
        self.flip, self.crop_pad = flip, crop_pad
        self._order = torch.randperm(len(images), generator=generator)
        self._pos = 0
        self.epoch = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(x float [B, 3, H, W] in [0, 1], y int64 [B] or None)``."""
        if self._pos + self.batch > len(self._order):
            self._order = torch.randperm(len(self.images), generator=self.g)
            self._pos = 0
            self.epoch += 1
        idx = self._order[self._pos: self._pos + self.batch]
        self._pos += self.batch
        x = augment(self.images[idx].float() / 255.0, self.g, self.flip, self.crop_pad)
        return x, (self.labels[idx] if self.labels is not None else None)

    def state(self) -> tuple[torch.Tensor, int, int]:
        """``(order int64 [N], position, epoch)``: with the generator, all a resume needs."""
        return self._order, self._pos, self.epoch

    def set_state(self, order: torch.Tensor, pos: int, epoch: int) -> None:
        """Restore :meth:`state` (the next batch is then the one the saved run would have drawn)."""
        if order.shape != (len(self.images),) or not 0 <= pos <= len(order):
            raise ValueError(f"sampler state does not fit {len(self.images)} images "
                             f"(order {tuple(order.shape)}, position {pos})")
        self._order, self._pos, self.epoch = order.to(torch.int64), int(pos), int(epoch)


def synthetic_images(n: int, height: int = 32, width: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` smooth random colour images, uint8 ``[n, 3, height, width]`` (tests, smoke runs).

    Bilinearly upsampled 4x4 noise plus a random colour gradient: structured enough that a
    codec can learn them, needing no data files.
    """
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    img = F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
    ramp = torch.linspace(0, 1, width)[None, None, None, :] * (torch.rand(n, 3, 1, 1, generator=g) - 0.5)
    return ((img + ramp).clamp(0, 1) * 255).round().to(torch.uint8)
