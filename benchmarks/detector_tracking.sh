#!/usr/bin/env bash
# Tracking with each detector on the real dev sequences and the demo world, through the CLI as a
# user runs it (docs/detection.md, "YOLOX-Nano against NanoDet"). Usage, from the repo root:
#   bash benchmarks/detector_tracking.sh OUT [DETECTOR...]      (default: nanodet yolox-nano)
# Needs ../shared (PETS, TUD-Stadtmitte, models/yolox_nano.onnx, tools/motscore.py with
# motmetrics). Each detector gets its own home under OUT (YOLOX-Nano installed into it with
# `reidtrace detectors install`), so nothing touches the user's own home.
set -euo pipefail
OUT=$(realpath -m "${1:?usage: detector_tracking.sh OUT [DETECTOR...]}")
shift
if [ $# -gt 0 ]; then DETECTORS=("$@"); else DETECTORS=(nanodet yolox-nano); fi
SHARED=$(realpath ../shared)
PY=${PYTHON:-python}
RT=("$PY" -m reidtrace)
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
WORLD="$OUT/world7"
[ -f "$WORLD/cameras.json" ] || REIDTRACE_HOME="$OUT/home-synth" "${RT[@]}" synth "$WORLD" --seed 7 >/dev/null
for det in "${DETECTORS[@]}"; do
  export REIDTRACE_HOME="$OUT/home-$det"
  rm -rf "$REIDTRACE_HOME"
  "${RT[@]}" detectors install yolox-nano "$SHARED/models/yolox_nano.onnx" >/dev/null
  "${RT[@]}" ingest "$SHARED/data/pets2009_s2l1_view001_480x360.avi" --camera pets --detector "$det" --json > "$OUT/$det-pets.json"
  "${RT[@]}" ingest "$SHARED/data/mot/TUD-Stadtmitte/TUD-Stadtmitte.mp4" --camera tud --detector "$det" --json > "$OUT/$det-tud.json"
  "${RT[@]}" tracks export "$OUT/$det-pets.txt" --camera pets --format mot
  "${RT[@]}" tracks export "$OUT/$det-tud.txt" --camera tud --format mot
  echo "$det PETS 1-397: $("$PY" "$SHARED/tools/motscore.py" "$SHARED/data/mot/PETS09-S2L1-first-half/gt/gt.txt" "$OUT/$det-pets.txt" 0.625 1 397 100)"
  echo "$det TUD-Stadtmitte: $("$PY" "$SHARED/tools/motscore.py" "$SHARED/data/mot/TUD-Stadtmitte/gt/gt.txt" "$OUT/$det-tud.txt" 1 1 179)"
  export REIDTRACE_HOME="$OUT/home-$det-world"
  rm -rf "$REIDTRACE_HOME"
  "${RT[@]}" detectors install yolox-nano "$SHARED/models/yolox_nano.onnx" >/dev/null
  "${RT[@]}" ingest "$WORLD" --detector "$det" --json > "$OUT/$det-world.json"
  echo "$det demo world (seed 7): $("${RT[@]}" evaluate-tracking --world "$WORLD")"
  for f in pets tud world; do
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); t=d['totals']; print(sys.argv[2], sys.argv[1].rsplit('/',1)[-1], t['frames'], 'frames', round(t['frames']/max(t['seconds'],1e-9),1), 'frames/s busy;', sorted({n for v in d['videos'] for n in v['notes'] if n.startswith('detector')}))" "$OUT/$det-$f.json" "$det"
  done
done
