"""The WDualMine Slicer module through ``FakeSlicer``: structure, API conformance, and the scene logic end to end
(real bundle pipeline ``scripts.volume.fuse_volumes`` with the untrained ``scripts.network.WDualMine``)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from slicer_double import EXTENSION_DIR, FakeModuleParent, FakeSlicer

REPO = EXTENSION_DIR.parent
BUNDLE = REPO / "monai_bundle"
SOURCES = sorted(EXTENSION_DIR.rglob("*.py"))


def untrained_network(task, weights=None, device="cpu", strength=0.5):
    """The real W-DUALMINE architecture, narrow (fast on CI), with fixed random weights (no trained weights needed).

    Every weight is perturbed, the zero-initialised detail head included, so that the strength matters.
    """
    from scripts.network import WDualMine

    torch.manual_seed(0)
    network = WDualMine(channels=(4, 8, 8, 16), strength=strength)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return network.to(device).eval()


@pytest.fixture
def fake():
    """FakeSlicer installed; torch on one thread (the tiny CI volumes gain nothing from more on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    double = FakeSlicer()
    try:
        with double.installed():
            yield double
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def module(fake):
    import WDualMine

    return WDualMine


@pytest.fixture
def logic(module):
    from WDualMineLib.runner import FusionRunner

    instance = module.WDualMineLogic()
    instance.runner = FusionRunner(bundle_dir=BUNDLE, load_network=untrained_network)
    return instance


def add_pair(fake, shape=(20, 18, 4), mri_affine=None):
    """Synthetic CT and MRI nodes (the self-test's phantom); the CT sits in a study item of the data tree."""
    from WDualMineLib.conversion import ijk_to_kji
    from WDualMineLib.sampledata import synthetic_pair

    ct, mri, affine = synthetic_pair(shape)
    reference = fake.addVolumeFromArray(ijk_to_kji(ct), ijkToRAS=affine, name="CT")
    second = fake.addVolumeFromArray(ijk_to_kji(mri), ijkToRAS=affine if mri_affine is None else mri_affine, name="MR")
    fake.hierarchy.SetItemParent(fake.hierarchy.GetItemByDataNode(reference), 7)
    return reference, second


# -- structure and API conformance ---------------------------------------------------------------------------
def test_module_classes_and_parent_fields(module, fake):
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget,
    )

    for name, base in (("WDualMine", ScriptedLoadableModule), ("WDualMineWidget", ScriptedLoadableModuleWidget),
                       ("WDualMineLogic", ScriptedLoadableModuleLogic), ("WDualMineTest", ScriptedLoadableModuleTest)):
        assert issubclass(getattr(module, name), base), name
    parent = FakeModuleParent()
    module.WDualMine(parent)
    assert parent.title and parent.helpText and parent.acknowledgementText
    assert parent.categories == ["Filtering"] and parent.contributors and parent.dependencies == []
    assert [signal for signal, _ in fake.startup_callbacks] == ["startupCompleted()"]
    assert (EXTENSION_DIR / "WDualMine.py").stat().st_size < 6500, "the module file should stay thin"


