"""Perceptual image metrics that need no downloaded network (numpy + scipy only).

* :func:`spectrum_distance`: the radially averaged log power spectrum of a reconstruction
  against the original's, as a signed mean difference (dB) in three radial bands of the
  normalised frequency: low (0-0.1 cycles/pixel), mid (0.1-0.25) and high (0.25-0.5). Blur
  shows as negative high-band values (missing energy), speckle as positive ones (excess);
  :func:`spectrum_distance` also gives the mean absolute difference per band.
* :func:`niqe`: the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik 2013), a
  no-reference distance (lower = more natural) between a multivariate Gaussian of natural-scene
  statistics features of the image's sharpest patches and the same Gaussian fitted on pristine
  photos. The pristine model shipped here (``checkpoints/niqe_pristine.json``) was fitted with
  :func:`fit_pristine` on BSDS500 ``train/`` (``python -m semcom.models.perceptual fit DIR``).
  It is this implementation's NIQE, computed like the paper's (96 x 96 patches, 36 features at
  two scales, sharpness-selected pristine patches), not the MATLAB reference's exact numbers.

Images: uint8 or float ``[H, W, 3]`` RGB (float in [0, 1]) or ``[H, W]`` grey.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["spectrum_distance", "radial_log_spectrum", "niqe", "niqe_features", "fit_pristine",
           "load_pristine", "BANDS", "PRISTINE_PATH"]

BANDS = {"low": (0.0, 0.1), "mid": (0.1, 0.25), "high": (0.25, 0.5)}
PRISTINE_PATH = Path(__file__).resolve().parent / "checkpoints" / "niqe_pristine.json"
_PATCH = 96
_SHARPNESS_KEEP = 0.75  # pristine fit: keep patches with sharpness above this fraction of the image's peak


def _grey(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    if a.ndim != 2:
        raise ValueError(f"expected an image [H, W, 3] or [H, W], got shape {np.shape(img)}")
    return a * 255.0


# ---------------------------------------------------------------------- spectrum
def radial_log_spectrum(img: np.ndarray, n_bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(frequency [n_bins] in cycles/pixel, mean log10 power [n_bins])`` of the grey image.

    A Hann window removes the border discontinuity; bins are equal-width in radius up to 0.5.
    """
    g = _grey(img)
    g = g - g.mean()
    H, W = g.shape
    win = np.outer(np.hanning(H), np.hanning(W))
    P = np.abs(np.fft.fftshift(np.fft.fft2(g * win))) ** 2 / (H * W)
    fy = np.fft.fftshift(np.fft.fftfreq(H))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(W))[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    edges = np.linspace(0, 0.5, n_bins + 1)
    idx = np.clip(np.digitize(r.ravel(), edges) - 1, 0, n_bins)
    logp = np.log10(P.ravel() + 1e-10)
    sums = np.bincount(idx, logp, minlength=n_bins + 1)[:n_bins]
    cnt = np.bincount(idx, minlength=n_bins + 1)[:n_bins]
    return 0.5 * (edges[1:] + edges[:-1]), sums / np.maximum(cnt, 1)


def spectrum_distance(img: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Log power spectrum of ``img`` minus ``ref``'s, in dB, per band: ``spec_<band>`` (signed
    mean: < 0 missing energy / blur, > 0 excess / noise) and ``spec_abs_<band>`` (mean |.|),
    plus ``spec_abs`` over all bands."""
    if np.shape(img)[:2] != np.shape(ref)[:2]:
        raise ValueError(f"spectrum_distance: sizes differ, {np.shape(img)} vs {np.shape(ref)}")
    f, a = radial_log_spectrum(img)
    _, b = radial_log_spectrum(ref)
    d = 10.0 * (a - b)  # dB
    out: dict[str, float] = {}
    for name, (lo, hi) in BANDS.items():
        m = (f >= lo) & (f < hi)
        out[f"spec_{name}"] = float(d[m].mean())
        out[f"spec_abs_{name}"] = float(np.abs(d[m]).mean())
    out["spec_abs"] = float(np.abs(d[f > 0.0]).mean())
    return out


# ---------------------------------------------------------------------- NIQE
def _gauss_blur(g: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(g, 7.0 / 6.0, mode="nearest", truncate=3.0)


def _mscn(g: np.ndarray) -> np.ndarray:
    mu = _gauss_blur(g)
    sigma = np.sqrt(np.abs(_gauss_blur(g * g) - mu * mu))
    return (g - mu) / (sigma + 1.0), sigma


_GAMMAS = np.arange(0.2, 10.001, 0.001)


_TABLES: dict[str, Any] = {}


def _ggd_table():
    """Moment-ratio tables of the (asymmetric) generalized Gaussian over ``_GAMMAS`` (computed once)."""
    if not _TABLES:
        from scipy.special import gamma as G

        _TABLES["G"] = G
        _TABLES["ggd"] = G(1 / _GAMMAS) * G(3 / _GAMMAS) / G(2 / _GAMMAS) ** 2
        _TABLES["aggd"] = G(2 / _GAMMAS) ** 2 / (G(1 / _GAMMAS) * G(3 / _GAMMAS))
    return _TABLES["ggd"], _TABLES["G"]


def _ggd(x: np.ndarray) -> tuple[float, float]:
    r, _ = _ggd_table()
    s2 = np.mean(x * x)
    rho = s2 / (np.mean(np.abs(x)) ** 2 + 1e-12)
    a = _GAMMAS[np.argmin((r - rho) ** 2)]
    return float(a), float(np.sqrt(s2))


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    _, G = _ggd_table()
    r = _TABLES["aggd"]
    left, right = x[x < 0], x[x > 0]
    sl = np.sqrt(np.mean(left ** 2)) if left.size else 1e-6
    sr = np.sqrt(np.mean(right ** 2)) if right.size else 1e-6
    g = sl / sr
    rhat = np.mean(np.abs(x)) ** 2 / (np.mean(x * x) + 1e-12)
    rn = rhat * (g ** 3 + 1) * (g + 1) / (g * g + 1) ** 2
    a = _GAMMAS[np.argmin((r - rn) ** 2)]
    const = np.sqrt(G(1 / a) / G(3 / a))
    mean = (sr - sl) * G(2 / a) / G(1 / a) * const
    return float(a), float(mean), float(sl), float(sr)


def _patch_features(m: np.ndarray) -> list[float]:
    a, s = _ggd(m.ravel())
    feats = [a, s * s]
    for sh in ((0, 1), (1, 0), (1, 1), (1, -1)):
        prod = m * np.roll(m, sh, axis=(0, 1))
        prod = prod[1:-1, 1:-1].ravel()
        al, mean, sl, sr = _aggd(prod)
        feats += [al, mean, sl * sl, sr * sr]
    return feats


def niqe_features(img: np.ndarray, patch: int = _PATCH, select_sharp: bool = False) -> np.ndarray:
    """36 features per ``patch x patch`` block (18 at full and 18 at half resolution): ``[n, 36]``.

    ``select_sharp`` keeps only patches whose mean local deviation exceeds 75 % of the image's
    sharpest (how the pristine model is fitted)."""
    g = _grey(img)
    H, W = (g.shape[0] // patch) * patch, (g.shape[1] // patch) * patch
    if H == 0 or W == 0:
        raise ValueError(f"niqe: image {g.shape} is smaller than one {patch}x{patch} patch")
    g = g[:H, :W]
    from scipy.ndimage import zoom

    half = zoom(g, 0.5, order=3)
    m1, s1 = _mscn(g)
    m2, _ = _mscn(half)
    rows, sharp = [], []
    p2 = patch // 2
    for i in range(0, H, patch):
        for j in range(0, W, patch):
            f = _patch_features(m1[i:i + patch, j:j + patch])
            f += _patch_features(m2[i // 2:i // 2 + p2, j // 2:j // 2 + p2])
            rows.append(f)
            sharp.append(s1[i:i + patch, j:j + patch].mean())
    feats = np.array(rows)
    if select_sharp:
        sharp = np.array(sharp)
        feats = feats[sharp > _SHARPNESS_KEEP * sharp.max()]
    return feats


def fit_pristine(images: list[np.ndarray]) -> dict[str, Any]:
    """Mean ``[36]`` and covariance ``[36, 36]`` of sharp-patch features over ``images``."""
    feats = np.concatenate([niqe_features(im, select_sharp=True) for im in images])
    feats = feats[np.all(np.isfinite(feats), axis=1)]
    return {"mean": feats.mean(0).tolist(), "cov": np.cov(feats, rowvar=False).tolist(),
            "patches": int(len(feats)), "images": len(images), "patch": _PATCH}


def load_pristine(path: str | Path = PRISTINE_PATH) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NIQE pristine model {path}: not found (fit one: python -m semcom.models.perceptual "
                                "fit BSDS500/train --out PATH)")
    d = json.loads(path.read_text())
    mu, cov = np.asarray(d["mean"], np.float64), np.asarray(d["cov"], np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36) or not (np.isfinite(mu).all() and np.isfinite(cov).all()):
        raise ValueError(f"NIQE pristine model {path}: expected a finite mean [36] and cov [36, 36]")
    return mu, cov


_PRISTINE_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def niqe(img: np.ndarray, pristine: str | Path = PRISTINE_PATH) -> float:
    """NIQE of ``img`` (lower is more natural); needs at least one 96 x 96 patch."""
    key = str(pristine)
    if key not in _PRISTINE_CACHE:
        _PRISTINE_CACHE[key] = load_pristine(pristine)
    mu_p, cov_p = _PRISTINE_CACHE[key]
    f = niqe_features(img)
    f = f[np.all(np.isfinite(f), axis=1)]
    mu = f.mean(0)
    cov = np.cov(f, rowvar=False) if len(f) > 1 else np.zeros((36, 36))
    d = mu_p - mu
    return float(math.sqrt(max(0.0, d @ np.linalg.pinv((cov_p + cov) / 2.0) @ d)))


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m semcom.models.perceptual")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the NIQE pristine model on a folder of photos")
    f.add_argument("folder")
    f.add_argument("--out", default=str(PRISTINE_PATH))
    a = p.parse_args(argv)
    from PIL import Image

    files = sorted(q for q in Path(a.folder).rglob("*") if q.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"{a.folder}: no images")
    images = []
    for q in files:
        with Image.open(q) as im:
            images.append(np.asarray(im.convert("RGB")))
    model = fit_pristine(images)
    model["source"] = f"{Path(a.folder).name} ({len(files)} images)"
    Path(a.out).write_text(json.dumps(model) + "\n")
    print(f"{a.out}: {model['patches']} patches from {len(files)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
