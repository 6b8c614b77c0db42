"""Small user-facing fixes: `semcom phy channel` keeps every frame's annotation; a truncated or
changed `.sigmf-data` is reported against its metadata; `semcom probe` names the helper that could
not run; SSIM is finite for images smaller than its window; the GUI's PSNR panel has one series per
decoder; the help texts name only options that exist, cite no issue numbers, document the campaign
file, describe every `semcom train` option and agree with the README on the `bench phy` duration."""

import argparse
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest

from semcom.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _subparser(*names: str) -> argparse.ArgumentParser:
    p = build_parser()
    for name in names:
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        p = sub.choices[name]
    return p


def _tx_file(tmp_path, n_symbols: int = 5000) -> Path:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "p.npy", (rng.standard_normal(n_symbols) + 1j * rng.standard_normal(n_symbols)).astype(np.complex64))
    assert main(["phy", "tx-file", "--payload", str(tmp_path / "p.npy"), "--out", str(tmp_path / "tx")]) == 0
    return tmp_path / "tx"


# ---------------------------------------------------------------------- phy channel annotations
def test_channel_command_keeps_the_last_frames_annotation(tmp_path):
    from semcom.blocks.phy.sigmf_io import open_recording

    base = _tx_file(tmp_path)
    assert main(["phy", "channel", str(base), str(tmp_path / "ch"), "--set", "channel.snr_db=30"]) == 0
    sent, out = open_recording(base), open_recording(tmp_path / "ch")
    assert len(sent.annotations) == 2  # 5000 symbols: two frames
    assert [a["core:sample_start"] for a in out.annotations] == [a["core:sample_start"] for a in sent.annotations]


# ---------------------------------------------------------------------- truncated recordings
def test_truncated_sigmf_data_is_reported_with_both_lengths(tmp_path):
    from semcom.blocks.phy.sigmf_io import RecordingWarning, open_recording

    base = _tx_file(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingWarning)  # an intact recording: no warning
        n = open_recording(base).n_samples
    data = tmp_path / "tx.sigmf-data"
    cut = n * 2 // 3
    with open(data, "r+b") as fh:
        fh.truncate(cut * 8)  # cf32: 8 bytes per sample
    with pytest.warns(RecordingWarning) as rec:
        assert open_recording(base).n_samples == cut  # the samples that are there are still read
    msg = str(rec[0].message)
    assert str(data) in msg and str(n) in msg and str(cut) in msg


def test_truncated_foreign_recording_is_caught_by_its_annotations(tmp_path):
    """Without semcom:sample_count (another writer), annotations past the end give the warning."""
    import json

    from semcom.blocks.phy.sigmf_io import RecordingWarning, open_recording

    base = _tx_file(tmp_path)
    meta_path = tmp_path / "tx.sigmf-meta"
    meta = json.loads(meta_path.read_text())
    del meta["global"]["semcom:sample_count"], meta["global"]["core:sha512"]
    meta_path.write_text(json.dumps(meta))
    end = max(a["core:sample_start"] + a["core:sample_count"] for a in meta["annotations"])
    with open(tmp_path / "tx.sigmf-data", "r+b") as fh:
        fh.truncate((end - 100) * 8)
    with pytest.warns(RecordingWarning, match=rf"tx.sigmf-data: holds {end - 100} samples.*reach sample {end}"):
        open_recording(base)


def test_changed_sigmf_data_fails_its_sha512(tmp_path):
    from semcom.blocks.phy.sigmf_io import RecordingWarning, open_recording

    base = _tx_file(tmp_path)
    with open(tmp_path / "tx.sigmf-data", "r+b") as fh:
        fh.seek(4000)
        fh.write(b"\x00\x00\x80\x7f")  # same length, one value changed
    with pytest.warns(RecordingWarning, match=r"tx.sigmf-data: SHA-512 does not match core:sha512"):
        open_recording(base)


# ---------------------------------------------------------------------- probe
def test_probe_names_the_helper_that_could_not_run(tmp_path):
    """ETXTBSY (the program is open for writing) is what `semcom probe` met while a venv was rebuilt."""
    from semcom.radio.probe import probe

    prog = tmp_path / "helper"
    prog.write_text("#!/bin/sh\necho '{}'\n")
    prog.chmod(prog.stat().st_mode | stat.S_IEXEC)
    with open(prog, "a"):  # held open for writing: exec fails with "Text file busy"
        res = probe(timeout=5.0, cmd=[str(prog)])
    why = res["errors"]["probe"]
    assert res["devices"] == [] and not res["timed_out"]
    assert "IIO/UHD probe helper" in why and str(prog) in why and "Text file busy" in why


