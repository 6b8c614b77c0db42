"""Model kinds a checkpoint can hold: ``kind -> (config class, constructor)``.

Imported lazily by ``checkpoint.load_model`` so model modules stay free to import the
checkpoint module.
"""

from __future__ import annotations

from .checkpoint import register_model
from .classifier import Classifier
from .config import ClassifierConfig, JSCCConfig, UNetConfig
from .consistency import ConsistencyFunction
from .edm import EDMDenoiser
from .jscc import JSCC
from .unet import UNet

register_model("jscc", JSCCConfig, JSCC)


def _teacher(cfg: UNetConfig) -> EDMDenoiser:
    return EDMDenoiser(UNet(cfg), cfg.sigma_data)


def _consistency(cfg: UNetConfig) -> ConsistencyFunction:
    return ConsistencyFunction(UNet(cfg), cfg.sigma_data, cfg.sigma_min)


register_model("teacher", UNetConfig, _teacher)
register_model("consistency", UNetConfig, _consistency)
register_model("classifier", ClassifierConfig, Classifier)
