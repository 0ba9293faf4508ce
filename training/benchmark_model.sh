#!/usr/bin/env bash
# The model card's benchmark: every task's validation split, the shipped weights at a strength sweep, and the
# trivial/classical baselines, in one run per task. Copies each report and its plots to monai_bundle/docs/benchmark/.
#   bash training/benchmark_model.sh [DATA_ROOT]   (default ../shared/data/hmif-train)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/hmif-train}
PY=${PY:-.venv/bin/python}
for task in CT-MRI PET-MRI SPECT-MRI; do
  slug=$(echo "$task" | tr 'A-Z' 'a-z')
  out=out/bench-$slug
  rm -rf "$out"
  $PY training/benchmark.py run --task "$task" --data "$DATA" --split val --out "$out" --threads 1 \
      --methods wdualmine,mean,max,dwt,lp,gff,blend --strength 0 0.1 0.25 0.5 0.75 1.0 --mu 0.05 0.1 0.3
  dest=monai_bundle/docs/benchmark/$slug
  mkdir -p "$dest"
  cp "$out"/report.md "$out"/*.png "$dest"/
done
