"""GNU Radio Companion as users open it (``semcom.grc``, ``semcom grc``, ``./run.sh setup``).

Everything runs with a private HOME (GRC's ``~/.gnuradio/config.conf``, its cache and Debian
python's user site live there), never the real one. "Plain" means what the desktop menu gives:
``/usr/bin/python3`` / ``grcc`` with only HOME and PATH in the environment (no GRC_BLOCKS_PATH,
no PYTHONPATH, no venv)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from semcom import grc
from semcom.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ROOT / "flowgraphs" / "loopback.grc"
SEMCOM_BLOCKS = {p.name.removesuffix(".block.yml") for p in (ROOT / "blocks" / "grc").glob("*.block.yml")}

needs_grc = pytest.mark.skipif(shutil.which("grcc") is None or shutil.which("gnuradio-companion") is None
                               or not os.access(grc.DEBIAN_PYTHON, os.X_OK),
                               reason="gnuradio-companion / grcc / Debian python3 not installed")


def _home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}


def _plain_grcc(grc_file: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    out.mkdir(exist_ok=True)
    return subprocess.run([shutil.which("grcc"), "-o", str(out), str(grc_file)], env=env, capture_output=True,
                          text=True, timeout=180)


def test_merge_local_blocks_path_keeps_everything_else():
    text = ("# mine\n[grc]\nxterm_executable = /usr/bin/xterm\nlocal_blocks_path = /opt/a:~/b\n\n"
            "[other]\nlocal_blocks_path = /not/grc\n")
    merged = grc.merge_local_blocks_path(text, "/x/blocks/grc")
    assert merged == text.replace("/opt/a:~/b", "/opt/a:~/b:/x/blocks/grc")
    assert grc.merge_local_blocks_path(merged, "/x/blocks/grc") == merged  # idempotent
    assert grc.merge_local_blocks_path(merged, "/x/blocks/grc/") == merged
    # no [grc] section / no key in it / empty value / empty file
    assert grc.merge_local_blocks_path("[other]\nk = 1", "/p") == "[other]\nk = 1\n\n[grc]\nlocal_blocks_path = /p\n"
    assert grc.merge_local_blocks_path("[GRC]\nk = 1\n", "/p") == "[GRC]\nlocal_blocks_path = /p\nk = 1\n"
    assert grc.merge_local_blocks_path("[grc]\nlocal_blocks_path =\n", "/p") == "[grc]\nlocal_blocks_path = /p\n"
    assert grc.merge_local_blocks_path("", "/p") == "[grc]\nlocal_blocks_path = /p\n"


@pytest.fixture(scope="module")
def set_up_home(tmp_path_factory) -> dict[str, str]:
    """A private HOME after the set-up step, with a config.conf that already had other settings."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the set-up points Debian's python3 at the project's venv: run in it (./run.sh test)")
    env = _home(tmp_path_factory.mktemp("grc_home"))
    conf = Path(env["HOME"]) / ".gnuradio" / "config.conf"
    conf.parent.mkdir()
    conf.write_text("[grc]\nlocal_blocks_path = /opt/other/blocks\ncanvas_font_size = 9\n\n[audio]\naudio_module = alsa\n")
    grc.setup(env=env, log=lambda s: None)
    return env


@pytest.mark.gnuradio
@needs_grc
def test_setup_is_idempotent_user_level_and_merges(set_up_home):
    env = set_up_home
    conf = Path(env["HOME"]) / ".gnuradio" / "config.conf"
    first = conf.read_text()
    assert "local_blocks_path = /opt/other/blocks:" + str(ROOT / "blocks" / "grc") in first
    assert "canvas_font_size = 9" in first and "[audio]\naudio_module = alsa" in first
    pth = grc.user_site(env=env) / grc.PTH_NAME
    assert pth.is_file() and str(pth).startswith(env["HOME"])
    before = (first, pth.read_text())
    res = grc.setup(env=env, log=lambda s: None)
    assert not res["config_changed"] and not res["pth_changed"]
    assert (conf.read_text(), pth.read_text()) == before
    assert set(res["blocks"]) == SEMCOM_BLOCKS


@pytest.mark.gnuradio
@needs_grc
def test_plain_grc_sees_the_blocks_only_after_setup(set_up_home, tmp_path):
    """GRC's block library as gnuradio-companion builds it, under plain /usr/bin/python3."""
    before = grc.check(env=_home(tmp_path))
    assert set(before["missing"]) >= SEMCOM_BLOCKS | {"semcom"}
    after = grc.check(env=set_up_home)
    assert after["missing"] == [] and set(after["blocks"]) == SEMCOM_BLOCKS