def test_probe_names_a_crashed_helper(tmp_path):
    import sys

    from semcom.radio.probe import probe

    res = probe(timeout=10.0, cmd=[sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert "IIO/UHD probe helper" in res["errors"]["probe"] and "SIGSEGV" in res["errors"]["probe"]


# ---------------------------------------------------------------------- SSIM of small images
@pytest.mark.parametrize("side", [1, 2, 9, 10, 11])
def test_ssim_is_finite_for_images_smaller_than_the_window(side):
    torch = pytest.importorskip("torch")
    from semcom.imagelink import image_metrics
    from semcom.models.metrics import ssim

    g = torch.Generator().manual_seed(side)
    x = torch.rand(2, 3, side, side, generator=g)
    noisy = (x + 0.1 * torch.randn(2, 3, side, side, generator=g)).clamp(0, 1)
    s_same, s_noisy = ssim(x, x), ssim(noisy, x)
    assert torch.isfinite(s_noisy).all() and torch.allclose(s_same, torch.ones(2), atol=1e-5)
    assert (s_noisy < 1).all() and (s_noisy > -1).all()
    img = (np.random.default_rng(side).random((side, side, 3)) * 255).astype(np.uint8)
    m = image_metrics(255 - img, img)
    assert np.isfinite(m["ssim"]) and np.isfinite(m["psnr"])


# ---------------------------------------------------------------------- GUI
def test_psnr_panel_draws_one_series_per_decoder(monkeypatch):
    pytest.importorskip("pyqtgraph")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg

    from semcom.loopback_gui import LoopbackDashboard

    dash = LoopbackDashboard()
    img = np.zeros((16, 16, 3), np.uint8)
    for sid, dec, psnr in [(7, "jscc", 20.0), (7, "cm1", 18.0), (8, "jscc", 22.0), (8, "cm1", 19.0), (9, "jscc", 21.0)]:
        dash.on_result({"image": img, "stream_id": sid, "decoder": dec, "psnr": psnr}, img)
    dash.refresh()
    panel = next(i for i in dash.win.ci.items if isinstance(i, pg.PlotItem) and "PSNR" in i.titleLabel.text)
    series = {c.name(): c.getData() for c in panel.listDataItems()}
    assert set(series) == {"jscc", "cm1"}
    assert list(series["jscc"][0]) == [0, 1, 2] and list(series["jscc"][1]) == [20.0, 22.0, 21.0]
    assert list(series["cm1"][0]) == [0, 1] and list(series["cm1"][1]) == [18.0, 19.0]  # same x as jscc's image


# ---------------------------------------------------------------------- help texts
def _all_parsers(p: argparse.ArgumentParser, path=("semcom",)):
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _all_parsers(sp, path + (name,))


def test_help_texts_cite_no_issue_numbers():
    for path, p in _all_parsers(build_parser()):
        text = p.format_help()
        assert not re.search(r"\bissues?\s*#?\d", text, re.I), " ".join(path)
        assert "Hook into the CLI" not in text, " ".join(path)  # developer notes stay in the source
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert not re.search(r"\bissues?\s*#?\d", doc.read_text(), re.I), doc.name


@pytest.mark.parametrize("path", [("bench", "codec"), ("bench", "phy"), ("bench", "compare"), ("campaign",)])
def test_help_names_only_options_that_exist(path):
    p = _subparser(*path)
    own = {s for a in p._actions for s in a.option_strings}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", p.format_help()))
    named -= {"--set", "--config"}  # of the commands a text quotes, e.g. "semcom loopback --set ..."
    assert named <= own, sorted(named - own)


def test_campaign_help_documents_the_file_format():
    text = _subparser("campaign").format_help()
    assert "semcom/campaign.py" not in text  # no "read the source"
    for key in ("config:", "set:", "sweep:", "payloads_per_point:", "payload:", "link:", "record_iq:", "timeout_s:",
                "out:", "results.csv", "run.json"):
        assert key in text, key
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Campaigns"):]
    for key in ("payloads_per_point:", "record_iq:", "timeout_s:", "link: simulator"):
        assert key in section, key


def test_every_train_option_is_described():
    p = _subparser("train")
    for a in p._actions:
        if not a.option_strings or a.dest == "help":
            continue
        what = re.sub(r"\s*\(default[^)]*\)\s*$", "", a.help or "")
        assert len(what.split()) >= 3, (a.option_strings, a.help)


def test_bench_phy_duration_agrees_with_readme():
    help_text = " ".join(_subparser("bench", "phy").format_help().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"[Ff]ull mode:? (?:takes )?(about|~) ?(\d+(?:-\d+)?) min", help_text)
    assert m, help_text
    r = re.search(r"full mode, (about|~) ?(\d+(?:-\d+)?) min", readme)
    assert r and r.group(2) == m.group(2), (m.group(0), r and r.group(0))
    bench_doc = " ".join(_subparser("bench").format_help().split())
    d = re.search(r"Full mode takes (about|~) ?(\d+(?:-\d+)?) min", bench_doc)
    assert d and d.group(2) == m.group(2), d and d.group(0)
