#!/usr/bin/env bash
# Cohort throughput of configs/inference.json: N pairs (copies of the bundled sample pair stacked 4x along the
# slice axis: 256x256x64) fused by 1 process (torch's default threads) and by torchrun with 2 processes
# (configs/multi_gpu_inference.json, 1 thread each). Prints wall time, pairs/minute, the summary line and the load.
#   bash training/bench_cohort.sh [N=8] [WORK=/tmp/wdualmine-cohort]
set -euo pipefail
n="${1:-8}"; work="${2:-/tmp/wdualmine-cohort}"
root="$(cd "$(dirname "$0")/.." && pwd)"; py="$root/.venv/bin/python"
rm -rf "$work" && mkdir -p "$work"
"$py" - "$root/monai_bundle/sample_data" "$work" "$n" <<'PY'
import json, sys
import nibabel as nib
import numpy as np
src, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, file in (("ct", "ct_case2"), ("mri", "mri_case2")):
    image = nib.load(f"{src}/{file}.nii.gz")
    stacked = nib.Nifti1Image(np.concatenate([np.asarray(image.dataobj)] * 4, axis=2), image.affine, image.header)
    for i in range(n):
        nib.save(stacked, f"{work}/{name}_{i}.nii.gz")
pairs = [{"image_a": f"ct_{i}.nii.gz", "image_b": f"mri_{i}.nii.gz"} for i in range(n)]
json.dump({"pairs": pairs}, open(f"{work}/cohort.json", "w"))
PY
cd "$root/monai_bundle"
for procs in 1 2; do
    out="$work/out$procs"; log="$work/log$procs"
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    start=$(date +%s.%N)
    if [[ $procs == 1 ]]; then
        "$py" -m monai.bundle run --config_file configs/inference.json --datalist "$work/cohort.json" \
            --output_dir "$out" >"$log" 2>&1
    else
        OMP_NUM_THREADS=1 "$root/.venv/bin/torchrun" --standalone --nproc_per_node=2 -m monai.bundle run \
            --config_file "['configs/inference.json','configs/multi_gpu_inference.json']" \
            --datalist "$work/cohort.json" --output_dir "$out" >"$log" 2>&1
    fi
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    printf '%s process(es): %.1f s wall, %.1f pairs/min | %s | load at start %s\n' "$procs" "$wall" \
        "$(echo "60 * $n / $wall" | bc -l)" "$(grep -h '^summary:' "$log" | head -1)" "$load"
done
