"""Bounded memory: the streamed numpy PHY loopback equals the whole-waveform chain; ``semcom bench memory``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from semcom.blocks.phy.channel import simulate
from semcom.cli import main
from semcom.commands.loopback import random_streams, run_numpy_loopback, summarize
from semcom.commands.phy import decode_chunks, transmit_streams
from semcom.config import load_config


def _whole_waveform(cfg, streams):
    """The unstreamed chain: the whole waveform, then the channel, then the receiver in blocks."""
    tx = transmit_streams(cfg.frame, streams, first_stream_id=cfg.link.stream_id, codec_id=cfg.model.codec_id)
    y = simulate(np.concatenate([tx.iq, np.zeros(cfg.frame.symbol_len * 4, np.complex64)]), cfg.channel)
    chunk = cfg.link.rx_chunk_samples
    res = decode_chunks((y[a:a + chunk] for a in range(0, y.size, chunk)), cfg.frame, keep_payloads=True)
    return {"engine": "numpy", "sent": list(zip(tx.headers, tx.payloads)),
            "received": list(zip(res.frames, res.payloads)), "stats": res.stats,
            "streams": [{"stream_id": s.stream_id, "complete": s.complete, "missing": list(s.missing)}
                        for s in res.streams],
            "n_samples": int(y.size), "seconds": 0.0, "papr_db": tx.papr_db}


def _record(rec: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in rec.items() if k != "payload_snr_db"}


@pytest.mark.parametrize("channel", [
    ["channel.snr_db=12"],
    ["channel.snr_db=6", "channel.profile=indoor", "channel.fading=rayleigh", "channel.block_len=7000",
     "channel.cfo=0.13", "channel.timing_offset=3.5", "channel.sro_ppm=40", "channel.phase_noise=50", "channel.seed=5"],
])
def test_streamed_numpy_loopback_equals_the_whole_waveform(channel):
    cfg = load_config(None, channel + ["link.rx_chunk_samples=5000"])
    streams = [random_streams(1, n, seed)[0] for seed, n in enumerate((7000, 100, 3072, 1))]
    run, ref = run_numpy_loopback(cfg, streams), _whole_waveform(cfg, streams)
    assert [h for h, _ in run["sent"]] == [h for h, _ in ref["sent"]]
    assert [_record(r) for r, _ in run["received"]] == [_record(r) for r, _ in ref["received"]]
    assert len(run["received"]) >= 5  # most frames arrive
    assert run["stats"] == ref["stats"] and run["streams"] == ref["streams"]
    assert run["n_samples"] == ref["n_samples"] and run["papr_db"] == ref["papr_db"]
    a, b = summarize(cfg, run), summarize(cfg, ref)
    a.pop("seconds"), b.pop("seconds")
    assert a == b  # payload SNR (measured on arrival) included


_PHY_CHILD = r"""
import resource
from semcom.bench_memory import peak_rss_mb  # VmHWM: this process image's own peak
from semcom.commands.loopback import random_streams, run_numpy_loopback, summarize
from semcom.config import load_config
cfg = load_config(None, ["channel.snr_db=10"])
streams = random_streams(400, 3072, 0)  # 400 frames, 2.5 M samples
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1e6
base = rss_mb()
r = summarize(cfg, run_numpy_loopback(cfg, streams))
print(peak_rss_mb() - base, r["frames_matched"])
"""


def test_numpy_loopback_memory_does_not_grow_with_frames():
    """400 frames through the numpy loopback: under 60 MB above the start (the whole waveform took ~220 MB)."""
    r = subprocess.run([sys.executable, "-c", _PHY_CHILD], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    growth, matched = r.stdout.split()
    assert int(matched) == 400
    assert float(growth) < 60.0, f"peak {float(growth):.0f} MB above the start"


def test_bench_memory_prints_peaks_against_the_target(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "mem.json"
    assert main(["bench", "memory", "--size", "64x48", "--frames", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "peak RSS" in text and "target < 1000 MB" in text
    res = json.loads(out.read_text())
    assert set(res["cases"]) == {"image 64x48 [jscc]", "numpy PHY, 3 frames"}
    for row in res["cases"].values():
        assert row["rc"] == 0 and 10 < row["peak_mb"] < res["target_mb"] and row["met"]
    (enc, dec), = [res["cases"]["image 64x48 [jscc]"]["detail"]]
    assert enc["step"] == "encode" and dec["step"] == "jscc" and dec["psnr"] > 15
