"""Images over radios: ``semcom tx --image`` -> fake Pluto / fake gr-uhd -> ``semcom rx --decode``.

The shipped JSCC checkpoint (``models/checkpoints/jscc-1_6.safetensors``) on small synthetic
images; the fakes of ``semcom.radio.fakes`` / ``gr_fakes`` play the IQ through the channel
simulator (shipped configs: 10 dB below the cap -> about 12 dB Es/N0). Also: dry runs touch no
device, bad input gives clear messages, the SigMF recording of the GNU Radio path, the
dashboard showing a decoded image headless.
"""

from __future__ import annotations

import errno
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from semcom.config import load_config
from semcom.imagelink import image_metrics, save_png, synthetic_image
from semcom.radio.fakes import FakeAir

ROOT = Path(__file__).resolve().parent.parent
PLUTO = str(ROOT / "hw_configs/pluto.yaml")
B210 = str(ROOT / "hw_configs/usrp_b210.yaml")
FAKE_PLUTO = ["--set", "radio.device=fake_pluto", "--set", "radio.uri=null", "--set", "radio.tx_ramp_s=0.02"]
FAKE_UHD = ["--set", "radio.device=fake_uhd", "--set", "radio.uri=null", "--set", "radio.tx_ramp_s=0.02",
            "--set", "radio.rx_settle_s=0.02"]


def grey_psnr(img: np.ndarray) -> float:
    return image_metrics(np.full_like(img, 128), img)["psnr"]


@pytest.fixture
def pics(tmp_path):
    """Two synthetic images (64x64 and 48x80) in a folder; returns (folder, [arrays in send order])."""
    d = tmp_path / "pics"
    imgs = [synthetic_image(64, 64, seed=3), synthetic_image(48, 80, seed=4)]
    for i, img in enumerate(imgs):
        save_png(img, d / f"{i}.png")
    return d, imgs


def _fill_air(path: Path, cfg_overrides: list[str], images, base=PLUTO, ratio=None):
    """What `semcom tx --image` puts in the Pluto's cyclic buffer, written straight onto a file-backed fake air."""
    from semcom.radio.images import encode_images, load_codec
    from semcom.radio.link import waveform_of

    cfg = load_config(base, [s for s in cfg_overrides if s != "--set"])
    codec = load_codec(cfg, ratio)
    sends, _ = encode_images(cfg, codec, [(im, f"img{i}") for i, im in enumerate(images)], 10.0, 0)
    tx = waveform_of(cfg, sends)
    FakeAir(path=path).transmit(tx.iq * 0.1 / np.sqrt(np.mean(np.abs(tx.iq) ** 2)), cfg.radio.tx_gain_db, cyclic=True)
    return tx


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


