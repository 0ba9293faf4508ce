"""Physical-space geometry of a volume pair: the reference grid, the slice axis, the overlap check, the messages
about differing grids, and the one resampler (MONAI ``SpatialResample``, the engine of ``ResampleToMatch``).

Every function works on RAS affines (voxel ``(i, j, k)`` -> mm), so volumes of any size, spacing, origin and
direction (oblique included) are handled alike.
"""
from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from nibabel.orientations import aff2axcodes

from .types import FusionInputError, Volume

__all__ = ["through_plane_axis", "in_plane_area", "choose_reference", "physical_extent", "overlap_fraction",
           "check_overlap", "describe_differences", "resample", "MIN_OVERLAP"]

#: The smallest fraction of the reference grid that the other volume must cover.
MIN_OVERLAP = 0.5
_SLAB_VOXELS = 4_000_000  # resampling works in slabs of about this many output voxels (bounded memory)


def through_plane_axis(spacing) -> int:
    """The axis of coarsest spacing (the slice axis of a stack of slices); ties go to the last axis."""
    spacing = np.asarray(spacing, dtype=np.float64)
    coarse = spacing >= spacing.max() * (1 - 1e-3)
    return int(np.flatnonzero(coarse)[-1])


def in_plane_area(volume: Volume, axis: int | None = None) -> float:
    """Pixel area (mm^2) in the plane normal to ``axis`` (default: the volume's through-plane axis)."""
    spacing = volume.spacing
    axis = through_plane_axis(spacing) if axis is None else axis
    return float(np.prod(np.delete(spacing, axis)))


def choose_reference(a: Volume, b: Volume, mode: str = "auto") -> str:
    """``'a'`` or ``'b'``: the volume whose grid the output uses. ``auto`` takes the finer in-plane spacing
    (smaller pixel area); a tie keeps A."""
    if mode in ("a", "b"):
        return mode
    return "b" if in_plane_area(b) < in_plane_area(a) * (1 - 1e-6) else "a"


def physical_extent(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """RAS bounding box (min corner, max corner) in mm of the volume's voxels (voxel edges, not centres)."""
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in volume.spatial_shape], indexing="ij")).reshape(3, -1)
    points = volume.affine[:3, :3] @ corners + volume.affine[:3, 3:4]
    return points.min(axis=1), points.max(axis=1)


def _format_extent(volume: Volume) -> str:
    low, high = physical_extent(volume)
    return " x ".join(f"[{lo:.1f}, {hi:.1f}]" for lo, hi in zip(low, high)) + " mm (RAS)"


def overlap_fraction(reference: Volume, moving: Volume, samples: int = 24) -> float:
    """Fraction of the reference's voxel centres (a regular sample, up to ``samples`` per axis) that fall inside
    the moving volume."""
    axes = [np.linspace(0, n - 1, min(n, samples)) for n in reference.spatial_shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    to_moving = np.linalg.inv(moving.affine) @ reference.affine
    index = grid @ to_moving[:3, :3].T + to_moving[:3, 3]
    size = np.asarray(moving.spatial_shape, dtype=np.float64)
    inside = np.all((index >= -0.5) & (index <= size - 0.5), axis=1)
    return float(inside.mean())


def check_overlap(reference: Volume, moving: Volume, names: tuple[str, str]) -> float:
    """The overlap fraction; :class:`FusionInputError` when the volumes do not overlap or overlap too little."""
    fraction = overlap_fraction(reference, moving)
    extents = (f"{names[0]} spans {_format_extent(reference)}, {names[1]} spans {_format_extent(moving)}")
    if fraction == 0.0:
        raise FusionInputError(f"volumes {names[0]} and {names[1]} do not overlap in physical space ({extents}); "
                               "check that they are of the same patient and study, or register them first")
    if fraction < MIN_OVERLAP:
        raise FusionInputError(
            f"volume {names[1]} covers only {fraction:.0%} of the reference {names[0]} (at least "
            f"{MIN_OVERLAP:.0%} is needed; {extents}); check the volumes' origins or register them first")
    return fraction


def _orientation(volume: Volume) -> str:
    return "".join(aff2axcodes(volume.affine))


def describe_differences(reference: Volume, moving: Volume, names: tuple[str, str]) -> list[str]:
    """Messages for the user when the two grids differ (spacing, orientation, size or origin)."""
    notes = []
    if not np.allclose(reference.spacing, moving.spacing, rtol=1e-3):
        fmt = lambda v: " x ".join(f"{s:.3g}" for s in v.spacing)  # noqa: E731
        notes.append(f"spacing differs: {names[0]} {fmt(reference)} mm, {names[1]} {fmt(moving)} mm")
    dir_ref = reference.affine[:3, :3] / reference.spacing
    dir_mov = moving.affine[:3, :3] / moving.spacing
    if not np.allclose(dir_ref, dir_mov, atol=1e-3):
        o_ref, o_mov = _orientation(reference), _orientation(moving)
        detail = (f"{names[0]} {o_ref}, {names[1]} {o_mov}" if o_ref != o_mov
                  else f"both {o_ref}, but the axes are not parallel (oblique)")
        notes.append(f"orientation differs: {detail}")
    same_grid = (reference.spatial_shape == moving.spatial_shape
                 and np.allclose(reference.affine, moving.affine, atol=1e-4))
    if not same_grid:
        shape = "x".join(str(n) for n in reference.spatial_shape)
        notes.append(f"{names[1]} is resampled (linear) onto the {shape} grid of the reference {names[0]}")
    return notes


def resample(volume: Volume, affine: np.ndarray, shape: tuple[int, int, int], slab_axis: int = 2) -> np.ndarray:
    """Linear resampling of a scalar ``volume`` onto the grid (``affine``, ``shape``); float32, 0 outside.

    MONAI's ``SpatialResample`` maps the output voxel centres through both affines; the output is computed in
    slabs along ``slab_axis`` so that memory stays bounded for large grids. An identical grid is a copy.
    """
    shape = tuple(int(n) for n in shape)
    if volume.spatial_shape == shape and np.allclose(volume.affine, affine, atol=1e-6):
        return np.array(volume.array, dtype=np.float32)
    source = MetaTensor(torch.as_tensor(np.asarray(volume.array, dtype=np.float32))[None],
                        affine=torch.as_tensor(volume.affine))
    resampler = SpatialResample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)
    plane = int(np.prod(np.delete(shape, slab_axis)))
    step = max(1, _SLAB_VOXELS // max(plane, 1))
    out = np.empty(shape, dtype=np.float32)
    for start in range(0, shape[slab_axis], step):
        count = min(step, shape[slab_axis] - start)
        shift = np.eye(4)
        shift[slab_axis, 3] = start
        slab_shape = list(shape)
        slab_shape[slab_axis] = count
        slab = resampler(source, dst_affine=torch.as_tensor(affine @ shift), spatial_size=slab_shape)
        index = [slice(None)] * 3
        index[slab_axis] = slice(start, start + count)
        out[tuple(index)] = np.asarray(slab[0])
    return out
