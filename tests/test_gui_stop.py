"""``semcom loopback --gui`` ends cleanly: SIGINT / SIGTERM stop it and write the report; without a
display it says what to do in one line instead of Qt aborting the process.

The signal tests run the dashboard in a child process (offscreen) with a stand-in for the GNU
Radio loopback, so they take seconds and need neither models nor a flowgraph; every child is
bounded by a timeout and killed if it overruns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")

# The dashboard of run_gui around a stand-in loopback: one decoded image, then it runs until told to stop
# (the real run_image_loopback watches the same ``stop`` event; tested below), at most 30 s.
CHILD = r'''
import argparse, sys, time
import numpy as np
import semcom.loopback_image as li
from semcom import loopback_gui
from semcom.config import Config


def fake_loopback(cfg, images, codec, snr_hint, decoders="jscc", nfe=1, timeout=120.0, interval=0.0,
                  on_result=None, setup=None, stop=None, **kw):
    img = np.full((16, 16, 3), 128, np.uint8)
    res = {"stream_id": 0, "decoder": "jscc", "image": img, "width": 16, "height": 16, "snr_db": 20.0,
           "chunk_count": 1, "missing_chunks": [], "decode_s": 0.01, "psnr": 30.0}
    on_result(res)
    print("running", flush=True)
    t_end = time.monotonic() + 30
    while time.monotonic() < t_end and not (stop is not None and stop.is_set()):
        time.sleep(0.02)
    return {"engine": "gnuradio", "codec": {"checkpoint": "fake", "ratio": "1/6", "codec_id": 1, "decoders": ["jscc"]},
            "channel": cfg.channel.to_dict(), "frame_spec": str(cfg.frame), "snr_hint_db": snr_hint,
            "images_sent": 3, "frames_sent": 6, "frames_received": 2, "encode_s": [0.01],
            "results": [{k: v for k, v in res.items() if k != "image"}], "receiver_stats": {},
            "decoder_stats": {}, "seconds": 1.0, "stopped": bool(stop is not None and stop.is_set()),
            "_images": {(0, "jscc"): img}, "_originals": {0: img}}


li.run_image_loopback = fake_loopback
args = argparse.Namespace(out=sys.argv[1], timeout=60.0, gui_hold=-1.0)
sys.exit(loopback_gui.run_gui(Config(), [], None, 20.0, "jscc", 1, args))
'''


def _restore_default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # even when the test runner runs with SIGINT ignored


def test_check_display_refuses_without_any_display(monkeypatch):
    from semcom.loopback_gui import check_display

    for k in NO_DISPLAY:
        monkeypatch.delenv(k, raising=False)
    if sys.platform.startswith(("win", "darwin")):
        pytest.skip("Qt picks its native platform there")
    with pytest.raises(ValueError, match="xvfb-run.*QT_QPA_PLATFORM=offscreen"):
        check_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    check_display()


def test_loopback_gui_without_display_is_one_line_not_an_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in NO_DISPLAY}
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run([sys.executable, "-m", "semcom.cli", "loopback", "--gui", "--out", ""], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "xvfb-run" in err and "QT_QPA_PLATFORM=offscreen" in err


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_loopback_gui_signal_stops_and_writes_the_report(sig, tmp_path):
    pytest.importorskip("pyqtgraph")
    pytest.importorskip("PyQt5")
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_restore_default_sigint)
    killer = threading.Timer(60, proc.kill)  # bounded, whatever happens
    killer.start()
    try:
        assert proc.stdout.readline().strip() == "running", proc.stderr.read()[-2000:]
        time.sleep(0.5)  # the window is up and refreshing
        proc.send_signal(getattr(signal, sig))
        rest, err = proc.communicate(timeout=45)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 128 + getattr(signal, sig), err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert sig in err and "report:" in rest
    report = json.loads((out / "loopback.json").read_text())
    assert report["stopped_by"] == sig and report["stopped"] is True and len(report["results"]) == 1
    assert (out / "dashboard.png").stat().st_size > 1000


@pytest.mark.gnuradio
def test_image_loopback_returns_early_when_stopped():
    """The real GNU Radio image loopback honours ``stop``: no image after it is set, a report of what arrived."""
    pytest.importorskip("gnuradio")
    pytest.importorskip("torch")
    from semcom.blocks.gr.semantic_encoder import build_codec
    from semcom.config import Config
    from semcom.imagelink import synthetic_image
    from semcom.loopback_image import run_image_loopback

    try:
        codec = build_codec("", ratio="1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    stop = threading.Event()
    images = [(synthetic_image(32, 32, seed=i), f"x{i}") for i in range(20)]  # 10 s of sending at 0.5 s
    timer = threading.Timer(2.0, stop.set)  # as the GUI's signal handler does, from another thread
    t0 = time.monotonic()
    timer.start()
    try:
        rep = run_image_loopback(Config(), images, codec, 20.0, timeout=60, interval=0.5, stop=stop)
    finally:
        timer.cancel()
    assert rep["stopped"] and 1 <= rep["images_sent"] < len(images)
    assert len(rep["results"]) <= rep["images_sent"] and time.monotonic() - t0 < 9.0
