"""Volume fusion end to end, Slicer-free: :func:`fuse_volumes` (the contract) and :func:`fuse_volumes_detailed`.

Steps: check options and volumes -> choose the reference grid and the slice axis -> check the physical overlap
-> load the network (fails fast on bad weights) -> warn about implausible intensities -> the normalization of
each volume (from the whole volume) -> optional rigid registration (checked, see :mod:`.registration`) -> then
slab by slab along the slice axis: normalize the reference's slab, resample the other volume onto it, optional
pseudo-colour, inference, colour restored. Only the other volume is normalized whole (it is resampled from);
the normalized, resampled inputs are kept for the caller only when asked (``keep_inputs``), so a 512 x 512 x
300 pair fuses in well under 2 GB. Inputs are never modified; nothing is written here (see :mod:`.io`).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable

import numpy as np

from .color_fusion import pseudo_colour, restore_colour
from .geometry import (
    SlabResampler,
    check_overlap,
    choose_reference,
    describe_differences,
    slab_size,
    through_plane_axis,
)
from .normalize import apply_norm, norm_range
from .options import validate_options
from .plausibility import intensity_warnings
from .registration import apply_rigid, register_rigid
from .slicing import MIN_SLICE_SIZE, GuardedForward, fuse_slab, resolve_device
from .types import FusionCancelled, FusionInputError, FusionOptions, FusionResult, Volume

__all__ = ["fuse_volumes", "fuse_volumes_detailed", "validate_options", "check_volume", "prepare_network"]

logger = logging.getLogger(__name__)

# progress fractions at the end of each stage (inference fills the span between PREPARED and INFERRED)
_LOADED, _NORMALIZED, _PREPARED, _INFERRED = 0.02, 0.06, 0.10, 0.97


class _Reporter:
    """Collects the user messages, reports progress, polls the cancel flag, and times the stages."""

    def __init__(self, progress, cancel, notify):
        self.progress, self.cancel, self.notify = progress, cancel, notify
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}

    def note(self, message: str) -> None:
        """Record a message for the user; it goes to ``notify`` when given, else to the log."""
        self.notes.append(message)
        (self.notify or logger.info)(message)

    def step(self, fraction: float) -> None:
        if self.cancel is not None and self.cancel():
            raise FusionCancelled("fusion cancelled by the user")
        if self.progress is not None:
            self.progress(float(fraction))

    @contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        yield
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


def check_volume(volume: Volume, name: str) -> Volume:
    """The volume as a scalar (I, J, K) Volume, or a clear FusionInputError (2-D, 4-D, channels, bad affine)."""
    array = np.asarray(volume.array)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim == 4 and array.shape[3] == 3:
        raise FusionInputError(
            f"volume {name} has 3 channels (RGB, shape {array.shape}); fusion needs scalar "
            "volumes: load the gray-scale volume (use color=True for a colour output)"
        )
    if array.ndim == 4:
        raise FusionInputError(
            f"volume {name} is 4-D (shape {array.shape}: a time series or {array.shape[3]} "
            "channels); a 3-D scalar volume is expected"
        )
    if array.ndim != 3:
        raise FusionInputError(f"volume {name} is {array.ndim}-D (shape {array.shape}); a 3-D volume is expected")
    if min(array.shape) < 1:
        raise FusionInputError(f"volume {name} is empty (shape {array.shape})")
    if array.dtype.kind not in "biuf":
        raise FusionInputError(f"volume {name} has unsupported voxel type {array.dtype}")
    affine = volume.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        text = np.array2string(affine, precision=4, separator=", ").replace("\n", "")
        raise FusionInputError(f"volume {name} has an invalid (singular or non-finite) affine: {text}")
    return volume if array is volume.array else Volume(array, affine)


def prepare_network(options: FusionOptions, network=None):
    """The given network with the options' strength, or else the trained network of the weights file
    ``options.weights`` (architecture ``options.network_kwargs``), loaded on the CPU in eval mode."""
    if network is None:
        from ..weights import load_network

        return load_network(
            options.task,
            weights=options.weights,
            device="cpu",
            strength=float(options.strength),
            **options.network_kwargs,
        )
    if hasattr(network, "strength"):
        network.strength = float(options.strength)
    return network


def _modalities(task: str) -> tuple[str, str]:
    """``('CT', 'MRI')`` for ``'CT-MRI'``."""
    first, second = task.split("-")
    return first, second


def fuse_volumes_detailed(
    a: Volume,
    b: Volume,
    options: FusionOptions | None = None,
    network=None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    notify: Callable[[str], None] | None = None,
    keep_inputs: bool = True,
    inferer=None,
) -> FusionResult:
    """Fuse A (CT/PET/SPECT) and B (MRI): the fused volume on the reference grid, plus (``keep_inputs``) A and B
    normalized on that grid.

    ``progress(fraction)`` is called as work advances, ``cancel()`` is polled between stages and batches
    (raising :class:`FusionCancelled`), ``notify(message)`` receives the notes for the user (default: logged);
    warnings start with ``warning:``; ``inferer`` (a MONAI inferer, default ``SimpleInferer``) runs each batch of
    slices. Raises :class:`FusionInputError` for bad input, the weights loader's
    ``WeightsError`` for bad weights.
    """
    options = options or FusionOptions()
    report = _Reporter(progress, cancel, notify)
    norm_a, norm_b, colormap = validate_options(options)
    a, b = check_volume(a, "A"), check_volume(b, "B")
    reference = choose_reference(a, b, options.reference)
    ref, names = (a, ("A", "B")) if reference == "a" else (b, ("B", "A"))
    axis = through_plane_axis(ref.spacing) if options.slice_axis is None else int(options.slice_axis)
    plane = [n for i, n in enumerate(ref.spatial_shape) if i != axis]
    if min(plane) < MIN_SLICE_SIZE:
        raise FusionInputError(
            f"the reference volume {names[0]} has {plane[0]}x{plane[1]}-voxel slices along axis {axis}; the "
            f"network needs at least {MIN_SLICE_SIZE}x{MIN_SLICE_SIZE} (choose another slice axis or reference)"
        )
    if not options.register:
        check_overlap(ref, b if reference == "a" else a, names)
    device = resolve_device(options.device)
    with report.timed("load network"):
        network = prepare_network(options, network)
    report.step(_LOADED)

    with report.timed("normalize"):
        for volume, spec, modality, name in zip((a, b), (norm_a, norm_b), _modalities(options.task), "AB"):
            for message in intensity_warnings(volume.array, spec, modality, name):
                report.note(f"warning: {message}")
        range_a = norm_range(a.array, norm_a, "A", options.nonfinite, report.note)
        range_b = norm_range(b.array, norm_b, "B", options.nonfinite, report.note)
        ref_range, moving_range = (range_a, range_b) if reference == "a" else (range_b, range_a)
        moving = b if reference == "a" else a
        moving_n = Volume(apply_norm(moving.array, moving_range), moving.affine)  # resampled from: normalized whole
    report.step(_NORMALIZED)
    registration = None
    if options.register:
        with report.timed("register"):
            a_n = Volume(apply_norm(a.array, range_a), a.affine) if reference == "a" else moving_n
            b_n = moving_n if reference == "a" else Volume(apply_norm(b.array, range_b), b.affine)
            registration = register_rigid(a_n, b_n)
            del a_n, b_n
        report.note(("warning: " if registration.outcome == "rejected" else "") + registration.message)
        if reference == "a":
            _, moving_n = apply_rigid(a, moving_n, registration.transform, "a")
        else:
            moving_n, _ = apply_rigid(moving_n, b, registration.transform, "b")
        check_overlap(ref, moving_n, names)
        report.step(_NORMALIZED)
    for message in describe_differences(ref, moving_n, names):
        report.note(message)
    report.step(_PREPARED)

    shape, span = ref.spatial_shape, _INFERRED - _PREPARED
    resampler = SlabResampler(moving_n, ref.affine, shape, axis)
    guarded = GuardedForward(
        network.eval(),
        device,
        options.batch_size,
        shape[axis],
        cancel=cancel,
        notify=report.note,
        progress=None if progress is None else (lambda f: progress(_PREPARED + span * f)),
        inferer=inferer,
    )
    channels = (3,) if colormap is not None else ()
    fused = np.empty(shape + channels, dtype=np.float32)
    kept_a = np.empty(shape + channels, dtype=np.float32) if keep_inputs else None
    kept_b = np.empty(shape, dtype=np.float32) if keep_inputs else None
    step = slab_size(shape, axis, options.batch_size)
    for start in range(0, shape[axis], step):
        count = min(step, shape[axis] - start)
        index = [slice(None)] * 3
        index[axis] = slice(start, start + count)
        index = tuple(index)
        with report.timed("resample"):
            ref_slab, moving_slab = apply_norm(ref.array[index], ref_range), resampler(start, count)
        a_slab, b_slab = (ref_slab, moving_slab) if reference == "a" else (moving_slab, ref_slab)
        net_a = a_slab
        if colormap is not None:
            with report.timed("colour"):
                a_slab, ycbcr = pseudo_colour(a_slab, colormap)
                net_a = ycbcr[..., 0]
        with report.timed("infer"):  # the slice loop polls cancel before every batch and reports after it
            fused_slab = fuse_slab(guarded, net_a, b_slab, axis)
        if colormap is not None:
            with report.timed("colour"):
                fused_slab = restore_colour(ycbcr, fused_slab)
        fused[index] = fused_slab
        if keep_inputs:
            kept_a[index], kept_b[index] = a_slab, b_slab
    report.step(1.0)
    kept = [Volume(v, ref.affine) if v is not None else None for v in (kept_a, kept_b)]
    return FusionResult(
        fused=Volume(fused, ref.affine),
        a=kept[0],
        b=kept[1],
        reference=reference,
        slice_axis=axis,
        notes=report.notes,
        timings=report.timings,
        registration=registration,
    )


def fuse_volumes(
    a: Volume,
    b: Volume,
    options: FusionOptions | None = None,
    network=None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    notify: Callable[[str], None] | None = None,
) -> Volume:
    """Fuse A (CT/PET/SPECT, network channel 0) and B (MRI, channel 1) into a float32 [0, 1] volume with the
    reference's exact geometry (RGB ``(I, J, K, 3)`` when ``options.color``). See :func:`fuse_volumes_detailed`.
    """
    return fuse_volumes_detailed(a, b, options, network, progress, cancel, notify, keep_inputs=False).fused
