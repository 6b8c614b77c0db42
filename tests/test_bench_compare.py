"""``semcom bench compare``: semcom decoders vs the baseline, classifier accuracy, multipath on both sides,
the GNU Radio check, image folders of any size, targets and cliffs (tiny models, seconds per test)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from semcom import bench_compare as bc
from semcom.imagelink import synthetic_image

pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

RATIO = Fraction(1, 6)


def _images(n: int, h: int = 32, w: int = 32) -> list[np.ndarray]:
    return [synthetic_image(h, w, seed=i) for i in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny untrained JSCC (1/6), consistency model and classifier checkpoints: paths by kind."""
    from semcom.models.checkpoint import save_model
    from semcom.models.classifier import Classifier
    from semcom.models.config import classifier_preset, jscc_preset, unet_preset
    from semcom.models.consistency import ConsistencyFunction
    from semcom.models.jscc import JSCC
    from semcom.models.unet import UNet

    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    jc, uc, cc = jscc_preset("tiny", "1/6"), unet_preset("tiny"), classifier_preset("tiny")
    save_model(d / "jscc.safetensors", "jscc", JSCC(jc), jc)
    save_model(d / "cm.safetensors", "consistency", ConsistencyFunction(UNet(uc), uc.sigma_data, uc.sigma_min), uc)
    save_model(d / "clf.safetensors", "classifier", Classifier(cc), cc)
    return {"jscc": str(d / "jscc.safetensors"), "consistency": str(d / "cm.safetensors"),
            "classifier": str(d / "clf.safetensors")}


def _shipped_jscc() -> str:
    p = bc.find_jscc(RATIO, {})
    if p is None:
        pytest.skip("no shipped JSCC 1/6 checkpoint")
    return p


def _rows(res, **sel) -> list[dict]:
    return [r for r in res["rows"] if all(r.get(k) == v for k, v in sel.items())]


