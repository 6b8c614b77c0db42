"""Image loading: CIFAR-10 npz format, folders of PNG/JPEG of any size, augmentation."""

import numpy as np
import pytest
import torch

from semcom.models.data import BatchSampler, augment, load_cifar10, load_image_folder, synthetic_images


def test_cifar_npz_format(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20, dtype=np.uint8) % 10
    np.savez_compressed(tmp_path / "test.npz", x=x, y=y)
    xt, yt = load_cifar10(tmp_path, "test", limit=5)
    assert xt.shape == (5, 3, 32, 32) and xt.dtype == torch.uint8 and yt.shape == (5,)
    i = int(np.flatnonzero((x == xt[0].permute(1, 2, 0).numpy()).all(axis=(1, 2, 3)))[0])
    assert yt[0].item() == y[i]  # labels stay with their images through the shuffle
    with pytest.raises(FileNotFoundError, match="train.npz"):
        load_cifar10(tmp_path, "train")
    np.savez_compressed(tmp_path / "train.npz", a=x)
    with pytest.raises(ValueError, match="train.npz"):
        load_cifar10(tmp_path, "train")


def test_image_folder_any_size(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(np.zeros((17, 23, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((40, 24), 200, np.uint8)).save(tmp_path / "sub" / "b.JPG")
    (tmp_path / "notes.txt").write_text("x")
    imgs = load_image_folder(tmp_path)
    assert [tuple(i.shape) for i in imgs] == [(3, 17, 23), (3, 40, 24)]
    assert imgs[1].max() <= 1 and imgs[1].min() > 0.7
    (tmp_path / "c.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="c.png"):
        load_image_folder(tmp_path)


def test_augment_and_sampler():
    x = synthetic_images(10, 32, 32)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    g = torch.Generator().manual_seed(0)
    a = augment(x.float(), g, flip=True, crop_pad=4)
    assert a.shape == x.shape
    s = BatchSampler(x, 4, g)
    seen = [s.next()[0] for _ in range(6)]
    assert s.epoch == 2 and all(b.shape == (4, 3, 32, 32) for b in seen)
    with pytest.raises(ValueError, match="batch"):
        BatchSampler(x, 11, g)


def test_crop_sampler_crops_any_sizes_and_resumes_exactly():
    from semcom.models.data import CropSampler, synthetic_images

    imgs = [synthetic_images(1, h, w, seed=i)[0] for i, (h, w) in enumerate([(40, 70), (70, 40), (20, 30), (64, 64)])]
    a = CropSampler(imgs, batch=3, crop=32, generator=torch.Generator().manual_seed(0))
    x, y = a.next()
    assert x.shape == (3, 3, 32, 32) and y is None and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    a.next()
    order, pos, epoch = a.state()
    g_state = a.g.get_state()
    want = [a.next()[0] for _ in range(3)]                      # crosses an epoch boundary (4 images)
    b = CropSampler(imgs, batch=3, crop=32, generator=torch.Generator().manual_seed(99))
    b.set_state(order, pos, epoch)
    b.g.set_state(g_state)
    assert all(torch.equal(p, q) for p, q in zip(want, (b.next()[0] for _ in range(3))))
    assert a.epoch >= 1
    with pytest.raises(ValueError, match="uint8"):
        CropSampler([imgs[0].float()], 2, 16, torch.Generator())
