"""MRML and VTK side of the ``FakeSlicer`` test double: the scene, the node classes the module touches (with
exactly the methods it calls), the subject hierarchy, and ``vtkMatrix4x4``.

Node IDs follow Slicer's pattern (class name + counter); the Red slice view's nodes are the singletons
``vtkMRMLSliceNodeRed`` and ``vtkMRMLSliceCompositeNodeRed``, as in the application.
"""
from __future__ import annotations

import numpy as np


class FakeMatrix4x4:
    def __init__(self, array=None):
        self.array = np.eye(4) if array is None else np.array(array, dtype=float)


class FakeObservable:
    def __init__(self):
        self.observers = {}

    def AddObserver(self, event, callback):
        tag = len(self.observers) + 1
        self.observers[tag] = (event, callback)
        return tag

    def RemoveObserver(self, tag):
        self.observers.pop(tag, None)

    def InvokeEvent(self, event):
        for observed, callback in list(self.observers.values()):
            if observed == event:
                callback(self, event)


class FakeNode(FakeObservable):
    """vtkMRMLNode: ID, name, class name, editor/scene-saving flags."""

    def __init__(self, class_name, name, node_id, scene):
        super().__init__()
        self.class_name, self.name, self.id, self.scene = class_name, name, node_id, scene
        self.hide_from_editors, self.save_with_scene = False, True

    def GetID(self):
        return self.id

    def GetName(self):
        return self.name

    def GetClassName(self):
        return self.class_name

    def SetHideFromEditors(self, hide):
        self.hide_from_editors = bool(hide)

    def SetSaveWithScene(self, save):
        self.save_with_scene = bool(save)


class FakeScriptedModuleNode(FakeNode):
    """vtkMRMLScriptedModuleNode: string parameters and node references."""

    def __init__(self, *args):
        super().__init__(*args)
        self.parameters, self.references = {}, {}

    def SetParameter(self, name, value):
        self.parameters[name] = str(value)

    def GetParameter(self, name):
        return self.parameters.get(name, "")

    def SetNodeReferenceID(self, role, node_id):
        self.references[role] = node_id or None

    def GetNodeReference(self, role):
        return self.scene.GetNodeByID(self.references.get(role))


class FakeVolumeNode(FakeNode):
    """vtkMRMLScalarVolumeNode / vtkMRMLVectorVolumeNode: voxels ``[k, j, i(, c)]``, IJKToRAS, display, transform."""

    def __init__(self, *args):
        super().__init__(*args)
        self.voxels, self.ijk_to_ras, self.display, self.transform_id = None, np.eye(4), None, None

    def GetIJKToRASMatrix(self, matrix):
        matrix.array = self.ijk_to_ras.copy()

    def SetIJKToRASMatrix(self, matrix):
        self.ijk_to_ras = matrix.array.copy()

    def GetDisplayNode(self):
        return self.display

    def SetAndObserveTransformNodeID(self, node_id):
        self.transform_id = node_id

    def GetParentTransformNode(self):
        return self.scene.GetNodeByID(self.transform_id)


class FakeDisplayNode(FakeNode):
    """vtkMRMLScalarVolumeDisplayNode: window/level."""

    def __init__(self, *args):
        super().__init__(*args)
        self.window, self.level, self.auto_window_level = 1.0, 0.0, True

    def SetAutoWindowLevel(self, auto):
        self.auto_window_level = bool(auto)

    def SetWindowLevel(self, window, level):
        self.window, self.level = float(window), float(level)

    def GetWindow(self):
        return self.window

    def GetLevel(self):
        return self.level


class FakeTransformNode(FakeNode):
    """vtkMRMLLinearTransformNode (``linear=False`` plays a non-linear transform)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.matrix_to_world, self.linear = np.eye(4), True

    def IsTransformToWorldLinear(self):
        return self.linear

    def GetMatrixTransformToWorld(self, matrix):
        matrix.array = self.matrix_to_world.copy()


class FakeSliceNode(FakeNode):
    """vtkMRMLSliceNode: SliceToRAS (column 2 = normal, column 3 = centre)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.slice_to_ras = FakeMatrix4x4()

    def GetSliceToRAS(self):
        return self.slice_to_ras


class FakeSliceCompositeNode(FakeNode):
    """vtkMRMLSliceCompositeNode: the foreground layer."""

    def __init__(self, *args):
        super().__init__(*args)
        self.foreground_id, self.foreground_opacity = None, 0.0

    def SetForegroundVolumeID(self, node_id):
        self.foreground_id = node_id

    def SetForegroundOpacity(self, opacity):
        self.foreground_opacity = opacity


NODE_CLASSES = {
    "vtkMRMLScriptedModuleNode": FakeScriptedModuleNode,
    "vtkMRMLScalarVolumeNode": FakeVolumeNode,
    "vtkMRMLVectorVolumeNode": FakeVolumeNode,
    "vtkMRMLScalarVolumeDisplayNode": FakeDisplayNode,
    "vtkMRMLLinearTransformNode": FakeTransformNode,
    "vtkMRMLSliceNode": FakeSliceNode,
    "vtkMRMLSliceCompositeNode": FakeSliceCompositeNode,
}


class FakeScene(FakeObservable):
    """vtkMRMLScene, with the Red slice view's two singleton nodes as in the application."""

    EndCloseEvent, EndImportEvent = 66001, 66002

    def __init__(self):
        super().__init__()
        self.nodes, self.counter = {}, 0
        self._add("vtkMRMLSliceNode", "Red", "vtkMRMLSliceNodeRed")
        self._add("vtkMRMLSliceCompositeNode", "Red", "vtkMRMLSliceCompositeNodeRed")

    def _add(self, class_name, name, node_id):
        node = NODE_CLASSES[class_name](class_name, name, node_id, self)
        self.nodes[node_id] = node
        return node

    def AddNewNodeByClass(self, class_name, name=""):
        self.counter += 1
        return self._add(class_name, name, f"{class_name}{self.counter}")

    def GetNodeByID(self, node_id):
        return self.nodes.get(node_id) if node_id else None

    def RemoveNode(self, node):
        self.nodes.pop(node.GetID(), None)
        if getattr(node, "display", None) is not None:
            self.nodes.pop(node.display.GetID(), None)

    def GenerateUniqueName(self, name):
        names = {node.name for node in self.nodes.values()}
        candidate, suffix = name, 0
        while candidate in names:
            suffix += 1
            candidate = f"{name}_{suffix}"
        return candidate

    def Clear(self, removeSingletons=0):
        keep = ("vtkMRMLSliceNode", "vtkMRMLSliceCompositeNode")
        self.nodes = {k: n for k, n in self.nodes.items() if n.class_name in keep}
        self.InvokeEvent(self.EndCloseEvent)

    def volumes(self):
        """Test helper: the volume nodes in the scene."""
        return [n for n in self.nodes.values() if n.class_name.endswith("VolumeNode")]


class FakeSubjectHierarchy:
    """vtkMRMLSubjectHierarchyNode: one item per data node, all under the scene item until re-parented."""

    SCENE_ITEM = 1

    def __init__(self):
        self.parents, self.items = {}, {}

    def GetItemByDataNode(self, node):
        item = self.items.setdefault(node.GetID(), len(self.items) + 100)
        self.parents.setdefault(item, self.SCENE_ITEM)
        return item

    def GetItemParent(self, item):
        return self.parents[item]

    def SetItemParent(self, item, parent):
        self.parents[item] = parent
