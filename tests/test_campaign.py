"""Measurement campaigns: sweeps end to end (simulator, fake Pluto, fake USRP through GNU Radio), image
payloads with PSNR/SSIM and classifier accuracy/agreement, resume after a kill without lost or
duplicated rows, device loss, full disk, bad campaign files, plot."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from semcom.campaign import CampaignError, load_campaign, plot, read_rows, run_campaign, summarize
from semcom.radio.fakes import FakeAir, fake_pluto_factory

ROOT = Path(__file__).resolve().parent.parent


def write_campaign(tmp_path, name="c.yaml", **over) -> Path:
    d = {"config": str(ROOT / "hw_configs/loopback.yaml"), "sweep": {"channel.snr_db": [0.0, 12.0]},
         "payloads_per_point": 3, "payload": {"symbols": 600, "seed": 1}, "out": str(tmp_path / "out")}
    d.update(over)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return p


def keys(rows):
    return [(r["point"], r["payload"]) for r in rows]


def row_keys(rows):
    """The identity of each row, as resume sees it."""
    return [(r["point"], r["payload"], r["decoder"]) for r in rows]


def quiet(_msg):
    pass


class Killed(Exception):
    """A run stopped from ``after_row`` (as a kill between two rows)."""


def run_killed_after(camp, n: int) -> list[dict]:
    """Run ``camp`` until its ``n``-th row is written, stop it there; the rows on disk."""
    def die(written):
        if written == n:
            raise Killed

    with pytest.raises(Killed):
        run_campaign(camp, after_row=die, log=quiet)
    return read_rows(camp.out)


def test_simulator_campaign_end_to_end(tmp_path):
    camp = load_campaign(write_campaign(tmp_path, sweep={"channel.snr_db": [0.0, 12.0], "channel.profile": ["flat", "indoor"]}))
    res = run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert res["rows_written"] == len(rows) == 4 * 3
    assert sorted(keys(rows)) == sorted((str(p), str(k)) for p in range(4) for k in range(3))
    assert {"psnr_db", "ssim", "accuracy", "agreement", "snr_meas_db", "frame_loss", "latency_s"} <= set(rows[0])
    assert all(r["psnr_db"] == r["ssim"] == r["accuracy"] == r["agreement"] == "" for r in rows)  # random payloads
    table = summarize(tmp_path / "out")
    lo = [t for t in table if t["channel.snr_db"] == "0.0"]
    hi = [t for t in table if t["channel.snr_db"] == "12.0"]
    assert all(h["snr_meas_db"] > l["snr_meas_db"] + 8 for h, l in zip(hi, lo))
    assert all(abs(t["snr_meas_db"] - float(t["channel.snr_db"])) < 2.5 for t in table)
    meta = json.loads((tmp_path / "out/run.json").read_text())
    assert meta["campaign"]["sweep"] == camp.sweep and meta["config"]["channel"]["snr_db"] == 10.0
    assert meta["campaign_sha256"] and "git_revision" in meta and "fingerprint" in meta


def test_resume_after_exception_loses_and_duplicates_nothing(tmp_path):
    camp = load_campaign(write_campaign(tmp_path))
    first = run_killed_after(camp, 4)
    assert len(first) == 4
    res = run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert res == {"rows_written": 2, "skipped": 4, "rows_total": 6, "out": str(tmp_path / "out")}
    assert len(set(keys(rows))) == len(rows) == 6 and rows[:4] == first


def test_resume_cuts_a_torn_last_line(tmp_path):
    camp = load_campaign(write_campaign(tmp_path, payloads_per_point=1))
    with pytest.raises(KeyboardInterrupt):
        run_campaign(camp, after_row=lambda n: (_ for _ in ()).throw(KeyboardInterrupt()), log=quiet)
    csv_path = tmp_path / "out/results.csv"
    with open(csv_path, "a") as fh:
        fh.write("1,0,12.0,ok,1,1,0,12.")  # killed in the middle of writing a row
    assert len(read_rows(tmp_path / "out")) == 1
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert keys(rows) == [("0", "0"), ("1", "0")] and csv_path.read_text().endswith("\n")
    assert float(rows[1]["snr_meas_db"]) > 8  # the real row, not the torn one


def test_resume_after_sigkill(tmp_path):
    path = write_campaign(tmp_path, sweep={"channel.snr_db": [0.0, 5.0, 10.0, 15.0]}, payloads_per_point=6,
                          payload={"symbols": 3000, "streams": 2})
    proc = subprocess.Popen([sys.executable, "-m", "semcom.cli", "campaign", str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    try:
        while len(read_rows(tmp_path / "out")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed_at = read_rows(tmp_path / "out")
    assert 3 <= len(killed_at) < 24
    run_campaign(load_campaign(path), log=quiet)
    rows = read_rows(tmp_path / "out")
    assert len(rows) == len(set(keys(rows))) == 24 and rows[:len(killed_at)] == killed_at


def test_fake_pluto_campaign_sweeps_tx_gain(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMCOM_FAKE_AIR", str(tmp_path / "air"))
    camp = load_campaign(write_campaign(
        tmp_path, config=str(ROOT / "hw_configs/pluto.yaml"), link="radio", record_iq=True,
        set=["radio.device=fake_pluto", "radio.uri=null", "radio.tx_ramp_s=0", "radio.rx_settle_s=0.02",
             "channel.snr_db=25"],
        sweep={"radio.tx_gain_db": [-30.0, -20.0, -10.0]}, payloads_per_point=2))
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    table = summarize(tmp_path / "out")
    snr = [t["snr_meas_db"] for t in table]
    assert snr[1] - snr[0] > 7 and snr[2] - snr[1] > 7  # 10 dB more TX gain, ~10 dB more SNR (below clipping)
    from semcom.blocks.phy.sigmf_io import open_recording

    rec = open_recording(tmp_path / "out" / rows[0]["iq_file"])
    assert rec.annotations and rec.meta["global"]["semcom:sweep"] == {"radio.tx_gain_db": -30.0}
    assert rec.meta["captures"][0]["core:frequency"] == 2.45e9


def test_device_unplugged_mid_run_keeps_rows_and_resumes(tmp_path):
    camp = load_campaign(write_campaign(
        tmp_path, config=str(ROOT / "hw_configs/pluto.yaml"), link="radio",
        set=["radio.device=fake_pluto", "radio.uri=null", "radio.tx_ramp_s=0", "radio.rx_settle_s=0"],
        payloads_per_point=2))
    air = FakeAir(None, unplug_after_reads=3)  # 1 capture = 1 read here: dies on the 4th payload
    with pytest.raises(CampaignError, match="point 1 .*payload 1: device error.*plugged.*rerun to resume"):
        run_campaign(camp, radio_factory=fake_pluto_factory(air), log=quiet)
    assert keys(read_rows(tmp_path / "out")) == [("0", "0"), ("0", "1"), ("1", "0")]
    run_campaign(camp, radio_factory=fake_pluto_factory(FakeAir()), log=quiet)
    assert keys(read_rows(tmp_path / "out")) == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]


def test_wrong_uri_is_a_clear_campaign_error(tmp_path):
    camp = load_campaign(write_campaign(
        tmp_path, config=str(ROOT / "hw_configs/pluto.yaml"), link="radio",
        set=["radio.device=fake_pluto", "radio.uri=ip:10.7.7.7"]))
    with pytest.raises(CampaignError, match="cannot open PlutoSDR at 'ip:10.7.7.7'"):
        run_campaign(camp, radio_factory=fake_pluto_factory(FakeAir()), log=quiet)
    assert read_rows(tmp_path / "out") == []


def test_full_disk_while_recording_iq_is_noted_and_run_goes_on(tmp_path):
    camp = load_campaign(write_campaign(tmp_path, record_iq=True))
    calls = []

    def full(*a, **k):
        calls.append(a[0])
        raise OSError(errno.ENOSPC, "No space left on device")

    msgs = []
    run_campaign(camp, record_writer=full, log=msgs.append)
    rows = read_rows(tmp_path / "out")
    assert len(rows) == 6 and all(r["status"] == "ok" and r["iq_file"] == "" for r in rows)
    assert "No space left" in rows[0]["note"] and "stopped" in rows[0]["note"]
    assert len(calls) == 1 and all(r["note"] == "" for r in rows[1:])  # recording stopped after the failure


def test_full_disk_while_appending_a_row_keeps_earlier_rows(tmp_path, monkeypatch):
    import semcom.campaign as campaign_mod

    camp = load_campaign(write_campaign(tmp_path))
    real = os.fsync
    n = {"calls": 0}

    def fsync(fd):
        n["calls"] += 1
        if n["calls"] == 4:  # header, row 1, row 2, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(campaign_mod.os, "fsync", fsync)
    with pytest.raises(CampaignError, match="cannot append.*No space left.*earlier row is intact"):
        run_campaign(camp, log=quiet)
    text = (tmp_path / "out/results.csv").read_text()
    assert text.endswith("\n") and len(read_rows(tmp_path / "out")) == 2
    monkeypatch.setattr(campaign_mod.os, "fsync", real)
    run_campaign(camp, log=quiet)
    assert len(set(keys(read_rows(tmp_path / "out")))) == 6


def test_no_frames_is_a_recorded_result(tmp_path):
    camp = load_campaign(write_campaign(tmp_path, sweep={"channel.snr_db": [-20.0]}, payloads_per_point=1))
    run_campaign(camp, log=quiet)
    (row,) = read_rows(tmp_path / "out")
    assert row["status"] == "no_frames" and row["frame_loss"] == "1" and row["snr_meas_db"] == ""


def test_image_campaign_fills_psnr_ssim_and_agreement(tmp_path):
    """payload.kind images: the shipped JSCC through the numpy link; quality rises with SNR; unlabelled
    images get the classifier's agreement (reconstruction vs original), not an accuracy."""
    from semcom.campaign import CLASSIFIER
    from semcom.imagelink import save_png, synthetic_image

    pytest.importorskip("PIL")
    save_png(synthetic_image(32, 48, seed=3), tmp_path / "pics" / "a.png")
    camp = load_campaign(write_campaign(tmp_path, sweep={"channel.snr_db": [0.0, 20.0]}, payloads_per_point=1,
                                        payload={"kind": "images", "images": "pics"}, set=["model.decoder=jscc"]))
    assert run_campaign(camp, log=quiet)["rows_written"] == 2
    lo, hi = read_rows(tmp_path / "out")
    for r in (lo, hi):
        assert r["status"] == "ok" and r["frame_loss"] == "0" and r["accuracy"] == "" and r["note"] == ""
        assert 0 < float(r["ssim"]) <= 1 and r["agreement"] in ("0", "1")
        assert (r["decoder"], r["nfe"], r["ratio"], r["symbols"]) == ("jscc", "1", "1/6", str(32 * 48 * 3 // 6))  # k = n/6
        # nfe: the JSCC decoder pass counts one network evaluation, as in `semcom bench codec` and the README
        assert 0 < float(r["decode_s"]) < float(r["latency_s"])
    assert float(hi["psnr_db"]) > float(lo["psnr_db"]) > 10, (lo["psnr_db"], hi["psnr_db"])
    assert float(hi["ssim"]) > float(lo["ssim"])
    meta = json.loads((tmp_path / "out/run.json").read_text())
    assert "image payloads" in meta["columns_note"] and "agreement" in meta["columns_note"]
    assert CLASSIFIER.is_file() and [(m["role"], m["points"]) for m in meta["models"]] == [("jscc", [0, 1]),
                                                                                         ("classifier", [0, 1])]
    assert all(len(m["sha256"]) == 64 for m in meta["models"])


def test_image_with_a_lost_chunk_is_decoded_with_the_gap_erased():
    """A lost frame of a multi-frame image: its symbols are erased (inf noise variance), the rest decodes."""
    from semcom.campaign import _exchange_simulator, _image_metrics_rows, _image_payload
    from semcom.config import load_config
    from semcom.radio.link import build_waveform, decode_iq

    cfg = load_config(str(ROOT / "hw_configs/loopback.yaml"), ["channel.snr_db=20", "model.decoder=jscc"])
    img, label, codec, hint = _image_payload(cfg, {"kind": "images", "seed": 0}, 0, {})
    assert label is None  # synthetic scene
    z = codec.encode(img, hint)
    tx = build_waveform(cfg, [z], first_stream_id=7)
    dec = decode_iq(cfg, _exchange_simulator(cfg, tx, 0)[0])
    n = len(dec.frames)
    assert n == len(tx.headers) >= 2

    def jscc_row(*clf):
        (row,) = _image_metrics_rows(cfg, codec, ["jscc"], img, dec, 7, z.size, hint, *clf).values()
        return row

    full = jscc_row()
    for lst in (dec.frames, dec.payloads, dec.noise_vars):
        del lst[0]
    gap = jscc_row()
    assert gap["note"] == f"1 of {n} chunks lost" and full["note"] == ""
    assert float(full["psnr_db"]) > float(gap["psnr_db"]) > 5

    class Always3:  # a classifier stand-in: the whole image lost -> no decision, counted wrong
        def top1(self, img):
            return 3

    for lst in (dec.frames, dec.payloads, dec.noise_vars):
        lst.clear()
    lost = jscc_row(Always3(), 3)
    assert lost == {"accuracy": 0, "agreement": 0, "note": "image lost (no frame of its stream): counted misclassified"}
    assert jscc_row()["note"] == "image lost (no frame of its stream)"


def _cifar_like_npz(path: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 32x32 scenes as a CIFAR-10 npz (x uint8 [n, 32, 32, 3], y): image ``i``'s label is the
    classifier's own top-1 on it for even ``i`` and another class for odd ``i``; returns the images
    in the campaign's order (the fixed shuffle of ``bench_compare.load_images``) and their labels."""
    from semcom.campaign import _Classifier
    from semcom.imagelink import synthetic_image

    clf = _Classifier()
    x = np.stack([synthetic_image(32, 32, seed=50 + i) for i in range(n)])
    pred = np.array([clf.top1(im) for im in x])
    y = np.where(np.arange(n) % 2 == 0, pred, (pred + 1) % 10).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    order = np.random.default_rng(0).permutation(n)
    return x[order], y[order].astype(np.int64)


def test_cifar_campaign_scores_accuracy_against_labels(tmp_path):
    """``images: cifar10:PATH:N``: accuracy compares the classifier's top-1 on the reconstruction with
    the npz label, agreement with its top-1 on the original; at a high SNR they coincide wherever the
    label is the classifier's clean answer."""
    from semcom.campaign import _Classifier

    x, y = _cifar_like_npz(tmp_path / "cifar" / "test.npz", 4)
    camp = load_campaign(write_campaign(tmp_path, sweep={"channel.snr_db": [25.0]}, payloads_per_point=4,
                                        payload={"kind": "images", "images": "cifar10:cifar:4"}))
    assert camp.payload["images"] == f"cifar10:{tmp_path / 'cifar' / 'test.npz'}:4"
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    clf = _Classifier()
    clean_right = [int(clf.top1(im) == lab) for im, lab in zip(x, y)]
    assert sorted(clean_right) == [0, 0, 1, 1]  # two labels agree with the clean answer, two do not
    assert all(r["status"] == "ok" and r["accuracy"] in ("0", "1") and r["agreement"] in ("0", "1") for r in rows)
    assert sum(r["agreement"] == "1" for r in rows) >= 3, rows  # 25 dB: the reconstructions look alike
    for r, right in zip(rows, clean_right):
        if r["agreement"] == "1":
            assert int(r["accuracy"]) == right
    (t,) = summarize(tmp_path / "out")
    assert t["accuracy"] == pytest.approx(np.mean([int(r["accuracy"]) for r in rows])) and t["agreement"] >= 0.75


def test_fake_usrp_image_campaign_through_gnuradio(tmp_path):
    """Images over the fake USRP GNU Radio link (RadioTx/RadioRx flowgraphs on one FakeAir): the
    receiver's per-symbol noise variance reaches the decoder; 15 dB more TX gain, better images."""
    pytest.importorskip("gnuradio")
    from semcom.imagelink import save_png, synthetic_image

    save_png(synthetic_image(32, 48, seed=3), tmp_path / "pics" / "a.png")
    camp = load_campaign(write_campaign(
        tmp_path, config=str(ROOT / "hw_configs/usrp_b210.yaml"), link="radio", timeout_s=5.0,
        set=["radio.device=fake_uhd", "radio.uri=null", "radio.tx_ramp_s=0.01", "radio.rx_settle_s=0.01",
             "channel.snr_db=20"],
        sweep={"radio.tx_gain_db": [55.0, 70.0]}, payloads_per_point=2, payload={"kind": "images", "images": "pics"}))
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert len(rows) == 4 and all(r["status"] == "ok" and r["frame_loss"] == "0" and r["note"] == "" for r in rows)
    assert all(r["agreement"] in ("0", "1") and r["accuracy"] == "" for r in rows)
    lo, hi = summarize(tmp_path / "out")
    assert 12 < hi["snr_meas_db"] - lo["snr_meas_db"] < 18 and 18 < hi["snr_meas_db"] < 25
    assert hi["psnr_db"] > lo["psnr_db"] + 0.5 > 15 and hi["ssim"] > lo["ssim"]


@pytest.mark.parametrize("over, words", [
    ({"bogus": 1}, "bogus: unknown key"),
    ({"payloads_per_point": "3"}, "payloads_per_point: wrong type"),
    ({"sweep": {}}, "sweep: needs at least one field"),
    ({"sweep": {"snr": [1]}}, "sweep.snr: must be a section.key"),
    ({"payload": {"kind": "video"}}, "payload.kind: 'video': must be one of random, images"),
    ({"payload": {"images": "a.png"}}, "payload.images: only with kind: images"),
    ({"payload": {"kind": "images", "images": "none.png"}}, "payload.images: .*none.png: image file or folder not found"),
    ({"payload": {"colour": 1}}, "payload.colour: unknown key"),
    ({"link": "air"}, "link: must be one of"),
    ({"payload": {"kind": "images", "images": "cifar10:4"}}, "payload.images: 'cifar10:4' must look like cifar10:PATH:N"),
    ({"payload": {"kind": "images", "images": "cifar10:nowhere:4"}}, "payload.images: .*nowhere is not an npz file"),
    ({"payload": {"kind": "images", "images": "cifar10:.:0"}}, "payload.images: .*count '0' must be an integer >= 1"),
])
def test_bad_campaign_files(tmp_path, over, words):
    with pytest.raises(CampaignError, match=words):
        load_campaign(write_campaign(tmp_path, **over))


def test_bad_sweep_value_and_foreign_results_refused(tmp_path):
    camp = load_campaign(write_campaign(tmp_path, sweep={"channel.snr_db": [5.0, "loud"]}))
    with pytest.raises(CampaignError, match=r"sweep point 1 .*channel.snr_db"):
        run_campaign(camp, log=quiet)
    assert not (tmp_path / "out").exists()  # nothing ran
    run_campaign(load_campaign(write_campaign(tmp_path, payloads_per_point=1)), log=quiet)
    other = load_campaign(write_campaign(tmp_path, "d.yaml", payloads_per_point=2))
    with pytest.raises(CampaignError, match="another campaign"):
        run_campaign(other, log=quiet)
    radio_on_loopback = load_campaign(write_campaign(tmp_path, "e.yaml", link="radio", out=str(tmp_path / "o2")))
    with pytest.raises(CampaignError, match="link: radio needs a radio"):
        run_campaign(radio_on_loopback, log=quiet)


def test_plot_and_cli(tmp_path, capsys):
    from semcom.cli import main

    path = write_campaign(tmp_path, payloads_per_point=1)
    assert main(["campaign", str(path)]) == 0
    assert main(["campaign", str(path)]) == 0  # resume: nothing left to do
    assert "0 rows written, 2 already done" in capsys.readouterr().out
    table, png = plot(tmp_path / "out")
    assert png.is_file() and png.stat().st_size > 1000 and len(table) == 2 and table[0]["psnr_db"] is None
    assert main(["campaign", "--plot", str(tmp_path / "out"), "--png", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").is_file() and "snr_meas_db" in capsys.readouterr().out
    assert main(["campaign", str(tmp_path / "missing.yaml")]) == 1
    assert "campaign file not found" in capsys.readouterr().err
    assert np.isfinite(table[1]["snr_meas_db"])


def test_fake_usrp_campaign_through_gnuradio(tmp_path):
    pytest.importorskip("gnuradio")
    camp = load_campaign(write_campaign(
        tmp_path, config=str(ROOT / "hw_configs/usrp_b210.yaml"), link="radio", record_iq=True, timeout_s=5.0,
        set=["radio.device=fake_uhd", "radio.uri=null", "radio.tx_ramp_s=0.01", "radio.rx_settle_s=0.01",
             "channel.snr_db=20"],  # at the safety cap (70 dB) the fake link reaches channel.snr_db
        sweep={"radio.tx_gain_db": [60.0, 70.0]}, payloads_per_point=2, payload={"symbols": 800}))
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert len(rows) == 4 and all(r["status"] == "ok" and r["frame_loss"] == "0" for r in rows)
    assert "GNU Radio link delivers decoded frames only" in rows[0]["note"]
    lo, hi = (t["snr_meas_db"] for t in summarize(tmp_path / "out"))
    assert 7 < hi - lo < 13 and 17 < hi < 23  # 10 dB more TX gain


@pytest.mark.parametrize("path", sorted((ROOT / "campaigns").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_campaigns_validate_every_point(path):
    from semcom.config import load_config

    camp = load_campaign(path)
    assert camp.out and camp.config and Path(camp.config).is_file()
    for pt in camp.points():  # every sweep point is a valid config (ranges, safety caps)
        load_config(camp.config, camp.overrides(pt))


def test_plot_draws_quality_panels_once_psnr_is_filled(tmp_path):
    import csv

    run_campaign(load_campaign(write_campaign(tmp_path, payloads_per_point=2)), log=quiet)
    rows = read_rows(tmp_path / "out")
    for r in rows:  # what the image path will fill in
        r["psnr_db"], r["accuracy"] = str(20 + float(r["snr_meas_db"] or 0)), "0.5"
    with open(tmp_path / "out/results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    table, png = plot(tmp_path / "out")
    assert table[1]["psnr_db"] > table[0]["psnr_db"] and table[0]["accuracy"] == 0.5
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[1] > 1500  # four panels side by side


def test_frames_of_another_payload_never_match():
    """Campaign payloads use distinct stream ids, so a late frame of payload k-1 is not scored for payload k."""
    from semcom.config import load_config
    from semcom.radio.link import build_waveform, decode_iq, evaluate, random_payloads

    cfg = load_config(ROOT / "hw_configs/loopback.yaml", ["channel.snr_db=null"])
    old = build_waveform(cfg, random_payloads(1, 500, 0), first_stream_id=0)
    new = build_waveform(cfg, random_payloads(1, 500, 1000), first_stream_id=1)
    dec = decode_iq(cfg, np.concatenate([old.iq, new.iq, np.zeros(200, np.complex64)]))
    ev = evaluate(new, dec)
    assert len(dec.frames) == 2 and ev["frames_received"] == 1 and ev["snr_meas_db"] > 40


# ---------------------------------------------------------------------- the model section per sweep point
def tiny_consistency(path: Path, seed: int = 0) -> Path:
    """An untrained tiny consistency model (plumbing, not quality), saved like a trained one."""
    import torch

    from semcom.models.checkpoint import save_model
    from semcom.models.config import unet_preset
    from semcom.models.consistency import ConsistencyFunction
    from semcom.models.unet import UNet

    torch.manual_seed(seed)
    cfg = unet_preset("tiny")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, "consistency", ConsistencyFunction(UNet(cfg), cfg.sigma_data, cfg.sigma_min), cfg)
    return path


def image_campaign(tmp_path, **over) -> Path:
    """A campaign of one 32x48 picture at 20 dB (channel.snr_db may be swept instead)."""
    from semcom.imagelink import save_png, synthetic_image

    pytest.importorskip("PIL")
    save_png(synthetic_image(32, 48, seed=3), tmp_path / "pics" / "a.png")
    d = {"sweep": {"channel.snr_db": [20.0]}, "payloads_per_point": 1, "payload": {"kind": "images", "images": "pics"},
         "set": ["model.decoder=jscc"]}
    return write_campaign(tmp_path, **{**d, **over})


@pytest.fixture
def codec_loads(monkeypatch):
    """Counts the codecs (CodecRuntime) built, by checkpoint paths."""
    import semcom.imagelink as il

    loads = []

    class Counting(il.CodecRuntime):
        def __init__(self, checkpoint, consistency="", teacher="", *a, **k):
            loads.append((Path(checkpoint).name, Path(consistency).name if consistency else "",
                          Path(teacher).name if teacher else ""))
            super().__init__(checkpoint, consistency, teacher, *a, **k)

    monkeypatch.setattr(il, "CodecRuntime", Counting)
    return loads


def test_ratio_sweep_uses_each_points_checkpoint(tmp_path, codec_loads):
    """model.ratio 1/6 and 1/24: the shipped JSCC of each ratio encodes (4x fewer symbols at 1/24),
    each loaded once across the SNR points; run.json has both checksums; one PSNR line per ratio."""
    from semcom.campaign import quality_series

    camp = load_campaign(image_campaign(tmp_path, sweep={"channel.snr_db": [5.0, 20.0], "model.ratio": ["1/6", "1/24"]}))
    run_campaign(camp, log=quiet)  # the last field varies fastest: 1/6, 1/24, 1/6, 1/24
    rows = read_rows(tmp_path / "out")
    assert [(r["model.ratio"], r["ratio"], r["decoder"], int(r["symbols"])) for r in rows] == \
        [("1/6", "1/6", "jscc", 768), ("1/24", "1/24", "jscc", 192)] * 2  # k = 32 * 48 * 3 * ratio
    assert all(r["status"] == "ok" and float(r["psnr_db"]) > 10 for r in rows)
    assert codec_loads == [("jscc-1_6.safetensors", "", ""), ("jscc-1_24.safetensors", "", "")]  # once each
    meta = json.loads((tmp_path / "out/run.json").read_text())
    jscc = {Path(m["path"]).name: (m["points"], m["sha256"]) for m in meta["models"] if m["role"] == "jscc"}
    assert {k: v[0] for k, v in jscc.items()} == {"jscc-1_6.safetensors": [0, 2], "jscc-1_24.safetensors": [1, 3]}
    assert jscc["jscc-1_6.safetensors"][1] != jscc["jscc-1_24.safetensors"][1]
    table, png = plot(tmp_path / "out")
    assert png.is_file() and [(t["ratio"], t["decoder"], t["symbols"]) for t in table] == \
        [("1/6", "jscc", 768.0), ("1/24", "jscc", 192.0)] * 2
    lines = quality_series(table, list(camp.sweep), "channel.snr_db")
    assert list(lines) == ["ratio 1/6, jscc", "ratio 1/24, jscc"] and all(len(v) == 2 for v in lines.values())
    # 1/6 carries 4x the symbols of 1/24: a better picture at the same SNR
    assert table[2]["psnr_db"] > table[3]["psnr_db"]


def test_decoder_list_gives_a_row_per_image_and_decoder(tmp_path, codec_loads):
    """model.decoder "jscc,consistency" with model.nfe swept 1, 2: two rows per image (jscc and cm<nfe>)
    decoded from the same received symbols, one codec for both points; the relative consistency path
    is the campaign file's; a changed checkpoint refuses the resume."""
    from semcom.campaign import quality_series

    tiny_consistency(tmp_path / "models" / "cm.safetensors")
    path = image_campaign(tmp_path, sweep={"model.nfe": [1, 2]}, payloads_per_point=2,
                          set=["model.decoder=jscc,consistency", "model.consistency=models/cm.safetensors"])
    camp = load_campaign(path)
    assert f"model.consistency={json.dumps(str(tmp_path / 'models' / 'cm.safetensors'))}" in camp.set
    run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert [(r["point"], r["payload"], r["decoder"], r["nfe"]) for r in rows] == [
        ("0", "0", "jscc", "1"), ("0", "0", "cm1", "2"), ("0", "1", "jscc", "1"), ("0", "1", "cm1", "2"),
        ("1", "0", "jscc", "1"), ("1", "0", "cm2", "3"), ("1", "1", "jscc", "1"), ("1", "1", "cm2", "3")]
    for a, b in zip(rows[::2], rows[1::2]):  # same payload: the link columns are shared
        assert a["snr_meas_db"] == b["snr_meas_db"] and a["frames_received"] == b["frames_received"]
        assert a["psnr_db"] != b["psnr_db"] and float(b["decode_s"]) > 0
    assert codec_loads == [("jscc-1_6.safetensors", "cm.safetensors", "")]
    meta = json.loads((tmp_path / "out/run.json").read_text())
    assert [(m["role"], m["points"]) for m in meta["models"]] == [("jscc", [0, 1]), ("consistency", [0, 1]),
                                                                  ("classifier", [0, 1])]
    table = summarize(tmp_path / "out")
    assert [(t["point"], t["decoder"], t["nfe"], t["payloads"]) for t in table] == [
        (0, "jscc", "1", 2), (0, "cm1", "2", 2), (1, "jscc", "1", 2), (1, "cm2", "3", 2)]
    assert list(quality_series(table, list(camp.sweep))) == ["model.nfe=1, jscc", "model.nfe=1, cm1",
                                                              "model.nfe=2, jscc", "model.nfe=2, cm2"]
    tiny_consistency(tmp_path / "models" / "cm.safetensors", seed=1)  # retrained in between
    with pytest.raises(CampaignError, match=r"models changed since this run started \(consistency .*cm.safetensors"):
        run_campaign(camp, log=quiet)


def test_resume_after_a_kill_between_decoders_of_a_payload(tmp_path):
    """Killed after payload 1's jscc row, before its cm1 row: the resume sends payload 1 again and
    writes only its cm1 row; nothing lost, nothing twice."""
    tiny_consistency(tmp_path / "cm.safetensors")
    camp = load_campaign(image_campaign(tmp_path, sweep={"channel.snr_db": [5.0, 20.0]}, payloads_per_point=2,
                                        set=["model.decoder=jscc,cm1", f"model.consistency={tmp_path / 'cm.safetensors'}"]))
    first = run_killed_after(camp, 3)
    assert row_keys(first) == [("0", "0", "jscc"), ("0", "0", "cm1"), ("0", "1", "jscc")]
    res = run_campaign(camp, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert res["rows_written"] == 5 and res["skipped"] == 3 and rows[:3] == first
    assert sorted(row_keys(rows)) == sorted((str(p), str(k), d) for p in range(2) for k in range(2) for d in ("jscc", "cm1"))
    assert len(set(row_keys(rows))) == 8
    assert row_keys(rows)[3] == ("0", "1", "cm1")  # the cut payload, finished first
    # the simulator's channel is seeded per payload: the resumed cm1 row saw the same link
    assert rows[3]["snr_meas_db"] == rows[2]["snr_meas_db"]


@pytest.mark.parametrize("sets, sweep, words", [
    (["model.decoder=jscc,cm1"], {"model.ratio": ["1/6", "1/24"]},
     r"sweep point 0 \{'model.ratio': '1/6'\}: model.decoder 'jscc,cm1' needs a consistency checkpoint for ratio "
     r"1/6: model.consistency is not set and none is shipped or trained"),
    (["model.decoder=jscc,teacher"], {"channel.snr_db": [20.0]}, r"sweep point 0 .*needs a teacher checkpoint"),
    (["model.decoder=jscc,cm1"], {"model.consistency": ["GOOD", "gone.safetensors"]},
     r"sweep point 1 \{'model.consistency': '.*gone.safetensors'\}: model.consistency: .*gone.safetensors: "
     r"checkpoint not found"),
    (["model.decoder=cm2", f"model.consistency={ROOT / 'models/checkpoints/jscc-1_6.safetensors'}"],
     {"channel.snr_db": [20.0]}, r"model.consistency: .*jscc-1_6.safetensors is a 'jscc' checkpoint, not a consistency"),
    ([f"model.checkpoint={ROOT / 'models/checkpoints/jscc-1_6.safetensors'}"], {"model.ratio": ["1/6", "1/24"]},
     r"sweep point 1 .*model.ratio 1/24 contradicts model.checkpoint .*jscc-1_6.safetensors \(ratio 1/6\)"),
    ([], {"model.ratio": ["1/6", "1/5"]}, r"sweep point 1 .*model.ratio: no JSCC checkpoint for ratio 1/5"),
    (["model.decoder=jscc,cm1"], {"model.consistency": ["GARBAGE"]},
     r"sweep point 0 .*model.consistency: .*garbage.safetensors is not a readable checkpoint"),
])
def test_missing_or_wrong_model_fails_before_any_row(tmp_path, monkeypatch, sets, sweep, words):
    """Every point's models are resolved before the first payload: the error names the point and
    the model field, and no output is written."""
    import semcom.imagelink as il

    monkeypatch.setattr(il, "find_extra_checkpoint", lambda kind, ratio: None)  # whatever runs/ holds now
    paths = {"GOOD": tiny_consistency(tmp_path / "cm.safetensors"), "GARBAGE": tmp_path / "garbage.safetensors"}
    paths["GARBAGE"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    sweep = {k: [str(paths[v]) if v in paths else v for v in vals] for k, vals in sweep.items()}
    camp = load_campaign(image_campaign(tmp_path, sweep=sweep, set=sets))
    with pytest.raises(CampaignError, match=words):
        run_campaign(camp, log=quiet)
    assert not (tmp_path / "out").exists()


def test_model_sweep_needs_image_payloads(tmp_path):
    with pytest.raises(CampaignError, match=r"sweep.model.decoder: the model section acts on image payloads only"):
        load_campaign(write_campaign(tmp_path, sweep={"model.decoder": ["jscc", "auto"]}))


@pytest.mark.parametrize("path", sorted((ROOT / "campaigns").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_image_campaigns_find_their_models(path):
    """The models of every point of a shipped image campaign resolve (checkpoints present, decoders satisfiable)."""
    from semcom.campaign import point_models
    from semcom.config import load_config

    camp = load_campaign(path)
    if camp.payload["kind"] != "images":
        pytest.skip("random payloads: no models")
    for pt in camp.points():
        pm = point_models(load_config(camp.config, camp.overrides(pt)), str(pt), pt)
        assert Path(pm.checkpoint).is_file() and "jscc" in pm.decoders
        assert pt.get("model.ratio", pm.ratio) == pm.ratio
