"""The module panel through ``FakeSlicer`` and the real .ui file: parameter node, Apply/Cancel, progress, errors,
dependency consent, debounced live preview."""
from __future__ import annotations

import pytest

from test_slicer_module import BUNDLE, add_pair, fake, untrained_network  # noqa: F401 (fake is a fixture)


@pytest.fixture
def widget(fake):
    import WDualMine
    from WDualMineLib.runner import FusionRunner

    instance = WDualMine.WDualMineWidget()
    instance.setup()
    instance.logic.runner = FusionRunner(bundle_dir=BUNDLE, load_network=untrained_network)
    return instance


def choose_inputs(widget, fake):
    reference, second = add_pair(fake)
    widget.ui.referenceVolumeSelector.setCurrentNode(reference)
    widget.ui.secondVolumeSelector.setCurrentNode(second)
    widget.ui.deviceComboBox.currentIndex = 2  # CPU
    return reference, second


def test_setup_fills_the_panel_and_waits_for_two_different_inputs(widget, fake):
    ui = widget.ui
    assert ui.taskComboBox.items[0].startswith("CT") and len(ui.taskComboBox.items) == 3
    assert len(ui.deviceComboBox.items) == 3 and len(ui.sliceAxisComboBox.items) == 4
    assert not ui.applyButton.enabled and not ui.progressBar.visible
    reference, _ = add_pair(fake)
    ui.referenceVolumeSelector.setCurrentNode(reference)
    ui.secondVolumeSelector.setCurrentNode(reference)
    assert not ui.applyButton.enabled and "two different" in ui.applyButton.toolTip


def test_gui_changes_are_kept_in_the_parameter_node_and_restored_from_it(widget, fake):
    reference, second = choose_inputs(widget, fake)
    ui = widget.ui
    ui.taskComboBox.currentIndex = 1  # first: a new task moves the strength to the task's default
    ui.strengthSlider.value = 0.8
    ui.registerCheckBox.checked = True
    node = widget.logic.getParameterNode()
    assert node.GetParameter("Strength") == "0.8" and node.GetParameter("Task") == "PET-MRI"
    assert node.GetParameter("Register") == "true" and node.GetParameter("Device") == "cpu"
    assert node.GetNodeReference("ReferenceVolume") is reference and node.GetNodeReference("SecondVolume") is second
    node.SetParameter("Strength", "0.25")
    node.SetParameter("SliceAxis", "1")
    widget.enter()
    assert ui.strengthSlider.value == 0.25 and ui.sliceAxisComboBox.currentIndex == 2 and ui.applyButton.enabled


def test_a_new_task_moves_the_strength_to_its_default(widget, fake):
    from scripts.task_defaults import DEFAULT_STRENGTH

    choose_inputs(widget, fake)
    ui = widget.ui
    ui.strengthSlider.value = 0.9
    for index, task in enumerate(("PET-MRI", "SPECT-MRI", "CT-MRI")):
        ui.taskComboBox.currentIndex = index + 1 if index < 2 else 0
        assert ui.strengthSlider.value == DEFAULT_STRENGTH[task]
        assert widget.logic.getParameterNode().GetParameter("Strength") == str(DEFAULT_STRENGTH[task])
    node = widget.logic.getParameterNode()
    node.SetParameter("Task", "SPECT-MRI")
    node.SetParameter("Strength", "0.33")
    widget.enter()  # restoring a saved scene keeps its strength
    assert ui.taskComboBox.currentIndex == 2 and ui.strengthSlider.value == 0.33


def test_colour_output_is_offered_for_pet_and_spect_only(widget, fake):
    ui = widget.ui
    assert not ui.colorCheckBox.enabled  # CT - MRI
    ui.taskComboBox.currentIndex = 2  # SPECT - MRI
    ui.colorCheckBox.checked = True
    assert ui.colorCheckBox.enabled and widget.logic.getParameterNode().GetParameter("Color") == "true"
    ui.taskComboBox.currentIndex = 0
    assert not ui.colorCheckBox.checked and widget.logic.getParameterNode().GetParameter("Color") == "false"


