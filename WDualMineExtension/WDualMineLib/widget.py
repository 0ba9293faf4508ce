"""The module panel's behaviour: GUI <-> parameter node, Apply/Cancel with progress, debounced live preview.

:class:`FusionPanel` drives the widgets loaded from ``Resources/UI/WDualMine.ui`` (``self.ui.<objectName>``)
and calls the module logic (``WDualMineLogic``) for the work. Fusion runs in Slicer's GUI thread; the progress
callback calls ``slicer.app.processEvents()`` after every slice batch, which repaints the progress bar and lets
the Apply button, relabelled Cancel, be clicked.
"""
from __future__ import annotations

import logging
import time

import qt
import slicer

from .parameters import (
    COLOR_TASKS, DEVICES, NORM_KINDS, OUTPUT_ROLE, REFERENCE_ROLE, REFERENCES, SECOND_ROLE, SLICE_AXES, TASKS,
    FusionSettings, NormOverride, load_settings, save_settings, strength_range, task_default_strength,
)

TASK_LABELS = {"CT-MRI": "CT \u2013 MRI", "PET-MRI": "PET \u2013 MRI", "SPECT-MRI": "SPECT \u2013 MRI"}
DEVICE_LABELS = {"auto": "Automatic (GPU if available)", "cuda": "CUDA (GPU)", "cpu": "CPU"}
AXIS_LABELS = {-1: "Automatic", 0: "I (voxel axis 0)", 1: "J (voxel axis 1)", 2: "K (voxel axis 2)"}
NORM_LABELS = {"auto": "Task default", "window": "Window (level, width)", "percentile": "Percentiles (low, high)"}
REFERENCE_LABELS = {"b": "MRI (default: usually the finer grid)", "a": "CT / PET / SPECT"}
PERCENTILE_DEFAULTS = (0.5, 99.5)
PREVIEW_DELAY_MS = 300


