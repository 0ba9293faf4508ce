"""The bundle's entry points end to end: ``configs/inference.json`` and ``configs/evaluate.json`` through
``monai.bundle.run`` (what ``python -m monai.bundle run --config_file ...`` calls), and the demo script.

A small W-DUALMINE (channels 4-8-8-16, random weights) saved in a temporary models folder stands in for the
trained weights; the configs' ``channels`` override tells the loader its architecture.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from test_volume_support import CHANNELS, MeanFusionNet, make_affine, small_models, smooth_volume

from scripts.volume import FusionOptions, fuse_volumes, load_volume, save_volume



@pytest.fixture
def models_dir(tmp_path, bundle_root):
    return small_models(tmp_path / "models", bundle_root)


@pytest.fixture
def pair(tmp_path):
    """A at 1 x 1 x 3 mm (the reference), B at another spacing, size and origin."""
    a = save_volume(smooth_volume((32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16, -16, -9)), 1),
                    tmp_path / "ct_01.nii.gz")
    b = save_volume(smooth_volume((24, 26, 10), make_affine((1.5, 1.4, 2.0), (-18, -19, -10)), 2),
                    tmp_path / "mri_01.nrrd")
    return a, b


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_config(bundle_root, monkeypatch, config: str, **overrides):
    """``python -m monai.bundle run --config_file configs/<config> --key value ...``, from the bundle root."""
    from monai.bundle import run

    monkeypatch.chdir(bundle_root)
    run(config_file=f"configs/{config}", **overrides)


def mean_fusion(pair) -> np.ndarray:
    """What W-DUALMINE gives at strength 0: the mean of the normalized inputs on the reference grid."""
    a, b = (load_volume(p) for p in pair)
    return fuse_volumes(a, b, FusionOptions(), network=MeanFusionNet()).array


def test_inference_config_writes_the_fused_volume(bundle_root, monkeypatch, tmp_path, models_dir, pair):
    """At strength 0 the command line's output is exactly the mean of the normalized, resampled inputs."""
    hashes = [digest(p) for p in pair]
    out = tmp_path / "out"
    run_config(bundle_root, monkeypatch, "inference.json", image_a=str(pair[0]), image_b=str(pair[1]),
               output_dir=str(out), ckpt_path=str(models_dir / "model.pt"), channels=CHANNELS, device="cpu", strength=0.0)
    assert sorted(p.name for p in out.iterdir()) == ["ct_01_fused.nii.gz"]
    fused, a = load_volume(out / "ct_01_fused.nii.gz"), load_volume(pair[0])
    assert fused.array.shape == a.array.shape and fused.array.dtype == np.float32
    np.testing.assert_allclose(fused.affine, a.affine, atol=1e-5)
    np.testing.assert_allclose(fused.array, mean_fusion(pair), atol=1e-6)
    assert [digest(p) for p in pair] == hashes  # inputs untouched


def test_output_suffix_chooses_the_format(bundle_root, monkeypatch, tmp_path, models_dir, pair):
    """``--output_suffix _fused.nii`` writes uncompressed NIfTI (faster), the same volume."""
    out = tmp_path / "out"
    run_config(bundle_root, monkeypatch, "inference.json", image_a=str(pair[0]), image_b=str(pair[1]),
               output_dir=str(out), ckpt_path=str(models_dir / "model.pt"), channels=CHANNELS, device="cpu", strength=0.0,
               output_suffix="_fused.nii")
    assert sorted(p.name for p in out.iterdir()) == ["ct_01_fused.nii"]
    with open(out / "ct_01_fused.nii", "rb") as f:
        assert f.read(2) != b"\x1f\x8b"  # not gzip
    np.testing.assert_allclose(load_volume(out / "ct_01_fused.nii").array, mean_fusion(pair), atol=1e-6)


def test_datalist_of_pairs(bundle_root, monkeypatch, tmp_path, models_dir, pair):
    """Two pairs from a datalist; at strength 1 the network adds detail to the mean."""
    second = save_volume(smooth_volume((32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16, -16, -9)), 3),
                         tmp_path / "ct_02.nii.gz")
    datalist = tmp_path / "pairs.json"
    datalist.write_text(json.dumps([{"image_a": pair[0].name, "image_b": pair[1].name},
                                    {"image_a": second.name, "image_b": pair[1].name}]))
    out = tmp_path / "out"
    run_config(bundle_root, monkeypatch, "inference.json", datalist=str(datalist), output_dir=str(out),
               ckpt_path=str(models_dir / "model.pt"), channels=CHANNELS, strength=1.0)
    assert sorted(p.name for p in out.iterdir()) == ["ct_01_fused.nii.gz", "ct_02_fused.nii.gz"]
    assert np.abs(load_volume(out / "ct_01_fused.nii.gz").array - mean_fusion(pair)).max() > 1e-3


def test_evaluate_config_writes_metrics(bundle_root, monkeypatch, tmp_path, models_dir, pair):
    datalist = tmp_path / "pairs.json"
    datalist.write_text(json.dumps({"pairs": [{"image_a": pair[0].name, "image_b": pair[1].name}]}))
    out = tmp_path / "eval"
    run_config(bundle_root, monkeypatch, "evaluate.json", datalist=str(datalist), output_dir=str(out),
               ckpt_path=str(models_dir / "model.pt"), channels=CHANNELS, slice_step=2)
    summary = json.loads((out / "metrics.json").read_text())
    scores = summary["pairs"]["ct_01.nii.gz"]
    assert scores["slices"] == 3 and (out / "ct_01_fused.nii.gz").exists()
    assert 0.0 < scores["CC"] <= 1.0 and scores["MI"] > 0 and "Qabf" in summary["mean"]


def test_demo_writes_the_volume_and_a_montage(bundle_root, tmp_path, models_dir):
    from PIL import Image

    from scripts.demo import run_demo

    volume, png = run_demo(tmp_path / "demo", rows=3, ckpt_path=str(models_dir / "model.pt"), channels=CHANNELS)
    fused = load_volume(volume)
    assert fused.array.shape == (256, 256, 16)
    np.testing.assert_allclose(fused.affine, load_volume(bundle_root / "sample_data" / "ct_case2.nii.gz").affine,
                               atol=1e-5)
    assert Image.open(png).size == (3 * 256, 3 * 256)


def test_sample_data_is_small_and_attributed(bundle_root):
    files = list((bundle_root / "sample_data").glob("*.nii.gz"))
    assert len(files) == 2 and sum(p.stat().st_size for p in files) < 2 * 1024 * 1024
    assert "Whole Brain Atlas" in (bundle_root / "docs" / "data_license.txt").read_text()
