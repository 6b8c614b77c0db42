"""Two-process link over gr-zeromq: ``topblocks zmq-tx`` (PUSH, binds) -> ``topblocks zmq-rx`` (PULL).

Each side runs in its own Python process (the venv interpreter); both are bounded by timeouts
and killed if they overrun, so no process is left behind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio.zeromq")

pytestmark = pytest.mark.gnuradio
MODULE = "semcom.blocks.gr.topblocks"
from semcom.blocks.gr.topblocks import demo_payload  # noqa: E402 (after the importorskip)


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


# ---------------------------------------------------------------------- issue 13: the link loses no data silently
CLI = [sys.executable, "-m", "semcom.cli", "phy"]


def _default_sigint() -> None:
    """Child processes get the default SIGINT even when the test runner was started with it ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _push_iq(addr: str, iq: np.ndarray, timeout: float = 30.0, linger: float = 1.0) -> None:
    """Bind a ZMQ PUSH socket at ``addr`` in this process, push ``iq`` (complex64) and keep it open ``linger`` s."""
    from gnuradio import blocks, gr, zeromq

    tb = gr.top_block()
    src = blocks.vector_source_c(iq.astype(np.complex64), False)
    snk = zeromq.push_sink(gr.sizeof_gr_complex, 1, addr, 100, False, -1)
    tb.connect(src, snk)
    tb.start()
    try:
        deadline = time.monotonic() + timeout
        while snk.nitems_read(0) < iq.size and time.monotonic() < deadline:
            time.sleep(0.02)
        assert snk.nitems_read(0) == iq.size, "the receiver did not take the samples"
        time.sleep(linger)
    finally:
        tb.stop()
        tb.wait()


def _frames_iq(n_frames: int, drop: tuple[int, ...] = (), n: int = 300) -> np.ndarray:
    """IQ of ``n_frames`` one-chunk frames (frame counters 0..n-1, default FrameSpec) without those in ``drop``."""
    from semcom.blocks.phy.frame import FrameSpec
    from semcom.blocks.phy.tx import FrameTransmitter

    spec = FrameSpec()
    tx = FrameTransmitter(spec)
    parts = [np.zeros(spec.guard_len, np.complex64)]
    for i in range(n_frames):
        (f,) = tx.modulate_stream(demo_payload(i, n), stream_id=i)
        if i not in drop:
            parts.append(f.iq)
    parts.append(np.zeros(4 * spec.guard_len + 2000, np.complex64))
    return np.concatenate(parts).astype(np.complex64)


def _read_lines(proc: subprocess.Popen, n: int, timeout: float) -> list[dict]:
    """The first ``n`` JSON lines of ``proc``'s stdout; kills ``proc`` if they do not come within ``timeout`` s."""
    import threading

    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    out = []
    try:
        while len(out) < n:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                out.append(json.loads(line))
    finally:
        killer.cancel()
    return out


def test_frame_counter_gaps_counts_losses_duplicates_and_restarts():
    from semcom.commands.phy import frame_counter_gaps

    g = frame_counter_gaps([0, 1, 3, 3, 7, 8])
    assert (g["first"], g["last"], g["missing"], g["duplicates"], g["restarts"]) == (0, 8, 4, 1, 0)
    assert g["gaps"] == [[1, 3, 1], [3, 7, 3]]
    wrap = frame_counter_gaps([65534, 65535, 1])  # the 16-bit counter wraps: frame 0 is missing
    assert wrap["missing"] == 1 and wrap["gaps"] == [[65535, 1, 1]]
    restart = frame_counter_gaps([40, 41, 0, 1])  # a new transmitter starts again at 0: no loss
    assert restart["missing"] == 0 and restart["restarts"] == 1
    assert frame_counter_gaps([])["missing"] == 0


