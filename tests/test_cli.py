"""The ``semcom`` command: help of every subcommand, clean errors, the file round trip
(tx-file -> external impairment -> rx-file), the loopback demo and a tiny benchmark run."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from semcom.cli import main

PHY_SUBCOMMANDS = ["tx-file", "rx-file", "channel", "zmq-tx", "zmq-rx"]


@pytest.mark.parametrize("argv", [[], ["phy"], ["loopback"], ["bench"], ["bench", "phy"]]
                         + [["phy", s] for s in PHY_SUBCOMMANDS])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as ei:
        main(argv + ["--help"])
    assert ei.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_console_script_help():
    r = subprocess.run([sys.executable, "-m", "semcom.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "loopback" in r.stdout and "phy" in r.stdout


@pytest.mark.parametrize("argv", [
    ["loopback", "--engine", "numpy"],
    ["phy", "rx-file", "x.cf32", "--out", "o.npz"],
    ["bench", "phy", "--only", "noise"],
])
def test_bad_config_path_exit_2(argv, tmp_path, capsys):
    missing = tmp_path / "no_such_config.yaml"
    assert main(argv + ["--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no_such_config.yaml" in err and "not found" in err
    assert "Traceback" not in err


def test_bad_config_value_exit_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("channel:\n  snr_db: loud\n")
    assert main(["loopback", "--engine", "numpy", "--config", str(cfg)]) == 2
    assert f"{cfg}: channel.snr_db: must be a number" in capsys.readouterr().err


def test_bad_override_exit_2(capsys):
    assert main(["loopback", "--engine", "numpy", "--set", "frame.fft_len=100"]) == 2
    assert "frame.fft_len" in capsys.readouterr().err


# ---------------------------------------------------------------------- file round trip
def _impair(iq: np.ndarray, snr_db: float, cfo: float, fft_len: int, seed: int) -> np.ndarray:
    """An impairment done outside our simulator: scipy FIR multipath, a CFO and numpy noise."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    taps = np.array([1.0, 0.0, 0.25j, -0.1])
    taps /= np.linalg.norm(taps)  # unit average power: SNR stays the average Es/N0
    y = lfilter(taps, [1.0], np.concatenate([np.zeros(137), iq, np.zeros(200)]))
    y = y * np.exp(2j * np.pi * cfo / fft_len * np.arange(y.size))
    n0 = 10 ** (-snr_db / 10)  # Es/N0 per payload symbol with unit-power symbols (snr.py)
    w = np.sqrt(n0 / 2) * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))
    return (y + w).astype(np.complex64)


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(5)
    payload = (rng.standard_normal((2, 4000)) + 1j * rng.standard_normal((2, 4000))).astype(np.complex64) * 2.5
    np.save(tmp_path / "payload.npy", payload)
    assert main(["phy", "tx-file", "--payload", str(tmp_path / "payload.npy"), "--out", str(tmp_path / "tx"),
                 "--stream-id", "40", "--set", "model.codec_id=9"]) == 0
    return tmp_path, payload


def test_tx_rx_round_trip_with_external_impairment(recording, capsys):
    from semcom.blocks.phy.sigmf_io import read_recording, write_recording

    d, payload = recording
    iq, meta, spec = read_recording(d / "tx")
    anns = meta["annotations"]
    assert len(anns) == 4  # 2 streams x 2 chunks (3072 + 928)
    assert [a["semcom:header"]["chunk_index"] for a in anns] == [0, 1, 0, 1]
    snr = 18.0
    y = _impair(iq, snr, cfo=0.8, fft_len=spec.fft_len, seed=1)
    write_recording(d / "rx", y, meta["global"]["core:sample_rate"], frame_spec=spec,
                    extra_global={k: v for k, v in meta["global"].items() if k.startswith("semcom:")
                                  and k != "semcom:frame_spec"})
    assert main(["phy", "rx-file", str(d / "rx.sigmf-meta"), "--out", str(d / "out.npz"),
                 "--json", str(d / "stats.json"), "--chunk", "5000"]) == 0
    out = np.load(d / "out.npz")
    assert list(out["stream_ids"]) == [40, 41]
    for i in range(2):
        sym, nv = out[f"s{i}_symbols"], out[f"s{i}_noise_var"]
        assert sym.shape == (4000,) and sym.dtype == np.complex64 and nv.dtype == np.float32
        assert out[f"s{i}_mask"].all() and out[f"s{i}_missing"].size == 0
        err = np.mean(np.abs(sym - payload[i]) ** 2) / np.mean(np.abs(payload[i]) ** 2)
        assert -10 * np.log10(err) > snr - 1.5  # back in the payload's own units (scale undone)
        # the reported noise variance matches the actual error (same units)
        assert 0.6 < np.mean(nv) / np.mean(np.abs(sym - payload[i]) ** 2) < 1.6
    assert list(out["frame_stream_id"]) == [40, 40, 41, 41]
    assert list(out["frame_chunk_index"]) == [0, 1, 0, 1]
    assert set(out["frame_codec_id"]) == {9} and list(out["frame_n_payload"]) == [3072, 928] * 2
    assert np.all(np.abs(out["frame_snr_db"] - snr) < 1.5)
    assert np.all(np.abs(out["frame_cfo"] - 0.8) < 0.05)
    assert out["frame_noise_var_carrier"].shape == (4, spec.n_data)
    stats = json.loads((d / "stats.json").read_text())
    assert stats["frames"] == 4 and stats["receiver"]["frames_ok"] == 4
    assert all(s["complete"] for s in stats["streams"])


