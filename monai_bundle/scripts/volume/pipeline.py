"""Volume fusion end to end, Slicer-free: :func:`fuse_volumes` (the contract) and :func:`fuse_volumes_detailed`.

Steps: check options and volumes -> choose the reference grid and the slice axis -> check the physical overlap
-> load the network (fails fast on bad weights) -> normalize A and B on their own grids -> optional rigid
registration -> resample the other volume onto the reference grid -> optional pseudo-colour -> slice-wise
inference -> colour restored. Inputs are never modified; nothing is written here (see :mod:`.io`).
"""
from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from typing import Callable

import numpy as np

from .color_fusion import COLORMAPS, colormap_lut, pseudo_colour, restore_colour
from .geometry import check_overlap, choose_reference, describe_differences, resample, through_plane_axis
from .normalize import TASK_PRESETS, normalize, resolve_norm
from .registration import apply_rigid, describe_rigid, register_rigid
from .slicing import MIN_SLICE_SIZE, infer_slices, resolve_device
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


def validate_options(options: FusionOptions) -> tuple[dict, dict, str | None]:
    """Check every option; returns (normalization of A, of B, colour map or None). Raises FusionInputError."""
    if options.task not in TASK_PRESETS:
        raise FusionInputError(f"unknown task {options.task!r}; expected one of {', '.join(TASK_PRESETS)}")
    try:
        strength = float(options.strength)
    except (TypeError, ValueError):
        raise FusionInputError(f"strength must be a number, got {options.strength!r}") from None
    if not math.isfinite(strength) or strength < 0:
        raise FusionInputError(f"strength must be a finite number >= 0, got {options.strength!r}")
    if options.reference not in ("auto", "a", "b"):
        raise FusionInputError(f"reference must be 'auto', 'a' or 'b', got {options.reference!r}")
    if options.slice_axis not in (None, 0, 1, 2):
        raise FusionInputError(f"slice_axis must be None, 0, 1 or 2, got {options.slice_axis!r}")
    if isinstance(options.batch_size, bool) or not isinstance(options.batch_size, int) or options.batch_size < 1:
        raise FusionInputError(f"batch_size must be a positive integer, got {options.batch_size!r}")
    colormap = None
    if options.color:
        if options.task not in COLORMAPS:
            raise FusionInputError(f"colour fusion is for PET/SPECT tasks ({', '.join(COLORMAPS)}), "
                                   f"not {options.task}")
        colormap = options.colormap or COLORMAPS[options.task]
        colormap_lut(colormap)  # refuses an unknown name now, not after the network has run
    return resolve_norm(options.task, "a", options.norm_a), resolve_norm(options.task, "b", options.norm_b), colormap


def check_volume(volume: Volume, name: str) -> Volume:
    """The volume as a scalar (I, J, K) Volume, or a clear FusionInputError (2-D, 4-D, channels, bad affine)."""
    array = np.asarray(volume.array)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim == 4 and array.shape[3] == 3:
        raise FusionInputError(f"volume {name} has 3 channels (RGB, shape {array.shape}); fusion needs scalar "
                               "volumes: load the gray-scale volume (use color=True for a colour output)")
    if array.ndim == 4:
        raise FusionInputError(f"volume {name} is 4-D (shape {array.shape}: a time series or {array.shape[3]} "
                               "channels); a 3-D scalar volume is expected")
    if array.ndim != 3:
        raise FusionInputError(f"volume {name} is {array.ndim}-D (shape {array.shape}); a 3-D volume is expected")
    if min(array.shape) < 1:
        raise FusionInputError(f"volume {name} is empty (shape {array.shape})")
    if array.dtype.kind not in "biuf":
        raise FusionInputError(f"volume {name} has unsupported voxel type {array.dtype}")
    affine = volume.affine
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise FusionInputError(f"volume {name} has an invalid (singular or non-finite) affine:\n{affine}")
    return volume if array is volume.array else Volume(array, affine)


