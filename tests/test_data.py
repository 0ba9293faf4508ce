"""HMIF pair discovery, the validation split and the PNG loader."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from scripts.data import LumaChanneld, datalist, hmif_pairs, is_validation, network_input, read_png, split_pairs


def _write_task(root, task="PET-MRI", modality="PET", names=("2001", "2007", "2014", "3003")):
    rng = np.random.default_rng(0)
    for name in names:
        (root / task / modality).mkdir(parents=True, exist_ok=True)
        (root / task / "MRI").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / task / modality / f"{name}.png")
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / task / "MRI" / f"{name}.png")


def test_validation_rule_every_seventh_slice():
    assert [is_validation(n) for n in ("16003", "16007", "16014", "2000", "21010")] == [False, True, True, True, False]


def test_pairs_split_and_joint_datalist(tmp_path):
    _write_task(tmp_path)
    _write_task(tmp_path, "CT-MRI", "CT", names=("5001", "5021"))
    pairs = hmif_pairs(tmp_path, "PET-MRI")
    assert [p["name"] for p in pairs] == ["2001", "2007", "2014", "3003"]
    train, val = split_pairs(pairs)
    assert [p["name"] for p in val] == ["2007", "2014"]
    assert not {p["name"] for p in train} & {p["name"] for p in val}
    joint = datalist(tmp_path, ["PET-MRI", "CT-MRI"], "val")
    assert [p["name"] for p in joint] == ["2007", "2014", "5021"]
    # the task folder itself is accepted too
    assert len(hmif_pairs(tmp_path / "PET-MRI", "PET-MRI")) == 4


def test_missing_data_and_unknown_task_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HMIF CT-MRI data"):
        hmif_pairs(tmp_path, "CT-MRI")
    with pytest.raises(ValueError, match="unknown task"):
        hmif_pairs(tmp_path, "XR-MRI")


def test_loader_gives_y_channel_and_mri(tmp_path):
    _write_task(tmp_path)
    pair = hmif_pairs(tmp_path, "PET-MRI")[0]
    rgb = read_png(pair["a"])
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.float32 and rgb.max() <= 1
    image = network_input(rgb, read_png(pair["b"]))
    assert image.shape == (2, 8, 8) and image.dtype == np.float32
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(image[0], y, atol=1e-6)
    np.testing.assert_allclose(image[1], read_png(pair["b"]))


def test_luma_channel_transform_of_channel_first_images():
    rng = np.random.default_rng(1)
    rgb = rng.random((3, 5, 7), dtype=np.float32)
    gray = rng.random((1, 5, 7), dtype=np.float32)
    data = {"rgb": rgb, "rgba": np.concatenate([rgb, np.ones((1, 5, 7), np.float32)]), "gray": gray,
            "gray_as_rgb": np.repeat(gray, 3, axis=0), "other": "kept"}
    out = LumaChanneld(["rgb", "rgba", "gray", "gray_as_rgb"])(data)
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    np.testing.assert_allclose(out["rgb"], y[None], atol=1e-6)
    np.testing.assert_array_equal(out["rgba"], out["rgb"])  # alpha dropped
    np.testing.assert_array_equal(out["gray"], gray)
    np.testing.assert_array_equal(out["gray_as_rgb"], gray)  # equal channels: the gray image itself, not its Y
    assert out["other"] == "kept" and data["rgb"] is rgb and data["rgb"].shape == (3, 5, 7)  # input dict untouched


def test_network_input_refuses_size_mismatch():
    with pytest.raises(ValueError, match="differ in size"):
        network_input(np.zeros((8, 8)), np.zeros((8, 9)))


def test_luma_channel_transform_refuses_values_above_one():
    with pytest.raises(ValueError, match="values above 1 after the 0-255 scaling"):
        LumaChanneld("a")({"a": np.full((1, 4, 4), 257 / 255, np.float32)})  # a 16-bit PNG scaled as 8-bit