def test_cut_frame_is_reported_missing(recording):
    from semcom.blocks.phy.sigmf_io import read_recording

    d, payload = recording
    iq, meta, spec = read_recording(d / "tx")
    a = meta["annotations"][1]  # stream 40, chunk 1
    start, n = a["core:sample_start"], a["core:sample_count"]
    cut = np.concatenate([iq[:start], iq[start + n:]])
    rng = np.random.default_rng(2)
    y = cut + (np.sqrt(10 ** (-25 / 10) / 2) * (rng.standard_normal(cut.size) + 1j * rng.standard_normal(cut.size)))
    y.astype(np.complex64).tofile(d / "cut.cf32")  # raw file: no metadata, no scale, config's frame
    assert main(["phy", "rx-file", str(d / "cut.cf32"), "--sample-rate", "2e6", "--out", str(d / "cut.npz"),
                 "--json", str(d / "cut.json")]) == 0
    out = np.load(d / "cut.npz")
    assert list(out["stream_ids"]) == [41, 40]  # the complete stream is handed out first
    i40 = list(out["stream_ids"]).index(40)
    assert list(out[f"s{i40}_missing"]) == [1]
    mask = out[f"s{i40}_mask"]
    assert mask[:3072].all() and not mask[3072:].any()
    assert np.all(np.isinf(out[f"s{i40}_noise_var"][3072:]))
    # the chunk that did arrive is intact (raw file: unit-power symbols, scale unknown -> 1)
    scale = np.sqrt(np.mean(np.abs(payload[0]) ** 2))
    ref = payload[0][:3072] / scale
    assert np.mean(np.abs(out[f"s{i40}_symbols"][:3072] - ref) ** 2) < 10 ** (-20 / 10)
    stats = json.loads((d / "cut.json").read_text())
    s40 = [s for s in stats["streams"] if s["stream_id"] == 40][0]
    assert s40["missing_chunks"] == [1] and not s40["complete"]


def test_rx_file_result_does_not_depend_on_chunking(recording):
    d, _ = recording
    assert main(["phy", "channel", str(d / "tx"), str(d / "ch"), "--set", "channel.snr_db=12",
                 "--set", "channel.profile=indoor", "--set", "channel.timing_offset=7.5", "--seed", "3",
                 "--set", "link.rx_chunk_samples=1000"]) == 0  # the channel streams in 1000-sample blocks
    from semcom.blocks.phy.channel import simulate
    from semcom.blocks.phy.sigmf_io import read_recording

    x, _, spec = read_recording(d / "tx")
    y, _, _ = read_recording(d / "ch")
    cfg = dict(snr_db=12.0, profile="indoor", timing_offset=7.5, seed=3, fft_len=spec.fft_len)
    assert np.allclose(y, simulate(x, cfg), atol=1e-6)  # streamed file = one-shot simulation
    outs = []
    for chunk in ("777", "65536"):
        assert main(["phy", "rx-file", str(d / "ch"), "--out", str(d / f"c{chunk}.npz"), "--chunk", chunk]) == 0
        outs.append(np.load(d / f"c{chunk}.npz"))
    assert sorted(outs[0].keys()) == sorted(outs[1].keys())
    for k in outs[0].keys():
        assert np.array_equal(outs[0][k], outs[1][k]), k


