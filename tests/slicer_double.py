"""``FakeSlicer``: a test double of exactly the 3D Slicer, MRML and VTK calls the WDualMine module makes.

3D Slicer cannot run in CI, so the module is imported against these stand-ins (Qt widgets: ``qt_double``).
Each fake mirrors the real call's signature and observable effect in Slicer 5.8: ``arrayFromVolume`` returns
the node's ``[k, j, i]`` voxels (a writable view), ``addVolumeFromArray`` creates a node with an IJKToRAS
matrix and a display node, ``tryWithErrorDisplay`` shows the error and re-raises it. Everything the module
calls is listed in ``UTIL_FUNCTIONS``; other ``slicer.util`` names do not exist here.
"""
from __future__ import annotations

import contextlib
import sys
import types
import unittest
from pathlib import Path

import numpy as np

from qt_double import FakeTimer, load_ui

EXTENSION_DIR = Path(__file__).resolve().parents[1] / "WDualMineExtension"
FAKED_MODULES = ("slicer", "slicer.util", "slicer.ScriptedLoadableModule", "vtk", "qt", "SampleData")


# -- VTK and MRML ------------------------------------------------------------------------------------------
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
    """vtkMRMLScene with the Red slice view's nodes (unless ``views=False``, as in a test run without GUI)."""

    EndCloseEvent, EndImportEvent = 66001, 66002

    def __init__(self, views=True):
        super().__init__()
        self.nodes, self.counter = {}, 0
        if views:
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


class FakeModuleParent:
    """The ``parent`` a scripted module receives: the fields the module fills in."""

    def __init__(self):
        self.title, self.categories, self.dependencies = "", [], []
        self.contributors, self.helpText, self.acknowledgementText = [], "", ""


UTIL_FUNCTIONS = (
    "arrayFromVolume", "addVolumeFromArray", "updateVolumeFromArray", "arrayFromVTKMatrix", "vtkMatrixFromArray",
    "setSliceViewerLayers", "tryWithErrorDisplay", "confirmOkCancelDisplay", "confirmYesNoDisplay", "restart",
    "pip_install", "showStatusMessage", "loadUI", "childWidgetVariables",
)


