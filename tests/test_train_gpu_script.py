"""scripts/train_gpu.sh end to end on the CPU with the tiny preset: every stage trains, the
per-ratio checkpoints come out, load, and pair only with their own ratio."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def _image_folders(root: Path) -> Path:
    from PIL import Image

    from semcom.models.data import synthetic_images

    imgs = synthetic_images(9, 40, 56, seed=3).permute(0, 2, 3, 1).numpy()
    for i, split in enumerate(("train", "val", "test")):
        (root / split).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(np.ascontiguousarray(imgs[3 * i + j])).save(root / split / f"{j}.png")
    return root


def test_train_gpu_script_on_cpu_tiny(tmp_path):
    data = _image_folders(tmp_path / "data")
    env = dict(os.environ, DATA=str(data), RUNS=str(tmp_path / "runs"), SHIP=str(tmp_path / "ship"),
               PRESET="tiny", DEVICE="cpu", STEPS="3", THREADS="1", BATCH="4", PY=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "train_gpu.sh")], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ship = tmp_path / "ship"
    names = sorted(p.name for p in ship.glob("*.safetensors"))
    assert names == sorted([f"jscc-{t}.safetensors" for t in ("1_6", "1_12", "1_24", "1_48")]
                           + [f"{k}-{t}.safetensors" for k in ("teacher", "consistency") for t in ("1_24", "1_48")])
    from semcom.models.checkpoint import CheckpointError
    from semcom.models.decoders import SemanticCodec

    codec = SemanticCodec.from_checkpoints(str(ship / "jscc-1_48.safetensors"),
                                           teacher=str(ship / "teacher-1_48.safetensors"),
                                           consistency=str(ship / "consistency-1_48.safetensors"))
    assert codec.jscc.cfg.ratio == "1/48"
    with pytest.raises(CheckpointError, match="trained for ratio 1/24"):
        SemanticCodec.from_checkpoints(str(ship / "jscc-1_6.safetensors"),
                                       consistency=str(ship / "consistency-1_24.safetensors"))
    assert (ship / "jscc-log.csv").is_file() and (ship / "consistency-eval.csv").is_file()


def test_train_gpu_script_names_a_missing_data_folder(tmp_path):
    env = dict(os.environ, DATA=str(tmp_path / "nothing"), PY=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "scripts" / "train_gpu.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "no image folder" in r.stderr and "nothing/train" in r.stderr
