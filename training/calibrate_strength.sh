#!/usr/bin/env bash
# Chooses each task's default strength (monai_bundle/scripts/task_defaults.py) on the TRAINING split, so that the
# validation split stays an estimate: the shipped weights at a strength sweep and the mean rule on every 3rd
# training pair, then `compare_anchors.py --choose` (the middle of the strength range that beats AdaFuse and
# ASFE-Fusion on every metric of anchors.md, relative to the mean rule).
#   bash training/calibrate_strength.sh [DATA_ROOT] [MODELS_DIR]   (defaults ../shared/data/hmif-train, the bundle's)
#   TASKS=PET-MRI STRENGTHS="0.28 0.3 0.32 0.34" bash training/calibrate_strength.sh   # refine one task's grid
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/hmif-train}
MODELS=${2:-monai_bundle/models}
PY=${PY:-.venv/bin/python}
STRENGTHS=${STRENGTHS:-0.1 0.15 0.2 0.25 0.3 0.35 0.4 0.5 0.6 0.7 0.8 1.0}
TASKS=${TASKS:-CT-MRI PET-MRI SPECT-MRI}
benches=()
for task in $TASKS; do
  out=out/calibrate-$(echo "$task" | tr 'A-Z' 'a-z')
  rm -rf "$out"
  # shellcheck disable=SC2086
  $PY training/benchmark.py run --task "$task" --data "$DATA" --split train --every 3 --out "$out" --threads 1 \
      --models-dir "$MODELS" --methods wdualmine,mean --strength $STRENGTHS
  benches+=("$task=$out")
done
$PY training/compare_anchors.py --anchors ../shared/reference/anchors.md --bench "${benches[@]}" --choose
