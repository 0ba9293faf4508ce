"""Runs the bundle's volume pipeline for the Slicer module (no Slicer import here).

:class:`FusionRunner` imports ``scripts.volume`` and ``scripts.weights`` from the bundle on first use, keeps
the loaded network between runs (changing only its ``strength``), resolves the device, and retries with a
smaller batch when CUDA runs out of memory. Slicer's Python runs in the GUI thread, so the caller passes a
``progress`` callback that calls ``slicer.app.processEvents()``: that is what keeps the UI responsive and the
Cancel button clickable while the pipeline works slice batch by slice batch.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

from . import bundle
from .conversion import single_slice
from .parameters import FusionSettings

GPU_NOT_FOUND = (
    "CUDA was chosen as the device, but PyTorch in Slicer sees no usable GPU "
    "(torch.cuda.is_available() is False). Choose 'auto' or 'CPU', or reinstall PyTorch with CUDA support "
    "from the PyTorch Utils module (see Troubleshooting in the module's README)."
)
OUT_OF_MEMORY = (
    "The GPU ran out of memory even with one slice per batch. Close other programs that use the GPU, "
    "or choose the CPU device."
)


def resolve_device(choice: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if choice == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if choice == "cuda":
        raise RuntimeError(GPU_NOT_FOUND)
    return "cpu"


class FusionRunner:
    """Fuses bundle ``Volume`` objects with the bundle's pipeline; one instance per module logic."""

    def __init__(self, bundle_dir: Path | None = None, models_dir: Path | None = None):
        self._bundle_dir = bundle_dir
        self.models_dir = models_dir
        self._network = None
        self._network_key = None
        #: Batch size that the last run finished with (smaller than asked after an out-of-memory retry).
        self.last_batch_size: int | None = None

    @property
    def bundle_dir(self) -> Path:
        """The bundle folder, found on first use (see :mod:`WDualMineLib.bundle`)."""
        if self._bundle_dir is None:
            self._bundle_dir = bundle.find_bundle()
        return self._bundle_dir

    @property
    def pipeline(self):
        """The bundle's ``scripts.volume`` module."""
        return bundle.import_bundle_module(self.bundle_dir, "volume")

    def make_volume(self, array, affine):
        """A bundle ``Volume`` (``array[i, j, k(, 3)]``, ``affine`` IJK -> RAS)."""
        return self.pipeline.Volume(array=array, affine=affine)

    def network(self, settings: FusionSettings, device: str):
        """The network for the task on ``device``, loaded once and reused; its ``strength`` follows the slider."""
        key = (settings.task, device, self.models_dir)
        if self._network_key != key:
            weights = bundle.import_bundle_module(self.bundle_dir, "weights")
            self._network = weights.load_network(
                settings.task, models_dir=self.models_dir, device=device, strength=settings.strength
            )
            self._network_key = key
            logging.info("W-DUALMINE: loaded the %s network on %s", settings.task, device)
        self._network.strength = float(settings.strength)
        return self._network

    def fuse(
        self,
        a,
        b,
        settings: FusionSettings,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ):
        """Fuse reference ``a`` with second volume ``b``; returns a ``Volume`` on ``a``'s grid.

        Raises the pipeline's ``FusionInputError`` / ``FusionCancelled``, ``RuntimeError`` for device problems.
        """
        import torch

        device = resolve_device(settings.device)
        batch_size = max(1, int(settings.batch_size))
        while True:
            options = self.pipeline.FusionOptions(
                **{**settings.options_kwargs(), "device": device, "batch_size": batch_size}
            )
            if self.models_dir is not None:
                options.models_dir = self.models_dir
            try:
                fused = self.pipeline.fuse_volumes(
                    a, b, options, network=self.network(settings, device), progress=progress, cancel=cancel
                )
            except torch.cuda.OutOfMemoryError as error:
                torch.cuda.empty_cache()
                if batch_size == 1:
                    raise RuntimeError(OUT_OF_MEMORY) from error
                batch_size = max(1, batch_size // 2)
                logging.warning("W-DUALMINE: CUDA out of memory, retrying with %d slices per batch", batch_size)
                continue
            self.last_batch_size = batch_size
            return fused

    def fuse_slice(self, a, b, settings: FusionSettings, axis: int, index: int):
        """Fuse only voxel slice ``index`` along ``axis`` of ``a`` (the live preview): a one-slice ``Volume``.

        Registration is a whole-volume step, so the preview runs without it.
        """
        array, affine = single_slice(a.array, a.affine, axis, index)
        one_slice = dataclasses.replace(settings, slice_axis=axis, register=False)
        return self.fuse(self.make_volume(array, affine), b, one_slice)
