"""configs/inference.json and evaluate.json as MONAI ``infer`` workflows, the way the model-zoo tests bundles
(``ci/unit_tests/test_spleen_ct_segmentation.py``: override ``dataset_dir`` / ``dataset#data``, initialize,
check_properties, run, finalize), and the zoo's TorchScript route (``ckpt_export`` then ``--network_def
"$torch.jit.load(...)"``).

The properties are real: ``dataset`` is the MONAI Dataset of the pairs, ``inferer`` the inferer that runs every
batch of slices (a counting one is swapped in), ``evaluator`` the MONAI engine that fuses each pair; the weights
are exactly the file ``ckpt_path`` names, logged with its SHA-256 (a ``model_<task>.pt`` beside it is ignored).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow, ckpt_export
from monai.data import Dataset
from monai.engines import Evaluator
from monai.inferers import SimpleInferer
from test_volume_support import CHANNELS, make_affine, small_models, smooth_volume

from scripts.volume import load_volume, save_volume

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))


class CountingInferer(SimpleInferer):
    """SimpleInferer that records the batch sizes it is called with."""

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def __call__(self, inputs, network, *args, **kwargs):
        self.batches.append(int(inputs.shape[0]))
        return super().__call__(inputs, network, *args, **kwargs)


@pytest.fixture
def dataset_dir(tmp_path, bundle_root):
    """Two pairs, a small-architecture model.pt, and a corrupt model_ct-mri.pt that must not be read."""
    for number in range(2):
        save_volume(smooth_volume(SHAPE, AFFINE, number), tmp_path / f"ct_{number}.nii.gz")
        save_volume(smooth_volume(SHAPE, AFFINE, 10 + number), tmp_path / f"mri_{number}.nii.gz")
    models = small_models(tmp_path / "models", bundle_root)
    (models / "model_ct-mri.pt").write_bytes(b"not the configured weights")
    return tmp_path


def workflow(bundle_root, config: str, dataset_dir, **override) -> ConfigWorkflow:
    """The zoo's override pattern: bundle_root, dataset_dir, dataset#data (paths under dataset_dir)."""
    pairs = [{"image_a": str(dataset_dir / f"ct_{n}.nii.gz"), "image_b": str(dataset_dir / f"mri_{n}.nii.gz")}
             for n in range(2)]
    return ConfigWorkflow(
        workflow_type="infer",
        config_file=str(bundle_root / "configs" / config),
        logging_file=str(bundle_root / "configs" / "logging.conf"),
        meta_file=str(bundle_root / "configs" / "metadata.json"),
        **{"bundle_root": str(bundle_root), "dataset_dir": str(dataset_dir), "dataset#data": pairs,
           "ckpt_path": str(dataset_dir / "models" / "model.pt"), "channels": CHANNELS, "device": "cpu",
           "output_dir": str(dataset_dir / "out"), **override},
    )


def outputs(folder) -> dict[str, np.ndarray]:
    return {p.name: load_volume(p).array for p in sorted(folder.glob("*_fused.nii.gz"))}


@pytest.mark.parametrize("config", ["inference.json", "evaluate.json"])
def test_infer_workflow_properties_are_real_and_it_runs(bundle_root, dataset_dir, config, capsys):
    inferer = CountingInferer()
    flow = workflow(bundle_root, config, dataset_dir, inferer=inferer, batch_size=4, slice_step=3)
    flow.initialize()
    assert flow.check_properties() == []
    assert isinstance(flow.dataset, Dataset) and len(flow.dataset) == 2
    assert isinstance(flow.evaluator, Evaluator) and flow.inferer is inferer
    assert flow.dataset_dir == str(dataset_dir)
    flow.run()
    flow.finalize()
    assert sorted(outputs(dataset_dir / "out")) == ["ct_0_fused.nii.gz", "ct_1_fused.nii.gz"]
    assert inferer.batches == [4, 2, 4, 2]  # 6 slices per pair, batches of 4, through the configured inferer
    digest = hashlib.sha256((dataset_dir / "models" / "model.pt").read_bytes()).hexdigest()
    printed = capsys.readouterr().out  # configs/logging.conf: INFO to stdout
    assert f"weights: {dataset_dir / 'models' / 'model.pt'} (sha256 {digest})" in printed
    assert "model_ct-mri.pt" not in printed
    if config == "evaluate.json":
        assert set(json.loads((dataset_dir / "out" / "metrics.json").read_text())["pairs"]) == {
            "ct_0.nii.gz", "ct_1.nii.gz"}


def test_torchscript_network_def_gives_the_output_of_the_weights_file(bundle_root, dataset_dir, monkeypatch):
    """``ckpt_export network_def`` -> model.ts; ``--network_def "$torch.jit.load('model.ts')"`` fuses as the
    eager network with model.pt does (ckpt_path loaded into it, as in the zoo, or its own weights)."""
    monkeypatch.chdir(bundle_root)
    ts = dataset_dir / "models" / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts), ckpt_file=str(dataset_dir / "models" / "model.pt"),
                meta_file="configs/metadata.json", config_file="configs/inference.json", channels=CHANNELS)
    runs = {"pt": {}, "ts": {"network_def": f"$torch.jit.load('{ts}')"},
            "ts_own": {"network_def": f"$torch.jit.load('{ts}')", "load_pretrain": False}}
    fused = {}
    for name, override in runs.items():
        flow = workflow(bundle_root, "inference.json", dataset_dir, output_dir=str(dataset_dir / name),
                        strength=1.0, **override)
        flow.initialize()
        flow.run()
        flow.finalize()
        fused[name] = outputs(dataset_dir / name)
    assert sorted(fused["ts"]) == sorted(fused["pt"]) == ["ct_0_fused.nii.gz", "ct_1_fused.nii.gz"]
    for name in fused["pt"]:
        assert np.abs(fused["pt"][name] - 0.5).max() > 0.01  # not a blank output
        np.testing.assert_allclose(fused["ts"][name], fused["pt"][name], atol=1e-6)
        np.testing.assert_allclose(fused["ts_own"][name], fused["pt"][name], atol=1e-6)
