"""Every flowgraph in flowgraphs/ compiles with grcc against the project's blocks (GRC_BLOCKS_PATH,
private HOME so GRC's cache is not shared; grcc runs under this Python so GRC can evaluate the
hardware flowgraphs' config variables, as documented in flowgraphs/README.md) and its generated
Python imports without a device. The generated loopback flowgraph runs headless (an image goes in,
a decoded PNG comes out), so does the ZMQ pair, and the PlutoSDR / USRP pairs run with gr-iio's /
gr-uhd's device blocks swapped for the fakes of ``semcom.radio.gr_fakes`` on one ``FakeAir``.
Without a device the hardware flowgraphs stop with one line naming the device and its address."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOWGRAPHS = sorted((ROOT / "flowgraphs").glob("*.grc"))

pytestmark = [pytest.mark.gnuradio,
              pytest.mark.skipif(shutil.which("grcc") is None, reason="grcc (gnuradio-companion) not installed")]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), GRC_BLOCKS_PATH=str(ROOT / "blocks" / "grc"), QT_QPA_PLATFORM="offscreen")
    return env


def _compile(grcs: list[Path], out: Path, env: dict[str, str]) -> str:
    """grcc on all ``grcs`` at once (one GRC start-up), run by this Python (the hardware flowgraphs'
    variables call ``semcom.radio.flowgraphs`` while GRC evaluates them); returns its output."""
    r = subprocess.run([sys.executable, shutil.which("grcc"), "-o", str(out), *map(str, grcs)], capture_output=True,
                       text=True, timeout=180, env=env)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    # a missing block definition only shows up as an unconnected port (GNURADIO_NOTES)
    assert "not connected" not in text.lower(), text
    return text


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("grc")
    out = tmp / "gen"
    out.mkdir()
    _compile(FLOWGRAPHS, out, _env(tmp))
    return out


HARDWARE = ("pluto_tx", "pluto_rx", "usrp_tx", "usrp_rx")


def test_flowgraphs_exist():
    assert {p.name for p in FLOWGRAPHS} >= {"loopback.grc", "tx_zmq.grc", "rx_zmq.grc",
                                             *(f"{h}.grc" for h in HARDWARE)}


@pytest.mark.parametrize("grc", FLOWGRAPHS, ids=[p.name for p in FLOWGRAPHS])
def test_flowgraph_compiles(grc, generated):
    import yaml

    fid = yaml.safe_load(grc.read_text())["options"]["parameters"]["id"]
    script = generated / f"{fid}.py"
    assert script.is_file(), f"grcc wrote no {script.name} for {grc.name}"
    text = script.read_text()
    assert "config" in text  # every flowgraph takes the YAML config as a parameter
    compile(text, str(script), "exec")
    from semcom.grc import check_generated

    check_generated(grc, script)  # GRC drops blocks it has no definition for and still writes a script


# run a generated flowgraph (module/class ``{name}``) until a decoded PNG appears in argv[2]
WAIT_FOR_PNG = """
import sys, time
from pathlib import Path
import {name} as m
out = Path(sys.argv[2])
tb = m.{name}(config='', {arg}=sys.argv[1], out_dir=str(out))
tb.start()
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not list(out.glob('*.png')):
    time.sleep(0.05)
