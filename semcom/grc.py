"""GNU Radio Companion set-up for the project's blocks (``blocks/grc/*.block.yml``) and flowgraphs.

GRC from the desktop menu runs ``/usr/bin/python3 /usr/bin/gnuradio-companion`` with no project
environment: it finds block definitions only through ``GRC_BLOCKS_PATH`` or ``[grc]
local_blocks_path`` in ``~/.gnuradio/config.conf``, it imports ``semcom`` itself (the hardware
flowgraphs' variables call ``semcom.radio.flowgraphs``), and "Execute" runs the generated script
with that same Debian ``python3`` (``run_command`` ``{python} -u {filename}``, ``{python}`` =
GRC's ``sys.executable``). Without the definitions, GRC (and ``grcc``) silently drop the blocks:
``grcc flowgraphs/loopback.grc`` exits 0 with an empty flowgraph.

``setup()`` (run by ``./run.sh setup`` as ``semcom grc --setup``; idempotent, user level, no root):

* merges this checkout's ``blocks/grc`` into ``[grc] local_blocks_path`` of the user's GNU Radio
  config (``$GR_PREFS_PATH`` or ``~/.gnuradio``, file ``config.conf``): other sections, keys,
  comments and paths already listed are kept; the path is added once;
* writes ``semcom.pth`` into the user site of Debian's ``python3`` (``python3 -m site
  --user-site``, processed at every start unless ``-s``/``PYTHONNOUSERSITE``). Its one ``import``
  line calls ``site.addsitedir(<venv site-packages>)``, so Debian's ``python3`` (GRC, ``grcc``, the
  generated scripts) imports ``semcom``, torch and the pinned packages exactly as the venv does.
  ``site.addsitedir`` (not a plain path line) is needed because the editable install of ``semcom``
  is itself a ``.pth`` import hook in the venv, which a plain path entry would not run. The
  venv's packages then come before Debian's for that user's plain ``python3``, as inside the venv
  (other virtual environments are left alone); delete the file to undo. A PYTHONPATH would not
  reach the desktop launcher, and a path added by the blocks' templates would not reach GRC itself
  (it imports ``semcom`` to evaluate the hardware flowgraphs' variables);
* then checks, in a clean environment (only ``HOME``, ``PATH`` and ``GR_PREFS_PATH``), that
  Debian's ``python3`` builds GRC's block library with every semcom block and imports ``semcom``.

``check_generated()`` tells a flowgraph compiled without the semcom blocks (GRC dropped them) from
a good one; ``compile_flowgraphs()`` runs ``grcc`` with the blocks and applies it;
``grc_command()`` is how ``semcom grc FILE`` starts GRC (``GRC_BLOCKS_PATH``, this Python).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["GrcError", "DEBIAN_PYTHON", "PTH_NAME", "blocks_dir", "semcom_block_ids", "gr_config_file",
           "merge_local_blocks_path", "user_site", "pth_line", "setup", "check", "check_generated",
           "compile_flowgraphs", "grc_command", "grc_env"]

DEBIAN_PYTHON = "/usr/bin/python3"  # the Python GNU Radio's bindings, gnuradio-companion and grcc run under
PTH_NAME = "semcom.pth"
_PTH_MARK = "# semcom"


class GrcError(RuntimeError):
    """A GRC set-up or compile problem, said in one line (the CLI prints it without a traceback)."""


def blocks_dir() -> Path:
    """The folder holding the project's ``*.block.yml`` (``blocks/grc`` of this checkout)."""
    import semcom.blocks

    d = Path(semcom.blocks.__file__).resolve().parent / "grc"
    if not any(d.glob("*.block.yml")):
        raise GrcError(f"no *.block.yml in {d}: the semcom GRC block definitions are missing")
    return d


def semcom_block_ids() -> dict[str, str]:
    """``{block id: module its imports template names}`` for every ``blocks/grc/*.block.yml``."""
    import yaml

    ids = {}
    for f in sorted(blocks_dir().glob("*.block.yml")):
        d = yaml.safe_load(f.read_text())
        m = re.search(r"from\s+(\S+)\s+import", str(d.get("templates", {}).get("imports", "")))
        ids[d["id"]] = m.group(1) if m else ""
    return ids


