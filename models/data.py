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

__all__ = ["DEFAULT_CIFAR10", "load_cifar10", "load_image_folder", "load_image_folders_uint8", "augment",
           "BatchSampler", "CropSampler", "synthetic_images", "IMAGE_SUFFIXES"]

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


def load_image_folder(root: str | os.PathLike, limit: int | None = None, uint8: bool = False) -> list[torch.Tensor]:
    """All PNG/JPEG files under ``root`` (sorted, recursive) as float ``[3, H, W]`` in [0, 1]
    (``uint8=True``: uint8 ``[3, H, W]``)."""
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
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1)
        out.append(t.contiguous() if uint8 else t.float() / 255.0)
    return out


def load_image_folders_uint8(roots: str | os.PathLike | list, limit: int | None = None) -> list[torch.Tensor]:
    """Every PNG/JPEG under one or more folders (a list, or a comma-separated string), decoded once.

    Returns uint8 ``[3, H, W]`` tensors (sizes may differ), in sorted order per folder. Decoding
    up front keeps JPEG decoding off the training loop (a 481x321 photo is 0.46 MB as uint8).
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [r for r in str(roots).split(",") if r]
    out: list[torch.Tensor] = []
    for root in roots:
        for img in load_image_folder(root, uint8=True):
            out.append(img)
    return out[:limit]


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


class CropSampler:
    """Endless batches of random ``crop x crop`` patches (random flips) from images of any size.

    ``images``: list of uint8 ``[3, H, W]`` (each at least ``crop`` on both sides, else it is
    reflect-padded once at construction). Each batch takes the next ``batch`` images of a
    shuffled order (reshuffled per epoch, an epoch being one pass over the images) and one
    random crop of each. Same interface as :class:`BatchSampler` (``next``, ``state``,
    ``set_state``, ``epoch``); deterministic given the generator.
    """

    def __init__(self, images: list[torch.Tensor], batch: int, crop: int, generator: torch.Generator,
                 flip: bool = True):
        if not images:
            raise ValueError("CropSampler: no images")
        if crop <= 0:
            raise ValueError(f"crop must be positive, got {crop}")
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        self.crop, self.batch, self.g, self.flip = crop, batch, generator, flip
        self.images = []
        for im in images:
            if im.dtype != torch.uint8 or im.dim() != 3 or im.shape[0] != 3:
                raise ValueError(f"CropSampler expects uint8 [3, H, W] images, got {im.dtype} {tuple(im.shape)}")
            ph, pw = max(0, crop - im.shape[1]), max(0, crop - im.shape[2])
            if ph or pw:
                im = F.pad(im[None].float(), (0, pw, 0, ph), mode="replicate")[0].to(torch.uint8)
            self.images.append(im)
        self._order = torch.randperm(len(self.images), generator=generator)
        self._pos = 0
        self.epoch = 0

    def next(self) -> tuple[torch.Tensor, None]:
        """``(x float [batch, 3, crop, crop] in [0, 1], None)``."""
        idx = []
        while len(idx) < self.batch:
            if self._pos >= len(self._order):
                self._order = torch.randperm(len(self.images), generator=self.g)
                self._pos = 0
                self.epoch += 1
            idx.append(int(self._order[self._pos]))
            self._pos += 1
        c = self.crop
        out = torch.empty(self.batch, 3, c, c, dtype=torch.uint8)
        for j, i in enumerate(idx):
            im = self.images[i]
            y0 = int(torch.randint(0, im.shape[1] - c + 1, (1,), generator=self.g))
            x0 = int(torch.randint(0, im.shape[2] - c + 1, (1,), generator=self.g))
            out[j] = im[:, y0: y0 + c, x0: x0 + c]
        x = out.float() / 255.0
        if self.flip:
            m = torch.rand(self.batch, generator=self.g) < 0.5
            x = torch.where(m[:, None, None, None], x.flip(-1), x)
        return x, None

    def state(self) -> tuple[torch.Tensor, int, int]:
        return self._order, self._pos, self.epoch

    def set_state(self, order: torch.Tensor, pos: int, epoch: int) -> None:
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