def test_norm_override_prefills_from_the_volume_window_and_enables_its_values(widget, fake):
    reference, _ = choose_inputs(widget, fake)
    reference.GetDisplayNode().SetWindowLevel(400.0, 40.0)
    ui = widget.ui
    assert not ui.normAFirstSpinBox.enabled
    ui.normAKindComboBox.currentIndex = 1  # window
    assert (ui.normAFirstSpinBox.value, ui.normASecondSpinBox.value) == (40.0, 400.0) and ui.normAFirstSpinBox.enabled
    ui.normBKindComboBox.currentIndex = 2  # percentile
    assert (ui.normBFirstSpinBox.value, ui.normBSecondSpinBox.value) == (0.5, 99.5)
    assert widget.logic.getParameterNode().GetParameter("NormAKind") == "window"


def test_apply_runs_with_progress_and_events_then_reports(widget, fake):
    choose_inputs(widget, fake)
    ui = widget.ui
    ui.batchSizeSpinBox.value = 1
    seen = []
    fake.on_process_events = lambda: seen.append((ui.applyButton.text, ui.progressBar.value, ui.progressBar.visible))
    ui.applyButton.clicked.emit(False)
    output = widget.logic.getParameterNode().GetNodeReference("OutputVolume")
    assert output is not None and output.GetName().startswith("CT + MR fused")
    assert len(seen) >= 4 and all(text == "Cancel" and visible for text, _, visible in seen)
    assert [value for _, value, _ in seen][-1] == 100
    assert ui.applyButton.text == "Apply" and not ui.progressBar.visible and ui.inputsCollapsibleButton.enabled
    assert ui.statusLabel.text.startswith("Created 'CT + MR fused") and fake.errors == []


def test_cancel_click_during_the_run_stops_it_without_a_node(widget, fake):
    choose_inputs(widget, fake)
    widget.ui.batchSizeSpinBox.value = 1
    before = len(fake.scene.volumes())
    fake.on_process_events = lambda: widget.ui.applyButton.clicked.emit(False)  # the user clicks Cancel
    widget.ui.applyButton.clicked.emit(False)
    assert len(fake.scene.volumes()) == before
    assert widget.ui.statusLabel.text.startswith("Cancelled") and widget.ui.applyButton.text == "Apply"
    assert fake.errors == []


def test_errors_reach_the_user_and_leave_the_panel_usable(widget, fake):
    reference, _ = choose_inputs(widget, fake)
    reference.voxels[:] = float("nan")
    before = len(fake.scene.volumes())
    with pytest.raises(ValueError):
        widget.ui.applyButton.clicked.emit(False)
    assert len(fake.errors) == 1 and fake.errors[0].startswith("W-DUALMINE fusion failed.")
    assert len(fake.scene.volumes()) == before
    assert widget.ui.applyButton.text == "Apply" and widget.ui.applyButton.enabled


def test_missing_dependencies_are_installed_with_consent_and_a_restart_is_offered(widget, fake):
    from WDualMineLib.dependencies import InstallReport

    class Installer:
        def __init__(self):
            self.asked = []

        def missing(self, features=()):
            return ["monai==1.6.1"]

        def ensure(self, ask=True, features=()):
            self.asked.append((ask, features))
            return InstallReport(["monai==1.6.1"], "Restart Slicer to finish the installation: monai was loaded.")

    choose_inputs(widget, fake)
    widget.logic.dependencies = Installer()
    before = len(fake.scene.volumes())
    widget.ui.applyButton.clicked.emit(False)
    widget.ui.taskComboBox.currentIndex = 1  # PET - MRI: colour output possible
    widget.ui.colorCheckBox.checked = True
    widget.ui.applyButton.clicked.emit(False)
    assert widget.logic.dependencies.asked == [(True, ()), (True, ("color",))] and fake.restarted
    assert len(fake.scene.volumes()) == before and "Restart Slicer" in widget.ui.statusLabel.text


