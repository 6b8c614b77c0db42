"""The layering rules hold: numpy DSP imports neither gnuradio nor torch; models never import
gnuradio; the installed distribution exposes only the ``semcom`` namespace."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import semcom.blocks.phy
import semcom.models

ROOT = Path(__file__).resolve().parents[1]


def _import_all_blocked(package: str, blocked: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Import every module of ``package`` in a fresh interpreter where ``blocked`` cannot be imported."""
    code = f"""
import importlib, pkgutil, sys
for name in {blocked!r}:
    sys.modules[name] = None  # makes 'import name' raise ImportError
pkg = importlib.import_module({package!r})
names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]
for n in names:
    importlib.import_module(n)
print(len(names), 'modules imported')
"""
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_phy_imports_neither_gnuradio_nor_torch(tmp_path):
    r = _import_all_blocked("semcom.blocks.phy", ["gnuradio", "torch", "pmt"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "modules imported" in r.stdout


def test_models_do_not_import_gnuradio(tmp_path):
    r = _import_all_blocked("semcom.models", ["gnuradio", "pmt"], tmp_path)
    assert r.returncode == 0, r.stderr


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, top package)`` of every import in ``path`` (inside functions too unless ``top_level_only``)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("folder, banned, top_level_only", [
    ("blocks/phy", {"gnuradio", "pmt", "torch"}, False),
    ("models", {"gnuradio", "pmt"}, False),
    ("blocks/gr", {"torch"}, True),  # GRC imports these modules: torch only lazily, inside functions
])
def test_source_imports_respect_layering(folder, banned, top_level_only):
    """Static scan (catches lazy imports inside functions that the import tests above never run)."""
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no python files under {folder}"
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}" for f in files
           for line, mod in _imports(f, top_level_only) if mod in banned]
    assert not bad, bad


def test_gr_modules_do_not_load_torch_on_import(tmp_path):
    """What GRC does (import every semcom.blocks.gr module) must not pull torch in, even transitively."""
    pytest.importorskip("gnuradio")
    code = """
import importlib, pkgutil, sys
import semcom.blocks.gr as pkg
for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):
    importlib.import_module(m.name)
print('torch' in sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "False", "importing semcom.blocks.gr loaded torch"


def test_import_scan_sees_lazy_and_top_level_imports(tmp_path):
    """Positive control for the scan: an import inside a function is found, unless top-level only."""
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom gnuradio import gr\ndef f():\n    import torch.nn\n    from pmt import intern\n")
    assert sorted(_imports(src)) == [(1, "os"), (2, "gnuradio"), (4, "torch"), (5, "pmt")]
    assert _imports(src, top_level_only=True) == [(1, "os"), (2, "gnuradio")]


def test_no_bare_top_level_modules(tmp_path):
    # run outside the repository so the working directory cannot shadow the installed package
    code = "import importlib.util as u; print(u.find_spec('blocks'), u.find_spec('models'), u.find_spec('semcom.blocks.phy') is not None)"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "None", "True"]


def test_console_script_help():
    exe = Path(sys.executable).parent / "semcom"
    if not exe.exists():
        pytest.skip("console script not installed in this interpreter's environment")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "loopback" in r.stdout


def test_grc_block_defaults_match_the_frame_description():
    """GRC needs literal defaults; they must stay equal to FrameSpec's (no drifting second copy)."""
    import yaml

    from semcom.blocks.phy.frame import FrameSpec

    spec = FrameSpec()
    for name in ("semcom_ofdm_tx", "semcom_ofdm_rx"):
        doc = yaml.safe_load((ROOT / "blocks" / "grc" / f"{name}.block.yml").read_text())
        checked = 0
        for p in doc["parameters"]:
            if hasattr(spec, p["id"]) and "default" in p:
                want = getattr(spec, p["id"])
                got = type(want)(yaml.safe_load(str(p["default"])))
                assert got == want, f"{name}.block.yml: {p['id']} default {got!r} != FrameSpec {want!r}"
                checked += 1
        assert checked >= 8, f"{name}: only {checked} frame parameters found"


def test_models_and_phy_share_the_snr_convention():
    import numpy as np

    from semcom.blocks.phy.snr import noise_variance as phy_n0
    from semcom.models.definitions import noise_variance as model_n0

    for snr in (-5.0, 0.0, 3.0, 10.0, 27.5):
        assert np.isclose(float(model_n0(snr)), phy_n0(snr), rtol=1e-6), snr
