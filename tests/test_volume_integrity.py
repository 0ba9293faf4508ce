"""Inputs are read to the end and checked before anything is fused (issue 15): a damaged file is one clear
error naming it - never a quietly wrong volume - and the inputs stay byte-identical, with nothing written."""
from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest
from test_volume_support import MeanFusionNet, make_affine, smooth_volume

from scripts.volume import FusionInputError, Volume, load_volume, save_volume
from scripts.volume.integrity import verify_volume_file
from scripts.volume.runner import VolumeFusionRunner

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))


def noisy(seed: int) -> Volume:
    """Incompressible voxels: flipped bytes land in the voxel data, not in a long run of one value."""
    return Volume(np.random.default_rng(seed).random(SHAPE).astype(np.float32) * 100, AFFINE)


def flip_middle(path, count: int = 64):
    """Flip ``count`` bytes in the middle of the file (the issue's damaged download)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle: middle + count] = bytes(b ^ 0xFF for b in data[middle: middle + count])
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def pair(tmp_path):
    return (save_volume(smooth_volume(SHAPE, AFFINE, 1), tmp_path / "ct.nii.gz"),
            save_volume(smooth_volume(SHAPE, AFFINE, 2), tmp_path / "mri.nii.gz"))


def refused(tmp_path, a, b, match, **kwargs):
    """The runner refuses (a, b) with ``match``; inputs unchanged, no output folder."""
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    runner = VolumeFusionRunner(a, b, output_dir=tmp_path / "out", network=MeanFusionNet(), show_progress=False,
                                **kwargs)
    with pytest.raises(FusionInputError, match=match):
        runner.run()
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["v.nii.gz", "v.mha", "v.nrrd"])
def test_flipped_bytes_in_a_compressed_file_are_refused(tmp_path, name):
    """gzip (NIfTI, NRRD) fails its CRC-32, zlib (MetaImage, which ITK would decode into garbage) its Adler-32."""
    path = flip_middle(save_volume(noisy(0), tmp_path / name))
    with pytest.raises(FusionInputError, match=rf"{name} is corrupt: its (gzip|zlib) data fail the integrity"):
        load_volume(path)


def test_corrupt_nifti_is_refused_by_the_runner_and_names_the_file(tmp_path, pair):
    bad = flip_middle(save_volume(noisy(0), tmp_path / "bad_ct.nii.gz"))
    refused(tmp_path, bad, pair[1], r"bad_ct\.nii\.gz is corrupt")


def test_corrupt_file_in_a_datalist_is_found_before_any_pair_is_fused(tmp_path, pair):
    """The second pair's file is damaged: nothing is fused at all (every input is checked first)."""
    bad = flip_middle(save_volume(noisy(0), tmp_path / "ct_02.nii.gz"))
    datalist = tmp_path / "pairs.json"
    datalist.write_text(json.dumps([{"image_a": pair[0].name, "image_b": pair[1].name},
                                    {"image_a": bad.name, "image_b": pair[1].name}]))
    refused(tmp_path, None, None, r"ct_02\.nii\.gz is corrupt", datalist=datalist)


@pytest.mark.parametrize("fraction", [0.5, 0.98])
def test_truncated_gzip_is_refused(tmp_path, fraction):
    path = save_volume(noisy(0), tmp_path / "cut.nii.gz")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])
    with pytest.raises(FusionInputError, match=r"cut\.nii\.gz is truncated"):
        verify_volume_file(path)


def test_uncompressed_nifti_shorter_or_longer_than_its_header(tmp_path):
    path = save_volume(noisy(0), tmp_path / "raw.nii")
    whole = path.read_bytes()
    path.write_bytes(whole[:-100])
    with pytest.raises(FusionInputError, match=r"raw\.nii is truncated: its header describes \d+ bytes"):
        load_volume(path)
    path.write_bytes(whole + b"\0" * 64)
    with pytest.raises(FusionInputError, match="does not match the data"):
        load_volume(path)


def test_header_that_describes_more_voxels_than_the_gzip_stream_holds(tmp_path):
    """A well-formed gzip stream (CRC fine) whose header claims 8 slices where 6 are stored."""
    image = nib.Nifti1Image(noisy(0).array, AFFINE)
    raw = image.header.copy()
    raw.set_data_shape((32, 32, 8))
    raw["vox_offset"] = 352
    data = raw.binaryblock + b"\0" * 4 + noisy(0).array.tobytes(order="F")
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(FusionInputError, match=r"short\.nii\.gz is truncated: its header describes 32768 bytes"):
        load_volume(path)


def test_good_files_of_every_format_pass_and_read_back_exactly(tmp_path):
    volume = noisy(0)
    for name in ("v.nii.gz", "v.nii", "v.nrrd", "v.mha"):
        path = save_volume(volume, tmp_path / name)
        verify_volume_file(path)
        np.testing.assert_array_equal(load_volume(path).array, volume.array)


def test_concatenated_gzip_members_are_one_valid_stream(tmp_path):
    """gzip allows several members; Python's gzip reads them as one: so does the check."""
    path = save_volume(noisy(0), tmp_path / "v.nii.gz")
    whole = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(whole[:5000]) + gzip.compress(whole[5000:]))
    verify_volume_file(path)
    np.testing.assert_array_equal(load_volume(path).array, noisy(0).array)


def test_integer_nifti_keeps_its_stored_type(tmp_path):
    """No float copy of an int16 CT (half the memory of float32); scaled data come as float32, not float64."""
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(32 * 32 * 6, dtype=np.int16).reshape(SHAPE), AFFINE), str(path))
    assert load_volume(path).array.dtype == np.int16


def test_an_unreadable_nrrd_header_gives_itk_s_reason_not_its_source_path(tmp_path):
    path = tmp_path / "bad.nrrd"
    path.write_bytes(b"NRRD0004\ntype: notatype\ndimension: 3\nsizes: 2 2 1\nencoding: raw\n\n0123")
    with pytest.raises(FusionInputError) as caught:
        load_volume(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read {path} as a volume") and "couldn't parse type \"notatype\"" in message
    assert ".cxx" not in message and "0x" not in message and "\n" not in message
