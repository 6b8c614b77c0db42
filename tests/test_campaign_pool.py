"""Campaigns on a Dask pool (``--workers N``, ``--cluster ADDRESS``): the rows of the sequential run, one
writer (resume after SIGKILL), model weights loaded once per worker, progress with an ETA, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from semcom.campaign import CampaignError, load_campaign, read_rows, run_campaign  # noqa: E402
from semcom.cli import main  # noqa: E402
from test_campaign import ROOT, image_campaign, quiet, row_keys, write_campaign  # noqa: E402

TIMING = {"latency_s", "decode_s", "time_utc"}  # wall-clock columns: differ between any two runs


def by_key(rows):
    """Rows without their timing columns, in key order (a pool appends them as jobs finish)."""
    key = lambda r: (int(r["point"]), int(r["payload"]), r["decoder"])  # noqa: E731
    return [{k: v for k, v in r.items() if k not in TIMING} for r in sorted(rows, key=key)]


def test_two_workers_give_the_rows_of_one(tmp_path):
    path = write_campaign(tmp_path, sweep={"channel.snr_db": [0.0, 12.0], "channel.profile": ["flat", "indoor"]},
                          payloads_per_point=2)
    one = run_campaign(load_campaign(path), tmp_path / "one", log=quiet)
    lines, stats = [], {}
    two = run_campaign(load_campaign(path), tmp_path / "two", workers=2, log=lines.append, stats=stats)
    assert one["rows_written"] == two["rows_written"] == 8
    assert by_key(read_rows(tmp_path / "two")) == by_key(read_rows(tmp_path / "one"))
    assert stats["workers"] == 2 and stats["compute_s"] > 0 and stats["model_loads"] == 0  # random payloads
    assert "8/8 payloads (100%) on 2 workers" in lines[-1] and "ETA" in lines[-1]
    again = run_campaign(load_campaign(path), tmp_path / "two", workers=2, log=quiet)  # all done: no pool needed
    assert again["rows_written"] == 0 and again["skipped"] == 8


def test_image_weights_load_once_per_worker(tmp_path):
    """8 image payloads on 2 workers: each worker loads the JSCC and the classifier once (not per payload);
    the rows match the sequential run's (PSNR/SSIM to float tolerance: thread counts may differ)."""
    path = image_campaign(tmp_path, sweep={"channel.snr_db": [5.0, 10.0, 15.0, 20.0]}, payloads_per_point=2)
    stats = {}
    run_campaign(load_campaign(path), tmp_path / "two", workers=2, log=quiet, stats=stats)
    assert sum(stats["jobs_by_worker"].values()) == 8 and max(stats["jobs_by_worker"].values()) >= 4
    assert set(stats["loads_by_worker"].values()) == {2}  # jscc-1_6 + classifier, whatever the job count
    run_campaign(load_campaign(path), tmp_path / "one", log=quiet)
    two, one = by_key(read_rows(tmp_path / "two")), by_key(read_rows(tmp_path / "one"))
    assert len(two) == len(one) == 8
    for a, b in zip(two, one):
        assert float(a["psnr_db"]) == pytest.approx(float(b["psnr_db"]), abs=1e-3)
        assert {k: v for k, v in a.items() if k not in ("psnr_db", "ssim")} == \
            {k: v for k, v in b.items() if k not in ("psnr_db", "ssim")}


def test_sigkill_at_two_workers_resumes_without_lost_or_duplicated_rows(tmp_path):
    import psutil

    path = write_campaign(tmp_path, sweep={"channel.snr_db": [0.0, 5.0, 10.0, 15.0]}, payloads_per_point=10,
                          payload={"symbols": 3000, "streams": 2})
    proc = subprocess.Popen([sys.executable, "-m", "semcom.cli", "campaign", str(path), "--workers", "2"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    kids = []
    try:
        while len(read_rows(tmp_path / "out")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            kids = kids or psutil.Process(proc.pid).children(recursive=True)
            time.sleep(0.01)
        kids = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    killed_at = read_rows(tmp_path / "out")
    assert 3 <= len(killed_at) < 40
    gone, alive = psutil.wait_procs(kids, timeout=15)  # the pool's processes go with their driver
    assert not alive, alive
    res = run_campaign(load_campaign(path), workers=2, log=quiet)
    rows = read_rows(tmp_path / "out")
    assert rows[:len(killed_at)] == killed_at and res["skipped"] == len(killed_at)
    assert sorted(row_keys(rows)) == sorted((str(p), str(k), "") for p in range(4) for k in range(10))


def test_cluster_address_attaches_to_a_running_scheduler(tmp_path, monkeypatch, capsys):
    """``$DASK_SCHEDULER_ADDRESS`` (or --cluster) sends the payloads to that scheduler's workers."""
    from distributed import LocalCluster

    path = write_campaign(tmp_path, payloads_per_point=2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        assert main(["campaign", str(path)]) == 0
    err = capsys.readouterr().err
    assert "4/4 payloads (100%) on 2 workers" in err
    assert len(read_rows(tmp_path / "out")) == 4


def test_unreachable_cluster_is_a_one_line_error(tmp_path, capsys):
    path = write_campaign(tmp_path)
    t0 = time.monotonic()
    rc = main(["campaign", str(path), "--cluster", "tcp://127.0.0.1:9", "--cluster-timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and time.monotonic() - t0 < 8
    assert len(err.splitlines()) == 1 and "tcp://127.0.0.1:9" in err and "1 s" in err, err
    assert not (Path(tmp_path) / "out" / "results.csv").exists() or not read_rows(tmp_path / "out")


def test_radio_link_and_bad_worker_count_refused(tmp_path, capsys):
    path = write_campaign(tmp_path, link="radio")
    with pytest.raises(CampaignError, match="--workers 1"):
        run_campaign(load_campaign(path), workers=2, log=quiet)
    assert main(["campaign", str(write_campaign(tmp_path, name="d.yaml")), "--workers", "0"]) == 1
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_bench_sweep_prints_one_and_two_workers_side_by_side(tmp_path, capsys):
    import json

    rc = main(["bench", "sweep", "--points", "3", "--payloads", "1", "--payload", "random", "--symbols", "300",
               "--workers", "1,2", "--json", str(tmp_path / "s.json"), "--silent"])
    out = capsys.readouterr().out
    assert rc == 0, out
    runs = json.loads((tmp_path / "s.json").read_text())["runs"]
    assert [(r["workers"], r["points"], r["rows"], r["same_rows"]) for r in runs] == [(1, 3, 3, True), (2, 3, 3, True)]
    assert runs[0]["speedup"] == 1.0 and runs[0]["startup_s"] == 0 and runs[1]["startup_s"] > 0
    assert runs[1]["speedup"] == pytest.approx(runs[0]["wall_s"] / runs[1]["wall_s"])
    table = {line[:26].strip(): line[26:].split() for line in out.splitlines()[1:]}
    assert table["workers"] == ["1", "2"] and len(table["speed-up"]) == len(table["engine overhead ms/point"]) == 2
