"""Strict options and intensity warnings (issue 15): nothing out of range is silently accepted or corrected."""
from __future__ import annotations

import math

import numpy as np
import pytest
from test_volume_support import MeanFusionNet, make_affine, smooth_volume

from scripts.task_defaults import DEFAULT_STRENGTH, STRENGTH_RANGE, check_strength
from scripts.volume import FusionInputError, FusionOptions, Volume, fuse_volumes_detailed, save_volume
from scripts.volume.options import closest, validate_options
from scripts.volume.plausibility import intensity_warnings
from scripts.volume.runner import VolumeFusionRunner

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))
BRAIN_WINDOW = {"kind": "window", "level": 40.0, "width": 80.0}


@pytest.mark.parametrize("value", [STRENGTH_RANGE[1] + 4, -0.1, math.nan, math.inf, "abc", True])
def test_strength_outside_the_documented_range_is_refused(value):
    with pytest.raises(FusionInputError, match="strength must be"):
        validate_options(FusionOptions(strength=value))


def test_the_range_ends_and_every_task_default_are_accepted():
    assert check_strength(STRENGTH_RANGE[0]) == STRENGTH_RANGE[0] and check_strength("1") == STRENGTH_RANGE[1]
    for task, strength in DEFAULT_STRENGTH.items():
        assert STRENGTH_RANGE[0] <= strength <= STRENGTH_RANGE[1]
        options = FusionOptions(task=task)
        validate_options(options)
        assert options.strength == strength


@pytest.mark.parametrize("text, value", [("false", False), ("False", False), ("no", False), ("0", False),
                                         ("true", True), ("yes", True), (1, True), (False, False)])
def test_flags_are_parsed_not_taken_as_truthy_strings(text, value):
    """fire gives ``--register false`` as the string 'false', which Python would take as true."""
    options = FusionOptions(register=text)
    validate_options(options)
    assert options.register is value


def test_a_flag_that_is_no_yes_or_no_is_refused():
    with pytest.raises(FusionInputError, match="register must be true or false, got 'maybe'"):
        validate_options(FusionOptions(register="maybe"))
    with pytest.raises(FusionInputError, match="overwrite must be true or false"):
        VolumeFusionRunner("a", "b", overwrite="sometimes", network=MeanFusionNet()).prepare()


@pytest.mark.parametrize("task, suggestion", [("ct-mri", "CT-MRI"), ("MRI-CT", "CT-MRI"), ("PET_MRI", "PET-MRI")])
def test_an_unknown_task_names_the_closest(task, suggestion):
    with pytest.raises(FusionInputError, match=f"unknown task '{task}'.*did you mean '{suggestion}'"):
        validate_options(FusionOptions(task=task))
    assert closest("zzz", ["CT-MRI"]) == ""


def test_the_same_file_as_a_and_b_is_refused(tmp_path):
    path = save_volume(smooth_volume(SHAPE, AFFINE), tmp_path / "ct.nii.gz")
    (tmp_path / "link.nii.gz").symlink_to(path)
    for b in (path, tmp_path / "link.nii.gz"):
        with pytest.raises(FusionInputError, match="image_a and image_b are the same file"):
            VolumeFusionRunner(path, b, output_dir=tmp_path / "out", network=MeanFusionNet()).run()
    assert not (tmp_path / "out").exists()


def ct(values: np.ndarray) -> np.ndarray:
    """A head-like CT: background ``values[0]`` (44 %), tissue ``values[1]`` (42 %), bone ``values[2]`` (14 %)."""
    out = np.full(SHAPE, values[0], np.float32)
    out[4:28, 4:28] = values[1]
    out[10:22, 10:22] = values[2]
    return out


@pytest.mark.parametrize("values, warned", [
    ((-1000, 40, 1000), None),  # Hounsfield units: air black, brain in the window
    ((0, 40, 80), None),  # the sample pair: gray levels already scaled to the window
    ((24, 1064, 2024), "darkest voxels"),  # stored values without the -1024 intercept: grey air
    ((0, 1064, 2024), "above the window"),  # air at 0, tissue far above the window
])
def test_ct_that_is_not_in_hounsfield_units_is_warned_about(values, warned):
    messages = intensity_warnings(ct(np.asarray(values)), BRAIN_WINDOW, "CT", "A")
    if warned is None:
        assert messages == []
    else:
        assert len(messages) == 1 and warned in messages[0] and "assumed Hounsfield units" in messages[0]


def test_negative_pet_and_a_ct_given_as_mri_are_warned_about():
    pet = np.random.default_rng(0).normal(0, 1, SHAPE).astype(np.float32)
    spec = {"kind": "percentile", "low": 0.5, "high": 99.5}
    (message,) = intensity_warnings(pet, spec, "PET", "A")
    assert "voxels are negative" in message and "assumed" in message
    assert intensity_warnings(np.abs(pet), spec, "PET", "A") == []
    (swapped,) = intensity_warnings(ct(np.asarray((-1000, 40, 1000))), spec, "MRI", "B")
    assert "not swapped" in swapped


def test_warnings_reach_the_user_and_the_fusion_still_runs(capsys, tmp_path):
    a = save_volume(Volume(ct(np.asarray((24, 1064, 2024))) + smooth_volume(SHAPE, AFFINE).array, AFFINE),
                    tmp_path / "ct.nii.gz")
    b = save_volume(smooth_volume(SHAPE, AFFINE, 2), tmp_path / "mri.nii.gz")
    VolumeFusionRunner(a, b, output_dir=tmp_path / "out", network=MeanFusionNet(), show_progress=False).run()
    captured = capsys.readouterr()
    assert "warning: volume A (CT)" in captured.err and "wrote" in captured.out
    result = fuse_volumes_detailed(Volume(ct(np.asarray((-1000, 40, 1000))), AFFINE), smooth_volume(SHAPE, AFFINE),
                                   network=MeanFusionNet())
    assert not any(n.startswith("warning:") for n in result.notes)