@pytest.mark.gnuradio
@needs_grc
def test_a_compile_without_the_semcom_blocks_is_an_error(tmp_path):
    """Plain grcc without the set-up drops the semcom blocks and exits 0 with an empty flowgraph:
    check_generated / ``semcom grc --compile`` refuse it; with the blocks the compile passes."""
    r = _plain_grcc(LOOPBACK, tmp_path / "plain", _home(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr  # GRC's own (silent) behaviour
    with pytest.raises(grc.GrcError, match=r"lacks the semcom blocks semcom_semantic_encoder_0.*run `./run.sh setup`"):
        grc.check_generated(LOOPBACK, tmp_path / "plain" / "semcom_loopback.py")
    env = {**os.environ, **_home(tmp_path)}
    (script,) = grc.compile_flowgraphs([LOOPBACK], tmp_path / "ok", env=env)
    grc.check_generated(LOOPBACK, script)
    bad = tmp_path / "bad.grc"
    bad.write_text(LOOPBACK.read_text().replace("id: semcom_channel\n", "id: semcom_no_such_block\n"))
    assert bad.read_text() != LOOPBACK.read_text()
    with pytest.raises(grc.GrcError, match="no definition for semcom_no_such_block|grcc failed"):
        grc.compile_flowgraphs([bad], tmp_path / "bad", env=env)


@pytest.mark.gnuradio
@needs_grc
def test_semcom_grc_compile_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["grc", "--compile", str(LOOPBACK), "-o", str(tmp_path / "gen")]) == 0
    assert "semcom_loopback.py" in capsys.readouterr().out
    assert main(["grc", "--compile", str(tmp_path / "none.grc")]) == 2
    assert "none.grc" in capsys.readouterr().err


@pytest.mark.gnuradio
@needs_grc
def test_semcom_grc_opens_gnuradio_companion_with_the_blocks(tmp_path, capsys):
    """``semcom grc FILE``: GRC run by this Python with GRC_BLOCKS_PATH; that Python + env builds
    GRC's library with the semcom blocks and imports semcom, without any set-up in HOME."""
    argv, env = grc.grc_command([LOOPBACK], env={**os.environ, **_home(tmp_path)})
    assert argv[0] == sys.executable and argv[1].endswith("gnuradio-companion") and argv[2] == str(LOOPBACK)
    assert env["GRC_BLOCKS_PATH"].split(os.pathsep)[0] == str(ROOT / "blocks" / "grc")
    res = grc.check(python=argv[0], env=env, extra_env={"GRC_BLOCKS_PATH": env["GRC_BLOCKS_PATH"]})
    assert res["missing"] == [], res
    assert main(["grc", "--print-command", str(LOOPBACK)]) == 0
    out = capsys.readouterr().out
    assert "GRC_BLOCKS_PATH=" in out and "gnuradio-companion" in out and str(LOOPBACK) in out
    assert main(["grc", str(tmp_path / "missing.grc")]) == 2
    assert "missing.grc" in capsys.readouterr().err


@pytest.mark.gnuradio
@needs_grc
def test_plain_grcc_and_debian_python_decode_the_loopback_flowgraph(set_up_home, tmp_path):
    """After the set-up: ``grcc flowgraphs/loopback.grc`` and ``/usr/bin/python3 semcom_loopback.py``
    with only HOME and PATH turn an image into a decoded PNG (Enter quits, as in a terminal)."""
    pytest.importorskip("torch")
    from semcom.imagelink import find_checkpoint, load_image, save_png, synthetic_image

    try:
        find_checkpoint("1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    env = dict(set_up_home)
    r = _plain_grcc(LOOPBACK, tmp_path / "gen", env)
    assert r.returncode == 0, r.stdout + r.stderr
    script = tmp_path / "gen" / "semcom_loopback.py"
    grc.check_generated(LOOPBACK, script)
    img = save_png(synthetic_image(32, 40, seed=3), tmp_path / "in.png")
    out = tmp_path / "decoded"
    p = subprocess.Popen([grc.DEBIAN_PYTHON, str(script), "--image", str(img), "--out-dir", str(out)],
                         cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"}, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and not list(out.glob("*.png")):
            time.sleep(0.1)
        time.sleep(0.2)
        log, _ = p.communicate("\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, log
    pngs = sorted(out.glob("*.png"))
    assert [x.name for x in pngs] == ["stream0_jscc.png"], log
    assert load_image(pngs[0]).shape == (32, 40, 3)


@pytest.mark.gnuradio
@needs_grc
def test_run_sh_setup_does_the_grc_step(tmp_path):
    """``./run.sh setup`` ends with ``semcom grc --setup`` (here with an up-to-date stand-in venv
    that forwards to this one, so nothing is installed; HOME private)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the project's venv")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    py.chmod(0o755)
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / "run.sh").read_bytes()).hexdigest()[:16]
    (venv / ".semcom-stamp").write_text(stamp + "\n")
    env = {**_home(tmp_path), "SEMCOM_VENV": str(venv)}
    r = subprocess.run([str(ROOT / "run.sh"), "setup"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    conf = Path(env["HOME"]) / ".gnuradio" / "config.conf"
    assert conf.is_file() and str(ROOT / "blocks" / "grc") in conf.read_text(), r.stdout + r.stderr
    assert (grc.user_site(env=env) / grc.PTH_NAME).is_file()
    assert "sees the semcom blocks" in r.stdout + r.stderr
