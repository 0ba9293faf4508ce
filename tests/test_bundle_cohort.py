"""Cohort inference on several processes: ``torchrun --nproc_per_node=2 -m monai.bundle run --config_file
"['configs/inference.json','configs/multi_gpu_inference.json']" --datalist ...`` with the gloo backend on CPU.

The DistributedSampler gives each rank its share of the datalist (both ranks write, none writes a pair twice);
rank 0 prints the one summary of both ranks (written / failed / skipped), and the one error line when a pair
failed; a rerun skips the existing outputs; without ``--continue_on_error`` the failing rank stops, the other
finishes its share, and the failing process exits with status 1 (not an abort). ``--tee 3`` makes torchrun prefix every line with its rank.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch.distributed as dist
from test_volume_support import CHANNELS, make_affine, small_models, smooth_volume

import scripts.volume.evaluation as evaluation
from scripts.volume import FusionInputError, Volume, save_volume
from scripts.volume.evaluation import VolumeEvaluationRunner

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is not available"
)

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))
CONFIGS = "['configs/inference.json','configs/multi_gpu_inference.json']"


def torchrun(bundle_root, *args) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 --tee 3 -m monai.bundle run --config_file <CONFIGS> ...``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(bundle_root)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--tee", "3"]
    command += ["-m", "monai.bundle", "run", "--config_file", CONFIGS, *args]
    return subprocess.run(command, cwd=bundle_root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, bundle_root):
    """A datalist of four pairs, the third with a constant A (it fails), and the common options."""
    tmp = tmp_path_factory.mktemp("cohort")
    entries = []
    for number in range(4):
        array = np.zeros(SHAPE, np.float32) if number == 2 else smooth_volume(SHAPE, AFFINE, number).array
        save_volume(Volume(array, AFFINE), tmp / f"ct_{number}.nii.gz")
        save_volume(smooth_volume(SHAPE, AFFINE, 10 + number), tmp / f"mri_{number}.nii.gz")
        entries.append({"image_a": f"ct_{number}.nii.gz", "image_b": f"mri_{number}.nii.gz"})
    (tmp / "cohort.json").write_text(json.dumps({"pairs": entries}))
    weights = small_models(tmp / "models", bundle_root) / "model.pt"
    options = ["--datalist", str(tmp / "cohort.json"), "--output_dir", str(tmp / "out"), "--ckpt_path", str(weights)]
    return tmp, options + ["--channels", str(CHANNELS)]


def error_lines(log: str) -> list[str]:
    return re.findall(r"^\[default\d\]:(error: .*)$", log, flags=re.M)


def test_two_processes_share_the_cohort_and_rank_0_sums_up(cohort, bundle_root):
    tmp, options = cohort
    done = torchrun(bundle_root, *options, "--continue_on_error", "true")
    log = done.stdout + done.stderr
    assert done.returncode != 0, log[-4000:]  # a pair failed: the exit status says so
    wrote = re.findall(r"^\[default(\d)\]:wrote .*/(ct_\d_fused\.nii\.gz)$", log, flags=re.M)
    assert sorted(name for _, name in wrote) == ["ct_0_fused.nii.gz", "ct_1_fused.nii.gz", "ct_3_fused.nii.gz"]
    assert {rank for rank, _ in wrote} == {"0", "1"}, log[-4000:]  # both ranks fused their share
    summaries = re.findall(r"^\[default(\d)\]:(summary: .*)$", log, flags=re.M)
    assert summaries == [("0", "summary: 3 written, 1 failed, 0 skipped")], log[-4000:]
    assert re.search(r"^\[default0\]:  failed  .*ct_2\.nii\.gz: volume A is constant", log, flags=re.M)
    assert error_lines(log) == ["error: 1 of 4 pairs failed (see the summary); the others were written"]
    assert len(re.findall(r"weights: .*model\.pt \(sha256 [0-9a-f]{64}\)", log)) == 1  # logged by rank 0
    out = tmp / "out"
    assert sorted(p.name for p in out.iterdir()) == ["ct_0_fused.nii.gz", "ct_1_fused.nii.gz", "ct_3_fused.nii.gz"]
    written = {p.name: p.read_bytes() for p in out.iterdir()}

    again = torchrun(bundle_root, *options)  # without continue_on_error: the failing pair stops its rank
    log = again.stdout + again.stderr
    summaries = re.findall(r"^\[default(\d)\]:(summary: .*)$", log, flags=re.M)
    assert summaries == [("0", "summary: 0 written, 1 failed, 3 skipped")], log[-4000:]
    assert error_lines(log) == ["error: volume A is constant (every voxel is 0): there is nothing to fuse"]
    assert again.returncode != 0 and "exitcode  : 1 " in log and "SIGABRT" not in log  # a clean exit, no abort
    assert "wrote " not in log and {p.name: p.read_bytes() for p in out.iterdir()} == written  # no lock left


def test_evaluation_refuses_several_processes(cohort, monkeypatch):
    """evaluate.json writes one metrics file: under torchrun it says so instead of two ranks racing for it."""
    tmp, _ = cohort
    monkeypatch.setattr(evaluation, "process_rank", lambda: (1, 2))
    runner = VolumeEvaluationRunner(datalist=tmp / "cohort.json", output_dir=tmp / "evaluation", network=None)
    with pytest.raises(FusionInputError, match="evaluate.json runs in one process"):
        runner.prepare()
    assert not (tmp / "evaluation").exists()
