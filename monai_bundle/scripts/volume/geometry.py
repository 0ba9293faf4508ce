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

__all__ = [
    "through_plane_axis",
    "in_plane_area",
    "choose_reference",
    "physical_extent",
    "overlap_fraction",
    "check_overlap",
    "describe_differences",
    "resample",
    "SlabResampler",
    "slab_size",
    "MIN_OVERLAP",
]

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
    extents = f"{names[0]} spans {_format_extent(reference)}, {names[1]} spans {_format_extent(moving)}"
    if fraction == 0.0:
        raise FusionInputError(
            f"volumes {names[0]} and {names[1]} do not overlap in physical space ({extents}); "
            "check that they are of the same patient and study, or register them first"
        )
    if fraction < MIN_OVERLAP:
        raise FusionInputError(
            f"volume {names[1]} covers only {fraction:.0%} of the reference {names[0]} (at least "
            f"{MIN_OVERLAP:.0%} is needed; {extents}); check the volumes' origins or register them first"
        )
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
        detail = (
            f"{names[0]} {o_ref}, {names[1]} {o_mov}"
            if o_ref != o_mov
            else f"both {o_ref}, but the axes are not parallel (oblique)"
        )
        notes.append(f"orientation differs: {detail}")
    same_grid = reference.spatial_shape == moving.spatial_shape and np.allclose(
        reference.affine, moving.affine, atol=1e-4
    )
    if not same_grid:
        shape = "x".join(str(n) for n in reference.spatial_shape)
        notes.append(f"{names[1]} is resampled (linear) onto the {shape} grid of the reference {names[0]}")
    return notes


def slab_size(shape, axis: int, multiple: int = 1) -> int:
    """Slices per slab along ``axis`` for about :data:`_SLAB_VOXELS` voxels (a multiple of ``multiple``)."""
    plane = int(np.prod(np.delete(np.asarray(shape), axis)))
    step = max(1, _SLAB_VOXELS // max(plane, 1))
    return max(multiple, step - step % max(multiple, 1))


class SlabResampler:
    """Linear resampling of a scalar ``volume`` onto slabs of the grid (``affine``, ``shape``): float32, 0
    outside. MONAI's ``SpatialResample`` maps the output voxel centres through both affines. Each slab is
    resampled from only the block of ``volume`` it can touch (its corners mapped into the volume, plus a margin
    of two voxels for the interpolation; the block's affine shifted to match): the same values as from the
    whole volume, at a cost that follows the slab and not the volume. An identical grid gives copies of the
    volume's slabs (exact)."""

    def __init__(self, volume: Volume, affine: np.ndarray, shape: tuple[int, int, int], axis: int):
        self.volume, self.affine, self.axis = volume, np.asarray(affine, dtype=np.float64), int(axis)
        self.shape = tuple(int(n) for n in shape)
        self.identical = volume.spatial_shape == self.shape and np.allclose(volume.affine, self.affine, atol=1e-6)
        self.resampler = SpatialResample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)

    def _source_block(self, slab_affine: np.ndarray, slab_shape) -> tuple[tuple[slice, ...], np.ndarray] | None:
        """(index of the block of the volume a slab can touch, its affine), or None when it touches nothing."""
        corners = np.array(np.meshgrid(*[(0, n - 1) for n in slab_shape], indexing="ij")).reshape(3, -1)
        to_source = np.linalg.inv(self.volume.affine) @ slab_affine
        points = to_source[:3, :3] @ corners + to_source[:3, 3:4]
        low = np.maximum(np.floor(points.min(axis=1)).astype(int) - 2, 0)
        high = np.minimum(np.ceil(points.max(axis=1)).astype(int) + 3, self.volume.spatial_shape)
        if np.any(high <= low):
            return None
        shift = np.eye(4)
        shift[:3, 3] = low
        return tuple(slice(lo, hi) for lo, hi in zip(low, high)), self.volume.affine @ shift

    def __call__(self, start: int, count: int) -> np.ndarray:
        """The slab of ``count`` slices from ``start`` along the axis, shaped like that part of the grid."""
        index = [slice(None)] * 3
        index[self.axis] = slice(start, start + count)
        if self.identical:
            return np.array(self.volume.array[tuple(index)], dtype=np.float32)
        shift = np.eye(4)
        shift[self.axis, 3] = start
        slab_shape = list(self.shape)
        slab_shape[self.axis] = count
        block = self._source_block(self.affine @ shift, slab_shape)
        if block is None:
            return np.zeros(slab_shape, dtype=np.float32)
        source = MetaTensor(
            torch.as_tensor(np.asarray(self.volume.array[block[0]], dtype=np.float32))[None],
            affine=torch.as_tensor(block[1]),
        )
        slab = self.resampler(source, dst_affine=torch.as_tensor(self.affine @ shift), spatial_size=slab_shape)
        return np.asarray(slab[0])


def resample(volume: Volume, affine: np.ndarray, shape: tuple[int, int, int], slab_axis: int = 2) -> np.ndarray:
    """Linear resampling of a scalar ``volume`` onto the grid (``affine``, ``shape``); float32, 0 outside
    (computed slab by slab with :class:`SlabResampler`). An identical grid is a copy."""
    shape = tuple(int(n) for n in shape)
    resampler = SlabResampler(volume, affine, shape, slab_axis)
    out = np.empty(shape, dtype=np.float32)
    step = slab_size(shape, slab_axis)
    for start in range(0, shape[slab_axis], step):
        count = min(step, shape[slab_axis] - start)
        index = [slice(None)] * 3
        index[slab_axis] = slice(start, start + count)
        out[tuple(index)] = resampler(start, count)
    return out
