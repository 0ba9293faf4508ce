"""Optional rigid registration of B to A (ITK, Mattes mutual information) before fusion."""
from __future__ import annotations

import numpy as np
from test_volume_support import MeanFusionNet, make_affine, rotation_z, voxel_points

from scripts.volume import FusionOptions, Volume, fuse_volumes_detailed
from scripts.volume.registration import apply_rigid, register_rigid

SHIFT = np.array([4.0, -3.0, 2.5])  # mm: where B's anatomy sits relative to A's


def phantom(shape, affine, offset) -> Volume:
    """Two ellipsoids of different brightness (no symmetry a rigid fit could confuse), shifted by ``offset``."""
    p = voxel_points(shape, affine) - offset
    head = ((p[..., 0] / 18) ** 2 + (p[..., 1] / 22) ** 2 + (p[..., 2] / 14) ** 2) < 1
    lesion = (((p[..., 0] - 7) / 5) ** 2 + ((p[..., 1] + 6) / 4) ** 2 + (p[..., 2] / 5) ** 2) < 1
    return Volume((40.0 * head + 60.0 * lesion + 1.0).astype(np.float32), affine)


def test_registration_aligns_b_to_a_on_either_reference():
    a_affine = make_affine((1.5, 1.5, 2.0), (-30.0, -36.0, -22.0))
    b_affine = make_affine((2.0, 2.0, 2.5), (-28.0, -34.0, -20.0), rotation_z(3))
    a = phantom((40, 48, 22), a_affine, np.zeros(3))
    b = phantom((32, 38, 18), b_affine, SHIFT)

    registration = register_rigid(a, b)  # A point -> B point: here a translation by SHIFT
    assert registration.accepted and registration.mi_after > registration.mi_before
    transform = registration.transform
    np.testing.assert_allclose(transform[:3, 3] + transform[:3, :3] @ np.zeros(3), SHIFT, atol=0.6)
    np.testing.assert_allclose(transform[:3, :3], np.eye(3), atol=0.02)
    moved_a, moved_b = apply_rigid(a, b, transform, "a")
    assert moved_a is a and np.allclose(moved_b.affine, np.linalg.inv(transform) @ b.affine)

    for reference in ("a", "b"):
        options = FusionOptions(register=True, reference=reference, norm_a="minmax", norm_b="minmax")
        result = fuse_volumes_detailed(a, b, options, network=MeanFusionNet())
        assert any("registered B to A" in n for n in result.notes)
        grid = (a if reference == "a" else b)
        assert result.fused.spatial_shape == grid.spatial_shape and np.allclose(result.fused.affine, grid.affine)
        on_grid_a = (result.a.array > 0.8).astype(np.float64)  # the lesion of A, and of registered B
        on_grid_b = (result.b.array > 0.8).astype(np.float64)
        points = voxel_points(grid.spatial_shape, grid.affine)
        centre_a = np.tensordot(on_grid_a, points, axes=3) / on_grid_a.sum()
        centre_b = np.tensordot(on_grid_b, points, axes=3) / on_grid_b.sum()
        assert np.linalg.norm(centre_a - centre_b) < 1.0, (reference, centre_a, centre_b)
