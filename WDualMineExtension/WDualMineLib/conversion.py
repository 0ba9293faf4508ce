"""Slicer-free conversions between Slicer's volume layout and the bundle's ``Volume`` convention.

Slicer's ``slicer.util.arrayFromVolume`` returns voxels indexed ``[k, j, i]`` (``[k, j, i, c]`` for vector
volumes) and the node's IJKToRAS matrix maps ``(i, j, k)`` to RAS millimetres. The bundle's
``scripts.volume.Volume`` stores ``array[i, j, k]`` (``[i, j, k, 3]`` for RGB) with a 4x4 ``affine`` from
``(i, j, k)`` to RAS, so the affine is the IJKToRAS matrix itself and only the spatial axes are reversed.

Everything here is plain numpy so that it is tested without Slicer.
"""
from __future__ import annotations

import numpy as np


def _reverse_spatial_axes(array: np.ndarray) -> np.ndarray:
    """Swap the first and third axes, keeping a trailing colour axis in place (an involution, a view)."""
    array = np.asarray(array)
    if array.ndim == 3:
        return array.transpose(2, 1, 0)
    if array.ndim == 4:
        return array.transpose(2, 1, 0, 3)
    raise ValueError(f"expected a 3-D volume (optionally with a trailing colour axis), got shape {array.shape}")


def kji_to_ijk(array_kji: np.ndarray) -> np.ndarray:
    """Slicer's ``[k, j, i(, c)]`` voxel array -> the bundle's ``[i, j, k(, c)]`` (a view, no copy)."""
    return _reverse_spatial_axes(array_kji)


def ijk_to_kji(array_ijk: np.ndarray) -> np.ndarray:
    """The bundle's ``[i, j, k(, c)]`` voxel array -> Slicer's ``[k, j, i(, c)]`` (a view, no copy)."""
    return _reverse_spatial_axes(array_ijk)


def is_rgb(array: np.ndarray) -> bool:
    """True for a colour volume: four dimensions with three channels last."""
    return array.ndim == 4 and array.shape[-1] == 3


def world_affine(ijk_to_ras: np.ndarray, parent_to_world: np.ndarray | None = None) -> np.ndarray:
    """IJK -> world RAS: the node's IJKToRAS, preceded by its (linear) parent transform when it has one."""
    affine = np.asarray(ijk_to_ras, dtype=np.float64).reshape(4, 4)
    if parent_to_world is None:
        return affine.copy()
    return np.asarray(parent_to_world, dtype=np.float64).reshape(4, 4) @ affine


def to_slicer_voxels(array_ijk: np.ndarray) -> np.ndarray:
    """A fused ``[i, j, k(, 3)]`` array -> a contiguous ``[k, j, i(, 3)]`` array that Slicer displays as is.

    Scalar volumes stay float32. RGB volumes, whose values are in [0, 1], become uint8 0-255 because Slicer's
    vector volume display shows three unsigned-char components as colour.
    """
    array = np.asarray(array_ijk)
    if is_rgb(array):
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        array = array.astype(np.float32, copy=False)
    return np.ascontiguousarray(ijk_to_kji(array))


def _sample(array: np.ndarray, max_samples: int) -> np.ndarray:
    """At most about ``max_samples`` voxels, taken on a regular stride along the (up to three) spatial axes.

    Slicing keeps a view, so a large volume is never copied whole.
    """
    array = np.asarray(array)
    axes = min(array.ndim, 3)
    step = max(1, int(np.ceil((np.prod(array.shape[:axes]) / max_samples) ** (1.0 / axes))))
    return array[(slice(None, None, step),) * axes]


def window_level(array: np.ndarray, low: float = 0.5, high: float = 99.5,
                 max_samples: int = 1_000_000) -> tuple[float, float]:
    """Window and level that span the ``low``-``high`` percentiles of the finite voxels.

    Large volumes are sampled on a regular stride (at most about ``max_samples`` voxels), which keeps this
    fast enough for the live preview. A constant volume gets a window of 1 centred on its value.
    """
    values = np.asarray(_sample(array, max_samples), dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0, 0.0
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        return 1.0, float(lo)
    return float(hi - lo), float((hi + lo) / 2.0)


def output_name(reference_name: str, second_name: str, task: str) -> str:
    """Name of the fused node, made from the names of its inputs and the task preset."""
    return f"{reference_name} + {second_name} fused ({task})"


def slice_axis_for_normal(affine: np.ndarray, normal) -> int:
    """The voxel axis (0 = i, 1 = j, 2 = k) whose direction is closest to a slice view's normal."""
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    directions = directions / np.linalg.norm(directions, axis=0, keepdims=True)
    normal = np.asarray(normal, dtype=np.float64)
    normal = normal / np.linalg.norm(normal)
    return int(np.argmax(np.abs(normal @ directions)))


def slice_index_for_point(affine: np.ndarray, axis: int, ras_point) -> int:
    """Index along ``axis`` of the voxel slice that contains the RAS point (may be outside the volume)."""
    ijk = np.linalg.solve(np.asarray(affine, dtype=np.float64), np.append(np.asarray(ras_point, float), 1.0))
    return int(np.rint(ijk[axis]))


def single_slice(array: np.ndarray, affine: np.ndarray, axis: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One voxel slice as a one-slice volume: the ``[i, j, k(, c)]`` array and its shifted affine.

    The shifted affine keeps the slice at the same place in RAS, so a node made from it overlays the slice
    of the full volume exactly.
    """
    if not 0 <= index < array.shape[axis]:
        raise IndexError(f"slice {index} is outside the volume's {array.shape[axis]} slices along axis {axis}")
    sub = np.take(array, [index], axis=axis)
    shifted = np.asarray(affine, dtype=np.float64).copy()
    shifted[:3, 3] += shifted[:3, axis] * index
    return sub, shifted