def test_every_slicer_util_call_exists_in_slicer_5_8():
    known = {line.strip() for line in (REPO / "tests/data/slicer_5_8_util_names.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    called = {name for path in SOURCES for name in re.findall(r"slicer\.util\.(\w+)", path.read_text())}
    assert called, "the scan found no slicer.util call"
    assert called <= known, f"not in Slicer 5.8: {sorted(called - known)}"
    from slicer_double import UTIL_FUNCTIONS

    assert set(UTIL_FUNCTIONS) <= known, "the test double fakes a slicer.util function Slicer 5.8 lacks"


def test_every_widget_the_module_reads_is_in_the_ui_file():
    ui = ET.parse(EXTENSION_DIR / "Resources/UI/WDualMine.ui")
    defined = {w.get("name") for w in ui.iter("widget")}
    read = {name for path in SOURCES for name in re.findall(r"\bui\.(\w+)", path.read_text())}
    assert len(read) >= 20
    assert read <= defined, f"missing in WDualMine.ui: {sorted(read - defined)}"


def test_cmake_lists_every_python_file_and_resource():
    cmake = (EXTENSION_DIR / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "WDualMine")
    listed = set(re.findall(r"^\s+(\S+\.(?:py|ui|png))\s*$", cmake, re.M))
    on_disk = {str(p.relative_to(EXTENSION_DIR)) for p in EXTENSION_DIR.rglob("*") if p.suffix in (".py", ".ui", ".png")}
    assert listed == on_disk
    top = (REPO / "CMakeLists.txt").read_text()
    for needle in ("EXTENSION_DEPENDS \"PyTorch\"", "find_package(Slicer REQUIRED)", "add_subdirectory(WDualMineExtension)"):
        assert needle in top
    assert "WITH_GENERIC_TESTS" in cmake and "slicer_add_python_unittest(SCRIPT" in cmake


# -- scene logic ----------------------------------------------------------------------------------------------
def test_process_creates_a_displayed_output_on_the_reference_grid_in_the_same_study(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    reference, second = add_pair(fake)
    progress = []
    settings = FusionSettings(device="cpu", batch_size=2, reference="a")
    output = logic.process(reference, second, settings, progress.append)
    assert output.GetClassName() == "vtkMRMLScalarVolumeNode"
    assert output.GetName() == "CT + MR fused (CT-MRI)"
    assert output.voxels.shape == reference.voxels.shape and output.voxels.dtype == np.float32
    np.testing.assert_allclose(output.ijk_to_ras, reference.ijk_to_ras)
    assert np.isfinite(output.voxels).all() and 0.0 <= output.voxels.min() and output.voxels.max() <= 1.0
    assert output.voxels.std() > 0.01
    hierarchy = fake.hierarchy
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(output)) == 7
    display = output.GetDisplayNode()
    assert not display.auto_window_level and 0 < display.window <= 1.0
    assert fake.layers[-1] == {"background": reference, "foreground": output, "opacity": 1.0}
    assert progress and progress[-1] == pytest.approx(1.0) and progress == sorted(progress)
    again = logic.process(reference, second, FusionSettings(device="cpu"))
    assert again.GetName() == "CT + MR fused (CT-MRI)_1"


def test_mri_on_another_grid_is_resampled_onto_the_reference(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    coarse = np.diag([-1.8, -1.8, 3.0, 1.0])
    coarse[:3, 3] = (20.0, 15.0, -6.0)
    reference, second = add_pair(fake, mri_affine=coarse)
    output = logic.process(reference, second, FusionSettings(device="cpu", reference="a"))
    assert output.voxels.shape == reference.voxels.shape
    np.testing.assert_allclose(output.ijk_to_ras, reference.ijk_to_ras)


def test_the_output_grid_is_the_mri_by_default(logic, fake):
    """Default reference: the MRI's grid (shape and geometry), shown over the MRI; the CT is resampled onto it."""
    from WDualMineLib.parameters import FusionSettings

    finer = np.diag([-0.8, -0.8, 2.0, 1.0])
    finer[:3, 3] = (20.0, 15.0, -6.0)
    reference, second = add_pair(fake, mri_affine=finer)
    output = logic.process(reference, second, FusionSettings(device="cpu"))
    assert output.voxels.shape == second.voxels.shape
    np.testing.assert_allclose(output.ijk_to_ras, second.ijk_to_ras)
    assert fake.layers[-1]["background"] is second
    assert logic.gridNode(reference, second, FusionSettings()) is second


def test_the_same_node_as_both_inputs_is_refused(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    reference, _ = add_pair(fake)
    before = set(fake.scene.nodes)
    with pytest.raises(ValueError, match="'CT' is selected as both inputs"):
        logic.process(reference, reference, FusionSettings(device="cpu"))
    with pytest.raises(ValueError, match="selected as both inputs"):
        logic.preview(reference, reference, FusionSettings(device="cpu"))
    assert set(fake.scene.nodes) == before


def test_parent_transforms_are_applied_and_non_linear_ones_refused(logic, fake):
    from WDualMineLib.scene import node_affine

    reference, _ = add_pair(fake)
    transform = fake.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    transform.matrix_to_world[:3, 3] = (10.0, 0.0, -5.0)
    reference.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(node_affine(reference)[:3, 3], reference.ijk_to_ras[:3, 3] + (10.0, 0.0, -5.0))
    transform.linear = False
    with pytest.raises(ValueError, match="Harden"):
        node_affine(reference)


def test_cancel_and_failure_leave_no_half_made_node(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    reference, second = add_pair(fake)
    before = set(fake.scene.nodes)
    assert logic.process(reference, second, FusionSettings(device="cpu"), cancel=lambda: True) is None
    assert set(fake.scene.nodes) == before
    reference.voxels[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        logic.process(reference, second, FusionSettings(device="cpu"))
    assert set(fake.scene.nodes) == before
    reference.voxels[0, 0, 0] = 0.0

    def broken_views(**kwargs):
        raise RuntimeError("no slice views")

    fake.modules["slicer.util"].setSliceViewerLayers = broken_views
    with pytest.raises(RuntimeError, match="no slice views"):
        logic.process(reference, second, FusionSettings(device="cpu"))
    assert set(fake.scene.nodes) == before


def test_colour_fusion_gives_an_rgb_vector_volume(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    reference, second = add_pair(fake)
    output = logic.process(reference, second, FusionSettings(task="PET-MRI", color=True, device="cpu"))
    assert output.GetClassName() == "vtkMRMLVectorVolumeNode"
    assert output.voxels.shape == (*reference.voxels.shape, 3) and output.voxels.dtype == np.uint8


def test_live_preview_fuses_only_the_red_slice_and_reuses_its_node(logic, fake):
    from WDualMineLib.parameters import FusionSettings

    reference, second = add_pair(fake)
    red = fake.scene.GetNodeByID("vtkMRMLSliceNodeRed")
    red.slice_to_ras.array[:3, 3] = (reference.ijk_to_ras @ [10.0, 9.0, 2.0, 1.0])[:3]  # centre on k = 2
    settings = FusionSettings(device="cpu", preview=True)
    calls = []
    fuse = logic.runner.fuse
    logic.runner.fuse = lambda *args, **kwargs: calls.append(1) or fuse(*args, **kwargs)
    preview, key = logic.preview(reference, second, settings)
    assert preview.voxels.shape == (1, 18, 20) and preview.hide_from_editors and not preview.save_with_scene
    expected = reference.ijk_to_ras.copy()
    expected[:3, 3] += 2 * expected[:3, 2]
    np.testing.assert_allclose(preview.ijk_to_ras, expected)
    assert fake.scene.GetNodeByID("vtkMRMLSliceCompositeNodeRed").foreground_id == preview.GetID()
    assert logic.preview(reference, second, settings, preview, key) == (preview, key) and len(calls) == 1
    settings.strength = 1.0
    moved, moved_key = logic.preview(reference, second, settings, preview, key)
    assert moved is preview and moved_key != key and len(calls) == 2
    red.slice_to_ras.array[:3, 3] = (0.0, 0.0, 500.0)
    assert logic.preview(reference, second, settings, preview, moved_key) == (None, None)
    assert fake.scene.GetNodeByID(preview.GetID()) is None
    fake.scene.RemoveNode(red)  # no Red view (e.g. Slicer started without its main window)
    assert logic.preview(reference, second, settings) == (None, None) and len(calls) == 2


def test_preview_equals_the_same_slice_of_the_full_result(logic, fake):
    """PET: percentile normalisation of the reference, which the preview must take from the whole volume."""
    from WDualMineLib.parameters import FusionSettings

    reference, second = add_pair(fake)
    reference.voxels[3] *= 3.0  # a brighter last slice: the volume's percentiles differ from slice 1's
    red = fake.scene.GetNodeByID("vtkMRMLSliceNodeRed")
    red.slice_to_ras.array[:3, 3] = (reference.ijk_to_ras @ [10.0, 9.0, 1.0, 1.0])[:3]  # centre on k = 1
    seen = []
    fuse = logic.runner.fuse
    logic.runner.fuse = lambda a, b, settings, **kwargs: seen.append(settings) or fuse(a, b, settings, **kwargs)
    for grid, scaled in (("a", reference), ("b", second)):
        scaled.voxels[3] *= 3.0 if grid == "b" else 1.0  # the MRI's percentiles too, when it is the grid
        seen.clear()
        settings = FusionSettings(task="PET-MRI", device="cpu", register=True, reference=grid)
        preview, _ = logic.preview(reference, second, settings)
        (used,) = seen
        assert not used.register and used.slice_axis == 2 and getattr(used, f"norm_{grid}").kind == "window"
        settings.register = False
        output = logic.process(reference, second, settings)
        np.testing.assert_allclose(preview.voxels[0], output.voxels[1], atol=2e-3)
        logic.removePreview(preview)


def test_dependency_installer_uses_slicer_pip_and_dialogs(module, fake):
    from WDualMineLib import dependencies

    dependencies._slicer_pip_install(["--no-deps", "monai==1.6.1"])
    assert fake.pip_calls == [["--no-deps", "monai==1.6.1"]]
    fake.confirm_answer = False
    assert dependencies._slicer_confirm("Install?") is False and "Install?" in fake.statuses
    with pytest.raises(dependencies.DependencyError, match="Extensions Manager"):
        dependencies._slicer_torch_utils()  # no PyTorch extension in this "Slicer"


def test_sample_pair_is_registered_from_the_bundle(module, fake, tmp_path, monkeypatch):
    from WDualMineLib.sampledata import sha256

    (tmp_path / "scripts" / "volume").mkdir(parents=True)
    (tmp_path / "scripts" / "volume" / "__init__.py").write_text("")
    monkeypatch.setenv("WDUALMINE_BUNDLE", str(tmp_path))
    module.registerSampleData()
    assert fake.sample_sources == []  # a bundle without its sample files registers nothing
    monkeypatch.setenv("WDUALMINE_BUNDLE", str(BUNDLE))
    module.registerSampleData()
    (source,) = fake.sample_sources
    assert source["category"] == "W-DUALMINE" and source["nodeNames"] == ["WDualMineSampleCT", "WDualMineSampleMRI"]
    for uri, checksum in zip(source["uris"], source["checksums"]):
        path = Path(uri.removeprefix("file://"))
        assert path.is_file() and path.parent == BUNDLE / "sample_data" and checksum == f"SHA256:{sha256(path)}"
    assert Path(source["thumbnailFileName"]).is_file()


def test_the_slicer_self_test_passes_on_the_double(module, fake, monkeypatch):
    import scripts.weights

    monkeypatch.setattr(scripts.weights, "load_network", untrained_network)
    test = module.WDualMineTest()
    test.runTest()
    assert "Test passed" in fake.statuses
    assert len(fake.scene.volumes()) == 3