time.sleep(0.2)
tb.stop()
tb.wait()
print('decoded', sorted(p.name for p in out.glob('*.png')), tb.semcom_semantic_decoder_0.stats())
"""
RUN_LOOPBACK = WAIT_FOR_PNG.format(name="semcom_loopback", arg="image")
RUN_ZMQ_RX = WAIT_FOR_PNG.format(name="semcom_rx_zmq", arg="address")


def _need_checkpoint() -> None:
    pytest.importorskip("torch")
    from semcom.imagelink import find_checkpoint

    try:
        find_checkpoint("1/6")
    except FileNotFoundError as e:
        pytest.skip(str(e))


def test_loopback_flowgraph_runs_headless(tmp_path, generated):
    _need_checkpoint()
    from semcom.imagelink import load_image, save_png, synthetic_image

    env = _env(tmp_path)
    gen = generated
    img = save_png(synthetic_image(40, 56, seed=4), tmp_path / "in.png")
    out = tmp_path / "decoded"
    r = subprocess.run([sys.executable, "-c", RUN_LOOPBACK, str(img), str(out)], cwd=gen, env=env,
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "decoded ['stream0_jscc.png']" in r.stdout, r.stdout + r.stderr
    dec = load_image(out / "stream0_jscc.png")
    assert dec.shape == (40, 56, 3)


RUN_ZMQ_TX = """
import sys, time
import semcom_tx_zmq as m
tb = m.semcom_tx_zmq(config='', address=sys.argv[1], image=sys.argv[2])
tb.start()
sys.stdin.readline()  # the test writes a line (or closes stdin) once the receiver is done
tb.stop()
tb.wait()
print('sent', tb.semcom_semantic_encoder_0.n_images)
"""

def test_zmq_flowgraph_pair_sends_an_image(tmp_path, generated):
    """tx_zmq.grc and rx_zmq.grc in two processes: the image arrives and decodes (no reference: no PSNR)."""
    import socket

    _need_checkpoint()
    from semcom.imagelink import load_image, save_png, synthetic_image

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = _env(tmp_path)
    img = save_png(synthetic_image(32, 40, seed=7), tmp_path / "in.png")
    out = tmp_path / "rx"
    procs = {}
    try:
        procs["rx"] = subprocess.Popen([sys.executable, "-c", RUN_ZMQ_RX, address, str(out)], cwd=generated,
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs["tx"] = subprocess.Popen([sys.executable, "-c", RUN_ZMQ_TX, address, str(img)], cwd=generated,
                                       env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        rx_out, rx_err = procs["rx"].communicate(timeout=90)
        tx_out, tx_err = procs["tx"].communicate("stop\n", timeout=30)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.communicate()
    tx = subprocess.CompletedProcess([], procs["tx"].returncode, tx_out, tx_err)
    rx = procs["rx"]
    assert tx.returncode == 0 and "sent" in tx.stdout, tx.stdout + tx.stderr
    assert rx.returncode == 0, rx_out + rx_err
    assert "stream0_jscc.png" in rx_out, rx_out + rx_err
    assert load_image(out / "stream0_jscc.png").shape == (32, 40, 3)


def test_hardware_flowgraphs_expose_the_config_and_the_usual_knobs():
    """Each hardware flowgraph: one ``config`` parameter read by ``flowgraph_config``, the radio
    knobs as GRC variables fed to GNU Radio's own device block, a device check before the blocks."""
    import yaml

    device_blocks = {"pluto_tx": "iio_pluto_sink", "pluto_rx": "iio_pluto_source", "usrp_tx": "uhd_usrp_sink",
                     "usrp_rx": "uhd_usrp_source"}
    for name in HARDWARE:
        fg = yaml.safe_load((ROOT / "flowgraphs" / f"{name}.grc").read_text())
        blocks = {b["name"]: b for b in fg["blocks"]}
        kind = "pluto" if name.startswith("pluto") else "uhd"
        params = [b["name"] for b in fg["blocks"] if b["id"] == "parameter"]
        assert "config" in params, name
        assert blocks["cfg"]["parameters"]["value"] == f"flowgraph_config(config, '{kind}')", name
        variables = {b["name"] for b in fg["blocks"] if b["id"] == "variable"}
        side = name[-2:]
        knobs = {"center_freq", "samp_rate", "rf_bandwidth", "uri", "ratio",
                 *(("tx_gain", "snr") if side == "tx" else ("rx_gain", "decoder", "nfe"))}
        assert knobs <= variables, (name, knobs - variables)
        dev = [b for b in fg["blocks"] if b["id"] == device_blocks[name]]
        assert len(dev) == 1, name
        used = " ".join(dev[0]["parameters"].values())
        assert all(k in used for k in ("center_freq", "samp_rate", "rf_bandwidth", "uri")), (name, used)
        snip = [b for b in fg["blocks"] if b["id"] == "snippet"]
        assert len(snip) == 1 and snip[0]["parameters"]["section"] == "init_before_blocks", name
        assert f"preflight(self.cfg, '{kind}', '{side}'" in snip[0]["parameters"]["code"], name
        semcom = {b["id"] for b in fg["blocks"] if b["id"].startswith("semcom_")}
        assert semcom == ({"semcom_semantic_encoder", "semcom_ofdm_tx"} if side == "tx"
                          else {"semcom_ofdm_rx", "semcom_semantic_decoder"}), name
        assert all(b["parameters"]["config"] == "config_file" for b in fg["blocks"] if b["id"] in semcom), name


