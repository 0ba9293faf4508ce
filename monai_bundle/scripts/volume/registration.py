"""Optional rigid registration of volume B to volume A (ITK v4 framework, Mattes mutual information).

The result is a 4x4 RAS matrix ``T`` mapping a physical point of A to the corresponding point of B. Being
rigid, it is folded into an affine instead of resampling twice (:func:`apply_rigid`): the pipeline's one
resampler then does the only interpolation.
"""
from __future__ import annotations

import numpy as np

from .geometry import MIN_OVERLAP, overlap_fraction
from .io import to_itk_image
from .types import FusionInputError, Volume

__all__ = ["register_rigid", "apply_rigid", "describe_rigid"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SAMPLES_PER_LEVEL = 60_000  # mutual information samples per level: enough for a stable metric, fast


def register_rigid(fixed: Volume, moving: Volume, iterations: int = 200, seed: int = 1) -> np.ndarray:
    """Rigid (versor) transform from ``fixed`` (A) to ``moving`` (B), as a 4x4 RAS matrix.

    Starts from the identity (the scanners' coordinates) when the volumes overlap, else from aligned grid
    centres (what ITK's ``CenteredTransformInitializer`` does in geometry mode, without its seconds-long
    module load); optimised by regular-step gradient descent over two or three resolution levels, the mutual
    information sampled randomly with a fixed seed (reproducible).
    """
    import itk

    image_type = itk.Image[itk.F, 3]
    fixed_image, moving_image = to_itk_image(fixed), to_itk_image(moving)
    fixed_centre, moving_centre = (_RAS_TO_LPS[:3, :3] @ _centre(v) for v in (fixed, moving))
    transform = itk.VersorRigid3DTransform[itk.D].New()
    transform.SetCenter(fixed_centre.tolist())
    if overlap_fraction(fixed, moving) < MIN_OVERLAP:  # unrelated coordinates: start from centred volumes
        transform.SetTranslation((moving_centre - fixed_centre).tolist())

    metric = itk.MattesMutualInformationImageToImageMetricv4[image_type, image_type].New(NumberOfHistogramBins=32)
    optimizer = itk.RegularStepGradientDescentOptimizerv4[itk.D].New(
        LearningRate=2.0, MinimumStepLength=1e-3, NumberOfIterations=iterations, RelaxationFactor=0.5)
    optimizer.SetScalesEstimator(itk.RegistrationParameterScalesFromPhysicalShift[type(metric)].New(Metric=metric))
    method = itk.ImageRegistrationMethodv4[image_type, image_type].New(
        FixedImage=fixed_image, MovingImage=moving_image, Metric=metric, Optimizer=optimizer,
        InitialTransform=transform, InPlace=True)
    shrink = [4, 2, 1] if min(fixed.spatial_shape) >= 32 else [2, 1]
    voxels = float(np.prod(fixed.spatial_shape))
    method.SetNumberOfLevels(len(shrink))
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel([s / 2.0 for s in shrink[:-1]] + [0.0])
    enums = itk.itkImageRegistrationMethodv4Python.itkImageRegistrationMethodv4Enums
    method.SetMetricSamplingStrategy(enums.MetricSamplingStrategy_RANDOM)
    method.SetMetricSamplingPercentagePerLevel([min(1.0, _SAMPLES_PER_LEVEL * s ** 3 / voxels) for s in shrink])
    method.MetricSamplingReinitializeSeed(seed)
    try:
        method.Update()
    except RuntimeError as exc:
        raise FusionInputError(f"rigid registration of B to A failed: {str(exc).strip().splitlines()[-1]}") from exc

    lps = np.eye(4)
    lps[:3, :3] = np.array(itk.array_from_matrix(transform.GetMatrix()), dtype=np.float64)
    lps[:3, 3] = [float(v) for v in transform.GetOffset()]
    return _RAS_TO_LPS @ lps @ _RAS_TO_LPS  # the flip is its own inverse


def _centre(volume: Volume) -> np.ndarray:
    """RAS position of the centre of the voxel grid."""
    return volume.affine[:3, :3] @ ((np.asarray(volume.spatial_shape) - 1) / 2.0) + volume.affine[:3, 3]


def apply_rigid(a: Volume, b: Volume, transform: np.ndarray, reference: str) -> tuple[Volume, Volume]:
    """(A, B) with ``transform`` (A point -> B point) folded into the non-reference volume's affine.

    Reference A: B's voxels are placed at ``T^-1 (B affine)``. Reference B: A's voxels at ``T (A affine)``,
    so the output keeps the reference's own geometry in both cases.
    """
    if reference == "a":
        return a, Volume(b.array, np.linalg.inv(transform) @ b.affine)
    return Volume(a.array, transform @ a.affine), b


def describe_rigid(transform: np.ndarray) -> str:
    """``rotation 2.1 deg, translation (1.0, -0.5, 3.2) mm``."""
    cosine = np.clip((np.trace(transform[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    shift = ", ".join(f"{v:.1f}" for v in transform[:3, 3])
    return f"rotation {np.degrees(np.arccos(cosine)):.1f} deg, translation ({shift}) mm"
