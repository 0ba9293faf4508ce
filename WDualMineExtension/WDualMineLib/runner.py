"""Runs the bundle's volume pipeline for the Slicer module (no Slicer import here).

:class:`FusionRunner` imports ``scripts.volume`` and ``scripts.weights`` from the bundle on first use and keeps
the loaded network between runs (the pipeline sets its ``strength`` from the options, moves it to the device,
halves the batch on CUDA out-of-memory and falls back to the CPU, reporting each step through ``notify``: the
bundle's ``GuardedForward`` is the one out-of-memory loop, this module has none of its own).
Slicer's Python runs in the GUI thread, so the caller passes a ``progress`` callback that calls
``slicer.app.processEvents()``: that keeps the UI responsive and the Cancel button clickable while the
pipeline works slice batch by slice batch.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable

from . import bundle
from .conversion import single_slice, window_level
from .parameters import FusionSettings, NormOverride


class FusionRunner:
    """Fuses bundle ``Volume`` objects with the bundle's pipeline; one instance per module logic.

    ``load_network(task, weights=, device=, strength=)`` defaults to the bundle's ``weights.load_network``;
    ``weights`` is the weights file (``None``: the bundle's ``models/model.pt``).
    """

    def __init__(self, bundle_dir: Path | None = None, weights: Path | None = None,
                 load_network: Callable | None = None):
        self._bundle_dir = bundle_dir
        self.weights = weights
        self._load_network = load_network
        self._network = None
        self._network_key = None

    @property
    def bundle_dir(self) -> Path:
        """The bundle folder, found on first use (see :mod:`WDualMineLib.bundle`)."""
        if self._bundle_dir is None:
            self._bundle_dir = bundle.find_bundle()
        return self._bundle_dir

    @property
    def pipeline(self):
        """The bundle's ``scripts.volume`` package."""
        return bundle.import_bundle_module(self.bundle_dir, "volume")

    def make_volume(self, array, affine):
        """A bundle ``Volume`` (``array[i, j, k(, 3)]``, ``affine`` IJK -> RAS)."""
        return self.pipeline.Volume(array=array, affine=affine)

    def network(self, task: str):
        """The task's trained network, loaded once (on the CPU; the pipeline moves it) and reused."""
        key = (task, self.weights)
        if self._network_key != key:
            load = self._load_network or bundle.import_bundle_module(self.bundle_dir, "weights").load_network
            self._network = load(task, weights=self.weights, device="cpu")
            self._network_key = key
            logging.info("W-DUALMINE: loaded the %s network", task)
        return self._network

    def fuse(
        self,
        a,
        b,
        settings: FusionSettings,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        notify: Callable[[str], None] | None = None,
    ):
        """Fuse ``a`` (CT/PET/SPECT) with the MRI ``b``: a ``Volume`` on the grid ``settings.reference`` names,
        values in [0, 1].

        Raises the pipeline's ``FusionInputError`` (bad input or options, no GPU for ``cuda``) and
        ``FusionCancelled`` (``cancel()`` returned True).
        """
        options = self.pipeline.FusionOptions(**settings.options_kwargs(), weights=self.weights)
        return self.pipeline.fuse_volumes(
            a, b, options, network=self.network(settings.task), progress=progress, cancel=cancel, notify=notify
        )

    def fuse_slice(self, a, b, settings: FusionSettings, axis: int, index: int):
        """Fuse only voxel slice ``index`` along ``axis`` of the output grid (``settings.reference``: the MRI
        ``b`` or ``a``) - the live preview: a one-slice ``Volume``.

        A percentile normalisation of the sliced volume is replaced by the window that the same percentiles give
        over the whole volume, so the slice looks as it will in the full result. Registration is a whole-volume
        step, so the preview runs without it.
        """
        normalize = bundle.import_bundle_module(self.bundle_dir, "volume.normalize")
        side = settings.reference
        grid = b if side == "b" else a
        override = settings.norm_b if side == "b" else settings.norm_a
        spec = normalize.resolve_norm(settings.task, side, override.to_option())
        if spec["kind"] == "percentile":
            width, level = window_level(grid.array, spec["low"], spec["high"])
            override = NormOverride("window", level, width)
        one = self.make_volume(*single_slice(grid.array, grid.affine, axis, index))
        one_slice = dataclasses.replace(settings, slice_axis=axis, register=False, **{f"norm_{side}": override})
        return self.fuse(*((a, one) if side == "b" else (one, b)), one_slice)