# ---------------------------------------------------------------------- through the fakes
def test_tx_image_to_fake_pluto_rx_decodes(pics, tmp_path, monkeypatch, capsys):
    """`semcom tx --image` (burst, cyclic buffer) and `semcom rx --decode --reference`, as two commands."""
    from semcom.blocks.phy.sigmf_io import open_recording
    from semcom.cli import main

    folder, imgs = pics
    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    tx_rc: list[int] = []
    t = threading.Thread(target=lambda: tx_rc.append(main(["tx", "-c", PLUTO, *FAKE_PLUTO, "--image", str(folder),
                                                            "--duration", "2"])))
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not (air / "air.json").is_file() or json.loads((air / "air.json").read_text())["tx_gain_db"] != -20:
            assert t.is_alive() and time.monotonic() < deadline, "semcom tx did not start transmitting"
            time.sleep(0.05)
        base = tmp_path / "img"
        t0 = time.perf_counter()
        rc = main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.02", "--reference", str(folder),
                   "--out", str(base)])
        rx_s = time.perf_counter() - t0
    finally:
        t.join(30)
    assert rc == 0 and tx_rc == [0]
    lines = capsys.readouterr().out.strip().splitlines()
    rx = json.loads(next(s for s in lines if '"images": {' in s))
    tx = json.loads(next(s for s in lines if '"kind": "images"' in s))
    assert [r["size"] for r in tx["images"]] == ["64x64", "80x48"] and tx["frames"] == 4
    got = {r["stream_id"]: r for r in rx["images"]["images"]}
    assert sorted(got) == [0, 1] and not rx["images"]["refused"]
    for sid, img in enumerate(imgs):
        r = got[sid]
        assert r["missing_chunks"] == [] and r["descriptor"] and (r["height"], r["width"]) == img.shape[:2]
        assert r["psnr"] > grey_psnr(img) + 10 and r["ssim"] > 0.6  # measured ~26.5 dB vs ~11 dB grey
        assert 8 < r["snr_db"] < 16 and 0 <= r["latency_s"] < 5 and r["decode_s"] > 0
        from PIL import Image

        png = np.asarray(Image.open(r["png"]))
        assert png.shape == img.shape and abs(image_metrics(png, img)["psnr"] - r["psnr"]) < 1e-3
    assert rx["images"]["counters"]["duplicates"] > 0  # the capture holds the cyclic buffer twice
    rec = open_recording(base)
    assert rec.n_samples == 40000 and len(rec.annotations) == rx["frames"] == rx["recording"]["annotations"]
    print(f"fake Pluto: PSNR {[round(got[s]['psnr'], 2) for s in got]} dB at SNR "
          f"{[round(got[s]['snr_db'], 2) for s in got]} dB, rx+decode {rx_s:.2f} s")