def test_tx_send_waits_for_room_in_the_queue():
    """Back-pressure: ``send`` blocks while the queue is full and continues as the flowgraph drains it;
    with nothing draining it, it raises ``TxQueueFull`` after ``timeout`` instead of at once or never."""
    from gnuradio import blocks, gr

    from semcom.blocks.gr.ofdm_tx import TxQueueFull, semcom_ofdm_tx
    from semcom.blocks.phy.frame import FrameSpec

    spec = FrameSpec()
    idle = semcom_ofdm_tx(spec)  # never started: nothing takes frames off its queue
    idle.source.max_queued_frames = 2
    idle.send(demo_payload(0, 100))
    idle.send(demo_payload(1, 100))
    t0 = time.monotonic()
    with pytest.raises(TxQueueFull, match="max_queued_frames"):
        idle.send(demo_payload(2, 100), timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 5.0

    tb = gr.top_block()
    tx = semcom_ofdm_tx(spec)
    tx.source.max_queued_frames = 2
    snk = blocks.null_sink(gr.sizeof_gr_complex)
    tb.connect(tx, snk)
    n, total = 20, 20 * spec.frame_len(100)
    tb.start()
    try:
        for i in range(n):  # 10x the queue: every send after the second waits for room
            tx.send(demo_payload(i, 100), timeout=10.0, stream_id=i)
        deadline = time.monotonic() + 20
        while snk.nitems_read(0) < total and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tb.stop()
        tb.wait()
    assert tx.frames_sent == n and snk.nitems_read(0) == total


def test_zmq_tx_more_frames_than_its_queue_all_arrive():
    """In one process: ZmqTx with a 4-frame queue sends 24 frames to ZmqRx; all arrive, in order."""
    from semcom.blocks.gr.topblocks import ZmqRx, ZmqTx
    from semcom.blocks.phy.frame import FrameSpec

    spec = FrameSpec()
    addr = f"tcp://127.0.0.1:{_free_port()}"
    tx = ZmqTx(spec, addr, max_queued_frames=4)
    rx = ZmqRx(spec, addr)
    rx.start()
    tx.start()
    n = 24
    try:
        for i in range(n):
            tx.send(demo_payload(i, 200), timeout=20.0, stream_id=i)
        deadline = time.monotonic() + 40
        while rx.collector.count < n and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        for tb in (tx, rx):
            tb.stop()
            tb.wait()
    count, lost, frames = rx.collector.since(0)
    assert count == n and lost == 0
    assert [int(m["frame_counter"]) for m, _ in frames] == list(range(n))


def test_zmq_tx_without_receiver_gives_up_with_a_clear_error():
    """More frames than the queue holds and nobody pulling: zmq-tx waits, then says why it stopped,
    reports what it sent (not a delivery claim) and exits 1."""
    addr = f"tcp://127.0.0.1:{_free_port()}"
    r = subprocess.run(CLI + ["zmq-tx", "--address", addr, "--streams", "3", "--symbols", "50", "--repeat", "1500",
                              "--connect-wait", "0", "--linger", "0", "--timeout", "1.5"],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 1, r.stdout + r.stderr[-2000:]
    assert "already queued" not in r.stderr and "Traceback" not in r.stderr
    assert "no sample left for 1.5 s" in r.stderr and addr in r.stderr
    rep = json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])
    assert "ok" not in rep and rep["complete"] is False
    assert rep["frames"] == 4500 and rep["frames_sent"] < rep["frames"]
    assert rep["samples_sent"] < rep["expected_samples"] and "receiver" in rep["delivery"]


def test_second_zmq_tx_on_the_same_port_says_so_in_one_line(capsys):
    from semcom.blocks.gr.topblocks import ZmqTx
    from semcom.cli import main

    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    first = ZmqTx(None, addr)  # binds the port, as a running zmq-tx does
    try:
        rc = main(["phy", "zmq-tx", "--address", addr, "--streams", "1", "--symbols", "50", "--connect-wait", "0",
                   "--linger", "0", "--timeout", "2"])
    finally:
        del first
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "already in use" in err and str(port) in err, err


def test_zmq_rx_reports_missing_frames():
    """Frames 2 and 3 of 6 never reach the receiver: it says how many arrived and which counters are missing."""
    addr = f"tcp://127.0.0.1:{_free_port()}"
    rx = subprocess.Popen(CLI + ["zmq-rx", "--address", addr, "--no-channel", "--frames", "4", "--timeout", "30",
                                 "--max-seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        _push_iq(addr, _frames_iq(6, drop=(2, 3)))
        rc, out, err = _finish(rx, 60)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait(10)
    assert rc == 0, out[-2000:] + err[-2000:]
    summary = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert summary["frames_received"] == 4 and summary["missing_frames"] == 2
    assert summary["frame_counter"]["gaps"] == [[1, 4, 2]]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_zmq_rx_writes_its_results_when_interrupted(sig, tmp_path):
    import signal

    addr = f"tcp://127.0.0.1:{_free_port()}"
    npz, js = tmp_path / "z.npz", tmp_path / "z.json"
    rx = subprocess.Popen(CLI + ["zmq-rx", "--address", addr, "--no-channel", "--timeout", "60", "--max-seconds", "90",
                                 "--out", str(npz), "--json", str(js)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        time.sleep(0.5)
        _push_iq(addr, _frames_iq(3), linger=0.2)
        got = _read_lines(rx, 3, timeout=40)
        assert len(got) == 3, "the receiver did not print the frames"
        rx.send_signal(getattr(signal, sig))
        rc, out, err = _finish(rx, 30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait(10)
    assert rc == 128 + getattr(signal, sig), err[-2000:]
    assert "Traceback" not in err and sig in err
    z = np.load(npz)
    assert sorted(z["stream_ids"]) == [0, 1, 2] and list(z["frame_frame_counter"]) == [0, 1, 2]
    stats = json.loads(js.read_text())
    assert stats["frames_received"] == 3 and stats["missing_frames"] == 0 and stats["stopped_by"] == sig
