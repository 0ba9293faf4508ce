"""Reading and writing volumes: NIfTI / NRRD / DICOM series, RAS geometry whatever the file's convention,
RGB vector volumes, and atomic writes (a target is whole or untouched)."""
from __future__ import annotations

import numpy as np
import pytest
from test_volume_support import make_affine, rotation_z, smooth_volume, write_nifti

import scripts.volume.io as volume_io
from scripts.volume import FusionInputError, Volume, load_volume, save_volume
from scripts.volume.io import output_path, volume_name

AFFINE = make_affine((0.7, 0.9, 2.5), (-10.0, 20.0, -5.0), rotation_z(30) @ np.diag([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("name", ["v.nii.gz", "v.nii", "v.nrrd", "v.mha"])
def test_scalar_round_trip_keeps_voxels_and_ras_geometry(tmp_path, name):
    volume = smooth_volume((12, 10, 5), AFFINE)
    loaded = load_volume(save_volume(volume, tmp_path / name))
    assert loaded.array.dtype == np.float32
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.affine, AFFINE, atol=1e-5)


@pytest.mark.parametrize("name", ["rgb.nii.gz", "rgb.nrrd"])
def test_rgb_round_trip(tmp_path, name):
    volume = Volume(np.random.default_rng(0).random((8, 7, 4, 3)).astype(np.float32), AFFINE)
    loaded = load_volume(save_volume(volume, tmp_path / name))
    assert loaded.is_rgb
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.affine, AFFINE, atol=1e-5)


def test_nrrd_on_disk_is_lps(tmp_path):
    """ITK files hold LPS origins and directions; the Volume stays RAS."""
    import itk

    save_volume(smooth_volume((6, 5, 4), AFFINE), tmp_path / "v.nrrd")
    image = itk.imread(str(tmp_path / "v.nrrd"))
    np.testing.assert_allclose(np.array(image.GetOrigin()), AFFINE[:3, 3] * [-1, -1, 1], atol=1e-5)
    direction = itk.array_from_matrix(image.GetDirection())
    np.testing.assert_allclose(direction, np.diag([-1, -1, 1]) @ AFFINE[:3, :3] / [0.7, 0.9, 2.5], atol=1e-6)
    assert tuple(itk.size(image)) == (6, 5, 4)  # x = i


def test_dicom_series_folder(tmp_path):
    """A DICOM series (one file per slice, positions in the headers) read from its folder."""
    import itk

    spacing, origin = (0.8, 0.8, 3.0), np.array([5.0, -7.0, 11.0])
    # i, j, k along L, P, S (DICOM's usual axial orientation): RAS directions -x, -y, +z
    volume = Volume(np.random.default_rng(1).integers(0, 1000, (16, 12, 5)).astype(np.int16),
                    make_affine(spacing, origin, direction=np.diag([-1.0, -1.0, 1.0])))
    lps_origin = origin * [-1, -1, 1]
    folder = tmp_path / "series"
    folder.mkdir()
    uid = "1.2.826.0.1.3680043.2.1125.1"
    for k in range(5):
        image = itk.image_from_array(np.ascontiguousarray(volume.array[:, :, k].T))
        image.SetSpacing(spacing[:2])
        header = image.GetMetaDataDictionary()
        for tag, value in {"0020|0032": "\\".join(f"{v:g}" for v in lps_origin + [0, 0, k * spacing[2]]),
                           "0020|0037": "1\\0\\0\\0\\1\\0", "0028|0030": "0.8\\0.8", "0018|0050": "3",
                           "0020|0013": str(k + 1), "0008|0060": "CT", "0020|000d": uid + ".1",
                           "0020|000e": uid + ".2", "0008|0018": f"{uid}.3.{k + 1}"}.items():
            header[tag] = value
        io = itk.GDCMImageIO.New()
        io.KeepOriginalUIDOn()
        itk.imwrite(image, str(folder / f"slice{k:03d}.dcm"), imageio=io)
    loaded = load_volume(folder)
    np.testing.assert_array_equal(loaded.array, volume.array)
    np.testing.assert_allclose(loaded.affine, volume.affine, atol=1e-4)
    assert volume_name(folder) == "series"


def test_nifti_scaling_is_applied_and_float32(tmp_path):
    import nibabel as nib

    image = nib.Nifti1Image(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.eye(4))
    image.header.set_slope_inter(0.5, -3.0)
    nib.save(image, str(tmp_path / "s.nii.gz"))
    loaded = load_volume(tmp_path / "s.nii.gz")
    assert loaded.array.dtype == np.float32 and loaded.array.max() == pytest.approx(23 * 0.5 - 3.0)


def test_failed_write_leaves_the_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "out.nii.gz"
    save_volume(smooth_volume((6, 5, 4), AFFINE), target)
    before = target.read_bytes()

    def half_write(volume, path):
        path.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(volume_io, "_write", half_write)
    with pytest.raises(FusionInputError, match="No space left on device"):
        save_volume(smooth_volume((6, 5, 4), AFFINE), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz"]


def test_unknown_output_format_writes_nothing(tmp_path):
    with pytest.raises(FusionInputError, match="cannot write"):
        save_volume(smooth_volume((6, 5, 4), AFFINE), tmp_path / "out.unknownformat")
    assert list(tmp_path.iterdir()) == []


def test_names():
    assert volume_name("/d/ct_01.nii.gz") == "ct_01" and volume_name("a.b.nrrd") == "a.b"
    assert output_path("/d/ct.nii", "/o") .as_posix() == "/o/ct_fused.nii.gz"


def test_2d_nifti_is_refused(tmp_path):
    with pytest.raises(FusionInputError, match="2-D"):
        load_volume(write_nifti(tmp_path / "flat.nii.gz", np.zeros((4, 5), np.float32)))