class FusionPanel:
    """Controller of the module panel; ``ui`` is ``slicer.util.childWidgetVariables`` of the loaded .ui."""

    def __init__(self, ui, logic):
        self.ui = ui
        self.logic = logic
        self._parameterNode = None
        self._updatingGui = False
        self._running = False
        self._cancelRequested = False
        self._previewNode = None
        self._previewKey = None
        self._sliceObservation = None
        self._startTime = 0.0
        self._previewTimer = qt.QTimer()
        self._previewTimer.setSingleShot(True)
        self._previewTimer.setInterval(PREVIEW_DELAY_MS)
        self._previewTimer.timeout.connect(self.updatePreview)
        self._fill(ui.taskComboBox, [TASK_LABELS[t] for t in TASKS])
        self._fill(ui.deviceComboBox, [DEVICE_LABELS[d] for d in DEVICES])
        self._fill(ui.sliceAxisComboBox, [AXIS_LABELS[a] for a in SLICE_AXES])
        self._fill(ui.referenceComboBox, [REFERENCE_LABELS[r] for r in REFERENCES])
        ui.strengthSlider.minimum, ui.strengthSlider.maximum = strength_range()  # the one documented range
        for combo in (ui.normAKindComboBox, ui.normBKindComboBox):
            self._fill(combo, [NORM_LABELS[k] for k in NORM_KINDS])
        ui.progressBar.hide()
        for selector in (ui.referenceVolumeSelector, ui.secondVolumeSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.onGuiChanged)  # not the (bool) overload
        ui.taskComboBox.currentIndexChanged.connect(self.onTaskChanged)
        for combo in (ui.taskComboBox, ui.deviceComboBox, ui.sliceAxisComboBox, ui.referenceComboBox):
            combo.currentIndexChanged.connect(self.onGuiChanged)
        ui.normAKindComboBox.currentIndexChanged.connect(lambda *_: self.onNormKindChanged("A"))
        ui.normBKindComboBox.currentIndexChanged.connect(lambda *_: self.onNormKindChanged("B"))
        for box in (ui.previewCheckBox, ui.registerCheckBox, ui.colorCheckBox):
            box.toggled.connect(self.onGuiChanged)
        for spin in (ui.strengthSlider, ui.batchSizeSpinBox, ui.normAFirstSpinBox, ui.normASecondSpinBox,
                     ui.normBFirstSpinBox, ui.normBSecondSpinBox):
            spin.valueChanged.connect(self.onGuiChanged)
        ui.applyButton.clicked.connect(self.onApply)
        self._sceneObservations = [
            slicer.mrmlScene.AddObserver(slicer.mrmlScene.EndCloseEvent, self.onSceneChanged),
            slicer.mrmlScene.AddObserver(slicer.mrmlScene.EndImportEvent, self.onSceneChanged),
        ]

    @staticmethod
    def _fill(combo, labels) -> None:
        combo.clear()
        for label in labels:
            combo.addItem(label)

    # -- parameter node <-> GUI ------------------------------------------------------------------------------

    def setParameterNode(self, node) -> None:
        """Show the settings stored in ``node`` and keep writing GUI changes into it."""
        self._parameterNode = node
        self._updatingGui = True
        try:
            self._writeGui(load_settings(node))
            self.ui.referenceVolumeSelector.setCurrentNode(node.GetNodeReference(REFERENCE_ROLE))
            self.ui.secondVolumeSelector.setCurrentNode(node.GetNodeReference(SECOND_ROLE))
        finally:
            self._updatingGui = False
        self._updateState()

    def _writeGui(self, settings: FusionSettings) -> None:
        ui = self.ui
        ui.taskComboBox.currentIndex = TASKS.index(settings.task)
        ui.deviceComboBox.currentIndex = DEVICES.index(settings.device)
        ui.sliceAxisComboBox.currentIndex = SLICE_AXES.index(settings.slice_axis)
        ui.referenceComboBox.currentIndex = REFERENCES.index(settings.reference)
        ui.strengthSlider.value = settings.strength
        ui.batchSizeSpinBox.value = settings.batch_size
        ui.previewCheckBox.checked = settings.preview
        ui.registerCheckBox.checked = settings.register
        ui.colorCheckBox.checked = settings.color
        for side, norm in (("A", settings.norm_a), ("B", settings.norm_b)):
            kind, first, second = self._normWidgets(side)
            kind.currentIndex = NORM_KINDS.index(norm.kind)
            first.value = norm.first
            second.value = norm.second

    def _normWidgets(self, side: str):
        """``(kind combo box, first value, second value)`` of the reference (``A``) or MRI (``B``) override."""
        ui = self.ui
        if side == "A":
            return ui.normAKindComboBox, ui.normAFirstSpinBox, ui.normASecondSpinBox
        return ui.normBKindComboBox, ui.normBFirstSpinBox, ui.normBSecondSpinBox

    def readSettings(self) -> FusionSettings:
        """The settings currently shown in the GUI."""
        ui = self.ui

        def norm(side: str) -> NormOverride:
            kind, first, second = self._normWidgets(side)
            return NormOverride(NORM_KINDS[kind.currentIndex], float(first.value), float(second.value))

        return FusionSettings(
            task=TASKS[ui.taskComboBox.currentIndex],
            strength=float(ui.strengthSlider.value),
            device=DEVICES[ui.deviceComboBox.currentIndex],
            slice_axis=SLICE_AXES[ui.sliceAxisComboBox.currentIndex],
            reference=REFERENCES[ui.referenceComboBox.currentIndex],
            register=bool(ui.registerCheckBox.checked),
            color=bool(ui.colorCheckBox.checked),
            batch_size=int(ui.batchSizeSpinBox.value),
            preview=bool(ui.previewCheckBox.checked),
            norm_a=norm("A"),
            norm_b=norm("B"),
        )

    def onGuiChanged(self, *_args) -> None:
        """Store the GUI into the parameter node, refresh the buttons, and schedule a preview."""
        if self._updatingGui or self._parameterNode is None:
            return
        node = self._parameterNode
        save_settings(node, self.readSettings())
        node.SetNodeReferenceID(REFERENCE_ROLE, self.ui.referenceVolumeSelector.currentNodeID)
        node.SetNodeReferenceID(SECOND_ROLE, self.ui.secondVolumeSelector.currentNodeID)
        self._updateState()

    def onTaskChanged(self, *_args) -> None:
        """A new task moves the strength slider to that task's default (the bundle's ``task_defaults``)."""
        if not self._updatingGui:
            self.ui.strengthSlider.value = task_default_strength(TASKS[self.ui.taskComboBox.currentIndex])

    def onNormKindChanged(self, side: str) -> None:
        """Prefill the two values of a normalisation override: the volume's display window, or 0.5-99.5 %."""
        if not self._updatingGui:
            kindBox, first, second = self._normWidgets(side)
            kind = NORM_KINDS[kindBox.currentIndex]
            node = self._inputs()[0 if side == "A" else 1]
            values = None
            if kind == "percentile":
                values = PERCENTILE_DEFAULTS
            elif kind == "window" and node is not None and node.GetDisplayNode() is not None:
                values = (node.GetDisplayNode().GetLevel(), node.GetDisplayNode().GetWindow())
            if values is not None:
                first.value, second.value = values
        self.onGuiChanged()

    def _inputs(self):
        return self.ui.referenceVolumeSelector.currentNode(), self.ui.secondVolumeSelector.currentNode()

    def _updateState(self) -> None:
        """Enable Apply only for two different inputs, colour output only for PET/SPECT; follow the preview box."""
        reference, second = self._inputs()
        ready = reference is not None and second is not None and reference is not second
        if not self._running:
            self.ui.applyButton.enabled = ready
            self.ui.applyButton.toolTip = (
                "Fuse the two volumes into a new volume." if ready else "Select two different input volumes."
            )
        for side in ("A", "B"):
            kind, first, second = self._normWidgets(side)
            first.enabled = second.enabled = NORM_KINDS[kind.currentIndex] != "auto"
        colorPossible = TASKS[self.ui.taskComboBox.currentIndex] in COLOR_TASKS
        self.ui.colorCheckBox.enabled = colorPossible
        if not colorPossible and self.ui.colorCheckBox.checked:
            self.ui.colorCheckBox.checked = False  # CT - MRI has no colour output
        if self.ui.previewCheckBox.checked and ready and not self._running:
            self._observeRedSlice(True)
            self._previewTimer.start()
        else:
            self._observeRedSlice(False)
            self.clearPreview()

    # -- Apply / Cancel --------------------------------------------------------------------------------------

    def onApply(self) -> None:
        """Run the fusion, or request cancellation when it is already running (the button reads Cancel)."""
        if self._running:
            self._cancelRequested = True
            self.ui.applyButton.text = "Cancelling..."
            return
        reference, second = self._inputs()
        settings = self.readSettings()
        with slicer.util.tryWithErrorDisplay("W-DUALMINE fusion failed.", waitCursor=False):
            if not self._ensureDependencies(settings.features()):
                return
            self.clearPreview()
            self._setRunning(True)
            notes = []
            try:
                output = self.logic.process(
                    reference, second, settings, self.onProgress, self._isCancelRequested, notes.append
                )
            finally:
                self._setRunning(False)
            if output is None:
                self._status("Cancelled: no volume was created.")
                return
            self._parameterNode.SetNodeReferenceID(OUTPUT_ROLE, output.GetID())
            self.ui.previewCheckBox.checked = False  # the result replaces the preview in the Red view
            elapsed = time.time() - self._startTime
            grid = self.logic.gridNode(reference, second, settings).GetName()
            self._status(f"Created '{output.GetName()}' on the grid of '{grid}' in {elapsed:.1f} s."
                         + "".join(f"\n- {n}" for n in notes))

    def _isCancelRequested(self) -> bool:
        return self._cancelRequested

    def onProgress(self, fraction: float) -> None:
        """Pipeline progress (0..1): update the bar with the time left, and let Qt process the Cancel click."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.ui.progressBar.value = int(round(100 * fraction))
        elapsed = time.time() - self._startTime
        if 0.02 < fraction < 1.0:
            self.ui.progressBar.format = f"%p%  (about {elapsed * (1 - fraction) / fraction:.0f} s left)"
        slicer.app.processEvents()

    def _setRunning(self, running: bool) -> None:
        self._running = running
        self._cancelRequested = False
        if running:
            self._startTime = time.time()
        self.ui.inputsCollapsibleButton.enabled = not running
        self.ui.advancedCollapsibleButton.enabled = not running
        self.ui.applyButton.text = "Cancel" if running else "Apply"
        self.ui.progressBar.value = 0
        self.ui.progressBar.format = "%p%"
        self.ui.progressBar.setVisible(running)
        if running:
            self._status("Fusing...")
        self._updateState()

    def _ensureDependencies(self, features) -> bool:
        """Install missing packages with consent; False (after offering a restart) when Slicer must restart."""
        if not self.logic.dependencies.missing(features):
            return True
        self._status("Installing Python dependencies...")
        slicer.app.processEvents()
        report = self.logic.dependencies.ensure(ask=True, features=features)
        if report.needs_restart:
            self._status(report.restart_reason)
            if slicer.util.confirmYesNoDisplay(report.restart_reason + "\n\nRestart Slicer now?"):
                slicer.util.restart()
            return False
        self._status("Dependencies installed: " + ", ".join(report.installed))
        return True

    def _status(self, text: str) -> None:
        self.ui.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)

    # -- live preview ----------------------------------------------------------------------------------------

    def _observeRedSlice(self, observe: bool) -> None:
        """Re-preview when the Red view moves to another slice."""
        sliceNode = slicer.mrmlScene.GetNodeByID("vtkMRMLSliceNodeRed")
        if observe and self._sliceObservation is None and sliceNode is not None:
            tag = sliceNode.AddObserver("ModifiedEvent", lambda *_: self._previewTimer.start())
            self._sliceObservation = (sliceNode, tag)
        elif not observe and self._sliceObservation is not None:
            sliceNode, tag = self._sliceObservation
            sliceNode.RemoveObserver(tag)
            self._sliceObservation = None

    def updatePreview(self) -> None:
        """Fuse the Red view's current slice (debounced); problems go to the status line, not a dialog."""
        reference, second = self._inputs()
        if self._running or not self.ui.previewCheckBox.checked or reference is None or second is None:
            return
        settings = self.readSettings()
        if self.logic.dependencies.missing(settings.features(preview=True)):
            self._status("Live preview needs the Python dependencies: click Apply once to install them.")
            return
        try:
            self._previewNode, self._previewKey = self.logic.preview(
                reference, second, settings, self._previewNode, self._previewKey
            )
        except Exception as error:
            logging.exception("W-DUALMINE preview failed")
            self._status(f"Preview failed: {error}")
            return
        if self._previewNode is None:
            self._status("Preview: the Red view does not cross the output grid's volume.")

    def clearPreview(self) -> None:
        """Remove the preview node (it is never saved with the scene)."""
        self._previewTimer.stop()
        self.logic.removePreview(self._previewNode)
        self._previewNode = None
        self._previewKey = None

    def onSceneChanged(self, *_args) -> None:
        """After a scene close or import: drop the stale preview and show the scene's parameter node."""
        self._previewNode = None
        self._previewKey = None
        self.setParameterNode(self.logic.getParameterNode())

    def cleanup(self) -> None:
        """Forget observers, timers and the preview node (module closed or reloaded)."""
        for tag in self._sceneObservations:
            slicer.mrmlScene.RemoveObserver(tag)
        self._observeRedSlice(False)
        self.clearPreview()
