"""Perceptual metrics without a downloaded network: NIQE (shipped pristine model) and the
radially averaged log power spectrum distance, on known behaviour."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from semcom.models.perceptual import PRISTINE_PATH, load_pristine, niqe, spectrum_distance


@pytest.fixture(scope="module")
def photo():
    from PIL import Image

    from semcom.baseline.natural_images import _sample_dir

    with Image.open(_sample_dir() / "grace_hopper.jpg") as im:
        return np.asarray(im.convert("RGB"))[:384, :384]


def _blur(img, s):
    return np.stack([gaussian_filter(img[..., c].astype(float), s) for c in range(3)], -1).clip(0, 255).astype(np.uint8)


def _noise(img, sd):
    return (img + np.random.default_rng(0).normal(0, sd, img.shape)).clip(0, 255).astype(np.uint8)


def test_shipped_pristine_model_is_valid():
    mu, cov = load_pristine()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > -1e-9
    assert "train" in __import__("json").loads(PRISTINE_PATH.read_text())["source"]


def test_niqe_rises_with_blur_and_with_noise(photo):
    base = niqe(photo)
    assert niqe(_blur(photo, 1.5)) > base + 2 < niqe(_blur(photo, 3.0)) and niqe(_blur(photo, 3.0)) > niqe(_blur(photo, 1.5))
    assert niqe(_noise(photo, 12)) > base + 2


def test_spectrum_distance_signs(photo):
    assert spectrum_distance(photo, photo)["spec_abs"] == 0.0
    b = spectrum_distance(_blur(photo, 2.0), photo)
    n = spectrum_distance(_noise(photo, 15), photo)
    assert b["spec_high"] < -10 and b["spec_high"] < b["spec_mid"] < b["spec_low"] + 1  # blur: missing high band
    assert n["spec_high"] > 3 and abs(n["spec_low"]) < 1                                  # noise: excess high band
    with pytest.raises(ValueError, match="sizes differ"):
        spectrum_distance(photo[:100], photo)


def test_niqe_needs_a_patch():
    with pytest.raises(ValueError, match="smaller than one 96x96 patch"):
        niqe(np.zeros((50, 50, 3), np.uint8))