def gr_config_file(env: Mapping[str, str] | None = None) -> Path:
    """The user's GNU Radio config file: ``$GR_PREFS_PATH/config.conf`` or ``~/.gnuradio/config.conf``
    (``gr.prefs()``; ``HOME`` from ``env``)."""
    env = os.environ if env is None else env
    if env.get("GR_PREFS_PATH"):
        return Path(env["GR_PREFS_PATH"]) / "config.conf"
    if not env.get("HOME"):
        raise GrcError("HOME is not set: cannot find ~/.gnuradio/config.conf")
    return Path(env["HOME"]) / ".gnuradio" / "config.conf"


_SECTION = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*$")
_KEY = re.compile(r"^(\s*local_blocks_path\s*=\s*)(.*?)\s*$", re.IGNORECASE)


def merge_local_blocks_path(text: str, path: str | Path) -> str:
    """``text`` of a GNU Radio config file with ``path`` in ``[grc] local_blocks_path``
    (``os.pathsep``-separated, as GRC splits it). Everything else is kept as it is: other sections,
    keys, comments, the paths already listed (``path`` is appended once; present already, ``text``
    comes back unchanged). A missing ``[grc]`` section or key is added."""
    path = str(path)
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if text.endswith("\r\n") else "\n"
    section, grc_at = None, None
    for i, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip().lower()
            if section == "grc" and grc_at is None:
                grc_at = i
            continue
        k = _KEY.match(line.rstrip("\r\n"))
        if section == "grc" and k:
            paths = [p for p in k.group(2).split(os.pathsep) if p.strip()]
            norm = {os.path.normpath(os.path.expanduser(os.path.expandvars(p.strip()))) for p in paths}
            if os.path.normpath(path) in norm:
                return text
            end = line[len(line.rstrip("\r\n")):] or nl
            lines[i] = k.group(1).rstrip() + " " + os.pathsep.join([*paths, path]) + end
            return "".join(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    entry = f"local_blocks_path = {path}{nl}"
    if grc_at is None:
        sep = nl if lines and lines[-1].strip() else ""
        return "".join(lines) + f"{sep}[grc]{nl}{entry}"
    lines.insert(grc_at + 1, entry)  # right under the header: inside the section wherever it ends
    return "".join(lines)


def _clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Roughly what a desktop launcher gives a program: HOME, PATH (and GR_PREFS_PATH, locale), nothing else."""
    env = os.environ if env is None else env
    out = {"PATH": env.get("PATH") or "/usr/bin:/bin", "HOME": env.get("HOME", "")}
    for k in ("GR_PREFS_PATH", "LANG", "LC_ALL"):
        if env.get(k):
            out[k] = env[k]
    return out


def _debian_python(python: str | None = None) -> str:
    python = python or DEBIAN_PYTHON
    if not os.access(python, os.X_OK):
        raise GrcError(f"{python} not found: GNU Radio Companion runs under Debian's python3")
    return python


def user_site(python: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The user site-packages folder of Debian's ``python3`` for ``env``'s HOME (created by ``setup``)."""
    r = subprocess.run([_debian_python(python), "-c", "import site; print(site.ENABLE_USER_SITE); "
                        "print(site.getusersitepackages())"], capture_output=True, text=True, timeout=60,
                       env=_clean_env(env), cwd="/")
    if r.returncode != 0:
        raise GrcError(f"{python or DEBIAN_PYTHON} failed: {r.stderr.strip()[-300:]}")
    enabled, path = r.stdout.split("\n")[:2]
    if enabled != "True":
        raise GrcError(f"{python or DEBIAN_PYTHON} has its user site disabled (ENABLE_USER_SITE={enabled}); "
                       f"start GRC with `semcom grc` instead")
    return Path(path)


def _venv_site() -> Path | None:
    """This interpreter's site-packages when it is a virtual environment (where semcom and torch are)."""
    if sys.prefix == sys.base_prefix:
        return None
    return Path(sysconfig.get_path("purelib"))


def pth_line(site_packages: str | Path) -> str:
    """The ``semcom.pth`` text: a comment and one ``import`` line adding ``site_packages`` (and
    running its ``.pth`` files, the editable install's hook) if that folder still exists, in plain
    Debian ``python3`` only: a virtual environment (this one or another checkout's) keeps its own."""
    p = str(site_packages)
    return (f"{_PTH_MARK}: written by `./run.sh setup` (semcom grc --setup). Debian's python3 (GNU Radio "
            f"Companion, grcc, the scripts they generate) gets the packages of the semcom venv. Delete to undo.\n"
            f"import os, site, sys; p = {p!r}; sys.prefix == sys.base_prefix and os.path.isdir(p) "
            f"and site.addsitedir(p)\n")


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.semcom-tmp")
    tmp.write_text(text)
    if path.exists():
        shutil.copymode(path, tmp)
    os.replace(tmp, path)
    return True


CHECK = r"""
import importlib.util, json, sys
from gnuradio import gr
from gnuradio.grc.core.platform import Platform
p = Platform(name='GNU Radio Companion', prefs=gr.prefs(), version=gr.version(),
             version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
p.build_library()
mods = {m: importlib.util.find_spec(m) is not None for m in sys.argv[2:]}
if mods.get('semcom'):
    import semcom.radio.flowgraphs  # what GRC evaluates in the hardware flowgraphs' variables
print(json.dumps({'paths': p.config.block_paths, 'blocks': sorted(b for b in p.blocks if b in sys.argv[1].split(',')),
                  'modules': mods}))
"""


def check(python: str | None = None, env: Mapping[str, str] | None = None, extra_env: Mapping[str, str] | None = None,
          timeout: float = 180.0) -> dict:
    """What GRC started plainly by ``python`` (default Debian's python3, clean environment from ``env``'s
    HOME, plus ``extra_env``) sees: ``{'paths', 'blocks', 'modules', 'missing'}``; ``missing`` lists the
    semcom blocks GRC's library lacks and the modules (``semcom``, ``torch``) it cannot import."""
    import json

    ids = semcom_block_ids()
    e = {**_clean_env(env), **(extra_env or {})}
    r = subprocess.run([_debian_python(python), "-c", CHECK, ",".join(ids),
                        "semcom", "torch"], capture_output=True, text=True, timeout=timeout, env=e, cwd="/")
    if r.returncode != 0:
        raise GrcError(f"GRC's block library did not build under {python or DEBIAN_PYTHON}: "
                       f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["missing"] = [b for b in ids if b not in res["blocks"]] + [m for m, ok in res["modules"].items() if not ok]
    return res


def setup(env: Mapping[str, str] | None = None, python: str | None = None, site_packages: str | Path | None = None,
          log: Callable[[str], None] = print) -> dict:
    """The user-level GRC set-up (module docstring); idempotent. ``env`` gives ``HOME``/``GR_PREFS_PATH``
    (default ``os.environ``), ``site_packages`` the folder for ``semcom.pth`` to add (default this
    venv's; outside a venv no ``.pth`` is written). Returns ``check()``'s result plus the files and
    whether they changed; raises ``GrcError`` when plain GRC still misses something."""
    env = dict(os.environ if env is None else env)
    blocks = blocks_dir()
    conf = gr_config_file(env)
    old = conf.read_text() if conf.is_file() else ""
    conf_changed = _write_if_changed(conf, merge_local_blocks_path(old, blocks))
    log(f"{'added' if conf_changed else 'already in'} [grc] local_blocks_path: {blocks} ({conf})")
    site_packages = site_packages or _venv_site()
    pth, pth_changed = None, False
    if site_packages:
        pth = user_site(python, env) / PTH_NAME
        if pth.is_file() and not pth.read_text().startswith(_PTH_MARK):
            raise GrcError(f"{pth} exists and was not written by semcom: remove or rename it")
        pth_changed = _write_if_changed(pth, pth_line(site_packages))
        log(f"{'wrote' if pth_changed else 'up to date'} {pth}: Debian's python3 imports semcom from {site_packages}")
    res = check(python, env)
    res.update(config_file=str(conf), config_changed=conf_changed, pth=str(pth) if pth else None,
               pth_changed=pth_changed)
    if res["missing"]:
        raise GrcError(f"GNU Radio Companion started by {python or DEBIAN_PYTHON} still misses "
                       f"{', '.join(res['missing'])} (block paths {res['paths']})")
    log(f"GNU Radio Companion ({python or DEBIAN_PYTHON}) sees the semcom blocks {', '.join(res['blocks'])}")
    return res


def check_generated(grc: str | Path, script: str | Path) -> None:
    """Raise ``GrcError`` unless the Python ``script`` generated from ``grc`` builds every enabled
    semcom block of the flowgraph (``self.<name> = <id>(``) and imports its module: when GRC lacks a
    block definition it drops the block and still writes a script (an empty flowgraph, exit 0)."""
    import yaml

    grc, script = Path(grc), Path(script)
    ids = semcom_block_ids()
    fg = yaml.safe_load(grc.read_text())
    want = [(b["name"], b["id"]) for b in fg.get("blocks", [])
            if b.get("id", "").startswith("semcom_") and b.get("states", {}).get("state", "enabled") != "disabled"]
    if not script.is_file():
        raise GrcError(f"{grc}: no generated script {script}")
    text = script.read_text()
    missing = [name for name, bid in want
               if not re.search(rf"self\.{re.escape(name)}\s*=\s*(\w+\s*=\s*)?{re.escape(bid)}\s*\(", text)
               or (ids.get(bid) and f"from {ids[bid]} import {bid}" not in text)]
    if missing:
        unknown = sorted({bid for _, bid in want if bid not in ids})
        why = (f"no definition for {', '.join(unknown)} in {blocks_dir()}" if unknown else
               "GRC did not find blocks/grc (run `./run.sh setup`, or compile with `semcom grc --compile`)")
        raise GrcError(f"{grc.name}: the generated {script.name} lacks the semcom blocks {', '.join(missing)}: {why}")


def grc_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default ``os.environ``) with this checkout's ``blocks/grc`` first in ``GRC_BLOCKS_PATH``."""
    env = dict(os.environ if env is None else env)
    paths = [p for p in env.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p]
    env["GRC_BLOCKS_PATH"] = os.pathsep.join([str(blocks_dir()), *(p for p in paths if p != str(blocks_dir()))])
    return env


def _tool(name: str) -> str:
    exe = shutil.which(name) or (f"/usr/bin/{name}" if os.path.isfile(f"/usr/bin/{name}") else None)
    if exe is None:
        raise GrcError(f"{name} not found: install Debian's gnuradio (./run.sh setup)")
    return exe


def grc_command(files: list[str | Path], env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` that open ``files`` in GNU Radio Companion run by this Python (which imports
    ``semcom``; GRC's "Execute" runs generated scripts with ``sys.executable``, so with it too) and
    the project's blocks in ``GRC_BLOCKS_PATH``. A missing file is a ``GrcError``."""
    paths = [Path(f).expanduser().resolve() for f in files]
    for f in paths:
        if not f.is_file():
            raise GrcError(f"flowgraph not found: {f}")
    return [sys.executable, _tool("gnuradio-companion"), *map(str, paths)], grc_env(env)


def compile_flowgraphs(grcs: list[str | Path], out_dir: str | Path, env: Mapping[str, str] | None = None,
                       python: str | None = None, timeout: float = 300.0) -> list[Path]:
    """``grcc -o out_dir`` on ``grcs`` with the project's blocks (``grc_env``), run by ``python``
    (default this one, which imports ``semcom``), then ``check_generated`` on each; returns the scripts.
    Raises ``GrcError`` with grcc's messages when it fails or a script lacks its semcom blocks."""
    import yaml

    grcs = [Path(g) for g in grcs]
    for g in grcs:
        if not g.is_file():
            raise GrcError(f"flowgraph not found: {g}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([python or sys.executable, _tool("grcc"), "-o", str(out), *map(str, grcs)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=grc_env(env))
    if r.returncode != 0:
        lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith(("***", "<<<"))]
        start = next((i for i, ln in enumerate(lines) if "error" in ln.lower()), max(len(lines) - 8, 0))
        hint = (" (an unconnected port can be a block GRC has no definition for)"
                if "not connected" in r.stdout.lower() else "")
        raise GrcError(f"grcc failed (exit {r.returncode}): {' '.join(lines[start:start + 12])}{hint}")
    scripts = []
    for g in grcs:
        fid = yaml.safe_load(g.read_text())["options"]["parameters"]["id"]
        script = out / f"{fid}.py"
        check_generated(g, script)
        scripts.append(script)
    return scripts
