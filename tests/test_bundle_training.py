"""`python -m monai.bundle run training --config_file configs/train.json` end to end on a tiny synthetic HMIF folder.

Every run overrides ``bundle_root`` with a temporary folder holding a copy of the shipped ``models/``, so the run
directory (checkpoints, TensorBoard, final weights ``runs/<task>/model.pt``) never lands in the repository and
the tests can check that a default run leaves ``models/`` byte-identical; the configs and ``scripts`` are the
repository's own (the command runs from ``monai_bundle/``). A small network (``channels`` [4, 8, 8, 16]) on 32x32
pairs keeps one epoch well under a second; most of each run is interpreter start-up.

The helpers here are shared with ``test_bundle_multigpu.py``.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

BUNDLE = Path(__file__).resolve().parents[1] / "monai_bundle"
SMALL_CHANNELS = [4, 8, 8, 16]
LOSS_TERMS = ("loss_avg", "loss_grad", "loss_cc", "loss_mi", "loss_rec", "loss_sal", "loss_tv")


def make_tiny_hmif(root: Path, pairs: int = 10, size: int = 32) -> Path:
    """An HMIF-layout folder: CT-MRI (gray CT) and PET-MRI (RGB PET) pairs named 2001 ... 20NN (case 2,
    slices 1..NN), so slice 7 falls in the every-7th validation split and the rest are training pairs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    for task, modality, colour in (("CT-MRI", "CT", False), ("PET-MRI", "PET", True)):
        for folder in (modality, "MRI"):
            (root / task / folder).mkdir(parents=True, exist_ok=True)
        for i in range(1, pairs + 1):
            cx, cy = rng.uniform(0.3, 0.7, 2)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) * 20)
            mri = np.clip(0.5 * blob + 0.3 * rng.random((size, size)), 0, 1)
            a = np.clip(blob[..., None] * rng.uniform(0.3, 1.0, 3) if colour else 1 - blob, 0, 1)
            name = f"2{i:03d}.png"
            Image.fromarray((a * 255).astype(np.uint8)).save(root / task / modality / name)
            Image.fromarray((mri * 255).astype(np.uint8)).save(root / task / "MRI" / name)
    return root


def training_args(configs: list[str], bundle_root: Path, dataset_dir: Path, max_epochs: int = 1) -> list[str]:
    """Arguments of ``monai.bundle run training`` for a tiny, fast run writing only under ``bundle_root``."""
    config_file = configs[0] if len(configs) == 1 else "[" + ",".join(f"'{c}'" for c in configs) + "]"
    return ["run", "training", "--config_file", config_file, "--bundle_root", str(bundle_root),
            "--dataset_dir", str(dataset_dir), "--task", "CT-MRI", "--max_epochs", str(max_epochs),
            "--patch_size", "[32,32]", "--batch_size", "2", "--val_interval", "1",
            "--channels", str(SMALL_CHANNELS).replace(" ", "")]