def test_preflight_rechecks_edited_variables_and_notes_the_block_agc(monkeypatch):
    """GRC variables may be edited: the device ranges and the TX safety cap still hold when the
    flowgraph starts; a gain mode fixed in the source block that differs from the config is noted."""
    import semcom.radio.flowgraphs as fgs
    from semcom.config import ConfigError

    cfg = fgs.flowgraph_config("", "pluto")
    assert cfg.radio.device == "pluto" and cfg.source.endswith("hw_configs/pluto.yaml")
    with pytest.raises(ConfigError, match=r"radio.tx_gain_db: -5 dB is above the safety cap radio.tx_gain_max_db "
                                          r"= -10 dB \(flowgraph variable value"):
        fgs.preflight(cfg, "pluto", "tx", center_freq=2.45e9, sample_rate=2e6, gain_db=-5.0)
    with pytest.raises(ConfigError, match="radio.center_freq: 7 GHz is outside the USRP B210 RX LO range"):
        fgs.preflight(fgs.flowgraph_config("", "uhd"), "uhd", "rx", center_freq=7e9, sample_rate=2e6, gain_db=30.0)
    with pytest.raises(ConfigError, match="radio.device: 'pluto': this flowgraph drives a real USRP"):
        fgs.flowgraph_config(ROOT / "hw_configs" / "pluto.yaml", "uhd")
    monkeypatch.setattr(fgs, "_find_pluto", lambda uri: None)
    notes: list[str] = []
    radio = fgs.preflight(cfg, "pluto", "rx", center_freq=915e6, sample_rate=1e6, gain_db=10.0, block_agc="manual",
                          log=notes.append)
    assert (radio.center_freq, radio.sample_rate, radio.rx_gain_db) == (915e6, 1e6, 10.0)
    assert len(notes) == 1 and "'manual'" in notes[0] and "'slow_attack'" in notes[0]


IMPORT_ALL = """
import importlib, sys
for name in sys.argv[1:]:
    assert callable(getattr(importlib.import_module(name), name)), name
print('imported', len(sys.argv) - 1, 'torch' in sys.modules)
"""


