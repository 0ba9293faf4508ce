"""Bad input to volume fusion: each case fails with a clear message and leaves no file behind.

Most cases go through the command-line runner (files in, files out) so that "nothing written" is checked on
the real output folder; the weights cases go through ``scripts.weights.load_network``.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from test_volume_support import MeanFusionNet, make_affine, smooth_volume, write_nifti

from scripts.volume import FusionCancelled, FusionInputError, FusionOptions, Volume, fuse_volumes, save_volume
from scripts.volume.runner import VolumeFusionRunner
from scripts.weights import WeightsError

SHAPE = (32, 32, 6)
AFFINE = make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    """A good pair of NIfTI files (A: CT-like values in HU, B: MRI-like)."""
    a = save_volume(smooth_volume(SHAPE, AFFINE, seed=1), tmp_path / "ct.nii.gz")
    b = save_volume(smooth_volume(SHAPE, AFFINE, seed=2), tmp_path / "mri.nii.gz")
    return a, b


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def fails(tmp_path, a, b, match: str, error=FusionInputError, **kwargs):
    """Run the runner on (a, b), expect ``error`` matching ``match`` and an output folder without files."""
    out = tmp_path / "out"
    kwargs.setdefault("network", MeanFusionNet())
    runner = VolumeFusionRunner(image_a=a, image_b=b, output_dir=out, show_progress=False, **kwargs)
    with pytest.raises(error, match=match):
        runner.run()
    assert files_in(out) == []


def test_the_good_pair_works(tmp_path, inputs):
    written = VolumeFusionRunner(*inputs, output_dir=tmp_path / "out", network=MeanFusionNet(),
                                 show_progress=False).run()
    assert [p.name for p in written] == ["ct_fused.nii.gz"] and files_in(tmp_path / "out") == ["ct_fused.nii.gz"]


def test_non_overlapping_volumes(tmp_path, inputs):
    far = save_volume(smooth_volume(SHAPE, make_affine((1.0, 1.0, 3.0), (400.0, 0.0, 0.0))), tmp_path / "far.nii.gz")
    fails(tmp_path, inputs[0], far, "do not overlap in physical space")


def test_overlap_below_half_of_the_reference(tmp_path, inputs):
    shifted = save_volume(smooth_volume(SHAPE, make_affine((1.0, 1.0, 3.0), (4.0, -16.0, -9.0))),
                          tmp_path / "shifted.nii.gz")
    fails(tmp_path, inputs[0], shifted, r"covers only \d+% of the reference")


def test_2d_image(tmp_path, inputs):
    flat = write_nifti(tmp_path / "flat.nii.gz", np.ones((32, 32), np.float32))
    fails(tmp_path, flat, inputs[1], "2-D image")


def test_4d_image(tmp_path, inputs):
    series = write_nifti(tmp_path / "series.nii.gz", np.random.rand(32, 32, 6, 4).astype(np.float32))
    fails(tmp_path, inputs[0], series, "4-D image")


def test_wrong_number_of_channels(tmp_path, inputs):
    image = nib.Nifti1Image(np.random.rand(32, 32, 6, 1, 2).astype(np.float32), AFFINE)
    image.header.set_intent("vector")
    nib.save(image, str(tmp_path / "two.nii.gz"))
    fails(tmp_path, inputs[0], tmp_path / "two.nii.gz", "2 channels")


def test_rgb_input_is_refused_for_fusion(tmp_path, inputs):
    rgb = save_volume(Volume(np.random.rand(*SHAPE, 3).astype(np.float32), AFFINE), tmp_path / "rgb.nii.gz")
    fails(tmp_path, rgb, inputs[1], "3 channels")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf_voxels(tmp_path, inputs, value):
    data = smooth_volume(SHAPE, AFFINE).array.copy()
    data[3, 4, 2] = value
    bad = write_nifti(tmp_path / "bad.nii.gz", data, AFFINE)
    fails(tmp_path, inputs[0], bad, "1 NaN/Inf voxel")


def test_constant_volume(tmp_path, inputs):
    flat = write_nifti(tmp_path / "flat.nii.gz", np.full(SHAPE, 7.0, np.float32), AFFINE)
    fails(tmp_path, flat, inputs[1], "constant")


def test_window_outside_the_data_range(tmp_path, inputs):
    fails(tmp_path, inputs[0], inputs[1], "constant after normalization",
          norm_a={"kind": "window", "level": 5000, "width": 10})


def test_volume_smaller_than_the_network_minimum(tmp_path):
    tiny = make_affine((1.0, 1.0, 3.0), (-5.0, -5.0, -6.0))
    a = save_volume(smooth_volume((10, 10, 4), tiny, 1), tmp_path / "a.nii.gz")
    b = save_volume(smooth_volume((10, 10, 4), tiny, 2), tmp_path / "b.nii.gz")
    fails(tmp_path, a, b, "at least 16x16")


def test_unreadable_file(tmp_path, inputs):
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"this is not a NIfTI file" * 10)
    fails(tmp_path, garbage, inputs[1], "cannot read")


def test_missing_input_file(tmp_path, inputs):
    fails(tmp_path, tmp_path / "nowhere.nii.gz", inputs[1], "not found")


def test_missing_weights_file(tmp_path, inputs):
    fails(tmp_path, *inputs, "weights file not found", error=WeightsError, network=None, weights=tmp_path / "m" / "model.pt")


def test_corrupt_weights(tmp_path, inputs):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pt").write_bytes(b"\x80\x02garbage" * 50)
    fails(tmp_path, *inputs, "corrupt", error=WeightsError, network=None, weights=tmp_path / "m" / "model.pt")


def test_weights_for_a_different_architecture(tmp_path, inputs):
    (tmp_path / "m").mkdir()
    torch.save(torch.nn.Conv2d(2, 1, 3).state_dict(), tmp_path / "m" / "model.pt")
    fails(tmp_path, *inputs, "different architecture", error=WeightsError, network=None,
          weights=tmp_path / "m" / "model.pt", network_kwargs={"channels": (4, 8, 8, 16)})


def test_output_folder_is_a_file(tmp_path, inputs):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    runner = VolumeFusionRunner(*inputs, output_dir=blocker, network=MeanFusionNet(), show_progress=False)
    with pytest.raises(FusionInputError, match="cannot be created: .* is a file"):
        runner.run()
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_output_folder_without_write_permission(tmp_path, inputs):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        fails(tmp_path, *inputs, "not writable")
    finally:
        out.chmod(0o755)


def test_output_path_equal_to_an_input(tmp_path, inputs):
    """B named like A's output, in the output folder: writing would overwrite an input."""
    b = inputs[1].rename(tmp_path / "ct_fused.nii.gz")
    before = b.read_bytes()
    runner = VolumeFusionRunner(inputs[0], b, output_dir=tmp_path, network=MeanFusionNet(), show_progress=False)
    with pytest.raises(FusionInputError, match="is an input volume"):
        runner.run()
    assert b.read_bytes() == before


