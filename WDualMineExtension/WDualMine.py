"""W-DUALMINE: fuse a CT, PET or SPECT volume with an MRI volume in 3D Slicer (Slicer >= 5.8).

A thin module file; the work is in ``WDualMineLib``, split by role: ``widget`` (the panel), ``logic`` (scene
I/O), ``runner`` (the bundle's volume pipeline), ``dependencies`` (first-use install), ``parameters``,
``conversion`` (Slicer <-> bundle arrays) and ``sampledata``.
"""
import importlib
import logging
import sys

import numpy as np
import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget,
)

from WDualMineLib.logic import FusionLogic

LIB_MODULES = ("conversion", "parameters", "bundle", "dependencies", "runner", "scene", "sampledata", "logic", "widget")


class WDualMine(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and Help section."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "W-DUALMINE Fusion"
        self.parent.categories = ["Filtering"]
        self.parent.dependencies = []
        self.parent.contributors = ["W-DUALMINE project contributors"]
        self.parent.helpText = (
            "Fuses a CT, PET or SPECT volume with an MRI volume, slice by slice, with the W-DUALMINE "
            "network. Choose the inputs and the task, adjust the detail strength while watching the live preview "
            "of the Red view's slice, then click Apply. The extension's README explains every option."
        )
        self.parent.acknowledgementText = (
            "W-DUALMINE: reliability-weighted dual-expert fusion, built on MONAI and pytorch_wavelets. The sample "
            "CT/MRI pair comes from The Whole Brain Atlas (K. A. Johnson, J. A. Becker, www.med.harvard.edu/aanlib/), "
            "for research and teaching use only."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Add the bundle's sample CT/MRI pair to the Sample Data module (at application startup)."""
    from WDualMineLib import bundle, sampledata

    try:
        bundleDir = bundle.find_bundle()
    except bundle.BundleNotFoundError as error:
        logging.warning("W-DUALMINE sample data not registered: %s", error)
        return
    thumbnail = bundle.MODULE_DIR / "Resources" / "Icons" / "WDualMine.png"
    sampledata.register_sample_data(bundleDir, thumbnail)


class WDualMineWidget(ScriptedLoadableModuleWidget):
    """Loads the panel from Resources/UI/WDualMine.ui; ``WDualMineLib.widget.FusionPanel`` drives it."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from WDualMineLib.widget import FusionPanel

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/WDualMine.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = WDualMineLogic()
        self.panel = FusionPanel(self.ui, self.logic)
        self.panel.setParameterNode(self.logic.getParameterNode())

    def enter(self):
        self.panel.setParameterNode(self.logic.getParameterNode())

    def exit(self):
        self.panel.clearPreview()

    def cleanup(self):
        self.panel.cleanup()

    def onReload(self):
        """Reload the library modules too, then the module file."""
        for name in LIB_MODULES:
            if f"WDualMineLib.{name}" in sys.modules:
                importlib.reload(sys.modules[f"WDualMineLib.{name}"])
        ScriptedLoadableModuleWidget.onReload(self)


class WDualMineLogic(FusionLogic, ScriptedLoadableModuleLogic):
    """``FusionLogic`` with Slicer's parameter node (``getParameterNode``), saved with the scene."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        FusionLogic.__init__(self)


class WDualMineTest(ScriptedLoadableModuleTest):
    """Fuses a synthetic volume pair on CPU and checks the output node's geometry and values."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_FuseSyntheticPairOnCpu()

    def test_FuseSyntheticPairOnCpu(self):
        from WDualMineLib.conversion import ijk_to_kji
        from WDualMineLib.parameters import FusionSettings
        from WDualMineLib.sampledata import synthetic_pair
        from WDualMineLib.scene import node_affine

        self.delayDisplay("Fusing a synthetic CT/MRI pair on CPU")
        logic = WDualMineLogic()
        report = logic.dependencies.ensure(ask=False)
        self.assertFalse(report.needs_restart, report.restart_reason)
        ct, mri, affine = synthetic_pair()
        reference = slicer.util.addVolumeFromArray(ijk_to_kji(ct), ijkToRAS=affine, name="SyntheticCT")
        second = slicer.util.addVolumeFromArray(ijk_to_kji(mri), ijkToRAS=affine, name="SyntheticMRI")
        progress = []
        output = logic.process(reference, second, FusionSettings(device="cpu"), progress=progress.append)
        self.assertIsNotNone(output)
        voxels = slicer.util.arrayFromVolume(output)
        self.assertEqual(voxels.shape, ct.shape[::-1])
        np.testing.assert_allclose(node_affine(output), affine, atol=1e-6)
        self.assertTrue(np.isfinite(voxels).all())
        self.assertGreaterEqual(float(voxels.min()), 0.0)
        self.assertLessEqual(float(voxels.max()), 1.0)
        self.assertGreater(float(voxels.std()), 0.0)
        self.assertAlmostEqual(progress[-1], 1.0)
        self.delayDisplay("Test passed")