def test_digital_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, 4 * 500, dtype=np.uint8)
    np.save(tmp_path / "bits.npy", bits)
    assert main(["phy", "tx-file", "--bits", str(tmp_path / "bits.npy"), "--modulation", "16qam",
                 "--out", str(tmp_path / "d")]) == 0
    assert main(["phy", "channel", str(tmp_path / "d"), str(tmp_path / "dc"), "--set", "channel.snr_db=30",
                 "--set", "channel.cfo=-1.2", "--seed", "4"]) == 0
    assert main(["phy", "rx-file", str(tmp_path / "dc"), "--out", str(tmp_path / "d.npz")]) == 0
    out = np.load(tmp_path / "d.npz")
    assert str(out["s0_kind"]) == "digital:16qam"
    assert np.array_equal(out["s0_bits"], bits)


def test_channel_command_applies_snr(tmp_path):
    from semcom.blocks.phy.sigmf_io import read_recording

    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", (rng.standard_normal(96) + 1j * rng.standard_normal(96)).astype(np.complex64))
    assert main(["phy", "tx-file", "--payload", str(tmp_path / "p.npy"), "--out", str(tmp_path / "a")]) == 0
    assert main(["phy", "channel", str(tmp_path / "a.sigmf-meta"), str(tmp_path / "b"),
                 "--set", "channel.snr_db=0", "--seed", "1"]) == 0
    x, _, _ = read_recording(tmp_path / "a")
    y, meta, spec = read_recording(tmp_path / "b")
    n0 = np.mean(np.abs(y - x) ** 2)
    assert 0.8 < n0 < 1.2  # SNR 0 dB: N0 = 1 per sample
    assert meta["global"]["semcom:channel"]["snr_db"] == 0 and spec is not None


@pytest.mark.parametrize("argv, problem", [
    (["phy", "tx-file", "--payload", "{d}/nope.npy", "--out", "{d}/x"], "nope.npy"),
    (["phy", "tx-file", "--payload", "{d}/text.npy", "--out", "{d}/x"], "text.npy"),
    (["phy", "rx-file", "{d}/missing.sigmf-meta", "--out", "{d}/o.npz"], "missing.sigmf-meta"),
    (["phy", "rx-file", "{d}/odd.cf32", "--out", "{d}/o.npz"], "truncated"),
])
def test_phy_bad_input_exit_2(tmp_path, argv, problem, capsys):
    (tmp_path / "text.npy").write_text("not numpy")
    (tmp_path / "odd.cf32").write_bytes(b"\0" * 7)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err


def test_rx_file_noise_only_gives_no_frames(tmp_path):
    rng = np.random.default_rng(9)
    (rng.standard_normal(40000) + 1j * rng.standard_normal(40000)).astype(np.complex64).tofile(tmp_path / "n.fc32")
    assert main(["phy", "rx-file", str(tmp_path / "n.fc32"), "--out", str(tmp_path / "n.npz"),
                 "--json", str(tmp_path / "n.json")]) == 0
    assert np.load(tmp_path / "n.npz")["stream_ids"].size == 0
    assert json.loads((tmp_path / "n.json").read_text())["frames"] == 0


def test_rx_file_bad_samples_and_wrong_frame_description(recording):
    """NaN/Inf samples are counted and the other frames still decode; a receiver configured with
    another frame description delivers nothing (no false frame), without crashing."""
    from semcom.blocks.phy.sigmf_io import read_recording, write_recording

    d, _ = recording
    iq, meta, spec = read_recording(d / "tx")
    a = meta["annotations"][2]  # stream 41 chunk 0: poison its middle
    bad = iq.copy()
    mid = a["core:sample_start"] + a["core:sample_count"] // 2
    bad[mid:mid + 50] = np.nan
    bad[mid + 60] = np.inf
    write_recording(d / "nan", bad, 2e6, frame_spec=spec)
    assert main(["phy", "rx-file", str(d / "nan"), "--out", str(d / "nan.npz"), "--json", str(d / "nan.json")]) == 0
    st = json.loads((d / "nan.json").read_text())
    assert st["receiver"]["nonfinite_samples"] == 51
    assert st["frames"] >= 3  # the untouched frames
    out = np.load(d / "nan.npz")
    for i in range(out["stream_ids"].size):
        assert np.all(np.isfinite(out[f"s{i}_symbols"]))

    assert main(["phy", "rx-file", str(d / "tx"), "--spec-from", "config", "--set", "frame.cp_len=32",
                 "--out", str(d / "w.npz"), "--json", str(d / "w.json")]) == 0
    st = json.loads((d / "w.json").read_text())
    assert st["frames"] == 0 and np.load(d / "w.npz")["stream_ids"].size == 0


