#!/usr/bin/env bash
# Train the shipped default ReID model on a GPU machine (the recipe of reid/weights/README.md).
#
# Usage: OUT=/where/results/go bash deploy/gpu/train_default.sh [EPOCHS]
# Needs python3 with torch/torchvision (any CUDA build), numpy, opencv, scipy, typer, rich and
# the project's other imports; on a machine without internet, put wheels of the missing pure
# Python packages (and an unpacked torchreid-0.2.5 source tree) in .whl/ first.
set -euo pipefail
EPOCHS=${1:-30}
OUT=${OUT:?set OUT to a folder for the results}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/.whl/torchreid-0.2.5:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1
rt() { python3 -m reidtrace "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
start=$(date +%s)
rt synth /tmp/rt-train --crops-only --identities 2000 --seed 101 --overwrite --json > "$OUT/synth.json"
rt synth /tmp/rt-eval --crops-only --identities 750 --seed 202 --overwrite --json >> "$OUT/synth.json"
echo "rendered in $(( $(date +%s) - start )) s"
timeout "${TRAIN_TIMEOUT:-430}" python3 -m reidtrace train --data /tmp/rt-train/market \
  --arch mobilenetv2_x1_0 --out /tmp/rt-run --epochs "$EPOCHS" --eval-every 10 --lr 3.5e-4 \
  --workers 12 --json > "$OUT/train.json" || echo "training stopped early (rc=$?)"
echo "trained in $(( $(date +%s) - start )) s"
ckpt=/tmp/rt-run/best.pt; [ -f "$ckpt" ] || ckpt=/tmp/rt-run/last.pt
rt export --checkpoint "$ckpt" --out "$OUT/default.onnx"
rt evaluate --data /tmp/rt-eval/market --model "$OUT/default.onnx" --json > "$OUT/eval.json"
cp /tmp/rt-run/log.csv /tmp/rt-run/config.json "$OUT/"
# the weights alone (no optimizer state), small enough to copy off the machine
python3 -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); c['optimizer'] = c['scheduler'] = None; torch.save(c, sys.argv[2])" "$ckpt" "$OUT/best_weights.pt"
cat "$OUT/eval.json"; tail -n 5 "$OUT/log.csv"
echo "all done in $(( $(date +%s) - start )) s"
