#!/usr/bin/env bash
# Train every stage of the semantic codec in one call, sized for ~9 minutes of a GPU:
#   1. the rate-adaptive JSCC (one network for 1/6, 1/12, 1/24, 1/48) on natural-photo crops,
#   2. the residual diffusion teacher on its estimates at the DIFF_RATIOS,
#   3. the consistency model distilled from it,
# then one checkpoint per ratio into SHIP (semcom export), ready to copy to models/checkpoints/.
#
#   scripts/train_gpu.sh                      # GPU (--device auto), preset gpu, ../shared/data/bsds500
#   SHIP=$OUT/ship scripts/train_gpu.sh       # on the device machine: bring the checkpoints back
#   PRESET=tiny DEVICE=cpu STEPS=4 MINUTES_SCALE=0.02 DATA=/tmp/imgs scripts/train_gpu.sh   # CPU smoke test
#
# Each stage stops at its step count or its minutes, whichever comes first, and always leaves a
# best.safetensors (a run that hits --max-minutes evaluates before it stops). Resumable: rerun with
# RESUME=1 to continue the runs in RUNS (warm restart with a short re-warm-up).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data/bsds500}"
RUNS="${RUNS:-runs/gpu}"
SHIP="${SHIP:-$RUNS/ship}"
PRESET="${PRESET:-gpu}"
DEVICE="${DEVICE:-auto}"
RATIOS="${RATIOS:-1/6,1/12,1/24,1/48}"
DIFF_RATIOS="${DIFF_RATIOS:-1/24,1/48}"
BATCH="${BATCH:-128}"
THREADS="${THREADS:-8}"
STEPS="${STEPS:-}"                    # override every stage's step count (tests)
SCALE="${MINUTES_SCALE:-1}"           # multiply every stage's minutes (tests)
PY="${PY:-.venv/bin/python}"; [ -x "$PY" ] || PY=python3
minutes() { "$PY" -c "print($1 * $SCALE)"; }

for split in train val test; do
  [ -d "$DATA/$split" ] || { echo "train_gpu.sh: no image folder $DATA/$split (set DATA=...)" >&2; exit 2; }
done
"$PY" - <<PYEOF
import torch
dev = "$DEVICE"
if dev == "cuda" and not torch.cuda.is_available():
    raise SystemExit("train_gpu.sh: DEVICE=cuda but torch sees no CUDA device")
print("train_gpu.sh: torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF

resume=(); [ "${RESUME:-0}" = 1 ] && resume=(--resume --rewarm 200)
common=(--data "$DATA/train,$DATA/val" --eval-data "$DATA/test" --device "$DEVICE" --amp bf16
        --threads "$THREADS" --batch "$BATCH" --log-every 50)
stage() {  # name steps minutes eval_every args...
  local name=$1 steps=${STEPS:-$2} mins; mins=$(minutes "$3"); local ev=$4; shift 4
  echo "== $name: up to $steps steps / $mins min" >&2
  "$PY" -m semcom.cli train "$name" "$@" --out "$RUNS/$name" --steps "$steps" --max-minutes "$mins" \
      --eval-every "$ev" "${common[@]}" "${resume[@]}"
}
stage jscc 30000 4.5 2000 --ratio "$RATIOS" --preset "$PRESET" --lr 5e-4 --crop 96 --eval-images 24
stage teacher 20000 2.0 2000 --ratio "$DIFF_RATIOS" --preset "$PRESET" --jscc "$RUNS/jscc/best.safetensors" \
    --lr 3e-4 --crop 64 --eval-images 16
stage consistency 10000 1.5 1000 --ratio "$DIFF_RATIOS" --preset "$PRESET" --jscc "$RUNS/jscc/best.safetensors" \
    --teacher "$RUNS/teacher/best.safetensors" --lr 1e-4 --crop 64 --eval-images 16

mkdir -p "$SHIP"
"$PY" -m semcom.cli export "$RUNS/jscc/best.safetensors" --ratios "$RATIOS" --out "$SHIP"
"$PY" -m semcom.cli export "$RUNS/teacher/best.safetensors" --ratios "$DIFF_RATIOS" --out "$SHIP"
"$PY" -m semcom.cli export "$RUNS/consistency/best.safetensors" --ratios "$DIFF_RATIOS" --out "$SHIP"
for s in jscc teacher consistency; do cp "$RUNS/$s/log.csv" "$SHIP/$s-log.csv"; cp "$RUNS/$s/eval.csv" "$SHIP/$s-eval.csv"; done
echo "train_gpu.sh: checkpoints in $SHIP" >&2