# ---------------------------------------------------------------------- no GNU Radio
def test_parsers_and_image_folder_of_any_size(tmp_path):
    from PIL import Image

    assert bc.parse_snrs("0:5:20") == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert bc.parse_snrs("3,7") == [3.0, 7.0]
    assert [str(r) for r in bc.parse_ratios("1/6,1/24")] == ["1/6", "1/24"]
    assert bc.parse_channels("awgn,indoor,awgn") == ["awgn", "indoor"]
    assert bc.parse_decoders("jscc,consistency,cm2") == ["jscc", "cm1", "cm2"]
    for bad, fn in (("0:-1:5", bc.parse_snrs), ("x", bc.parse_snrs), ("2", bc.parse_ratios),
                    ("a/b", bc.parse_ratios), ("awgn,mars", bc.parse_channels), ("teacher", bc.parse_decoders),
                    ("cmx", bc.parse_decoders)):
        with pytest.raises(ValueError):
            fn(bad)
    with pytest.raises(ValueError, match="--consistency"):
        bc.parse_ratio_paths(["1/24=" + str(tmp_path / "missing.safetensors")], "--consistency")
    Image.fromarray(synthetic_image(512, 768)).save(tmp_path / "big.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(synthetic_image(24, 40, seed=1)).save(tmp_path / "sub" / "small.jpg")
    imgs, labels, desc = bc.load_images(tmp_path, 5)
    assert [im.shape for im in imgs] == [(512, 768, 3), (24, 40, 3)] and labels is None
    assert "768x512" in desc
    with pytest.raises(ValueError, match="--data"):
        bc.load_images(tmp_path / "missing", 5)


def test_natural_image_set(tmp_path):
    from semcom.baseline import natural_images

    try:
        paths = natural_images.make_natural_set(tmp_path)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    imgs, labels, desc = bc.load_images(tmp_path, 10)
    assert sorted(p.name for p in paths) == sorted(f"{n}.png" for n in (
        "hopper_512x600", "hopper_768x512", "hopper_crop_384x256", "jacksboro_relief_400x336"))
    assert sorted(im.shape for im in imgs) == [(256, 384, 3), (336, 400, 3), (512, 768, 3), (600, 512, 3)]
    assert labels is None and all(im.std() > 20 for im in imgs)  # real content, not flat


def test_cifar_npz_gives_labels_in_the_training_order(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 30).astype(np.uint8)
    np.savez(tmp_path / "test.npz", x=x, y=y)
    imgs, labels, _ = bc.load_images(tmp_path, 7)
    order = np.random.default_rng(0).permutation(30)[:7]  # models.data.load_cifar10's shuffle
    assert np.array_equal(np.stack(imgs), x[order]) and np.array_equal(labels, y[order])


def test_consistency_checkpoint_lookup(tmp_path, monkeypatch):
    import semcom.imagelink as il

    monkeypatch.setattr(bc, "_ROOT", tmp_path)
    monkeypatch.setattr(il, "find_extra_checkpoint", lambda kind, ratio: None)
    r = Fraction(1, 24)
    assert bc.find_consistency(r, {}) is None
    run = tmp_path / "runs" / "cm-1_24-cpu"
    run.mkdir(parents=True)
    (run / "best.safetensors").write_bytes(b"x")
    assert bc.find_consistency(r, {}) == str(run / "best.safetensors")
    assert bc.find_consistency(Fraction(1, 6), {}) is None
    assert bc.find_consistency(r, {"1/24": "given.safetensors"}) == "given.safetensors"
    monkeypatch.setattr(il, "find_extra_checkpoint", lambda kind, ratio: tmp_path / f"{kind}-1_24.safetensors")
    assert bc.find_consistency(r, {}) == str(tmp_path / "consistency-1_24.safetensors")  # shipped first


def test_cliff_definition():
    smooth = [(0, 22.6), (4, 25.3), (8, 27.7), (12, 29.2), (16, 30.1), (20, 30.6)]
    c = bc.cliff(smooth)
    assert not c["cliff"] and c["max_drop_db"] == pytest.approx(2.7) and c["between_db"] == [0, 4]
    digital = [(0, 11.9), (4, 13.1), (8, 24.8), (12, 27.7)]
    c = bc.cliff(digital)
    assert c["cliff"] and c["max_drop_db"] == pytest.approx(11.7) and c["between_db"] == [4, 8]
    assert not bc.cliff([(0, 20.0), (20, 27.0)])["cliff"]  # 7 dB over 20 dB of SNR: a coarse grid, no cliff
    assert bc.cliff([(0, 20.0), (4, 27.0)], cliff_db=8.0)["cliff"] is False
    assert bc.cliff([(5, 30.0)]) == {"cliff": False, "max_drop_db": 0.0, "between_db": None}


def test_targets_margin_and_baseline_wins():
    rows = []
    for snr, env, sem in ((0, 12.0, 22.0), (10, 28.0, 29.0), (15, 30.0, 29.5), (20, 33.0, 30.5)):
        base = {"ratio": "1/6", "snr_db": float(snr), "channel": "awgn", "subset": False, "images": 4}
        rows += [{**base, "method": "baseline-envelope", "scheme": "16qam-1/2", "psnr": env, "accuracy": 0.5},
                 {**base, "method": "semcom-jscc", "psnr": sem, "accuracy": 0.75},
                 {**base, "method": "baseline", "scheme": "16qam-1/2", "psnr": env}]
    (t,) = bc.targets(rows)
    s = t["semcom"]["semcom-jscc"]
    assert [p["diff_db"] for p in s["per_snr"]] == [10.0, 1.0, -0.5, -2.5]
    assert s["meets_target"] is False and s["baseline_wins_at_db"] == [15.0, 20.0]
    assert s["baseline_wins_by_db"] == {"15": 0.5, "20": 2.5} and s["max_baseline_win_db"] == 2.5
    assert s["per_snr"][0]["accuracy_diff"] == pytest.approx(0.25)
    assert t["cliffs"]["baseline-envelope"]["cliff"] and not t["cliffs"]["semcom-jscc"]["cliff"]
    assert t["cliffs"]["baseline 16qam-1/2"]["max_drop_db"] == pytest.approx(16.0)
    # 15 dB is the last SNR of the target: above it the baseline may win
    (t,) = bc.targets([r for r in rows if r["snr_db"] != 15.0])
    assert t["semcom"]["semcom-jscc"]["meets_target"] is True


def test_gr_summary_lists_the_rows_that_differ():
    base = {"ratio": "1/24", "channel": "awgn", "images": 1, "numpy_frames_ok_frac": 1.0, "gnuradio_frames_ok_frac": 1.0}
    gc = [{**base, "snr_db": 4.0, "method": "semcom-jscc", "numpy_psnr": 21.0, "gnuradio_psnr": 21.01, "diff_db": 0.01},
          {**base, "snr_db": 4.0, "method": "baseline-envelope", "scheme": "qpsk-1/2", "numpy_psnr": 22.0,
           "gnuradio_psnr": 22.0, "diff_db": 0.0},
          {**base, "snr_db": 8.0, "method": "baseline-envelope", "scheme": "16qam-1/2", "numpy_psnr": 9.2,
           "gnuradio_psnr": 29.9, "diff_db": 20.7}]
    text = bc.gr_summary(gc)
    assert "first 1 image," in text and "baseline: 1 of 2 rows within 0.5 dB" in text
    assert "semcom: 1 of 1 rows" in text and "Apart: 1/24 awgn 8 dB baseline-envelope 16qam-1/2 (numpy 9.2" in text
    assert "Apart" not in bc.gr_summary(gc[:2])


def test_scorer_accuracy_ms_ssim_and_cache():
    from semcom.models.classifier import Classifier
    from semcom.models.config import classifier_preset

    refs = _images(3)
    clf = Classifier(classifier_preset("tiny")).eval()
    with torch.no_grad():
        labels = clf(bc._to_tensor(refs)).argmax(1).numpy()
    s = bc.Scorer(refs, labels, clf)
    m = s(refs)
    assert m["psnr"] == 100.0 and m["ssim"] == pytest.approx(1.0) and m["accuracy"] == 1.0 and m["ms_ssim"] is None
    grey = [np.full_like(r, 128) for r in refs]
    g = s(grey)
    assert g["psnr"] < 20 and 0.0 <= g["accuracy"] <= 1.0 and g["ssim"] < 0.5
    assert len(s._cache) == 6 and s(grey) == g and len(s._cache) == 6  # scored once per image and content
    assert bc.Scorer(refs)(grey)["accuracy"] is None  # no labels (not CIFAR): no accuracy
    big = [synthetic_image(176, 200)]
    m = bc.Scorer(big)([np.clip(big[0].astype(int) + 20, 0, 255).astype(np.uint8)])
    assert 0.5 < m["ms_ssim"] < 1.0


def test_capacity_of_a_multipath_realisation():
    flat = bc.capacity_bits_per_symbol("awgn", 10.0, 0, "rayleigh", 0)
    assert flat == pytest.approx(np.log2(11.0))
    vals = [bc.capacity_bits_per_symbol("indoor", 10.0, i, "rayleigh", 0) for i in range(30)]
    assert len(set(vals)) == 30  # one realisation per image
    assert np.mean(vals) < flat  # Jensen: fading costs capacity on average
    assert bc.capacity_bits_per_symbol("indoor", 10.0, 3, "rayleigh", 0) == vals[3]  # same seed, same taps


# ---------------------------------------------------------------------- whole comparison (gr-fec)
@pytest.mark.gnuradio
def test_consistency_rows_accuracy_and_targets(tiny):
    pytest.importorskip("gnuradio.fec")
    from semcom.baseline import chain
    from semcom.models.checkpoint import load_model

    imgs = _images(3)
    labels = np.array([3, 1, 4])
    res = bc.compare(imgs, [0.0, 20.0], [RATIO], labels=labels, schemes=[chain.BaselineScheme("16qam", "1/2")],
                     channels=["awgn"], decoders=["jscc", "cm1", "cm2"], jscc={"1/6": tiny["jscc"]},
                     consistency={"1/6": tiny["consistency"]},
                     classifier=load_model(tiny["classifier"], kind="classifier")[0], log=lambda *a: None)
    for snr in (0.0, 20.0):
        for m in ("semcom-jscc", "semcom-cm1", "semcom-cm2", "baseline-envelope", "capacity-bound", "baseline"):
            (r,) = _rows(res, method=m, snr_db=snr, channel="awgn")
            assert r["images"] == 3 and 0.0 <= r["accuracy"] <= 1.0 and 5.0 < r["psnr"] <= 100.0
            assert 0.0 <= r["ssim"] <= 1.0
        assert _rows(res, method="semcom-cm1", snr_db=snr)[0]["consistency_checkpoint"] == tiny["consistency"]
    # the untrained consistency decoder samples: its images differ from the JSCC estimate
    assert _rows(res, method="semcom-cm2", snr_db=20.0)[0]["psnr"] != _rows(res, method="semcom-jscc", snr_db=20.0)[0]["psnr"]
    assert _rows(res, method="baseline", snr_db=20.0)[0]["decoded_frac"] == 1.0
    assert _rows(res, method="baseline", snr_db=0.0)[0]["decoded_frac"] == 0.0
    (t,) = res["targets"]
    assert set(t["semcom"]) == {"semcom-jscc", "semcom-cm1", "semcom-cm2"}
    for m, s in t["semcom"].items():
        for p in s["per_snr"]:
            sem = _rows(res, method=m, snr_db=p["snr_db"])[0]["psnr"]
            env = _rows(res, method="baseline-envelope", snr_db=p["snr_db"])[0]["psnr"]
            assert p["diff_db"] == pytest.approx(sem - env, abs=1e-3) and p["at_or_above"] == (sem >= env)
    assert "baseline-envelope" in t["cliffs"] and "semcom-cm2" in t["cliffs"]
    table = bc.format_table(res)
    assert "cm2 | margin" in table and "acc." in table and "at or above the envelope" in table
    summary = bc.summary_table(res)
    assert "k/n = 1/6: PSNR dB (classifier accuracy)" in summary
    assert "| awgn: envelope | awgn: jscc | awgn: cm1 | awgn: cm2 |" in summary  # decoders in step order
    assert "none decodes" in summary  # 0 dB: 16-QAM 1/2 fails, every image grey
    # without a consistency checkpoint: cm rows skipped with a note, JSCC rows still there
    res2 = bc.compare(imgs[:1], [20.0], [RATIO], schemes=[chain.BaselineScheme("16qam", "1/2")],
                      decoders=["jscc", "cm1"], jscc={"1/6": tiny["jscc"]}, consistency={},
                      log=lambda *a: None)
    assert {r["method"] for r in res2["rows"]} >= {"semcom-jscc"} and not _rows(res2, method="semcom-cm1")
    assert all(r["accuracy"] is None for r in res2["rows"])
    notes = " ".join(res2["notes"])
    assert ("cm1 rows skipped" in notes or bc.find_consistency(RATIO, {}) is not None) and "accuracy omitted" in notes
    # a consistency checkpoint that does not load (still being written): JSCC rows stay, with a note
    bad = Path(tiny["jscc"]).with_name("half-written.safetensors")
    bad.write_bytes(b"\x00" * 100)
    res3 = bc.compare(imgs[:1], [20.0], [RATIO], schemes=[chain.BaselineScheme("16qam", "1/2")],
                      decoders=["jscc", "cm1"], jscc={"1/6": tiny["jscc"]}, consistency={"1/6": str(bad)},
                      log=lambda *a: None)
    assert _rows(res3, method="semcom-jscc") and not _rows(res3, method="semcom-cm1")
    assert any("half-written.safetensors unusable" in n for n in res3["notes"])


@pytest.mark.gnuradio
def test_multipath_costs_quality_on_both_sides():
    """Same images, same SNRs: the indoor Rayleigh channel through the OFDM PHY gives at most the AWGN
    PSNR on average (0.5 dB tolerance), for semcom and for the baseline envelope."""
    pytest.importorskip("gnuradio.fec")
    from semcom.baseline import chain

    snrs = [0.0, 10.0]
    res = bc.compare(_images(4), snrs, [RATIO], schemes=[chain.BaselineScheme("qpsk", "1/2"),
                                                         chain.BaselineScheme("16qam", "1/2")],
                     channels=["awgn", "indoor"], decoders=["jscc"], jscc={"1/6": _shipped_jscc()},
                     log=lambda *a: None)
    # (not the capacity bound: near the codec's smallest file a lucky realisation crosses the threshold)
    for m in ("semcom-jscc", "baseline-envelope"):
        awgn = np.mean([r["psnr"] for r in _rows(res, method=m, channel="awgn")])
        indoor = np.mean([r["psnr"] for r in _rows(res, method=m, channel="indoor")])
        assert indoor <= awgn + 0.5, (m, indoor, awgn)
    for r in _rows(res, channel="indoor", method="semcom-jscc"):
        assert r["engine"] == "numpy" and 0.0 <= r["frames_ok_frac"] <= 1.0
        assert r["frames_ok_frac"] > 0.5 or r["snr_db"] == 0.0
    assert {r["engine"] for r in _rows(res, channel="awgn", method="semcom-jscc")} == {"symbols"}
    assert 20.0 < _rows(res, method="semcom-jscc", channel="awgn", snr_db=10.0)[0]["psnr"]


@pytest.mark.gnuradio
def test_gnuradio_rows_agree_with_numpy(tiny):
    """--gr: the first 2 images of both sides through the GNU Radio flowgraph and the numpy PHY, same
    channel realisation and noise: at 20 dB every frame arrives and the PSNRs agree (measured: 0 dB
    for the baseline, < 0.01 dB for semcom: the receivers' estimates differ slightly)."""
    pytest.importorskip("gnuradio.fec")
    from semcom.baseline import chain

    res = bc.compare(_images(3), [20.0], [RATIO], schemes=[chain.BaselineScheme("16qam", "1/2")],
                     channels=["awgn", "indoor"], gr_images=2, decoders=["jscc"], jscc={"1/6": _shipped_jscc()},
                     log=lambda *a: None)
    gc = res["gr_check"]
    assert {(g["channel"], g["method"]) for g in gc} == {(c, m) for c in ("awgn", "indoor")
                                                         for m in ("semcom-jscc", "baseline-envelope")}
    for g in gc:
        assert g["images"] == 2 and g["gnuradio_frames_ok_frac"] == 1.0 == g["numpy_frames_ok_frac"]
        tol = 0.01 if g["method"] == "baseline-envelope" else 0.1  # same channel and noise samples in both
        assert abs(g["diff_db"]) <= tol, g
    for r in _rows(res, subset=True):
        assert r["images"] == 2 and r["engine"] in ("numpy", "gnuradio")
    # the full rows (3 images) are unaffected by the check
    assert all(r["images"] == 3 for r in _rows(res, subset=False) if r["method"] != "capacity-bound")
    assert "GNU Radio flowgraph vs numpy" in bc.format_table(res)


@pytest.mark.gnuradio
def test_cli_image_folder_json_markdown_plot(tiny, tmp_path):
    pytest.importorskip("gnuradio.fec")
    pytest.importorskip("matplotlib")
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    Image.fromarray(synthetic_image(48, 64, seed=2)).save(data / "a.png")
    Image.fromarray(synthetic_image(40, 40, seed=3)).save(data / "b.png")
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    try:
        rc = bc.main(["--data", str(data), "--snr", "5,15", "--ratio", "1/6", "--schemes", "qpsk-1/2",
                      "--channel", "awgn,indoor", "--decoders", "jscc,cm1", "--jscc", f"1/6={tiny['jscc']}",
                      "--consistency", f"1/6={tiny['consistency']}", "--threads", "1", "--json", f"{out}.json",
                      "--markdown", f"{out}.md", "--plot", f"{out}.png"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    res = json.loads((tmp_path / "out.json").read_text())
    assert res["config"]["accuracy_clean"] is None and any("accuracy omitted" in n for n in res["notes"])
    assert {r["method"] for r in res["rows"]} >= {"semcom-jscc", "semcom-cm1", "baseline-envelope"}
    assert all(r["accuracy"] is None for r in res["rows"])
    # both sides get semcom's symbol count per image: 1/6 of 3*H*W
    assert res["budgets_bytes"]["1/6"]["n_channel_symbols"] == [800, 1536]
    assert "channel indoor" in (tmp_path / "out.md").read_text() and (tmp_path / "out.png").stat().st_size > 10000
    # the tables and the plot again from the JSON, without a run
    assert bc.main(["--from-json", f"{out}.json", "--markdown", f"{out}2.md", "--cliff-db", "50"]) == 0
    again = (tmp_path / "out2.md").read_text()
    assert again.startswith("#### Summary") and "cliff: **yes**" not in again
    assert bc.main(["--from-json", str(data / "a.png")]) == 2
    for bad in (["--channel", "mars"], ["--decoders", "teacher"], ["--gr", "-1"], ["--threads", "-2"],
                ["--consistency", "1/6=" + str(tmp_path / "none.safetensors")]):
        assert bc.main(["--data", str(data)] + bad) == 2


@pytest.mark.slow
@pytest.mark.gnuradio
def test_large_image_512x768():
    """A 512x768 image through both sides on the indoor channel (64 analog frames for semcom)."""
    pytest.importorskip("gnuradio.fec")
    from semcom.baseline import chain

    res = bc.compare([synthetic_image(512, 768)], [15.0], [RATIO], schemes=[chain.BaselineScheme("16qam", "1/2")],
                     channels=["indoor"], decoders=["jscc"], jscc={"1/6": _shipped_jscc()}, log=lambda *a: None)
    sem = _rows(res, method="semcom-jscc")[0]
    env = _rows(res, method="baseline-envelope")[0]
    assert sem["ms_ssim"] is not None and env["ms_ssim"] is not None
    assert sem["psnr"] > 20 and res["budgets_bytes"]["1/6"]["n_channel_symbols"] == [196608]


def test_perceptual_rows_and_table(tiny):
    """--perceptual: NIQE and the spectrum distance on semcom's rows and the envelope, a table, the originals' NIQE."""
    pytest.importorskip("gnuradio.fec")
    from semcom.baseline import chain

    imgs = _images(2, 96, 128)
    res = bc.compare(imgs, [20.0], [RATIO], schemes=[chain.BaselineScheme("16qam", "1/2")], channels=["awgn"],
                     decoders=["jscc", "cm1:g=1:k=1"], jscc={"1/6": tiny["jscc"]},
                     consistency={"1/6": tiny["consistency"]}, log=lambda *a: None, perceptual=True)
    for m in ("semcom-jscc", "semcom-cm1:g=1:k=1", "baseline-envelope"):
        (r,) = _rows(res, method=m, snr_db=20.0)
        assert r["niqe"] > 0 and r["spec_abs"] >= 0 and "spec_high" in r
    assert "niqe" not in _rows(res, method="baseline", snr_db=20.0)[0]  # fixed schemes: not scored (cost)
    res["reference_niqe"] = 3.0
    table = bc.format_table(res)
    assert "#### Perceptual" in table and "originals' NIQE 3.00" in table and "cm1:g=1:k=1" in table