# ---------------------------------------------------------------------- loopback and bench
def test_loopback_numpy(tmp_path, capsys):
    assert main(["loopback", "--engine", "numpy", "--streams", "2", "--symbols", "500", "--snr", "15",
                 "--cfo", "0.4", "--out", str(tmp_path), "--strict"]) == 0
    rep = json.loads((tmp_path / "loopback.json").read_text())
    assert rep["frames_sent"] == rep["frames_matched"] == 2
    assert abs(rep["snr_estimate_db"]["mean"] - 15) < 1.5
    assert abs(rep["payload_snr_db"]["mean"] - 15) < 1.5
    assert abs(rep["cfo_estimate"]["mean"] - 0.4) < 0.05
    assert "frames sent 2" in capsys.readouterr().out


@pytest.mark.gnuradio
def test_loopback_gnuradio(tmp_path):
    pytest.importorskip("gnuradio")
    r = subprocess.run([sys.executable, "-m", "semcom.cli", "loopback", "--phy", "--engine", "gnuradio", "--streams", "2",
                        "--symbols", "1000", "--snr", "20", "--out", str(tmp_path), "--strict"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((tmp_path / "loopback.json").read_text())
    assert rep["engine"] == "gnuradio" and rep["frames_matched"] == rep["frames_sent"] == 2
    assert abs(rep["payload_snr_db"]["mean"] - 20) < 2


def _finite_numbers(x):
    if isinstance(x, dict):
        return all(_finite_numbers(v) for k, v in x.items() if k != "receiver_errors")
    if isinstance(x, list):
        return all(_finite_numbers(v) for v in x)
    if isinstance(x, float):
        return math.isfinite(x)
    return True


def test_bench_phy_tiny(tmp_path):
    from semcom import bench_phy
    from semcom.blocks.phy.frame import FrameSpec
    from semcom.blocks.phy.sigmf_io import jsonable

    bc = bench_phy.BenchConfig(loss_snrs=(20.0,), loss_frames=1, loss_payload=480,
                               scenarios=("awgn", "awgn+cfo+timing", "indoor"), det_snrs=(10.0,), det_frames=4,
                               det_batch=4, noise_samples=50_000, tput_seconds=0.05, gnuradio=False)
    res = bench_phy.run_bench(bc, FrameSpec())
    loss = res["implementation_loss"]
    assert [r["scenario"] for r in loss] == ["awgn", "awgn+cfo+timing", "indoor"]
    for r in loss:
        assert r["missed"] == 0 and not r["receiver_errors"]
        assert 10 < r["payload_snr_rx_db"] < 25 and 10 < r["payload_snr_genie_db"] < 25
        assert -1.0 < r["loss_db"] < 3.0
    assert res["detection"][0]["sent"] == 4 and res["detection"][0]["detected"] == 4
    assert res["noise_only"]["false_frames"] == 0 and res["noise_only"]["samples"] == 50_000
    tp = res["throughput"]
    assert tp["rates"]["numpy_tx"] > 0 and tp["rates"]["numpy_rx"] > 0
    assert tp["ratio"]["numpy_rx"] == pytest.approx(tp["rates"]["numpy_rx"] / bench_phy.LINK_RATE)
    text = bench_phy.format_tables(res)
    assert "implementation loss" in text and "detection" in text and "throughput" in text
    data = json.loads(json.dumps(jsonable(res)))
    assert _finite_numbers(data)
    pytest.importorskip("matplotlib")
    bench_phy.plot(res, str(tmp_path / "b.png"))
    assert (tmp_path / "b.png").stat().st_size > 1000


@pytest.mark.gnuradio
def test_zmq_two_process_link(tmp_path):
    """``semcom phy zmq-rx`` and ``zmq-tx`` as two processes over localhost, channel in between."""
    pytest.importorskip("gnuradio.zeromq")
    import socket

    with socket.socket() as s:  # a free local port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"tcp://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "semcom.cli", "phy"]
    rx = subprocess.Popen(cli + ["zmq-rx", "--address", addr, "--frames", "2", "--timeout", "30", "--max-seconds", "90",
                                 "--set", "channel.snr_db=25", "--set", "channel.cfo=0.5",
                                 "--out", str(tmp_path / "z.npz"), "--json", str(tmp_path / "z.json")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        tx = subprocess.run(cli + ["zmq-tx", "--address", addr, "--streams", "2", "--symbols", "600",
                                   "--connect-wait", "1.5", "--timeout", "60"],
                            capture_output=True, text=True, timeout=120)
        out, _ = rx.communicate(timeout=120)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert tx.returncode == 0, tx.stdout + tx.stderr
    assert rx.returncode == 0, out
    z = np.load(tmp_path / "z.npz")
    assert sorted(z["stream_ids"]) == [0, 1] and all(z[f"s{i}_mask"].all() for i in range(2))
    assert np.all(np.abs(z["frame_snr_db"] - 25) < 2) and np.all(np.abs(z["frame_cfo"] - 0.5) < 0.05)
    stats = json.loads((tmp_path / "z.json").read_text())
    assert stats["frames"] == stats["frames_received"] == 2 and stats["missing_frames"] == 0
    sent = json.loads([line for line in tx.stdout.splitlines() if line.startswith("{")][-1])
    assert sent["frames_sent"] == sent["frames"] == 2 and sent["complete"] and "ok" not in sent  # no delivery claim


def test_bench_phy_cli_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "phy", "--quick", "--only", "noise", "--json", str(out), "--silent"]) == 0
    res = json.loads(out.read_text())
    assert res["mode"] == "quick" and res["noise_only"]["samples"] == 1_000_000
    assert res["noise_only"]["false_frames"] == 0
    assert "noise-only samples" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ei:
        main(["bench", "phy", "--only", "bogus"])
    assert ei.value.code == 2


@pytest.mark.gnuradio
def test_loopback_images(tmp_path, capsys):
    pytest.importorskip("gnuradio")
    pytest.importorskip("torch")
    from semcom.imagelink import find_checkpoint, save_png, synthetic_image

    try:
        find_checkpoint("1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    save_png(synthetic_image(32, 32, seed=1), tmp_path / "imgs" / "a.png")
    save_png(synthetic_image(40, 64, seed=2), tmp_path / "imgs" / "b.png")
    out = tmp_path / "out"
    assert main(["loopback", "--image", str(tmp_path / "imgs"), "--snr", "15", "--ratio", "1/6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "images sent 2" in text and "PSNR" in text and "latency" in text
    rep = json.loads((out / "loopback.json").read_text())
    assert rep["images_sent"] == 2 and len(rep["results"]) == 2
    assert rep["codec"]["ratio"] == "1/6" and rep["codec"]["decoders"] == ["jscc"]
    for r in rep["results"]:
        assert r["psnr"] > 22 and 0 < r["ssim"] <= 1 and abs(r["snr_db"] - 15) < 1.5 and r["latency_s"] > 0
    assert (out / "loopback.png").stat().st_size > 1000
    assert (out / "stream0_jscc.png").is_file() and (out / "stream1_original.png").is_file()


def test_demo_ratio_switches_only_when_nothing_names_a_ratio(monkeypatch):
    """The demo shows the consistency decoder: with no ratio named anywhere and decoder auto it moves
    to a ratio whose consistency model is shipped; any explicit choice is kept."""
    import argparse

    import semcom.imagelink
    from semcom.commands.loopback import demo_ratio
    from semcom.config import Config, with_model

    monkeypatch.setattr(semcom.imagelink, "find_extra_checkpoint",
                        lambda kind, ratio: "cm.safetensors" if str(ratio) == "1/24" else None)
    cfg = with_model(Config(), decoder="auto")
    ns = lambda **kw: argparse.Namespace(**{"config": None, "ratio": None, "overrides": [], **kw})  # noqa: E731
    assert cfg.model.ratio == "1/6" and demo_ratio(cfg, ns()) == "1/24"
    assert demo_ratio(cfg, ns(ratio="1/6")) is None
    assert demo_ratio(cfg, ns(overrides=["model.ratio=1/6"])) is None
    assert demo_ratio(cfg, ns(config="hw_configs/loopback.yaml")) is None
    assert demo_ratio(with_model(cfg, decoder="jscc"), ns()) is None
    assert demo_ratio(with_model(cfg, ratio="1/24"), ns()) is None  # already there
    monkeypatch.setattr(semcom.imagelink, "find_extra_checkpoint", lambda kind, ratio: None)
    assert demo_ratio(cfg, ns()) is None  # nothing shipped: stay


def test_loopback_image_errors(tmp_path, capsys):
    assert main(["loopback", "--image", str(tmp_path / "missing.png")]) == 2
    assert "missing.png: image file or folder not found" in capsys.readouterr().err
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    assert main(["loopback", "--image", str(tmp_path / "bad.jpg")]) == 2
    assert "bad.jpg: not a readable image" in capsys.readouterr().err
    assert main(["loopback", "--streams", "2"]) == 2
    assert "add --phy" in capsys.readouterr().err


def test_loopback_decoder_without_checkpoint_exit_2(capsys):
    pytest.importorskip("torch")
    from semcom.imagelink import find_checkpoint

    try:
        find_checkpoint("1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert main(["loopback", "--decoder", "jscc,teacher"]) == 2
    err = capsys.readouterr().err
    assert "no teacher checkpoint" in err and "--teacher PATH" in err
