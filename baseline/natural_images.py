"""A small set of large natural images made from what is installed here (no downloads).

``python -m semcom.baseline.natural_images OUT_DIR`` writes four PNGs, named width x height (sides
multiples of 8, so both JSCC strides give exactly ``k/n`` symbols per pixel value):

* ``hopper_512x600.png``: matplotlib's sample photograph ``grace_hopper.jpg`` (512 wide, 600 high)
  as shipped (decoded JPEG);
* ``hopper_768x512.png``: the same photograph resized (Lanczos) to 768 wide and cropped to the 512
  rows from row 96: 768 wide, 512 high (a resampled photograph, a little smoother than a native one);
* ``hopper_crop_384x256.png``: a native crop (rows 40-295, columns 64-447) of the photograph;
* ``jacksboro_relief_400x336.png``: matplotlib's ``jacksboro_fault_dem.npz`` elevation model (a
  real terrain survey) drawn as a hill-shaded relief (``matplotlib.colors.LightSource``,
  ``gist_earth`` colours, vertical exaggeration 0.05), its top-left 400 x 336 pixels.

Needs Debian's ``python3-matplotlib`` (its sample data) and Pillow. This is one photograph and one
terrain rendering, not a natural-image benchmark such as Kodak (not available offline): results
on it show how the schemes behave on large images, not a dataset average.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["make_natural_set", "main"]


def _sample_dir() -> Path:
    try:
        import matplotlib
    except ImportError:
        raise FileNotFoundError("the natural-image set needs matplotlib's sample data (apt install "
                                "python3-matplotlib)") from None
    d = Path(matplotlib.get_data_path()) / "sample_data"
    for name in ("grace_hopper.jpg", "jacksboro_fault_dem.npz"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: matplotlib sample file missing")
    return d


def make_natural_set(out_dir: str | Path) -> list[Path]:
    """Write the four images (module docstring) into ``out_dir``; returns their paths."""
    from matplotlib import colormaps
    from matplotlib.colors import LightSource
    from PIL import Image

    src = _sample_dir()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Image.open(src / "grace_hopper.jpg") as im:
        hopper = im.convert("RGB")
    w, h = hopper.size  # 512, 600
    big = hopper.resize((768, round(h * 768 / w)), Image.LANCZOS).crop((0, 96, 768, 96 + 512))
    arr = np.asarray(hopper)
    with np.load(src / "jacksboro_fault_dem.npz") as d:
        z = d["elevation"].astype(np.float64)
    ls = LightSource(azdeg=315, altdeg=45)
    relief = ls.shade(z, cmap=colormaps["gist_earth"], vert_exag=0.05, blend_mode="overlay")
    relief = np.clip(np.rint(relief[:336, :400, :3] * 255), 0, 255).astype(np.uint8)
    images = {"hopper_512x600.png": arr, "hopper_768x512.png": np.asarray(big),
              "hopper_crop_384x256.png": arr[40:296, 64:448], "jacksboro_relief_400x336.png": relief}
    paths = []
    for name, a in images.items():
        p = out / name
        Image.fromarray(np.ascontiguousarray(a)).save(p)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m semcom.baseline.natural_images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to write the PNGs into")
    args = p.parse_args(argv)
    try:
        for path in make_natural_set(args.out):
            print(path)
    except (FileNotFoundError, OSError) as e:
        print(f"error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
