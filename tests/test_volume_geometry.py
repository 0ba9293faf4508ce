"""Geometry of volume fusion: reference grid, slice axis, overlap, resampling, and a marker that must land at
its physical point whatever the two grids (spacing, size, origin, direction, file format)."""
from __future__ import annotations

import numpy as np
import pytest
from test_volume_support import (MeanFusionNet, blob_volume, centroid, make_affine, rotation_z, smooth_volume,
                                 voxel_points)

from scripts.volume import FusionOptions, Volume, fuse_volumes, fuse_volumes_detailed, load_volume, save_volume
from scripts.volume.geometry import (choose_reference, describe_differences, overlap_fraction, resample,
                                     through_plane_axis)

MARKER = (3.0, -2.0, 4.0)  # RAS mm

# A: fine in-plane, oblique (rotated 12 deg about z); B: coarser, another size/origin, axes permuted and flipped
A_AFFINE = make_affine((0.8, 0.8, 2.5), (-14.0, -13.0, -10.0), rotation_z(12))
B_DIRECTION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # i -> A(nterior), j -> L, k -> I
B_AFFINE = make_affine((1.3, 1.1, 1.7), (17.0, -20.0, 12.0), B_DIRECTION)
A_SHAPE, B_SHAPE = (36, 34, 9), (30, 32, 14)


def pair() -> tuple[Volume, Volume]:
    """A smooth CT-like volume A and an MRI B with a bright blob at MARKER, on different grids."""
    return smooth_volume(A_SHAPE, A_AFFINE), blob_volume(B_SHAPE, B_AFFINE, MARKER, sigma=2.5, background=1.0)


def b_only(**kwargs) -> FusionOptions:
    return FusionOptions(norm_a="minmax", norm_b="minmax", **kwargs)


def test_marker_in_b_lands_at_its_physical_point_on_the_reference_grid():
    a, b = pair()
    fused = fuse_volumes(a, b, b_only(), network=MeanFusionNet(0.0, 1.0))
    assert fused.array.shape == A_SHAPE and fused.array.dtype == np.float32
    np.testing.assert_array_equal(fused.affine, A_AFFINE)
    background = np.median(fused.array)
    peak = Volume(np.clip(fused.array - background, 0, None), fused.affine)
    np.testing.assert_allclose(centroid(peak), MARKER, atol=0.35)
    brightest = np.unravel_index(np.argmax(fused.array), A_SHAPE)
    assert np.linalg.norm(voxel_points(A_SHAPE, A_AFFINE)[brightest] - MARKER) < 2.0


def test_marker_lands_with_b_as_reference_and_through_files(tmp_path):
    """NIfTI A + NRRD B (ITK, LPS on disk) -> loaded in RAS; B as reference, output written and re-read."""
    a, b = pair()
    save_volume(a, tmp_path / "a.nii.gz")
    save_volume(b, tmp_path / "b.nrrd")
    a2, b2 = load_volume(tmp_path / "a.nii.gz"), load_volume(tmp_path / "b.nrrd")
    np.testing.assert_allclose(b2.affine, B_AFFINE, atol=1e-5)
    fused = fuse_volumes(a2, b2, b_only(reference="b"), network=MeanFusionNet(0.0, 1.0))
    out = load_volume(save_volume(fused, tmp_path / "f.nii.gz"))
    assert out.spatial_shape == B_SHAPE
    np.testing.assert_allclose(out.affine, B_AFFINE, atol=1e-5)
    peak = Volume(np.clip(out.array - np.median(out.array), 0, None), out.affine)
    np.testing.assert_allclose(centroid(peak), MARKER, atol=0.3)


def test_a_is_resampled_when_b_is_the_reference():
    """A marker in A lands at its point on B's grid (the other direction of resampling)."""
    a = blob_volume(A_SHAPE, A_AFFINE, MARKER, sigma=2.5, background=1.0)
    b = smooth_volume(B_SHAPE, B_AFFINE)
    result = fuse_volumes_detailed(a, b, b_only(reference="b"), network=MeanFusionNet(1.0, 0.0))
    assert result.reference == "b" and result.fused.spatial_shape == B_SHAPE
    peak = Volume(np.clip(result.fused.array - np.median(result.fused.array), 0, None), B_AFFINE)
    np.testing.assert_allclose(centroid(peak), MARKER, atol=0.35)


def test_reference_is_the_finer_in_plane_volume_by_default():
    a, b = pair()
    assert choose_reference(a, b) == "a" and choose_reference(b, a) == "b"
    assert choose_reference(a, b, "b") == "b"
    coarse = Volume(np.zeros((4, 4, 4)), make_affine((2.0, 2.0, 1.0)))  # k is in-plane: through-plane is i/j
    fine = Volume(np.zeros((4, 4, 4)), make_affine((1.0, 1.0, 1.5)))
    assert choose_reference(coarse, fine) == "b"


