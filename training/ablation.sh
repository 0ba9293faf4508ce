#!/usr/bin/env bash
# The model card's ablation table (paper Table 4 style), CT-MRI only, every row on the same budget: the bundle's
# train.json with one change per row, 12 epochs on the CT-MRI training split (128² crops, batch 8, lr 1e-3,
# seed 0), then training/benchmark.py on the CT-MRI validation split at strength 0.5 and 1 beside mean and
# select@0.5 / select@1. Resumable: a row whose weights exist is not trained again.
#   bash training/ablation.sh [DATA_ROOT] [ROWS...]    (default ../shared/data/hmif-train, every row)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/hmif-train}
shift || true
PY=${PY:-$PWD/.venv/bin/python}
EPOCHS=${EPOCHS:-12}
OUT=${OUT:-out/ablation}
declare -A ROW=(
  [full]=""
  [no_gate]="--gate False"
  [no_wavelet_expert]="--experts spatial"
  [no_spatial_expert]="--experts wavelet"
  [no_mixer]="--mixer False"
  [no_L_grad]="--loss_weights#grad 0.0"
  [no_L_cc]="--loss_weights#cc 0.0"
  [no_L_mi]="--loss_weights#mi 0.0"
  [no_L_rec]="--loss_weights#rec 0.0"
  [no_L_sal]="--loss_weights#sal 0.0"
  [no_L_tv]="--loss_weights#tv 0.0"
  [tau_0.1]="--saliency_tau 0.1"
  [paper]="--residual_mode additive --strength 0.5 --loss_weights#avg 5.0 --loss_weights#sal 0.0 --loss_weights#tv 0.0"
  [global_gain]="--residual_mode mean_gain --decoder global --avg_norm l2 --patch_size [256,256] --loss_weights#avg 5.0 --loss_weights#sal 0.0 --loss_weights#tv 0.0"
)
ORDER=(full no_gate no_wavelet_expert no_spatial_expert no_mixer no_L_grad no_L_cc no_L_mi no_L_rec no_L_sal no_L_tv
       tau_0.1 paper global_gain)
[ $# -gt 0 ] && ORDER=("$@")
for name in "${ORDER[@]}"; do
  run=$PWD/$OUT/$name
  mkdir -p "$run"
  if [ ! -f "$run/model.pt" ]; then
    # shellcheck disable=SC2086
    (cd monai_bundle && OMP_NUM_THREADS=${THREADS:-1} $PY -m monai.bundle run training --config_file configs/train.json \
        --dataset_dir "$(realpath "../$DATA")" --task CT-MRI --max_epochs "$EPOCHS" --val_interval 1000 \
        --run_dir "$run" --models_dir "$run" --final_weights model.pt ${ROW[$name]} > "$run/train.log" 2>&1)
  fi
  arch=$($PY - "${ROW[$name]}" <<'PY'
import json, sys
config = json.load(open("monai_bundle/configs/train.json"))  # the architecture train.json trains, then the row's
args, arch = sys.argv[1].split(), {key: config[key] for key in ("residual_mode", "decoder", "gate", "experts", "mixer")}
for key, value in zip(args[::2], args[1::2]):
    key = key.lstrip("-")
    if key in ("gate", "mixer"):
        arch[key] = value == "True"
    elif key in ("experts", "residual_mode", "decoder"):
        arch[key] = value
print(json.dumps(arch))
PY
)
  rm -rf "$run/bench"
  $PY training/benchmark.py run --task CT-MRI --data "$DATA" --split val --out "$run/bench" --threads 1 --workers 1 \
      --models-dir "$run" --arch "$arch" --methods wdualmine,mean,select --strength 0.5 1.0 --lam 0.5 1.0 \
      --montage-cases 0 > "$run/bench.log" 2>&1
done
$PY training/ablation_table.py "$OUT" "${ORDER[@]}"
