"""``FakeSlicer``: a test double of exactly the 3D Slicer, MRML and VTK calls the WDualMine module makes.

3D Slicer cannot run in CI, so the module is imported against these stand-ins (scene and nodes:
``mrml_double``; Qt widgets: ``qt_double``).
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

from mrml_double import FakeMatrix4x4, FakeScene, FakeSubjectHierarchy
from qt_double import FakeTimer, load_ui

EXTENSION_DIR = Path(__file__).resolve().parents[1] / "WDualMineExtension"
FAKED_MODULES = ("slicer", "slicer.util", "slicer.ScriptedLoadableModule", "vtk", "qt", "SampleData")


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

    def __init__(self):
        self.scene, self.hierarchy = FakeScene(), FakeSubjectHierarchy()
        self.errors, self.statuses, self.pip_calls, self.layers, self.sample_sources = [], [], [], [], []
        self.confirm_answer, self.restarted, self.timers = True, False, []
        self.on_process_events, self.startup_callbacks = None, []
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