def run_bundle(args: list[str], launcher: list[str] | None = None, timeout: int = 240, status: int = 0) -> str:
    """Run ``python -m monai.bundle <args>`` (or ``<launcher> -m monai.bundle <args>``) from ``monai_bundle/``;
    returns stdout+stderr and fails the test with that text when the exit status is not ``status``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(BUNDLE)}
    command = (launcher or [sys.executable]) + ["-m", "monai.bundle", *args]
    proc = subprocess.run(command, cwd=BUNDLE, env=env, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    assert proc.returncode == status, f"{' '.join(command)} exited with {proc.returncode}:\n{log[-6000:]}"
    return log


def with_shipped_models(bundle_root: Path) -> dict[str, str]:
    """Copy the repository's ``models/`` into ``bundle_root``; returns its contents, name -> sha256."""
    shutil.copytree(BUNDLE / "models", bundle_root / "models")
    return folder_digest(bundle_root / "models")


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def scalar_tags(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of the TensorBoard event files under ``run_dir``: tag -> [(step, value), ...]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, list[tuple[int, float]]] = {}
    for f in sorted(run_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            tags.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return tags


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_hmif(tmp_path_factory.mktemp("hmif"))


@pytest.fixture(scope="module")
def first_epoch(tmp_path_factory, tiny_data):
    """One epoch of configs/train.json, defaults but for the size; returns (bundle_root, log, models/ digest)."""
    root = tmp_path_factory.mktemp("bundle")
    shipped = with_shipped_models(root)
    log = run_bundle(training_args(["configs/train.json"], root, tiny_data))
    return root, log, shipped


def test_one_epoch_saves_final_weights_and_checkpoint_in_the_run_folder(first_epoch):
    root, log, shipped = first_epoch
    final = root / "runs" / "ct-mri" / "model.pt"
    assert final.is_file()
    assert f"saved final checkpoint: {final}" in log
    assert (root / "runs" / "ct-mri" / "checkpoints" / "checkpoint_epoch=1.pt").is_file()

    from scripts.network import WDualMine
    from scripts.weights import load_state_dict

    net = WDualMine(channels=SMALL_CHANNELS)
    net.load_state_dict(load_state_dict(final), strict=True)
    fused = net.eval()(torch.rand(1, 2, 40, 36))
    assert fused.shape == (1, 1, 40, 36) and 0 <= float(fused.min()) <= float(fused.max()) <= 1


def test_a_default_run_leaves_the_shipped_models_byte_identical(first_epoch):
    root, _, shipped = first_epoch
    assert shipped and folder_digest(root / "models") == shipped


def test_one_epoch_logs_every_loss_term_and_validation(first_epoch):
    root, log, _ = first_epoch
    # 9 training pairs (slice 7 is held out), batch 2, drop_last -> 4 iterations; the logging.conf format is used
    assert re.search(r" - INFO - Epoch: 1/1, Iter: 4/4 -- train_loss: \d", log)
    metrics_line = next(line for line in log.splitlines() if "Epoch[1] Metrics -- loss_avg" in line)
    for term in LOSS_TERMS:
        assert re.search(rf"{term}: \d+\.\d+", metrics_line), term
    assert re.search(r"Epoch\[1\] Metrics -- val_loss: \d+\.\d+", log)

    tags = scalar_tags(root / "runs" / "ct-mri")
    for term in LOSS_TERMS:
        assert [step for step, _ in tags[term]] == [1], term
        assert np.isfinite(tags[term][0][1])
    assert len(tags["train_loss"]) == 4
    assert [step for step, _ in tags["val_loss"]] == [1]


def test_rerun_resumes_from_the_checkpoint_and_writes_models_only_when_asked(first_epoch, tiny_data, tmp_path):
    root = tmp_path / "bundle"
    shutil.copytree(first_epoch[0], root)
    run_dir = root / "runs" / "ct-mri"
    epoch_1 = (run_dir / "model.pt").read_bytes()
    log = run_bundle(training_args(["configs/train.json"], root, tiny_data, max_epochs=2)
                     + ["--models_dir", str(root / "models")])

    checkpoint = run_dir / "checkpoints" / "checkpoint_epoch=1.pt"
    assert f"resuming from {checkpoint}" in log
    assert f"Restored all variables from {checkpoint}" in log
    assert "Epoch: 2/2, Iter: 1/4" in log and "Epoch: 1/2" not in log  # epoch 1 is not trained again
    assert (run_dir / "checkpoints" / "checkpoint_epoch=2.pt").is_file()

    # --models_dir: the final weights go there (replacing the copy of the shipped file), not to the run folder
    assert f"saved final checkpoint: {root / 'models' / 'model.pt'}" in log
    assert (run_dir / "model.pt").read_bytes() == epoch_1
    before = torch.load(run_dir / "model.pt", weights_only=True)
    after = torch.load(root / "models" / "model.pt", weights_only=True)
    assert after.keys() == before.keys()
    assert any(not torch.equal(after[k], before[k]) for k in after)  # epoch 2 trained on from epoch 1's weights
    assert [step for step, _ in scalar_tags(run_dir)["loss_avg"]] == [1, 2]


def test_a_missing_dataset_dir_is_one_error_line_saying_what_to_pass(tmp_path):
    log = run_bundle(["run", "training", "--config_file", "configs/train.json", "--bundle_root", str(tmp_path)],
                     status=1)
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert errors == [f"error: dataset_dir {tmp_path / 'data' / 'hmif'} not found: pass --dataset_dir <HMIF folder> "
                      "(it holds <task>/<CT|PET|SPECT>/*.png and <task>/MRI/*.png, e.g. CT-MRI/CT/2004.png)"]
    assert "Traceback" not in log