def test_cancel_mid_run(tmp_path, inputs):
    """cancel() turns true once inference has started: FusionCancelled, and no output file."""
    seen = []
    options = FusionOptions(batch_size=2)
    a, b = (smooth_volume(SHAPE, AFFINE, s) for s in (1, 2))
    with pytest.raises(FusionCancelled):
        fuse_volumes(a, b, options, network=MeanFusionNet(), progress=seen.append,
                     cancel=lambda: bool(seen) and seen[-1] > 0.3)
    assert 0.3 < seen[-1] < 1.0
    polls = []

    def cancel_after_four_polls() -> bool:  # 3 stages poll before inference, then every batch (3 of 2 slices)
        polls.append(1)
        return len(polls) > 4

    runner = VolumeFusionRunner(*inputs, output_dir=tmp_path / "out", network=MeanFusionNet(), batch_size=2,
                                cancel=cancel_after_four_polls, show_progress=False)
    with pytest.raises(FusionCancelled):
        runner.run()
    assert files_in(tmp_path / "out") == []


@pytest.mark.parametrize("options, match", [
    ({"task": "MRI-MRI"}, "unknown task"),
    ({"norm_a": "ct-lung"}, "unknown normalization preset"),
    ({"norm_b": {"kind": "zscore"}}, "unknown normalization kind"),
    ({"norm_a": {"kind": "window", "level": 40, "width": -5}}, "width .* must be positive"),
    ({"norm_b": {"kind": "percentile", "low": 99, "high": 1}}, "0 <= low < high <= 100"),
    ({"norm_a": {"level": 40, "center": 3}}, "unknown window normalization keys"),
    ({"strength": -1}, "strength"),
    ({"reference": "c"}, "reference"),
    ({"slice_axis": 3}, "slice_axis"),
    ({"batch_size": 0}, "batch_size"),
    ({"device": "tpu"}, "unknown device"),
    ({"color": True}, "colour fusion is for PET/SPECT"),
    ({"task": "PET-MRI", "color": True, "colormap": "no-such-map"}, "unknown colour map"),
    ({"nonfinite": "ignore"}, "nonfinite"),
])
def test_unknown_or_invalid_options(tmp_path, inputs, options, match):
    fails(tmp_path, *inputs, match, **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_asked_without_a_gpu(tmp_path, inputs):
    fails(tmp_path, *inputs, "no CUDA GPU", device="cuda")


def test_singular_affine():
    a = Volume(np.random.rand(*SHAPE).astype(np.float32), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(FusionInputError, match="invalid .*affine"):
        fuse_volumes(a, smooth_volume(SHAPE, AFFINE), network=MeanFusionNet())


def test_datalist_problems(tmp_path, inputs):
    (tmp_path / "list.json").write_text('[{"image_a": "ct.nii.gz"}]')
    fails(tmp_path, None, None, "needs 'image_a' and 'image_b'", datalist=tmp_path / "list.json")
    (tmp_path / "twice.json").write_text('{"pairs": [{"image_a": "ct.nii.gz", "image_b": "mri.nii.gz"},'
                                         ' {"image_a": "ct.nii.gz", "image_b": "mri.nii.gz"}]}')
    fails(tmp_path, None, None, "would both be written", datalist=tmp_path / "twice.json")
    fails(tmp_path, None, None, "nothing to fuse")
