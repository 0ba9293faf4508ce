"""Module settings (WDualMineLib.parameters): parameter-node round trip and the FusionOptions contract."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "WDualMineExtension"))

from WDualMineLib.parameters import (  # noqa: E402
    COLOR_TASKS, TASKS, FusionSettings, NormOverride, load_settings, save_settings,
)


class ParameterNode:
    """The two calls of vtkMRMLScriptedModuleNode that settings use (empty string for a missing parameter)."""

    def __init__(self):
        self.values = {}

    def SetParameter(self, name, value):
        assert isinstance(value, str)
        self.values[name] = value

    def GetParameter(self, name):
        return self.values.get(name, "")


def test_settings_round_trip_through_the_parameter_node():
    settings = FusionSettings(task="PET-MRI", strength=0.35, device="cpu", slice_axis=1, register=True, color=True,
                              batch_size=3, preview=True, norm_a=NormOverride("window", 40.0, 400.0),
                              norm_b=NormOverride("percentile", 1.0, 99.0))
    node = ParameterNode()
    save_settings(node, settings)
    assert node.values["NormAKind"] == "window" and node.values["Register"] == "true"
    assert load_settings(node) == settings


def test_an_empty_parameter_node_gives_the_defaults():
    assert load_settings(ParameterNode()) == FusionSettings()


def test_options_kwargs_build_the_bundle_fusion_options():
    from scripts.volume import FusionOptions

    settings = FusionSettings(task="SPECT-MRI", slice_axis=-1, norm_a=NormOverride("percentile", 0.5, 99.5))
    options = FusionOptions(**settings.options_kwargs())
    assert options.task == "SPECT-MRI" and options.reference == "b" and options.slice_axis is None
    assert options.norm_a == {"kind": "percentile", "low": 0.5, "high": 99.5} and options.norm_b is None
    assert FusionOptions(**FusionSettings(slice_axis=2).options_kwargs()).slice_axis == 2


def test_task_presets_are_the_bundle_tasks():
    from scripts.volume.color_fusion import COLORMAPS
    from scripts.weights import TASKS as BUNDLE_TASKS

    assert TASKS == tuple(BUNDLE_TASKS)
    assert set(COLOR_TASKS) == set(COLORMAPS)


@pytest.mark.parametrize("norm, message", [
    (NormOverride("window", 40.0, 0.0), "width"),
    (NormOverride("percentile", 99.0, 1.0), "percentiles"),
    (NormOverride("gamma", 1.0, 2.0), "unknown normalisation"),
])
def test_invalid_normalisation_overrides_are_refused(norm, message):
    with pytest.raises(ValueError, match=message):
        FusionSettings(norm_a=norm).options_kwargs()


def test_invalid_task_or_device_is_refused():
    with pytest.raises(ValueError, match="task"):
        FusionSettings(task="CT-PET").options_kwargs()
    with pytest.raises(ValueError, match="device"):
        dataclasses.replace(FusionSettings(), device="tpu").options_kwargs()


@pytest.mark.parametrize("name, text, message", [
    ("Strength", "abc", "parameter Strength .* must be a float, got 'abc'"),
    ("BatchSize", "two", "parameter BatchSize .* must be a int"),
    ("Register", "maybe", "parameter Register .* must be true or false"),
])
def test_a_bad_parameter_node_value_names_the_parameter(name, text, message):
    node = ParameterNode()
    node.SetParameter(name, text)
    with pytest.raises(ValueError, match=message):
        load_settings(node)


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "Slices per batch must be at least 1"),
    ({"strength": 5.0}, r"strength must be in \[0, 1\]"),
    ({"strength": -0.1}, r"strength must be in \[0, 1\]"),
    ({"reference": "ct"}, "unknown output grid"),
])
def test_out_of_range_settings_are_refused_not_corrected(changes, message):
    with pytest.raises(ValueError, match=message):
        FusionSettings(**changes).options_kwargs()


def test_the_slicer_runner_has_no_out_of_memory_loop_of_its_own():
    """The bundle's GuardedForward is the one CUDA out-of-memory retry loop (halve the batch, then the CPU)."""
    source = (Path(__file__).resolve().parents[1] / "WDualMineExtension" / "WDualMineLib" / "runner.py").read_text()
    assert "OutOfMemoryError" not in source and "GuardedForward" in source
