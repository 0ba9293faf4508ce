"""The data types of volume fusion: :class:`Volume`, :class:`FusionOptions`, the two exceptions and the
detailed :class:`FusionResult`.

Geometry convention (nibabel / MONAI): ``Volume.array[i, j, k]`` (``[i, j, k, c]`` for RGB) and a 4x4
``Volume.affine`` that maps the voxel index ``(i, j, k)`` to RAS millimetres. ITK's LPS origins and its
``(z, y, x)`` arrays are converted at the I/O boundary only (:mod:`.io`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..task_defaults import DEFAULT_STRENGTH

__all__ = ["Volume", "FusionOptions", "FusionResult", "FusionInputError", "FusionCancelled"]


class FusionInputError(ValueError):
    """Bad input to volume fusion (file, geometry, intensities, options); the message says what and why."""


class FusionCancelled(RuntimeError):
    """The ``cancel`` callback asked the fusion to stop; nothing was written."""


@dataclass(frozen=True)
class Volume:
    """A scalar ``(I, J, K)`` or RGB ``(I, J, K, 3)`` volume with its voxel-to-RAS ``affine`` (4x4, mm)."""

    array: np.ndarray
    affine: np.ndarray

    def __post_init__(self):
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise FusionInputError(f"a volume's affine must be 4x4, got shape {affine.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "array", np.asarray(self.array))

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """``(I, J, K)`` (the first three axes of :attr:`array`)."""
        return tuple(int(s) for s in self.array.shape[:3])

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along ``i, j, k`` (norms of the affine's columns)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4 and self.array.shape[3] == 3


@dataclass
class FusionOptions:
    """Everything :func:`~scripts.volume.pipeline.fuse_volumes` lets the user choose.

    * ``task``: ``'CT-MRI'``, ``'PET-MRI'`` or ``'SPECT-MRI'`` (volume A is the CT/PET/SPECT, B the MRI).
    * ``strength``: detail strength (the network's residual scale: 0 = plain mean, 1 = the model's full fusion),
      in :data:`scripts.task_defaults.STRENGTH_RANGE`; ``None``: the task's default
      (:data:`scripts.task_defaults.DEFAULT_STRENGTH`).
    * ``reference``: ``'auto'`` (the volume with the finer in-plane spacing), ``'a'`` or ``'b'``: the grid of
      the output; the other volume is resampled onto it.
    * ``slice_axis``: ``None`` (the reference's coarsest-spacing axis) or 0/1/2.
    * ``device``: ``'auto'`` (CUDA when available), ``'cuda'`` or ``'cpu'``.
    * ``batch_size``: slices per network call (halved on CUDA out-of-memory).
    * ``register``: rigid registration of B to A (ITK, Mattes mutual information) before fusion, kept only when
      it improves the match (see :mod:`scripts.volume.registration`).
    * ``norm_a`` / ``norm_b``: override of the task's intensity preset: a preset name (see
      :data:`scripts.volume.normalize.NORM_PRESETS`) or a dict, e.g. ``{'kind': 'window', 'level': 40,
      'width': 80}`` or ``{'kind': 'percentile', 'low': 0.5, 'high': 99.5}``.
    * ``color``: RGB output for PET/SPECT (colour map of A, its Y channel fused, colour restored).
    * ``colormap``: matplotlib colour map name for ``color`` (``None``: the task's default).
    * ``nonfinite``: ``'error'`` (refuse NaN/Inf voxels) or ``'fill'`` (replace them by the volume's minimum).
    * ``weights``: the weights file (``None``: the bundle's ``models/model.pt``), used when no network is given.
    * ``network_kwargs``: architecture arguments of :class:`scripts.network.WDualMine` for loading weights.
    """

    task: str = "CT-MRI"
    strength: float | None = None
    reference: str = "auto"
    slice_axis: int | None = None
    device: str = "auto"
    batch_size: int = 8
    register: bool = False
    norm_a: dict | str | None = None
    norm_b: dict | str | None = None
    color: bool = False
    colormap: str | None = None
    nonfinite: str = "error"
    weights: Any = None
    network_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.strength is None and self.task in DEFAULT_STRENGTH:  # an unknown task is refused by validation
            self.strength = DEFAULT_STRENGTH[self.task]


@dataclass
class FusionResult:
    """What :func:`~scripts.volume.pipeline.fuse_volumes_detailed` returns.

    ``fused`` is the output; ``a`` and ``b`` are the normalized inputs on the same grid (``a`` is the RGB
    pseudo-colour image in colour mode), ready for display or metrics - ``None`` unless kept (``keep_inputs``).
    ``notes`` are the messages given to the user (geometry differences, device fall-backs, warnings starting with
    ``warning:``); ``timings`` the seconds spent per stage; ``registration`` the checked rigid registration
    (:class:`scripts.volume.registration.Registration`, with the mutual information before and after) or None.
    """

    fused: Volume
    a: Volume | None
    b: Volume | None
    reference: str
    slice_axis: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    registration: Any = None
