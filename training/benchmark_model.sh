#!/usr/bin/env bash
# The model card's benchmark: every task's validation split, the shipped weights at the task's default strength
# (scripts/task_defaults.py) and a strength sweep, and the trivial/classical baselines (mean, max, DWT, LP, GFF,
# the mean-max blend, the fixed gain on the mean, the soft saliency selection), in one run per task. Copies each report and its plots to
# monai_bundle/docs/benchmark/<task>/, then compares with the peers (training/compare_anchors.py).
#   bash training/benchmark_model.sh [DATA_ROOT]   (default ../shared/data/hmif-train)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/hmif-train}
PY=${PY:-.venv/bin/python}
benches=()
for task in CT-MRI PET-MRI SPECT-MRI; do
  slug=$(echo "$task" | tr 'A-Z' 'a-z')
  out=out/bench-$slug
  default=$($PY -c "import sys; sys.path.insert(0, 'monai_bundle')
from scripts.task_defaults import default_strength; print(default_strength('$task'))")
  rm -rf "$out"
  $PY training/benchmark.py run --task "$task" --data "$DATA" --split val --out "$out" --threads 1 \
      --methods wdualmine,mean,max,dwt,lp,gff,blend,gain,select --strength 0.1 0.25 "$default" 0.5 0.75 1.0 \
      --mu 0.05 0.1 0.3 --gain 1.05 1.1 1.2 1.3 --lam 0.1 0.25 0.5 0.75 1.0 \
      --montage-methods "mean,wdualmine@$default,wdualmine@1,select@0.75,gff"
  dest=monai_bundle/docs/benchmark/$slug
  mkdir -p "$dest"
  cp "$out"/report.md "$out"/*.png "$dest"/
  benches+=("$task=$out")
done
$PY training/compare_anchors.py --anchors ../shared/reference/anchors.md --bench "${benches[@]}" --rows wdualmine select gain blend