def test_slice_axis_is_the_coarsest_axis_of_the_reference():
    assert through_plane_axis((0.5, 0.5, 1.5)) == 2
    assert through_plane_axis((3.0, 0.9, 0.9)) == 0
    assert through_plane_axis((1.0, 1.0, 1.0)) == 2  # ties: the last axis
    a = smooth_volume((17, 20, 18), make_affine((3.0, 1.0, 1.0)))
    b = smooth_volume((52, 20, 20), make_affine((1.0, 1.0, 1.0)))
    net = MeanFusionNet()
    result = fuse_volumes_detailed(a, b, FusionOptions(reference="a"), network=net)
    assert result.slice_axis == 0
    assert {s[1:] for s in net.shapes} == {(2, 20, 18)}
    net.shapes.clear()
    result = fuse_volumes_detailed(a, b, FusionOptions(reference="a", slice_axis=2), network=net)
    assert result.slice_axis == 2 and {s[1:] for s in net.shapes} == {(2, 17, 20)}
    assert sum(s[0] for s in net.shapes) == 18


def test_overlap_fraction():
    grid = make_affine((1.0, 1.0, 1.0))
    ref = Volume(np.zeros((20, 20, 10)), grid)
    assert overlap_fraction(ref, ref) == 1.0
    half = Volume(np.zeros((20, 20, 10)), make_affine((1.0, 1.0, 1.0), (10.0, 0.0, 0.0)))
    assert overlap_fraction(ref, half) == pytest.approx(0.5, abs=0.05)
    far = Volume(np.zeros((20, 20, 10)), make_affine((1.0, 1.0, 1.0), (500.0, 0.0, 0.0)))
    assert overlap_fraction(ref, far) == 0.0


def test_differences_are_reported():
    a, b = pair()
    notes = describe_differences(a, b, ("A", "B"))
    assert any("spacing differs" in n for n in notes)
    assert any("orientation differs" in n for n in notes)
    assert any("resampled" in n for n in notes)
    assert describe_differences(a, a, ("A", "B")) == []
    oblique = Volume(a.array, make_affine((0.8, 0.8, 2.5), (-14.0, -13.0, -10.0), rotation_z(2)))
    assert any("oblique" in n for n in describe_differences(a, oblique, ("A", "B")))


def test_resample_identity_and_integer_shift_are_exact():
    v = smooth_volume((20, 18, 7), make_affine((1.0, 1.0, 2.0), (3.0, 4.0, 5.0)))
    np.testing.assert_array_equal(resample(v, v.affine, v.spatial_shape), v.array)
    shifted = make_affine((1.0, 1.0, 2.0), (5.0, 4.0, 5.0))  # 2 voxels along i
    out = resample(v, shifted, v.spatial_shape, slab_axis=0)
    np.testing.assert_allclose(out[:-2], v.array[2:], atol=1e-4)
    assert np.all(out[-2:] == 0)  # outside the source: zero


def test_resample_in_slabs_equals_one_pass(monkeypatch):
    import scripts.volume.geometry as geometry

    a, b = pair()
    whole = resample(b, a.affine, a.spatial_shape)
    monkeypatch.setattr(geometry, "_SLAB_VOXELS", 36 * 34)  # one slice per slab
    np.testing.assert_allclose(resample(b, a.affine, a.spatial_shape, slab_axis=2), whole, rtol=1e-5, atol=1e-4)


def test_slab_resampling_from_a_block_equals_resampling_from_the_whole_volume(monkeypatch):
    """Each slab reads only the block of the source it can touch (memory and time follow the slab, issue 15):
    the values are those of MONAI's SpatialResample on the whole source, oblique grids included."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import SpatialResample

    import scripts.volume.geometry as geometry

    a, b = pair()
    oblique = Volume(b.array, make_affine((1.3, 1.1, 2.2), (-18.0, -15.0, -8.0), rotation_z(17)))
    reference = SpatialResample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(
        MetaTensor(torch.as_tensor(oblique.array)[None], affine=torch.as_tensor(oblique.affine)),
        dst_affine=torch.as_tensor(a.affine), spatial_size=a.spatial_shape)[0].numpy()
    monkeypatch.setattr(geometry, "_SLAB_VOXELS", 36 * 34 * 2)  # two slices per slab
    for axis in (0, 2):
        np.testing.assert_allclose(resample(oblique, a.affine, a.spatial_shape, slab_axis=axis), reference,
                                   atol=1e-4)
    far = make_affine((1.0, 1.0, 1.0), (500.0, 0.0, 0.0))
    assert not geometry.SlabResampler(oblique, far, (8, 8, 4), 2)(0, 4).any()  # touches nothing: zeros
