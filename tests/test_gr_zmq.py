"""Two-process link over gr-zeromq: ``topblocks zmq-tx`` (PUSH, binds) -> ``topblocks zmq-rx`` (PULL).

Each side runs in its own Python process (the venv interpreter); both are bounded by timeouts
and killed if they overrun, so no process is left behind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("gnuradio.zeromq")

pytestmark = pytest.mark.gnuradio
MODULE = "semcom.blocks.gr.topblocks"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """Wait for ``proc``; kill it (and reap it) if it overruns. Returns (status, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        return -9, out, err
    return proc.returncode, out, err


@pytest.mark.parametrize("channel", [None, {"snr_db": 25.0, "cfo": 0.4, "timing_offset": 17, "seed": 2}])
def test_zmq_two_processes_deliver_all_frames(channel):
    n_frames, n_payload = 4, 500
    addr = f"tcp://127.0.0.1:{_free_port()}"
    rx_cmd = [sys.executable, "-m", MODULE, "zmq-rx", "--address", addr, "--frames", str(n_frames), "--timeout", "40"]
    if channel:
        rx_cmd += ["--channel", json.dumps(channel)]
    tx_cmd = [sys.executable, "-m", MODULE, "zmq-tx", "--address", addr, "--frames", str(n_frames),
              "--n-payload", str(n_payload), "--timeout", "30", "--linger", "1.0"]
    rx = subprocess.Popen(rx_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tx = subprocess.Popen(tx_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tx_rc, tx_out, tx_err = _finish(tx, 60)
        rx_rc, rx_out, rx_err = _finish(rx, 60)
    finally:
        for p in (rx,):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert tx_rc == 0, tx_err[-2000:]
    assert rx_rc == 0, rx_out[-2000:] + rx_err[-2000:]
    lines = [json.loads(line) for line in rx_out.splitlines() if line.startswith("{")]
    frames = [d for d in lines if "stream_id" in d]
    summary = lines[-1]
    assert summary["received"] == n_frames
    assert sorted(d["stream_id"] for d in frames) == list(range(n_frames))
    assert [d["frame_counter"] for d in frames] == list(range(n_frames))
    assert all(d["n_payload"] == n_payload for d in frames)
    limit = -40.0 if channel is None else -18.0  # payload error vs the symbols sent (dB)
    assert all(d["rel_err_db"] < limit for d in frames), frames
    assert all(np.isfinite(d["snr_db"]) for d in frames)
