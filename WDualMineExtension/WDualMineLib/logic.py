"""Fusion of volume nodes: reads the inputs, runs the bundle pipeline, creates the output or preview node.

:class:`FusionLogic` has no GUI; use it from Slicer's Python console::

    logic = slicer.util.getModuleLogic("WDualMine")
    fused = logic.process(getNode("CT"), getNode("MRI"), FusionSettings(task="CT-MRI", strength=0.6))
"""
from __future__ import annotations

from typing import Callable

from . import scene
from .conversion import output_name, slice_axis_for_normal, slice_index_for_point
from .dependencies import DependencyInstaller
from .parameters import FusionSettings
from .runner import FusionRunner


class FusionLogic:
    """Scene-level fusion; ``runner`` does the computation and ``dependencies`` installs its packages."""

    def __init__(self, runner: FusionRunner | None = None, dependencies: DependencyInstaller | None = None):
        self.runner = runner or FusionRunner()
        self.dependencies = dependencies or DependencyInstaller()

    def _inputs(self, referenceNode, secondNode):
        """Bundle volumes of the two nodes; the same node twice is refused (a fusion of a volume with itself)."""
        if referenceNode is None or secondNode is None:
            raise ValueError("Select both input volumes: the CT/PET/SPECT volume and the MRI volume.")
        if referenceNode is secondNode or referenceNode.GetID() == secondNode.GetID():
            raise ValueError(f"'{referenceNode.GetName()}' is selected as both inputs; select the CT/PET/SPECT "
                             "volume and the MRI volume.")
        make = self.runner.make_volume
        return scene.volume_from_node(referenceNode, make), scene.volume_from_node(secondNode, make)

    @staticmethod
    def gridNode(referenceNode, secondNode, settings: FusionSettings):
        """The node whose grid the output takes (``settings.reference``: the MRI by default)."""
        return secondNode if settings.reference == "b" else referenceNode

    def process(
        self,
        referenceNode,
        secondNode,
        settings: FusionSettings | None = None,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        notify: Callable[[str], None] | None = None,
    ):
        """Fuse the CT/PET/SPECT node (``referenceNode``, input A) and the MRI node (``secondNode``) into a new node
        on the grid of the node ``settings.reference`` names (:meth:`gridNode`); ``None`` when cancelled.

        ``progress(fraction)`` and ``cancel()`` are polled between slice batches; ``notify(message)`` receives
        the pipeline's notes for the user (geometry differences, device fall-backs). The output node is created
        only after the pipeline has finished, so a failed or cancelled run leaves nothing behind.
        """
        settings = settings or FusionSettings()
        a, b = self._inputs(referenceNode, secondNode)
        try:
            fused = self.runner.fuse(a, b, settings, progress=progress, cancel=cancel, notify=notify)
        except self.runner.pipeline.FusionCancelled:
            return None
        name = output_name(referenceNode.GetName(), secondNode.GetName(), settings.task)
        return scene.add_output_node(fused, name, self.gridNode(referenceNode, secondNode, settings))

    def preview(self, referenceNode, secondNode, settings: FusionSettings, previewNode=None, previousKey=None):
        """Fuse the slice of the output grid under the Red view into the preview node: ``(preview node, key)``.

        ``key`` identifies what was fused (inputs, slice, settings); when it equals ``previousKey`` the existing
        preview is kept. Returns ``(None, None)`` (removing the preview) when the Red view misses the volume.
        """
        plane = scene.red_slice_plane()
        if plane is None:
            self.removePreview(previewNode)
            return None, None
        a, b = self._inputs(referenceNode, secondNode)
        grid = b if settings.reference == "b" else a
        axis = slice_axis_for_normal(grid.affine, plane[0])
        index = slice_index_for_point(grid.affine, axis, plane[1])
        if not 0 <= index < grid.array.shape[axis]:
            self.removePreview(previewNode)
            return None, None
        key = (referenceNode.GetID(), secondNode.GetID(), axis, index, tuple(settings.to_parameters().items()))
        if key == previousKey and previewNode is not None:
            return previewNode, key
        fused = self.runner.fuse_slice(a, b, settings, axis, index)
        return scene.update_preview_node(previewNode, fused), key

    @staticmethod
    def removePreview(previewNode) -> None:
        """Remove the preview node, if any."""
        scene.remove_node(previewNode)