class FakeSlicer:
    """Installs fake ``slicer``, ``vtk``, ``qt`` and ``SampleData`` modules; records what the module did."""

    def __init__(self, views=True):
        self.scene = FakeScene(views)
        self.hierarchy = FakeSubjectHierarchy()
        self.errors, self.statuses, self.pip_calls, self.layers, self.sample_sources = [], [], [], [], []
        self.confirm_answer, self.restarted, self.timers = True, False, []
        self.process_events_calls, self.on_process_events, self.startup_callbacks = 0, None, []
        self.modules = self._build_modules()

    # slicer.util ------------------------------------------------------------------------------------------
    def arrayFromVolume(self, node):
        return node.voxels

    def addVolumeFromArray(self, narray, ijkToRAS=None, name=None, nodeClassName=None):
        node = self.scene.AddNewNodeByClass(nodeClassName or "vtkMRMLScalarVolumeNode", name or "")
        if ijkToRAS is not None:
            node.ijk_to_ras = np.array(ijkToRAS, dtype=float).reshape(4, 4)
        node.display = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode", "")
        self.updateVolumeFromArray(node, narray)
        return node

    def updateVolumeFromArray(self, volumeNode, narray):
        volumeNode.voxels = np.array(narray)

    def arrayFromVTKMatrix(self, vmatrix):
        return vmatrix.array.copy()

    def vtkMatrixFromArray(self, narray):
        return FakeMatrix4x4(narray)

    def setSliceViewerLayers(self, background="keep-current", foreground="keep-current", foregroundOpacity=None, **_):
        self.layers.append({"background": background, "foreground": foreground, "opacity": foregroundOpacity})

    @contextlib.contextmanager
    def tryWithErrorDisplay(self, message=None, show=True, waitCursor=False):
        try:
            yield
        except Exception as error:
            if show:
                self.errors.append(f"{message}\n\n{error}" if message else str(error))
            raise

    def confirmOkCancelDisplay(self, text, windowTitle=None, parent=None, **kwargs):
        self.statuses.append(text)
        return self.confirm_answer

    confirmYesNoDisplay = confirmOkCancelDisplay

    def restart(self):
        self.restarted = True

    def pip_install(self, requirements):
        self.pip_calls.append(requirements)

    def showStatusMessage(self, message, duration=0):
        self.statuses.append(message)

    def loadUI(self, path):
        return load_ui(path)

    def childWidgetVariables(self, widget):
        return types.SimpleNamespace(**widget.children)

    # slicer.app -------------------------------------------------------------------------------------------
    def processEvents(self, *flags):
        self.process_events_calls += 1
        if self.on_process_events is not None:
            self.on_process_events()

    def connect(self, signal, slot):
        self.startup_callbacks.append((signal, slot))

    def fire_timers(self):
        """Test helper: let every started timer time out once (the event loop of the double)."""
        for timer in [t for t in self.timers if t.active]:
            timer.active = not timer.singleShot
            timer.timeout.emit()

    # module assembly --------------------------------------------------------------------------------------
    def _build_modules(self):
        fake = self
        util = types.ModuleType("slicer.util")
        for name in UTIL_FUNCTIONS:
            setattr(util, name, getattr(self, name))
        slicer = types.ModuleType("slicer")
        slicer.util, slicer.mrmlScene, slicer.app = util, self.scene, self
        slicer.vtkMRMLSubjectHierarchyNode = types.SimpleNamespace(GetSubjectHierarchyNode=lambda scene: fake.hierarchy)

        class ScriptedLoadableModule:
            def __init__(self, parent):
                self.parent = parent

        class ScriptedLoadableModuleWidget:
            def __init__(self, parent=None):
                self.parent, self.moduleName = parent, type(self).__name__[: -len("Widget")]

            def resourcePath(self, filename):
                return str(Path(sys.modules[type(self).__module__].__file__).parent / "Resources" / filename)

            def setup(self):
                self.layout = types.SimpleNamespace(widgets=[], addWidget=lambda w: self.layout.widgets.append(w))

            def onReload(self):
                fake.reloaded = self.moduleName

        class ScriptedLoadableModuleLogic:
            def __init__(self, parent=None):
                self.moduleName = type(self).__name__[: -len("Logic")]

            def getParameterNode(self):
                for node in fake.scene.nodes.values():
                    if node.class_name == "vtkMRMLScriptedModuleNode" and node.name == self.moduleName:
                        return node
                return fake.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", self.moduleName)

        class ScriptedLoadableModuleTest(unittest.TestCase):
            def delayDisplay(self, message, requestedDelay=None, msec=None):
                fake.statuses.append(message)

        scripted = types.ModuleType("slicer.ScriptedLoadableModule")
        for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
                    ScriptedLoadableModuleTest):
            setattr(scripted, cls.__name__, cls)
        slicer.ScriptedLoadableModule = scripted
        vtk = types.ModuleType("vtk")
        vtk.vtkMatrix4x4 = FakeMatrix4x4
        qt = types.ModuleType("qt")
        qt.QTimer = lambda: FakeTimer(fake.timers)
        sample_data = types.ModuleType("SampleData")
        sample_data.SampleDataLogic = types.SimpleNamespace(
            registerCustomSampleDataSource=lambda **kwargs: fake.sample_sources.append(kwargs))
        return {"slicer": slicer, "slicer.util": util, "slicer.ScriptedLoadableModule": scripted, "vtk": vtk,
                "qt": qt, "SampleData": sample_data}

    @contextlib.contextmanager
    def installed(self):
        """Put the fakes in ``sys.modules`` and the extension on ``sys.path``; import the module fresh inside."""
        saved = {name: sys.modules.get(name) for name in FAKED_MODULES}
        stale = [m for m in sys.modules if m == "WDualMine" or m.startswith("WDualMineLib")]
        for name in stale:
            del sys.modules[name]
        sys.modules.update(self.modules)
        sys.path.insert(0, str(EXTENSION_DIR))
        try:
            yield
        finally:
            sys.path.remove(str(EXTENSION_DIR))
            for name in [m for m in sys.modules if m == "WDualMine" or m.startswith("WDualMineLib")]:
                del sys.modules[name]
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
