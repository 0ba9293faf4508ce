"""Warnings for intensities that do not look like the declared modality, saying what was assumed.

Fusion runs anyway (the data may be unusual but right), but a CT that is not in Hounsfield units (raw stored
values without the rescale intercept, or 8-bit gray levels), a PET/SPECT with negative activity, or an "MRI"
that looks like a CT (swapped inputs) would give a poor result without a word. The checks look at every
second voxel along each axis (an eighth of the volume: quick, and plenty for percentiles).
"""

from __future__ import annotations

import numpy as np

from .normalize import describe_norm

__all__ = ["intensity_warnings"]


def _ct_warnings(sample: np.ndarray, spec: dict, name: str) -> list[str]:
    low = spec["level"] - spec["width"] / 2
    high = spec["level"] + spec["width"] / 2
    floor, above = float(np.percentile(sample, 1.0)), float(np.mean(sample > high))
    assumed = (
        f"assumed Hounsfield units, as the {describe_norm(spec)} needs; if they are not, pass a "
        f"normalization for {name} (e.g. 'percentile')"
    )
    if floor > low + 0.05 * spec["width"] and floor > -200:
        return [
            f"volume {name} (CT): its darkest voxels (1st percentile {floor:g}) lie inside or above the "
            f"window, so air would not be black - the values look like raw stored values without the rescale "
            f"intercept (air is -1000 HU) or gray levels, not Hounsfield units; {assumed}"
        ]
    if above > 0.25:
        return [
            f"volume {name} (CT): {above:.0%} of its voxels lie above the window (white) - the values look "
            f"like raw stored values or another unit, not Hounsfield units; {assumed}"
        ]
    return []


def _functional_warnings(sample: np.ndarray, modality: str, name: str, spec: dict) -> list[str]:
    negative = float(np.mean(sample < 0))
    if negative <= 0.01:
        return []
    return [
        f"volume {name} ({modality}): {negative:.0%} of its voxels are negative (down to {float(sample.min()):g}); "
        f"{modality} activity is not negative: check the reconstruction or units - assumed that the "
        f"{describe_norm(spec)} span the activity range (negative voxels show as black)"
    ]


def _mri_warnings(sample: np.ndarray, name: str) -> list[str]:
    air = float(np.mean(sample <= -500))
    if air <= 0.05:
        return []
    return [
        f"volume {name} (MRI): {air:.0%} of its voxels are <= -500, like air in a CT in Hounsfield units; "
        f"check that the inputs are not swapped (image_a: CT/PET/SPECT, image_b: MRI) - assumed an MRI"
    ]


def intensity_warnings(array: np.ndarray, spec: dict, modality: str, name: str) -> list[str]:
    """Warnings (possibly none) for ``array`` of ``modality`` (``CT``, ``PET``, ``SPECT`` or ``MRI``) under its
    normalization ``spec``; ``name`` is ``'A'`` or ``'B'``. NaN/Inf voxels are ignored here."""
    sample = np.asarray(array)[::2, ::2, ::2]
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return []
    if modality == "CT" and spec["kind"] == "window":
        return _ct_warnings(sample, spec, name)
    if modality in ("PET", "SPECT"):
        return _functional_warnings(sample, modality, name, spec)
    if modality == "MRI":
        return _mri_warnings(sample, name)
    return []
