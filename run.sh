#!/usr/bin/env bash
# semcom set-up and entry point. Installs whatever is missing, then runs the job.
#
#   ./run.sh demo [ARGS]    # set up if needed, then: semcom loopback [ARGS]
#   ./run.sh test [ARGS]    # set up if needed, then: python -m pytest [ARGS]
#   ./run.sh setup          # only set up
#
# Set-up (idempotent; a second run takes seconds):
#   1. Debian packages: gnuradio, python3-libiio, python3-yaml, python3-scipy, python3-pyqtgraph,
#      python3-pyqt5 (needs root or password-less sudo; see README for users without root).
#   2. A virtual environment .venv from Debian's /usr/bin/python3 with --system-site-packages
#      (GNU Radio's bindings live in Debian's Python).
#   3. The package in editable mode with pinned dependencies (numpy < 2, torch 2.13.0).
#   4. (setup only) GNU Radio Companion as started from the desktop menu, user level, no root:
#      `semcom grc --setup` merges blocks/grc into [grc] local_blocks_path of
#      ~/.gnuradio/config.conf (other keys and paths kept) and writes semcom.pth into Debian
#      python3's user site (it adds the venv's site-packages to plain /usr/bin/python3, which
#      runs GRC, grcc and the scripts they generate), then checks that plain GRC sees the blocks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SEMCOM_VENV:-$ROOT/.venv}"
PY=/usr/bin/python3
APT_PKGS="gnuradio python3-libiio python3-yaml python3-scipy python3-pyqtgraph python3-pyqt5 python3-pil python3-matplotlib"

log() { echo "[run.sh] $*" >&2; }

system_ok() {
  [ -x "$PY" ] && "$PY" - <<'PYEOF' >/dev/null 2>&1
from gnuradio import gr, digital, blocks, zeromq, channels, fft, pdu  # noqa
import iio, yaml, scipy, pyqtgraph, PyQt5, PIL, matplotlib  # noqa
PYEOF
}

ensure_system() {
  system_ok && return 0
  local SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      log "missing Debian packages and no root: ask an administrator to run"
      log "  apt-get install -y $APT_PKGS"
      log "(or see README, 'Without root')"; exit 1
    fi
  fi
  log "installing Debian packages: $APT_PKGS"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
  system_ok || { log "GNU Radio still does not import under $PY"; exit 1; }
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV (system site packages)"
    "$PY" -m venv --system-site-packages "$VENV"
  fi
  local stamp; stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/run.sh" | sha256sum | cut -c1-16)"
  if [ "$(cat "$VENV/.semcom-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "installing semcom and pinned dependencies into $VENV"
    local c="$VENV/constraints.txt"; echo "numpy<2" > "$c"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$c" "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$c" -e "$ROOT[ml,test]"
    # pyadi-iio 0.0.21 pins pylibiio (libiio 1.x); Debian's python3-libiio 0.24 provides `iio`
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "pyadi-iio==0.0.21"
    "$VENV/bin/python" - <<'PYEOF'
import numpy
assert int(numpy.__version__.split(".")[0]) < 2, f"numpy {numpy.__version__} >= 2 breaks GNU Radio"
from gnuradio import gr  # noqa: F401
PYEOF
    echo "$stamp" > "$VENV/.semcom-stamp"
  fi
}

ensure_grc() {
  "$VENV/bin/python" -m semcom.cli grc --setup
}

cmd="${1:-}"; shift || true
case "$cmd" in
  setup) ensure_system; ensure_venv; ensure_grc ;;
  demo)  ensure_system; ensure_venv; exec "$VENV/bin/semcom" loopback "$@" ;;
  test)  ensure_system; ensure_venv; cd "$ROOT"; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: $0 {demo|test|setup} [ARGS...]" >&2; exit 2 ;;
esac
