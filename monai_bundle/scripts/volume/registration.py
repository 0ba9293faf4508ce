"""Optional rigid registration of volume B to volume A (ITK v4 framework, Mattes mutual information), checked.

The result is a 4x4 RAS matrix ``T`` mapping a physical point of A to the corresponding point of B. Being
rigid, it is folded into an affine instead of resampling twice (:func:`apply_rigid`): the pipeline's one
resampler then does the only interpolation.

Registration is right or it refuses. :func:`register_rigid` measures the mutual information (MI) of the pair at
full resolution, on one fixed set of points, before and after the optimisation (:class:`Registration`):

* the optimised transform is kept only when it raises the MI by at least :data:`MIN_GAIN` (relative);
* otherwise, when the volumes overlapped in scanner coordinates, they are taken as already aligned: the identity
  is kept and the note says why (the optimiser's result did not improve the match);
* when the volumes did not overlap (the optimisation started from aligned centres) and it did not help, a
  :class:`FusionInputError` says so: there is no trustworthy alignment to fuse with.

Details that make the optimum the right one: the shrink factors are per axis (a thick-slice stack is not
shrunk through-plane below its slice spacing); the metric is sampled on a regular grid, each point moved off
it by ITK's seeded random sub-voxel offset (deterministic; on voxel centres, a transform that maps A's grid
onto B's exactly skips interpolation and scores lower than its neighbours, a spurious dip of the MI at the true
alignment of a pair that shares a grid); the fixed-image mask is A's foreground (the head: above
:data:`FOREGROUND` of its intensity range, holes filled), so that the empty air around it, or a head holder,
does not dilute the histogram, and it keeps a margin from the grid's faces (mutual information otherwise
rewards transforms that push poorly matching border slices out of the overlap). The quality measure uses the
same points, at full resolution, for the transform before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import MIN_OVERLAP, overlap_fraction
from .io import error_reason, to_itk_image
from .types import FusionInputError, Volume

__all__ = ["register_rigid", "apply_rigid", "describe_rigid", "rigid_error", "Registration", "MIN_GAIN"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: The smallest relative gain in mutual information for which the optimised transform is kept.
MIN_GAIN = 0.01
#: A stack whose slice spacing is this many times its in-plane spacing is registered in-plane (see
#: :func:`_parameter_weights`).
THICK_SLICE_RATIO = 2.5
#: A voxel of A is foreground (in the metric's mask) above this fraction of A's intensity range (1st to 99th
#: percentile).
FOREGROUND = 0.05
_SAMPLES = 50_000  # metric points per coarse level (regular grid, jittered): stable and fast
_FINE_SAMPLES = 200_000  # at full resolution, where the optimum is located and the quality is measured
_MARGIN_MM = 6.0  # width of the fixed mask's border


@dataclass
class Registration:
    """What :func:`register_rigid` returns: the transform used (A point -> B point, RAS), the MI before and
    after (nats, higher is better), the outcome - ``registered`` (the optimised transform is kept), ``aligned``
    (the optimiser stayed at the identity) or ``rejected`` (its result did not improve the match; identity
    kept) - a sentence for the user, and the optimiser's result (``found``, the same as ``transform`` when
    kept; what was judged otherwise)."""

    transform: np.ndarray
    mi_before: float
    mi_after: float
    outcome: str
    message: str
    found: np.ndarray = field(default_factory=lambda: np.eye(4))

    @property
    def accepted(self) -> bool:
        """Whether the optimised transform is used."""
        return self.outcome == "registered"


def _itk_transform_to_ras(transform) -> np.ndarray:
    import itk

    lps = np.eye(4)
    lps[:3, :3] = np.array(itk.array_from_matrix(transform.GetMatrix()), dtype=np.float64)
    lps[:3, 3] = [float(v) for v in transform.GetOffset()]
    return _RAS_TO_LPS @ lps @ _RAS_TO_LPS  # the flip is its own inverse


def _parameter_weights(fixed: Volume) -> tuple[list[float], str]:
    """Optimiser weights of the versor transform's (rotation x, y, z, translation x, y, z), LPS, and a note.

    A stack of thick slices (slice spacing >= :data:`THICK_SLICE_RATIO` x in-plane, slices normal to a scanner
    axis) is registered in-plane: rotation about the slice normal and translation within the slice plane; the
    slice positions stay those of the scanner. Between thick slices, mutual information has spurious optima
    (interpolating two slices blurs noise away: on the sample pair, 1 x 1 x 5 mm, a half-slice shift scores
    higher than the true alignment), so a through-plane estimate would be a guess. Otherwise all six are free.
    """
    spacing = fixed.spacing
    axis = int(np.argmax(spacing))
    if spacing[axis] < THICK_SLICE_RATIO * np.delete(spacing, axis).max():
        return [1.0] * 6, ""
    normal = (_RAS_TO_LPS[:3, :3] @ fixed.affine[:3, axis]) / spacing[axis]
    physical = int(np.argmax(np.abs(normal)))
    if abs(normal[physical]) < np.cos(np.radians(1.0)):
        return [1.0] * 6, ""  # oblique slices: no scanner axis to keep
    rotation = [1.0 if i == physical else 0.0 for i in range(3)]
    translation = [0.0 if i == physical else 1.0 for i in range(3)]
    return rotation + translation, (
        f"in-plane registration (slices {spacing[axis]:.3g} mm apart: the slice positions are kept)"
    )


def _fixed_mask(fixed: Volume):
    """ITK mask spatial object of ``fixed``'s foreground (see :data:`FOREGROUND`; holes filled by ITK) without
    a border of about :data:`_MARGIN_MM`; the whole grid less the border when the foreground is too small to
    measure anything (under 5 % of it)."""
    import itk

    shape = fixed.spatial_shape
    box = np.zeros(shape, dtype=bool)
    margin = [min(int(np.ceil(_MARGIN_MM / s)), (n - 1) // 4) for s, n in zip(fixed.spacing, shape)]
    box[tuple(slice(m, n - m) for m, n in zip(margin, shape))] = True
    low, high = np.percentile(fixed.array, [1.0, 99.0])
    foreground = _byte_image(Volume((fixed.array > low + FOREGROUND * (high - low)).astype(np.float32), fixed.affine))
    filled = np.swapaxes(itk.array_from_image(itk.binary_fillhole_image_filter(foreground, foreground_value=1)), 0, 2)
    mask = box & (filled > 0)
    spatial = itk.ImageMaskSpatialObject[3].New()
    spatial.SetImage(
        _byte_image(Volume((mask if mask.sum() >= 0.05 * box.sum() else box).astype(np.float32), fixed.affine))
    )
    spatial.Update()
    return spatial


def _byte_image(volume: Volume):
    """The unsigned-char ITK image of a 0/1 ``volume``."""
    import itk

    return itk.cast_image_filter(to_itk_image(volume), ttype=(itk.Image[itk.F, 3], itk.Image[itk.UC, 3]))


def _metric(mask, points=None):
    """Mattes MI (32 bins) restricted to ``mask``; evaluated on ``points`` (an ITK point set) when given."""
    import itk

    image_type = itk.Image[itk.F, 3]
    metric = itk.MattesMutualInformationImageToImageMetricv4[image_type, image_type].New(NumberOfHistogramBins=32)
    metric.SetFixedImageMask(mask)
    if points is not None:
        metric.SetVirtualSampledPointSet(points)
        metric.SetUseVirtualSampledPointSet(True)
    return metric


def _mutual_information(fixed_image, moving_image, mask, points, transform) -> float:
    """MI (nats) of the pair under ``transform`` at full resolution, on ``points`` (those of the last level)."""
    metric = _metric(mask, points)
    metric.SetFixedImage(fixed_image)
    metric.SetMovingImage(moving_image)
    metric.SetMovingTransform(transform)
    metric.Initialize()
    return -float(metric.GetValue())  # ITK minimises the negative MI


def register_rigid(fixed: Volume, moving: Volume, iterations: int = 300) -> Registration:
    """Rigid (versor) registration of ``moving`` (B) to ``fixed`` (A), checked (see the module docstring).

    Starts from the identity (the scanners' coordinates) when the volumes overlap, else from aligned grid
    centres (ITK's centred initializer), rotating about A's centre of mass; regular-step gradient descent over
    up to three resolution levels. Raises FusionInputError when ITK fails or when a registration from aligned
    centres does not improve the match.
    """
    import itk

    image_type = itk.Image[itk.F, 3]
    fixed_image, moving_image = to_itk_image(fixed), to_itk_image(moving)
    mask = _fixed_mask(fixed)
    transform = itk.VersorRigid3DTransform[itk.D].New()
    overlapping = overlap_fraction(fixed, moving) >= MIN_OVERLAP
    initializer = itk.CenteredTransformInitializer[type(transform), image_type, image_type].New(
        Transform=transform, FixedImage=fixed_image, MovingImage=moving_image
    )
    initializer.MomentsOn()
    initializer.InitializeTransform()
    centre = list(transform.GetCenter())  # of mass: rotations about it barely move the content
    initializer.GeometryOn()  # unrelated coordinates: start from centred grids (a translation)
    initializer.InitializeTransform()
    shift = list(transform.GetTranslation()) if not overlapping else [0.0, 0.0, 0.0]
    transform.SetCenter(centre)
    transform.SetTranslation(shift)
    start = itk.VersorRigid3DTransform[itk.D].New()
    start.SetFixedParameters(transform.GetFixedParameters())
    start.SetParameters(transform.GetParameters())

    metric = _metric(mask)
    optimizer = itk.RegularStepGradientDescentOptimizerv4[itk.D].New(
        LearningRate=1.0,
        MinimumStepLength=1e-4,
        GradientMagnitudeTolerance=1e-8,
        NumberOfIterations=iterations,
        RelaxationFactor=0.5,
        ReturnBestParametersAndValue=True,
    )
    weights, scope = _parameter_weights(fixed)
    optimizer.SetWeights(itk.OptimizerParameters[itk.D](weights))
    optimizer.SetScalesEstimator(itk.RegistrationParameterScalesFromPhysicalShift[type(metric)].New(Metric=metric))
    method = itk.ImageRegistrationMethodv4[image_type, image_type].New(
        FixedImage=fixed_image,
        MovingImage=moving_image,
        Metric=metric,
        Optimizer=optimizer,
        InitialTransform=transform,
        InPlace=True,
    )
    levels = _pyramid(fixed)
    method.SetNumberOfLevels(len(levels))
    for level, (_, shrink) in enumerate(levels):
        method.SetShrinkFactorsPerDimension(level, shrink)
    method.SetSmoothingSigmasPerLevel([sigma for sigma, _ in levels])
    method.SetSmoothingSigmasAreSpecifiedInPhysicalUnits(True)
    enums = itk.itkImageRegistrationMethodv4Python.itkImageRegistrationMethodv4Enums
    method.SetMetricSamplingStrategy(enums.MetricSamplingStrategy_REGULAR)
    voxels = float(np.prod(fixed.spatial_shape))
    samples = [_FINE_SAMPLES if max(shrink) == 1 else _SAMPLES * float(np.prod(shrink)) for _, shrink in levels]
    method.SetMetricSamplingPercentagePerLevel([min(1.0, n / voxels) for n in samples])
    method.MetricSamplingReinitializeSeed(1)
    try:
        method.Update()
        points = metric.GetVirtualSampledPointSet()  # the last level's: full resolution, jittered
        before = _mutual_information(fixed_image, moving_image, mask, points, start)
        after = _mutual_information(fixed_image, moving_image, mask, points, transform)
    except RuntimeError as exc:
        raise FusionInputError(f"rigid registration of B to A failed: {error_reason(exc)}") from exc
    result = _judge(_itk_transform_to_ras(transform), before, after, overlapping)
    if scope:
        result.message += f"; {scope}"
    return result


def _pyramid(fixed: Volume) -> list[tuple[float, list[int]]]:
    """(Gaussian sigma in mm, shrink factor per axis) of each resolution level, coarse to fine.

    Level ``f`` (4, 2, 1) shrinks each axis to about ``f`` x the finest spacing (a thick-slice stack is not
    shrunk through-plane), and smooths by ``max(f, 2)`` x the finest spacing: at full resolution too, since the
    metric's fine-scale roughness (noise, interpolation) otherwise leaves local optima near the true one (on the
    sample pair, up to 0.2 deg and 0.4 mm apart depending on where the optimiser came from; 0.01 deg and
    0.02 mm with it). Level 4 is used when every axis keeps 16 voxels at it.
    """
    finest = float(fixed.spacing.min())
    levels = []
    for factor in (4, 2, 1):
        shrink = [max(1, int(round(factor * finest / s))) for s in fixed.spacing]
        if factor < 4 or all(n // k >= 16 for n, k in zip(fixed.spatial_shape, shrink)):
            levels.append((max(factor, 2) * finest, shrink))
    return levels


def _judge(found: np.ndarray, before: float, after: float, overlapping: bool) -> Registration:
    """Keep ``found`` only when it raises the MI by :data:`MIN_GAIN`; else the identity or an error."""
    measure = f"mutual information {before:.3f} before, {after:.3f} after"
    if after >= before * (1 + MIN_GAIN) and after > 0:
        message = f"registered B to A: {describe_rigid(found)} ({measure})"
        return Registration(found, before, after, "registered", message, found)
    if overlapping and max(rigid_error(found, np.eye(4))) < 0.1:
        return Registration(
            np.eye(4),
            before,
            after,
            "aligned",
            f"registration: the volumes are already aligned "
            f"(it found no better alignment than the scanner coordinates; {measure})",
            found,
        )
    if overlapping:
        return Registration(
            np.eye(4),
            before,
            after,
            "rejected",
            f"registration rejected: its result ({describe_rigid(found)}) did not improve the match "
            f"({measure}); the volumes are fused as they are, in scanner coordinates",
            found,
        )
    raise FusionInputError(
        f"rigid registration could not align B to A ({measure}, {describe_rigid(found)}): the volumes do not "
        "overlap in scanner coordinates and their contents do not match; check that they are of the same "
        "patient, or align them in another tool first"
    )


def apply_rigid(a: Volume, b: Volume, transform: np.ndarray, reference: str) -> tuple[Volume, Volume]:
    """(A, B) with ``transform`` (A point -> B point) folded into the non-reference volume's affine.

    Reference A: B's voxels are placed at ``T^-1 (B affine)``. Reference B: A's voxels at ``T (A affine)``,
    so the output keeps the reference's own geometry in both cases.
    """
    if reference == "a":
        return a, Volume(b.array, np.linalg.inv(transform) @ b.affine)
    return Volume(a.array, transform @ a.affine), b


def rigid_error(found: np.ndarray, expected: np.ndarray, point=(0.0, 0.0, 0.0)) -> tuple[float, float]:
    """(rotation error in degrees, displacement error in mm at the RAS ``point``) between two rigid transforms."""
    difference = np.linalg.inv(expected) @ found
    cosine = np.clip((np.trace(difference[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    p = np.append(np.asarray(point, dtype=np.float64), 1.0)
    return float(np.degrees(np.arccos(cosine))), float(np.linalg.norm((found @ p - expected @ p)[:3]))


def describe_rigid(transform: np.ndarray) -> str:
    """``rotation 2.1 deg, translation (1.0, -0.5, 3.2) mm``."""
    cosine = np.clip((np.trace(transform[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    shift = ", ".join(f"{v:.1f}" for v in transform[:3, 3])
    return f"rotation {np.degrees(np.arccos(cosine)):.1f} deg, translation ({shift}) mm"
