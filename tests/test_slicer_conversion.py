"""Slicer <-> bundle array and geometry conventions (WDualMineLib.conversion), without Slicer."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WDualMineExtension"))

from WDualMineLib import conversion as cv  # noqa: E402

AFFINE = np.array([[-0.8, 0.0, 0.0, 30.0], [0.0, -0.7, 0.0, 20.0], [0.0, 0.0, 2.5, -10.0], [0, 0, 0, 1]])


def ras(affine, ijk):
    return (affine @ np.append(np.asarray(ijk, float), 1.0))[:3]


def test_slicer_kji_array_becomes_ijk_view_with_the_same_voxels():
    kji = np.arange(4 * 3 * 2).reshape(4, 3, 2)  # K=4, J=3, I=2
    ijk = cv.kji_to_ijk(kji)
    assert ijk.shape == (2, 3, 4)
    assert np.shares_memory(ijk, kji)
    assert ijk[1, 2, 3] == kji[3, 2, 1]
    np.testing.assert_array_equal(cv.ijk_to_kji(ijk), kji)


def test_rgb_volumes_keep_the_colour_axis_last():
    kjic = np.random.default_rng(0).random((4, 3, 2, 3))
    ijkc = cv.kji_to_ijk(kjic)
    assert ijkc.shape == (2, 3, 4, 3) and cv.is_rgb(ijkc)
    np.testing.assert_array_equal(ijkc[1, 0, 2], kjic[2, 0, 1])


def test_conversion_rejects_non_volumes():
    with pytest.raises(ValueError, match="3-D volume"):
        cv.kji_to_ijk(np.zeros((3, 3)))


def test_world_affine_applies_the_parent_transform_after_ijk_to_ras():
    parent = np.eye(4)
    parent[:3, 3] = (5.0, -3.0, 1.0)
    world = cv.world_affine(AFFINE, parent)
    np.testing.assert_allclose(ras(world, (1, 2, 3)), ras(AFFINE, (1, 2, 3)) + (5.0, -3.0, 1.0))
    np.testing.assert_array_equal(cv.world_affine(AFFINE), AFFINE)


def test_to_slicer_voxels_scalar_float32_and_rgb_uint8():
    scalar = np.linspace(0, 1, 24, dtype=np.float64).reshape(2, 3, 4)
    out = cv.to_slicer_voxels(scalar)
    assert out.dtype == np.float32 and out.shape == (4, 3, 2) and out.flags.c_contiguous
    rgb = np.zeros((2, 3, 4, 3))
    rgb[1, 2, 3] = (1.2, 0.5, -0.1)
    out = cv.to_slicer_voxels(rgb)
    assert out.dtype == np.uint8 and out.shape == (4, 3, 2, 3)
    np.testing.assert_array_equal(out[3, 2, 1], (255, 128, 0))


def test_window_level_spans_the_robust_range_and_handles_degenerate_volumes():
    values = np.concatenate([np.linspace(0, 100, 1001), [1e6]])
    window, level = cv.window_level(values)
    assert 99 < window < 100.5 and 49 < level < 51
    assert cv.window_level(np.full((2, 2, 2), 7.0)) == (1.0, 7.0)
    assert cv.window_level(np.full((2, 2, 2), np.nan)) == (1.0, 0.0)


def test_window_level_of_a_large_volume_is_sampled_yet_close():
    volume = np.random.default_rng(2).normal(100.0, 20.0, (160, 160, 60)).astype(np.float32)
    exact = np.percentile(volume, [0.5, 99.5])
    window, level = cv.window_level(volume, max_samples=100_000)
    assert abs(level - exact.mean()) < 1.0 and abs(window - np.ptp(exact)) < 3.0


def test_output_name_is_made_of_both_inputs_and_the_task():
    name = cv.output_name("CT head", "T1 MRI", "CT-MRI")
    assert "CT head" in name and "T1 MRI" in name and "CT-MRI" in name


def test_slice_axis_follows_the_view_normal_for_permuted_and_oblique_grids():
    assert cv.slice_axis_for_normal(AFFINE, (0, 0, 1)) == 2
    sagittal = np.array([[0, 0, 1.5, 0], [0.9, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 0, 1.0]])  # k runs along R
    assert cv.slice_axis_for_normal(sagittal, (1, 0, 0)) == 2
    assert cv.slice_axis_for_normal(sagittal, (0, 0, -1)) == 1
    tilt = np.deg2rad(20)
    oblique = np.eye(4)
    oblique[1:3, 1:3] = [[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]]
    assert cv.slice_axis_for_normal(oblique, (0, 0, 1)) == 2


def test_single_slice_keeps_the_slice_in_place():
    array = np.random.default_rng(1).random((5, 6, 7))
    centre = ras(AFFINE, (2, 3, 4))
    axis = 2
    index = cv.slice_index_for_point(AFFINE, axis, centre + (0.3, 0.2, 0.4))
    assert index == 4
    sub, shifted = cv.single_slice(array, AFFINE, axis, index)
    assert sub.shape == (5, 6, 1)
    np.testing.assert_array_equal(sub[:, :, 0], array[:, :, 4])
    np.testing.assert_allclose(ras(shifted, (2, 3, 0)), centre)
    with pytest.raises(IndexError):
        cv.single_slice(array, AFFINE, axis, 7)