def test_generated_flowgraphs_import_without_a_device(tmp_path, generated):
    names = sorted(p.stem for p in generated.glob("semcom_*.py"))
    assert {f"semcom_{h}" for h in HARDWARE} <= set(names)
    r = subprocess.run([sys.executable, "-c", IMPORT_ALL, *names], cwd=generated, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and f"imported {len(names)} False" in r.stdout, r.stdout + r.stderr  # nor torch


def test_hardware_flowgraphs_without_a_device_stop_with_one_clear_line(tmp_path, generated):
    """Run as scripts (as GRC does) with no device: exit 1 and one line naming the device and address."""
    def config(name, old, new):
        path = tmp_path / f"{name}.yaml"
        text = (ROOT / "hw_configs" / f"{name}.yaml").read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        return str(path)

    cases = [  # addresses that fail at once (no network time-out), even next to a real device
        ("semcom_usrp_rx", config("usrp_b210", "uri: type=b200", "uri: type=b200,serial=semcom-none"),
         "error: no USRP found for device args radio.uri 'type=b200,serial=semcom-none'"),
        ("semcom_pluto_tx", config("pluto", "uri: ip:192.168.2.1", "uri: usb:9.9.9"),
         "error: no PlutoSDR at radio.uri 'usb:9.9.9'"),
        ("semcom_pluto_rx", str(ROOT / "hw_configs" / "usrp_b210.yaml"),
         "radio.device: 'uhd': this flowgraph drives a real PlutoSDR through gr-iio"),
    ]
    for script, cfg, words in cases:
        r = subprocess.run([sys.executable, f"{script}.py", "-c", cfg], cwd=generated, env=_env(tmp_path),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and words in r.stderr, (script, r.stdout + r.stderr)
        assert "Traceback" not in r.stderr, (script, r.stderr)


# the generated TX and RX flowgraphs of a radio in one process, gr-iio/gr-uhd's device blocks
# replaced by the fakes on one FakeAir (the stock blocks' setters are the fakes' setters)
RUN_FAKE_RADIO_PAIR = """
import json, sys, time
from pathlib import Path
kind, image, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
from PyQt5 import Qt
app = Qt.QApplication(['semcom-test'])  # the RX flowgraphs are Qt GUIs (spectrum, constellation)
from gnuradio import iio, uhd
import semcom.radio.flowgraphs as fgs
from semcom.radio import gr_fakes
from semcom.radio.fakes import fake_air_for

cfg = fgs.flowgraph_config('', kind)
air = fake_air_for(cfg)
made = {}

class LenTag:  # gr-iio's blocks also take a length-tag key ('' = none)
    def set_len_tag_key(self, key):
        self.settings['len_tag_key'] = key

class Source(LenTag, gr_fakes.FakeRadioSource):
    pass

class Sink(LenTag, gr_fakes.FakeRadioSink):
    pass

def device(side, address):
    flavour = 'iio' if kind == 'pluto' else 'uhd'
    made[side] = (address, Source(air, flavour) if side == 'rx' else Sink(air, flavour))
    return made[side][1]

iio.fmcomms2_source_fc32 = lambda uri, channels, n: device('rx', uri)
iio.fmcomms2_sink_fc32 = lambda uri, channels, n, cyclic: device('tx', uri)
uhd.usrp_source = lambda addr, stream_args: device('rx', addr)
uhd.usrp_sink = lambda addr, stream_args, tag='': device('tx', addr)
fgs._find_pluto = fgs._find_usrp = lambda uri: None  # preflight's device search

name = 'pluto' if kind == 'pluto' else 'usrp'
rx = getattr(__import__(f'semcom_{name}_rx'), f'semcom_{name}_rx')(config='', out_dir=str(out))
tx = getattr(__import__(f'semcom_{name}_tx'), f'semcom_{name}_tx')(config='', image=image)
rx.start()
while made['rx'][1].nitems_written(0) < cfg.radio.rx_settle_s * cfg.radio.sample_rate:
    time.sleep(0.01)
t0 = time.monotonic()
tx.start()
deadline = t0 + 60
while time.monotonic() < deadline and not rx.semcom_semantic_decoder_0.results:
    time.sleep(0.02)
took = time.monotonic() - t0
tx.stop(); tx.wait(); rx.stop(); rx.wait()
res = [{k: r[k] for k in ('stream_id', 'psnr', 'snr_db', 'png') if k in r} for r in rx.semcom_semantic_decoder_0.results]
print(json.dumps({'results': res, 'seconds': took,
                  'addresses': {s: a for s, (a, _) in made.items()},
                  'settings': {s: {k: str(v) for k, v in b.settings.items()} for s, (_, b) in made.items()}}))
"""


@pytest.mark.parametrize("kind", ["pluto", "uhd"])
def test_fake_radio_flowgraph_pair_sends_an_image(tmp_path, generated, kind):
    """pluto_tx.grc + pluto_rx.grc / usrp_tx.grc + usrp_rx.grc with the shipped configs: the device
    blocks get the config's address, frequency, rate and gains, and the image decodes."""
    import json

    _need_checkpoint()
    from semcom.imagelink import load_image, save_png, synthetic_image
    from semcom.radio.flowgraphs import flowgraph_config

    img = save_png(synthetic_image(32, 40, seed=7), tmp_path / "in.png")
    out = tmp_path / "rx"
    r = subprocess.run([sys.executable, "-c", RUN_FAKE_RADIO_PAIR, kind, str(img), str(out)], cwd=generated,
                       env=_env(tmp_path), capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    radio = flowgraph_config("", kind).radio
    res = rep["results"]
    assert res and res[0]["stream_id"] == 0 and res[0]["psnr"] > 15, rep
    assert load_image(res[0]["png"]).shape == (32, 40, 3)
    uri = radio.uri if kind == "pluto" else f"{radio.uri},"  # gr-uhd's block joins device address and args
    assert rep["addresses"] == {"rx": uri, "tx": uri}
    for side in ("rx", "tx"):
        s = rep["settings"][side]
        assert float(s["center_freq"]) == radio.center_freq and float(s["sample_rate"]) == radio.sample_rate
    assert float(rep["settings"]["tx"]["gain"]) == radio.tx_gain_db  # Pluto: attenuation = -tx_gain_db
    assert rep["settings"]["rx"]["agc"] == radio.rx_agc