def test_live_preview_is_debounced_and_follows_the_slider(widget, fake):
    reference, _ = choose_inputs(widget, fake)
    red = fake.scene.GetNodeByID("vtkMRMLSliceNodeRed")
    red.slice_to_ras.array[:3, 3] = (reference.ijk_to_ras @ [10.0, 9.0, 1.0, 1.0])[:3]
    widget.ui.previewCheckBox.checked = True
    assert widget.panel._previewNode is None  # nothing runs before the timer fires
    fake.fire_timers()
    preview = widget.panel._previewNode
    assert preview is not None and preview.voxels.shape == (1, 18, 20)
    first = preview.voxels.copy()
    widget.ui.strengthSlider.value = 0.9
    widget.ui.strengthSlider.value = 1.0  # two moves, one fusion
    fake.fire_timers()
    assert widget.panel._previewNode is preview and (preview.voxels != first).any()
    red.InvokeEvent("ModifiedEvent")  # the Red view moved: a new preview is scheduled
    assert any(t.active for t in fake.timers)
    widget.ui.previewCheckBox.checked = False
    assert fake.scene.GetNodeByID(preview.GetID()) is None and red.observers == {}


def test_scene_close_resets_the_panel_to_a_new_parameter_node(widget, fake):
    choose_inputs(widget, fake)
    widget.ui.strengthSlider.value = 1.2
    fake.scene.Clear()
    from scripts.task_defaults import DEFAULT_STRENGTH

    assert widget.ui.strengthSlider.value == DEFAULT_STRENGTH["CT-MRI"] and widget.ui.referenceVolumeSelector.currentNode() is None
    widget.cleanup()
    assert fake.scene.observers == {}


def test_the_strength_slider_spans_the_documented_range(widget, fake):
    """One range for the docstring, the command line and the slider: the bundle's STRENGTH_RANGE."""
    from scripts.task_defaults import STRENGTH_RANGE

    slider = widget.ui.strengthSlider
    assert (slider.minimum, slider.maximum) == STRENGTH_RANGE
    slider.value = STRENGTH_RANGE[1] + 3.0
    assert slider.value == STRENGTH_RANGE[1]


def test_the_panel_names_the_output_grid(widget, fake):
    """The output grid is a choice (default: the MRI), and the status line names the grid used."""
    reference, second = choose_inputs(widget, fake)
    assert widget.panel.readSettings().reference == "b"
    widget.ui.applyButton.clicked.emit(False)
    assert f"on the grid of '{second.GetName()}'" in widget.ui.statusLabel.text
    widget.ui.referenceComboBox.currentIndex = 1
    assert widget.panel.readSettings().reference == "a"
    assert widget.panel._parameterNode.GetParameter("Reference") == "a"


def test_the_panel_shows_the_command_line_s_message(widget, fake):
    """The same one-line message as ``python -m monai.bundle run`` (both come from the bundle's checks)."""
    from scripts.volume import FusionInputError, FusionOptions, Volume, fuse_volumes
    from test_volume_support import MeanFusionNet

    reference, second = choose_inputs(widget, fake)
    second.voxels[:] = 5.0
    with pytest.raises(FusionInputError) as shown:
        widget.ui.applyButton.clicked.emit(False)
    with pytest.raises(FusionInputError) as command_line:
        fuse_volumes(Volume(reference.voxels.T.copy(), reference.ijk_to_ras),
                     Volume(second.voxels.T.copy(), second.ijk_to_ras), FusionOptions(), network=MeanFusionNet())
    assert str(shown.value) == str(command_line.value) == ("volume B is constant (every voxel is 5): there is "
                                                           "nothing to fuse")
    assert fake.errors == [f"W-DUALMINE fusion failed.\n\n{shown.value}"]
