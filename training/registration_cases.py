"""Rigid registration of every HMIF CT-MRI case's own (unmoved) pair, stacked as the bundle's sample pair is,
with an independent check of where the true alignment lies.

The HMIF pairs are registered by the dataset; this prints how far the registration's optimum lands from that
nominal alignment for each case (rotation angle and shift at the volume centre), the mutual information before
and after, and the outcome (``registered`` / ``rejected`` / ``already aligned``). It measures the precision
that can be expected on real CT-MRI stacks of 16 thick (5 mm) slices, which the known-transform tests of
``tests/test_volume_registration.py`` are judged against.

Whether the nominal alignment is the truth is checked independently of ITK and of the registration's optimiser
(:func:`residual_rotation`): the MRI resampled onto the CT grid is rotated in-plane over a grid of angles and
shifts (SciPy, cubic splines) and scored by a 64-bin mutual information on the head, all slices in one joint
histogram; the best angle is the residual rotation left in the pair. It is printed at the nominal alignment
and after the registration: a registration that is right leaves (close to) no residual.

Usage: ``.venv/bin/python training/registration_cases.py [HMIF training folder [case ...]]`` (default
``../shared/data/hmif-train``, every case).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "monai_bundle"), str(ROOT / "monai_bundle" / "sample_data")]

import make_sample_data  # noqa: E402  (the sample pair's own builder)
from scripts.volume.geometry import resample  # noqa: E402
from scripts.volume.io import load_volume  # noqa: E402
from scripts.volume.registration import apply_rigid, register_rigid, rigid_error  # noqa: E402
from scripts.volume.types import Volume  # noqa: E402

ANGLES = np.arange(-3.0, 3.01, 0.25)  # degrees, in-plane
SHIFTS = tuple(np.arange(-3.0, 3.01, 1.0))  # voxels, each in-plane axis (then refined by half a voxel)
BINS = 64


def _bins(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """``x`` as integer bins 0..BINS-1 of the range ``low``..``high`` (values outside it clipped)."""
    return np.clip((x - low) / max(high - low, 1e-12) * BINS, 0, BINS - 1).astype(np.int64)


def _mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """MI (nats) of two integer-binned samples of equal length."""
    joint = np.bincount(x * BINS + y, minlength=BINS * BINS).reshape(BINS, BINS).astype(np.float64)
    p = joint / joint.sum()
    outer = np.outer(p.sum(1), p.sum(0))
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / outer[nz])).sum())


def residual_rotation(
    fixed: np.ndarray, moving: np.ndarray, angles=ANGLES, shifts=SHIFTS, refine: float = 0.5
) -> tuple[float, np.ndarray]:
    """The in-plane rotation (degrees, about the grid centre, all slices together) of ``moving`` that best matches
    ``fixed`` by mutual information, and the MI profile over ``angles`` (each the best over ``shifts`` x
    ``shifts`` voxels, then over the 8 neighbours ``refine`` voxels around that best shift). The best angle is
    refined by a parabola through the best grid angle and its neighbours.

    ``fixed`` and ``moving`` are (x, y, slice) arrays on one grid (the pipeline's resampler put ``moving`` there);
    one joint histogram of all slices, on the fixed volume's head (above 5 % of its range). Independent of ITK by
    design: SciPy's cubic splines, a fixed search grid, no smoothing, no optimiser.
    """
    fixed_bins = _bins(fixed, *np.percentile(fixed, [0.5, 99.5]))
    low, high = np.percentile(fixed, [1.0, 99.0])
    head = fixed > low + 0.05 * (high - low)
    m_low, m_high = np.percentile(moving, [0.5, 99.5])
    coefficients = [ndimage.spline_filter(moving[:, :, k].astype(np.float64), order=3) for k in range(moving.shape[2])]
    centre = (np.array(moving.shape[:2]) - 1) / 2.0
    target = np.concatenate([fixed_bins[:, :, k][head[:, :, k]] for k in range(fixed.shape[2])])

    def score(rotation: np.ndarray, dx: float, dy: float) -> float:
        offset = centre - rotation @ centre + (dx, dy)
        moved = np.concatenate(
            [
                ndimage.affine_transform(c, rotation, offset, order=3, prefilter=False)[head[:, :, k]]
                for k, c in enumerate(coefficients)
            ]
        )
        return _mutual_information(target, _bins(moved, m_low, m_high))

    profile = []
    for angle in angles:
        t = np.radians(angle)
        rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        best, dx, dy = max((score(rotation, x, y), x, y) for x in shifts for y in shifts)
        if refine:
            around = [(dx + i * refine, dy + j * refine) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j]
            best = max([best] + [score(rotation, x, y) for x, y in around])
        profile.append(best)
    profile = np.array(profile)
    i = int(np.clip(np.argmax(profile), 1, len(angles) - 2))
    y0, y1, y2 = profile[i - 1 : i + 2]
    step = float(angles[1] - angles[0])
    curvature = y0 - 2 * y1 + y2
    vertex = 0.5 * (y0 - y2) / curvature if curvature < 0 else 0.0
    return float(angles[i] + np.clip(vertex, -1, 1) * step), profile


def residual_before_after(fixed: Volume, moving: Volume, transform: np.ndarray, **kwargs) -> tuple[float, float]:
    """The residual rotation (:func:`residual_rotation`) of ``moving`` on ``fixed``'s grid at the nominal
    alignment and under ``transform`` (A point -> B point, as :func:`register_rigid` returns it)."""
    out = []
    for t in (np.eye(4), transform):
        _, placed = apply_rigid(fixed, moving, t, "a")
        out.append(residual_rotation(fixed.array, resample(placed, fixed.affine, fixed.spatial_shape), **kwargs)[0])
    return tuple(out)


def main(data: Path, only: tuple[str, ...] = ()) -> None:
    cases = sorted({p.stem[:-3] for p in (data / "CT-MRI" / "CT").glob("*.png")}, key=int)
    cases = [c for c in cases if not only or c in only]
    for case in cases:
        make_sample_data.CASE = case
        with tempfile.TemporaryDirectory() as tmp:
            make_sample_data.main(data, Path(tmp))
            ct, mri = (load_volume(Path(tmp) / f"{name}_case{case}.nii.gz") for name in ("ct", "mri"))
            result = register_rigid(ct, mri)
        centre = (ct.affine @ np.r_[np.array(ct.array.shape) / 2, 1.0])[:3]
        angle, shift = rigid_error(result.found, np.eye(4), centre)
        nominal, registered = residual_before_after(ct, mri, result.found)
        print(
            f"case {case:>2} ({ct.array.shape[2]} slices): optimum {angle:.2f} deg, {shift:.2f} mm at the centre; "
            f"MI {result.mi_before:.3f} -> {result.mi_after:.3f}; {result.outcome}; independent residual "
            f"rotation: {nominal:+.2f} deg nominal, {registered:+.2f} deg after registration",
            flush=True,
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "hmif-train", tuple(sys.argv[2:]))