def test_tx_image_through_fake_uhd_gnuradio_with_sigmf(pics, tmp_path, monkeypatch, capsys):
    """GNU Radio path (gr-uhd fakes): `semcom rx --decode` listening, `semcom tx --image`; the SigMF
    recording streamed by the receiver validates and annotates every frame received."""
    pytest.importorskip("gnuradio")
    from sigmf import sigmffile

    from semcom.cli import main

    folder, imgs = pics
    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    base = tmp_path / "gr"
    rx_rc: list[int] = []
    t = threading.Thread(target=lambda: rx_rc.append(main(["rx", "-c", B210, *FAKE_UHD, "--duration", "2.5",
                                                            "--reference", str(folder), "--out", str(base)])))
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not (air / "rx.listening").exists():
            assert t.is_alive() and time.monotonic() < deadline, "semcom rx did not start"
            time.sleep(0.02)
        time.sleep(0.3)  # AGC settle (rx_settle_s 0.02) and the first polls of the fake source
        assert main(["tx", "-c", B210, *FAKE_UHD, "--image", str(folder)]) == 0
    finally:
        t.join(60)
    assert rx_rc == [0]
    rx = json.loads(Path(f"{base}.json").read_text())
    got = {r["stream_id"]: r for r in rx["images"]["images"]}
    assert sorted(got) == [0, 1]
    for sid, img in enumerate(imgs):
        assert got[sid]["psnr"] > grey_psnr(img) + 10 and got[sid]["missing_chunks"] == []
    assert rx["frames"] == 4 and rx["overflows"] == 0
    meta = sigmffile.fromfile(str(base) + ".sigmf-meta")  # validates the schema and the checksum
    ann = meta.get_annotations()
    assert len(ann) == rx["frames"] == rx["recording"]["annotations"]
    g = meta.get_global_info()
    assert g["core:sample_rate"] == 2e6 and "fake_uhd" in g["core:hw"] and g["core:datatype"] == "cf32_le"
    assert meta.get_captures()[0]["core:frequency"] == 2.45e9
    # each annotation frames a burst: its samples carry the signal, the guard before it does not
    x = meta.read_samples()
    a0 = ann[0]
    burst = x[a0["core:sample_start"]:a0["core:sample_start"] + a0["core:sample_count"]]
    assert np.mean(np.abs(burst) ** 2) > 3 * np.mean(np.abs(x[:a0["core:sample_start"] // 2]) ** 2)
    capsys.readouterr()


# ---------------------------------------------------------------------- dry runs
def test_dry_runs_touch_no_device(pics, monkeypatch, capsys):
    from semcom.cli import main
    from semcom.radio import fakes, pluto_burst

    def touched(*a, **k):
        raise AssertionError("a dry run touched a device")

    monkeypatch.setattr(pluto_burst.PlutoBurst, "open", touched)
    monkeypatch.setattr(fakes.FakeAir, "transmit", touched)
    monkeypatch.setattr(fakes.FakeAir, "receive", touched)
    try:
        from semcom.blocks.gr import radio as gr_radio

        monkeypatch.setattr(gr_radio, "make_sink", touched)
        monkeypatch.setattr(gr_radio, "make_source", touched)
    except ImportError:
        pass
    folder, _ = pics
    for cfg, extra, backend in ((PLUTO, ["--set", "radio.uri=ip:10.255.255.1"], "burst"), (B210, [], "gnuradio"),
                                (PLUTO, FAKE_PLUTO, "burst")):
        assert main(["tx", "-c", cfg, *extra, "--image", str(folder), "--dry-run"]) == 0
        plan = json.loads(capsys.readouterr().out.split("touched)\n")[1])
        assert plan["backend"] == backend and plan["kind"] == "images" and plan["codec_id"] > 0
        assert plan["checkpoint"].endswith("jscc-1_6.safetensors") and plan["ratio"] == "1/6"
        assert [(r["size"], r["symbols"], r["frames"]) for r in plan["images"]] == [("64x64", 2048, 2),
                                                                                    ("80x48", 1920, 2)]
        assert plan["frames"] == 4 and plan["samples"] > 4 * 1000 and plan["airtime_s"] > 0
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--decode", "--reference", str(folder), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out.split("touched)\n")[1])
    assert plan["decode"]["decoders"] == ["jscc"] and len(plan["decode"]["references"]) == 2


# ---------------------------------------------------------------------- bad input
def _shipped_codec_id(ratio: str) -> int:
    """The codec id the shipped checkpoint of ``ratio`` derives (from its kind and config)."""
    from semcom.imagelink import CodecRuntime, find_checkpoint

    return CodecRuntime(find_checkpoint(ratio)).codec_id


def test_wrong_codec_id_is_refused_with_a_clear_message(tmp_path, monkeypatch, capsys):
    """The transmitter used model.codec_id 77; the receiver's checkpoint derives another id."""
    from semcom.cli import main

    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    _fill_air(air, [*FAKE_PLUTO, "--set", "model.codec_id=77"], [synthetic_image(32, 32, seed=1)])
    rc = main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.01", "--decode", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 1 and "stream 0: its frames announce codec id 77, but JSCC ratio 1/6" in err
    assert f"has codec id {_shipped_codec_id('1/6')}" in err and "model.codec_id" in err and "Traceback" not in err


def test_rx_follows_the_announced_ratio_unless_fixed(tmp_path, monkeypatch, capsys):
    """Frames from the 1/24 checkpoint: decoded with jscc-1_24 by default, refused with --ratio 1/6."""
    from semcom.cli import main

    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    img = synthetic_image(32, 32, seed=2)
    _fill_air(air, FAKE_PLUTO, [img], ratio="1/24")
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.01", "--decode", "--out", str(tmp_path / "a")]) == 0
    res = _last_json(capsys)["images"]
    assert [(r["ratio"], r["codec_id"]) for r in res["images"]] == [("1/24", _shipped_codec_id("1/24"))]
    assert any(c["checkpoint"].endswith("jscc-1_24.safetensors") for c in res["codecs"])
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.01", "--ratio", "1/6",
                 "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "stream 0: the stream announces bandwidth ratio 1/24, but the receiver is set to JSCC ratio 1/6" in err


def test_missing_checkpoint_corrupt_image_and_missing_decoder_are_clear(pics, tmp_path, capsys):
    from semcom.cli import main

    folder, _ = pics
    nope = tmp_path / "nope.safetensors"
    assert main(["tx", "-c", PLUTO, "--image", str(folder), "--dry-run", "--set", f"model.checkpoint={nope}"]) == 2
    assert f"model checkpoint {nope}: not found" in capsys.readouterr().err
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--decode", "--set", f"model.checkpoint={nope}"]) == 2
    assert f"model checkpoint {nope}: not found" in capsys.readouterr().err
    assert main(["tx", "-c", PLUTO, "--image", str(folder), "--dry-run", "--ratio", "1/7"]) == 2
    err = capsys.readouterr().err
    assert "no JSCC checkpoint for ratio 1/7" in err and "semcom train jscc --ratio 1/7" in err
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    assert main(["tx", "-c", PLUTO, *FAKE_PLUTO, "--image", str(bad)]) == 2
    assert f"{bad}: not a readable image" in capsys.readouterr().err
    assert main(["tx", "-c", PLUTO, *FAKE_PLUTO, "--image", str(tmp_path / "gone.jpg")]) == 2
    assert "gone.jpg: image file or folder not found" in capsys.readouterr().err
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--decoder", "cm1", "--dry-run"]) == 2
    assert "no consistency checkpoint loaded" in capsys.readouterr().err


# ---------------------------------------------------------------------- receiver units
def test_image_receiver_erases_a_lost_chunk_and_drops_duplicates():
    """64x64 over 512-symbol frames (4 chunks); chunk 2 lost, chunk 0 twice, no channel noise."""
    from semcom.radio.images import CodecSet, ImageReceiver, encode_images
    from semcom.radio.link import decode_iq, waveform_of

    cfg = load_config(PLUTO, ["frame.max_payload_symbols=512"])
    codecs = CodecSet(cfg, ["jscc"])
    img = synthetic_image(64, 64, seed=5)
    sends, rows = encode_images(cfg, codecs.default, [(img, "x")], 10.0, 7)
    assert rows[0]["frames"] == 5 and sends[0][1]["stream_id"] == 7
    dec = decode_iq(cfg, waveform_of(cfg, sends).iq)
    assert len(dec.frames) == 5
    rx = ImageReceiver(codecs, 512, timeout_s=1.0, references=[(img, "x")], first_stream_id=7)
    for rec, y, nv in zip(dec.frames, dec.payloads, dec.noise_vars):
        if rec["chunk_index"] == 2 and not rec["flags"] & 2:
            continue
        rx.add(rec, y, nv, now=0.0)
        if rec["chunk_index"] == 0 and not rec["flags"] & 2:
            rx.add(rec, y, nv, now=0.0)
    assert rx.poll(now=0.5) == [] and rx.pending() == 1  # incomplete: waits for the time-out
    res = rx.poll(now=2.0)
    assert len(res) == 1 and res[0]["missing_chunks"] == [2] and res[0]["chunk_count"] == 4
    assert res[0]["psnr"] > grey_psnr(img) + 5 and rx.counters["duplicates"] == 1
    rx.add(dec.frames[1], dec.payloads[1], dec.noise_vars[1], now=2.5)  # a late copy of the decoded stream
    assert rx.counters["duplicates"] == 2 and rx.finish() == []


# ---------------------------------------------------------------------- recording failures
class _FullDisk(io.FileIO):
    """A file on a disk with ``room`` bytes left: writes past it fail with ENOSPC after a partial write."""

    room = 10_000 * 8 + 5  # ends in the middle of a sample

    def write(self, b):
        b = memoryview(b).cast("B")
        left = self.room - self.tell()
        if len(b) > left:
            super().write(b[:max(left, 0)])
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(b)


def test_full_disk_keeps_what_was_written(tmp_path, monkeypatch):
    from semcom.blocks.phy.sigmf_io import open_recording
    from semcom.radio import link
    from semcom.radio.link import IqRecorder

    cfg = load_config(PLUTO)
    real_open = open
    monkeypatch.setattr(link, "open", lambda p, mode="r", *a: _FullDisk(p, mode) if str(p).endswith("-data")
                        else real_open(p, mode, *a), raising=False)
    rec = IqRecorder(tmp_path / "cap", cfg, hw="fake_pluto")
    x = (np.arange(4000) * (1 + 1j)).astype(np.complex64)
    for _ in range(4):
        rec.write(x)  # the third write hits the full disk
    frames = [{"start": 100, "n_payload": 364, "frame_counter": 0, "stream_id": 0, "snr_db": 12.0},
              {"start": 9000, "n_payload": 3072, "frame_counter": 1, "stream_id": 0, "snr_db": 12.0}]
    info = rec.close(frames)
    assert info["samples"] == 10_000 and info["dropped"] == 6000 and "No space left on device" in info["error"]
    assert info["annotations"] == 1  # the second frame runs past the recorded samples
    got = open_recording(tmp_path / "cap")
    assert got.n_samples == 10_000 and np.array_equal(got.read(0, 8000), np.concatenate([x, x]))
    assert "No space left" in got.meta["global"]["semcom:recording_error"]


def test_rx_with_a_full_disk_says_so_and_keeps_the_recording(tmp_path, monkeypatch, capsys):
    from semcom.blocks.phy.sigmf_io import open_recording
    from semcom.cli import main
    from semcom.radio import link
    from semcom.radio.link import build_waveform, random_payloads

    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    cfg = load_config(PLUTO, ["radio.device=fake_pluto", "radio.uri=null"])
    tx = build_waveform(cfg, random_payloads(2, 1500, 0))
    FakeAir(path=air).transmit(tx.iq * 0.1 / np.sqrt(np.mean(np.abs(tx.iq) ** 2)), -20.0, cyclic=True)
    real_open = open
    monkeypatch.setattr(link, "open", lambda p, mode="r", *a: _FullDisk(p, mode) if str(p).endswith("-data")
                        else real_open(p, mode, *a), raising=False)
    base = tmp_path / "cap"
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.01", "--out", str(base)]) == 1
    err = capsys.readouterr().err
    assert "IQ recording stopped" in err and "No space left on device" in err and "10000 samples written" in err
    rec = open_recording(base)
    assert rec.n_samples == 10_000 and json.loads(Path(f"{base}.json").read_text())["frames"] >= 2


def test_unwritable_recording_path_fails_before_the_device(tmp_path, capsys):
    from semcom.cli import main

    (tmp_path / "cap.sigmf-data").mkdir()  # the data file cannot be created
    assert main(["rx", "-c", PLUTO, "--set", "radio.uri=ip:10.255.255.1", "--out", str(tmp_path / "cap")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cap.sigmf-data'}: cannot write the IQ recording" in err and "PlutoSDR" not in err


# ---------------------------------------------------------------------- dashboard
def test_rx_gui_shows_the_decoded_image_offscreen(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pyqtgraph")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    air = tmp_path / "air"
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(air))
    img = synthetic_image(64, 64, seed=6)
    save_png(img, tmp_path / "ref.png")
    _fill_air(air, FAKE_PLUTO, [img])
    from PIL import Image

    from semcom.cli import main
    from semcom.radio import gui

    shown: list = []

    class Recording(gui.RxMonitor):
        def __init__(self, *a):
            super().__init__(*a)
            shown.append(self)

    monkeypatch.setattr(gui, "RxMonitor", Recording)
    png = tmp_path / "gui.png"
    assert main(["rx", "-c", PLUTO, *FAKE_PLUTO, "--duration", "0.01", "--reference", str(tmp_path / "ref.png"),
                 "--out", str(tmp_path / "r"), "--gui", "--gui-png", str(png)]) == 0
    mon = shown[0]
    assert mon.displayed is not None and mon.displayed.shape == img.shape
    assert mon.shown[0]["stream_id"] == 0 and mon.shown[0]["psnr"] > grey_psnr(img) + 10
    # the screenshot shows the reconstruction where its image item sits, and the original beside it
    shot = np.asarray(Image.open(png).convert("RGB")).astype(float)
    for name, ref in (("reconstruction", mon.displayed), ("original", img)):
        left, top, right, bottom = mon.image_regions[name]
        region = shot[top + 2:bottom - 2, left + 2:right - 2]
        assert region.size and region.std() > 20  # not blank
        small = np.asarray(Image.fromarray(region.astype(np.uint8)).resize(ref.shape[1::-1]))
        assert image_metrics(small, ref)["psnr"] > 18, (name, mon.image_regions)  # and it is that image
    capsys.readouterr()
