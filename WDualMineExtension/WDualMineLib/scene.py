"""The MRML side of fusion: volume nodes in, a displayed output node out.

Every Slicer call the module makes on scene data is here: reading a node's voxels and geometry
(``arrayFromVolume``, ``GetIJKToRASMatrix``, the parent transform), creating the output node
(``addVolumeFromArray``), placing it in the reference's study in the subject hierarchy, setting its
window/level and showing it over the reference, and maintaining the one-slice live-preview node.
"""
from __future__ import annotations

import numpy as np
import slicer
import vtk

from .conversion import is_rgb, kji_to_ijk, to_slicer_voxels, window_level, world_affine

PREVIEW_NAME = "W-DUALMINE preview"
RED_SLICE_NODE_ID = "vtkMRMLSliceNodeRed"
RED_COMPOSITE_NODE_ID = "vtkMRMLSliceCompositeNodeRed"


def node_affine(node) -> np.ndarray:
    """IJK -> world RAS of a volume node, including a linear parent transform (hardened on the fly)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
    parent = node.GetParentTransformNode()
    if parent is None:
        return world_affine(ijk_to_ras)
    if not parent.IsTransformToWorldLinear():
        raise ValueError(
            f"'{node.GetName()}' is under a non-linear transform. Harden the transform first "
            "(Data module: right-click the volume > Harden transform)."
        )
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return world_affine(ijk_to_ras, slicer.util.arrayFromVTKMatrix(to_world))


def volume_from_node(node, make_volume):
    """A bundle ``Volume`` that views the node's voxels (read-only, not copied) in ``[i, j, k]`` order."""
    voxels = kji_to_ijk(slicer.util.arrayFromVolume(node))
    voxels.flags.writeable = False
    return make_volume(voxels, node_affine(node))


def _node_class(voxels: np.ndarray) -> str:
    return "vtkMRMLVectorVolumeNode" if is_rgb(voxels) else "vtkMRMLScalarVolumeNode"


def _set_window_level(node, voxels: np.ndarray) -> None:
    """Fixed window/level over the 0.5-99.5 percentiles (scalar volumes; RGB volumes display as colour)."""
    if is_rgb(voxels):
        return
    window, level = window_level(voxels)
    display = node.GetDisplayNode()
    display.SetAutoWindowLevel(False)
    display.SetWindowLevel(window, level)


def add_output_node(volume, name: str, reference_node):
    """Create the fused volume node, in the reference's study, window/level set, shown over the reference.

    If any step after the node's creation fails the node is removed again: no half-made node stays behind.
    """
    voxels = to_slicer_voxels(volume.array)
    node = slicer.util.addVolumeFromArray(
        voxels, ijkToRAS=volume.affine, name=slicer.mrmlScene.GenerateUniqueName(name), nodeClassName=_node_class(voxels)
    )
    try:
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        study = hierarchy.GetItemParent(hierarchy.GetItemByDataNode(reference_node))
        hierarchy.SetItemParent(hierarchy.GetItemByDataNode(node), study)
        _set_window_level(node, voxels)
        slicer.util.setSliceViewerLayers(background=reference_node, foreground=node, foregroundOpacity=1.0)
    except Exception:
        slicer.mrmlScene.RemoveNode(node)
        raise
    return node


def red_slice_plane():
    """``(normal, centre)`` in RAS of the Red slice view, or ``None`` when the scene has no Red view."""
    slice_node = slicer.mrmlScene.GetNodeByID(RED_SLICE_NODE_ID)
    if slice_node is None:
        return None
    slice_to_ras = slicer.util.arrayFromVTKMatrix(slice_node.GetSliceToRAS())
    return slice_to_ras[:3, 2], slice_to_ras[:3, 3]


def update_preview_node(preview_node, volume):
    """Show a one-slice fused ``Volume`` in the Red view, reusing ``preview_node`` when it fits.

    The preview node is hidden from the data tree and node selectors and is not saved with the scene.
    """
    voxels = to_slicer_voxels(volume.array)
    if preview_node is not None and preview_node.GetClassName() != _node_class(voxels):
        remove_node(preview_node)
        preview_node = None
    if preview_node is None:
        preview_node = slicer.util.addVolumeFromArray(
            voxels, ijkToRAS=volume.affine, name=PREVIEW_NAME, nodeClassName=_node_class(voxels)
        )
        preview_node.SetHideFromEditors(True)
        preview_node.SetSaveWithScene(False)
    else:
        slicer.util.updateVolumeFromArray(preview_node, voxels)
        preview_node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.affine))
    _set_window_level(preview_node, voxels)
    composite = slicer.mrmlScene.GetNodeByID(RED_COMPOSITE_NODE_ID)
    if composite is not None:
        composite.SetForegroundVolumeID(preview_node.GetID())
        composite.SetForegroundOpacity(1.0)
    return preview_node


def remove_node(node) -> None:
    """Remove a node from the scene if it is still there."""
    if node is not None and slicer.mrmlScene.GetNodeByID(node.GetID()) is not None:
        slicer.mrmlScene.RemoveNode(node)
