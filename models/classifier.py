"""A small CIFAR-10 ResNet used only for evaluation: accuracy on reconstructed images (the
machine-centric metric) and its penultimate features for a Fréchet distance.

``Classifier(cfg)(x) -> logits [B, 10]``; ``features(x) -> [B, cfg.channels[-1]]``.
Input: float ``[B, 3, H, W]`` in [0, 1] (any size: global average pooling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ClassifierConfig

__all__ = ["Classifier"]

# CIFAR-10 training-set channel statistics (RGB, [0, 1] scale).
_MEAN = (0.4914, 0.4822, 0.4465)
_STD = (0.2470, 0.2435, 0.2616)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.skip(x) + self.bn2(self.conv2(h)))


class Classifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU())
        layers, c = [], ch[0]
        for i, co in enumerate(ch):
            for j in range(cfg.blocks):
                layers.append(_Block(c, co, 2 if (i > 0 and j == 0) else 1))
                c = co
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, cfg.num_classes)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, channels[-1]]`` (after global average pooling)."""
        h = self.layers(self.stem((x - self.mean) / self.std))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