def prepare_network(options: FusionOptions, network=None):
    """The given network with the options' strength, or else the task's trained network from the weights folder
    (``options.models_dir``, architecture ``options.network_kwargs``), loaded on the CPU in eval mode."""
    if network is None:
        from ..weights import load_network

        return load_network(options.task, models_dir=options.models_dir, device="cpu",
                            strength=float(options.strength), **options.network_kwargs)
    if hasattr(network, "strength"):
        network.strength = float(options.strength)
    return network


def fuse_volumes_detailed(a: Volume, b: Volume, options: FusionOptions | None = None, network=None,
                          progress: Callable[[float], None] | None = None, cancel: Callable[[], bool] | None = None,
                          notify: Callable[[str], None] | None = None) -> FusionResult:
    """Fuse A (CT/PET/SPECT) and B (MRI): the fused volume on the reference grid, plus A and B on that grid.

    ``progress(fraction)`` is called as work advances, ``cancel()`` is polled between stages and batches
    (raising :class:`FusionCancelled`), ``notify(message)`` receives the notes for the user (default: logged).
    Raises :class:`FusionInputError` for bad input, the weights loader's ``WeightsError`` for bad weights.
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
            f"network needs at least {MIN_SLICE_SIZE}x{MIN_SLICE_SIZE} (choose another slice axis or reference)")
    if not options.register:
        check_overlap(ref, b if reference == "a" else a, names)
    device = resolve_device(options.device)
    with report.timed("load network"):
        network = prepare_network(options, network)
    report.step(_LOADED)

    with report.timed("normalize"):
        a_n = Volume(normalize(a.array, norm_a, "A", options.nonfinite, report.note), a.affine)
        b_n = Volume(normalize(b.array, norm_b, "B", options.nonfinite, report.note), b.affine)
    report.step(_NORMALIZED)
    if options.register:
        with report.timed("register"):
            transform = register_rigid(a_n, b_n)
        a_n, b_n = apply_rigid(a_n, b_n, transform, reference)
        report.note(f"registered B to A: {describe_rigid(transform)}")
        report.step(_NORMALIZED)
    ref_n, moving_n = (a_n, b_n) if reference == "a" else (b_n, a_n)
    if options.register:
        check_overlap(ref_n, moving_n, names)
    for message in describe_differences(ref, moving_n, names):
        report.note(message)
    with report.timed("resample"):
        on_grid = resample(moving_n, ref.affine, ref.spatial_shape, slab_axis=axis)
    a_grid, b_grid = (ref_n.array, on_grid) if reference == "a" else (on_grid, ref_n.array)
    net_a = a_grid
    if colormap is not None:
        with report.timed("colour"):
            a_grid, ycbcr = pseudo_colour(a_grid, colormap)
            net_a = ycbcr[..., 0]
    report.step(_PREPARED)

    span = _INFERRED - _PREPARED
    with report.timed("infer"):  # the slice loop polls cancel before every batch and reports after it
        fused = infer_slices(net_a, b_grid, axis, network, device, options.batch_size,
                             progress=None if progress is None else (lambda f: progress(_PREPARED + span * f)),
                             cancel=cancel, notify=report.note)
    if colormap is not None:
        with report.timed("colour"):
            fused = restore_colour(ycbcr, fused)
    report.step(1.0)
    return FusionResult(fused=Volume(fused, ref.affine), a=Volume(a_grid, ref.affine), b=Volume(b_grid, ref.affine),
                        reference=reference, slice_axis=axis, notes=report.notes, timings=report.timings)


def fuse_volumes(a: Volume, b: Volume, options: FusionOptions | None = None, network=None,
                 progress: Callable[[float], None] | None = None, cancel: Callable[[], bool] | None = None,
                 notify: Callable[[str], None] | None = None) -> Volume:
    """Fuse A (CT/PET/SPECT, network channel 0) and B (MRI, channel 1) into a float32 [0, 1] volume with the
    reference's exact geometry (RGB ``(I, J, K, 3)`` when ``options.color``). See :func:`fuse_volumes_detailed`.
    """
    return fuse_volumes_detailed(a, b, options, network, progress, cancel, notify).fused
