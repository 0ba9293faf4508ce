"""Reading and writing volumes: the one loader and the one (atomic) writer every entry point uses.

* :func:`load_volume` reads NIfTI with MONAI's ``NibabelReader`` and everything else ITK reads (NRRD, MetaImage,
  a DICOM series folder, ...) with MONAI's ``ITKReader``; both give ``array[i, j, k]`` and a RAS affine.
* :func:`save_volume` writes to a temporary file beside the target and renames it, so a target is either the
  whole new volume or untouched. NIfTI is written with nibabel, other formats with ITK (:func:`to_itk_image`
  does the RAS -> LPS and ``(i, j, k)`` -> ``(z, y, x)`` conversion). ``itk`` is imported only where it is
  needed, so NIfTI-only use does not pay its start-up time.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
from monai.data import ITKReader, NibabelReader

from .types import FusionInputError, Volume

__all__ = ["load_volume", "save_volume", "atomic_write", "to_itk_image", "volume_name", "output_path",
           "check_output_path", "is_nifti"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".img", ".hdr", ".gz")


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_nifti(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def volume_name(path: str | Path) -> str:
    """``/d/ct_01.nii.gz`` -> ``ct_01`` (a DICOM folder gives its folder name)."""
    name = Path(path).name
    lower = name.lower()
    for suffix in _SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def output_path(image_a: str | Path, output_dir: str | Path, suffix: str = "_fused.nii.gz") -> Path:
    """Where the command line writes the fusion of ``image_a``: ``<output_dir>/<A name><suffix>``."""
    return Path(output_dir) / f"{volume_name(image_a)}{suffix}"


def check_output_path(path: str | Path, inputs: tuple = ()) -> Path:
    """Refuse an output path that is an input or cannot be written; creates its folder. Returns the path.

    The folder is probed by creating (and removing) a temporary file, which is the only reliable test (a
    permission bit says nothing for root, a read-only mount, or a quota).
    """
    path = Path(path)
    for given in inputs:
        if given is not None and os.path.realpath(path) == os.path.realpath(given):
            raise FusionInputError(f"the output path {path} is an input volume; choose another output folder "
                                   "(inputs are never overwritten)")
    if path.is_dir():
        raise FusionInputError(f"the output path {path} is an existing folder")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".wdualmine-probe-"):
            pass
    except OSError as exc:
        raise FusionInputError(f"the output folder {folder} is not writable: {_reason(exc)}") from exc
    return path


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(array, affine, number of channels) of a NIfTI file; refuses 2-D, 4-D (time) and 5-D non-vector data."""
    reader = NibabelReader()
    image = reader.read(str(path))
    dims = tuple(int(d) for d in image.header["dim"][1: int(image.header["dim"][0]) + 1])
    if len(dims) == 4 and dims[3] > 1:
        raise FusionInputError(f"{path} is a 4-D image {dims} (e.g. a time series); a 3-D volume is expected")
    if len(dims) == 5 and dims[3] > 1:
        raise FusionInputError(f"{path} is a 5-D image {dims}; a 3-D volume is expected")
    data, meta = reader.get_data(image)
    channels = dims[4] if len(dims) == 5 else 1
    array = np.asarray(data)
    array = array.reshape(array.shape[:3] + ((channels,) if channels > 1 else ()))
    return array, np.asarray(meta["affine"], dtype=np.float64), channels


def _read_itk(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(array, affine, number of channels) of anything ITK reads (a folder: a DICOM series)."""
    reader = ITKReader()
    image = reader.read(str(path))
    ndim, channels = int(image.GetImageDimension()), int(image.GetNumberOfComponentsPerPixel())
    if ndim == 4:
        raise FusionInputError(f"{path} is a 4-D image (e.g. a time series); a 3-D volume is expected")
    data, meta = reader.get_data(image)
    return np.asarray(data), np.asarray(meta["affine"], dtype=np.float64), channels


def load_volume(path: str | Path) -> Volume:
    """Read a 3-D scalar or RGB volume; a clear :class:`FusionInputError` for anything else.

    2-D images, 4-D images and channel counts other than 1 or 3 are refused here; the pipeline refuses RGB
    inputs for fusion (it expects scalar volumes).
    """
    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"input volume not found: {path}")
    try:
        array, affine, channels = (_read_nifti if is_nifti(path) else _read_itk)(path)
    except FusionInputError:
        raise
    except Exception as exc:  # readers raise many types for truncated or foreign files
        raise FusionInputError(f"cannot read {path} as a volume (NIfTI, NRRD, DICOM, ...): {_reason(exc)}") from exc
    spatial = array.ndim - (1 if channels > 1 else 0)
    if spatial != 3:
        raise FusionInputError(f"{path} is a {spatial}-D image of shape {array.shape}; a 3-D volume is expected")
    if channels not in (1, 3):
        raise FusionInputError(f"{path} has {channels} channels per voxel; expected 1 (scalar) or 3 (RGB)")
    if array.dtype == np.float64:  # e.g. NIfTI with scl_slope: float32 is exact enough and half the memory
        array = array.astype(np.float32)
    return Volume(array=array, affine=affine)


def to_itk_image(volume: Volume):
    """The ITK image of ``volume`` (float32 scalar, or a 3-component vector image for RGB), LPS geometry."""
    import itk

    lps = _RAS_TO_LPS @ volume.affine
    spacing = volume.spacing
    data = np.ascontiguousarray(np.swapaxes(volume.array, 0, 2), dtype=np.float32)  # (k, j, i[, c])
    image = itk.image_from_array(data, is_vector=volume.is_rgb)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(lps[:3, :3] / spacing)))
    return image


def _write(volume: Volume, path: Path) -> None:
    """Write ``volume`` (float32) to ``path`` in the format its extension names."""
    if is_nifti(path):
        data = np.asarray(volume.array, dtype=np.float32)
        if volume.is_rgb:
            data = data[:, :, :, None, :]  # NIfTI vectors live in the 5th dimension
        image = nib.Nifti1Image(data, volume.affine)
        image.set_qform(volume.affine, code=1)
        image.set_sform(volume.affine, code=1)
        if volume.is_rgb:
            image.header.set_intent("vector")
        nib.save(image, str(path))
    else:
        import itk

        itk.imwrite(to_itk_image(volume), str(path), compression=True)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` for a temporary path beside ``path`` (same extension), then rename it to
    ``path``. On any failure the temporary file is removed, ``path`` is left as it was, and a
    :class:`FusionInputError` says why. Returns the path."""
    path = Path(path)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part{suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except Exception as exc:  # OSError, or ITK's RuntimeError for an unknown format
        raise FusionInputError(f"cannot write {path}: {_reason(exc)}") from exc
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def save_volume(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to ``path`` atomically (see :func:`atomic_write`): the format follows the extension
    (``.nii.gz`` / ``.nii`` with nibabel, anything else ITK writes, e.g. ``.nrrd``). Returns the path."""
    if volume.array.ndim != 3 and not volume.is_rgb:
        raise FusionInputError(f"can only write a scalar (I, J, K) or RGB (I, J, K, 3) volume, "
                               f"got shape {volume.array.shape}")
    return atomic_write(path, lambda temporary: _write(volume, temporary))
