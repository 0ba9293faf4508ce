"""Reading and writing volumes: the one loader and the one (atomic) writer every entry point uses.

* :func:`load_volume` first reads the file to its end and checks it (:mod:`.integrity`: gzip CRC and length,
  header against data size), then reads NIfTI with nibabel (voxels in their stored type, e.g. int16, scaled ones
  as float32: no float64 copy) and everything else ITK reads (NRRD, MetaImage, a DICOM series folder, ...) with
  MONAI's ``ITKReader``; both give ``array[i, j, k]`` and a RAS affine.
* :func:`save_volume` writes to a temporary file beside the target (named ``.<name>.<random>.part<ext>``) and
  renames it, so a target is either the whole new volume or untouched; with ``overwrite=False`` an existing
  target is never replaced (the rename is a hard link, which fails when the target exists). NIfTI is written
  with nibabel, other formats with ITK (:func:`to_itk_image` does the RAS -> LPS and ``(i, j, k)`` ->
  ``(z, y, x)`` conversion). ``itk`` is imported only where it is
  needed, so NIfTI-only use does not pay its start-up time.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
from monai.data import ITKReader

from .integrity import verify_volume_file
from .types import FusionInputError, Volume

__all__ = [
    "load_volume",
    "save_volume",
    "atomic_write",
    "to_itk_image",
    "volume_name",
    "output_path",
    "is_nifti",
    "partial_name",
    "error_reason",
]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".img", ".hdr", ".gz")


def error_reason(exc: BaseException) -> str:
    """One readable line from an exception: an OSError's text, or the message of ITK's multi-line exceptions
    without their C++ source path (``/.../itkNrrdImageIO.cxx:935:``) and ``itk::ERROR: Class(0x...):`` prefix
    (of a longer chain, the first line and the last)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    lines = [
        re.sub(r"^(itk::ERROR|ITK ERROR): \w+\(0x[0-9a-f]+\): ", "", line).rstrip(":;")
        for line in lines
        if line and not re.search(r"\.(cxx|cpp|h|hxx|txx):\d+:?$", line)
    ]
    if len(lines) > 2:  # a chain of readers' complaints: the first says what, the last why
        lines = [lines[0], lines[-1]]
    return ": ".join(lines) if lines else type(exc).__name__


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


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(array, affine, number of channels) of a NIfTI file; refuses 2-D, 4-D (time) and 5-D non-vector data.

    Unscaled voxels keep their stored type (an int16 CT stays int16: half the memory of float32); scaled
    ones (``scl_slope`` / ``scl_inter``) are computed in float32."""
    image = nib.load(str(path), mmap=False)
    dims = tuple(int(d) for d in image.header["dim"][1 : int(image.header["dim"][0]) + 1])
    if len(dims) == 4 and dims[3] > 1:
        raise FusionInputError(f"{path} is a 4-D image {dims} (e.g. a time series); a 3-D volume is expected")
    if len(dims) == 5 and dims[3] > 1:
        raise FusionInputError(f"{path} is a 5-D image {dims}; a 3-D volume is expected")
    proxy = image.dataobj
    scaled = proxy.slope != 1 or proxy.inter != 0
    array = np.asanyarray(proxy, dtype=np.float32) if scaled else np.asanyarray(proxy)
    channels = dims[4] if len(dims) == 5 else 1
    array = array.reshape(array.shape[:3] + ((channels,) if channels > 1 else ()), order="A")
    return array, np.asarray(image.affine, dtype=np.float64), channels


def _read_itk(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(array, affine, number of channels) of anything ITK reads (a folder: a DICOM series)."""
    reader = ITKReader()
    image = reader.read(str(path))
    ndim, channels = int(image.GetImageDimension()), int(image.GetNumberOfComponentsPerPixel())
    if ndim == 4:
        raise FusionInputError(f"{path} is a 4-D image (e.g. a time series); a 3-D volume is expected")
    data, meta = reader.get_data(image)
    return np.asarray(data), np.asarray(meta["affine"], dtype=np.float64), channels


def load_volume(path: str | Path, verify: bool = True) -> Volume:
    """Read a 3-D scalar or RGB volume; a clear :class:`FusionInputError` for anything else.

    The file is first read to its end and checked (:func:`~.integrity.verify_volume_file`; ``verify=False``
    when the caller has just done so). 2-D images, 4-D images and channel counts other than 1 or 3 are refused
    here; the pipeline refuses RGB inputs for fusion (it expects scalar volumes).
    """
    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"input volume not found: {path}")
    if verify:
        verify_volume_file(path)
    try:
        array, affine, channels = (_read_nifti if is_nifti(path) else _read_itk)(path)
    except FusionInputError:
        raise
    except Exception as exc:  # readers raise many types for truncated or foreign files
        raise FusionInputError(
            f"cannot read {path} as a volume (NIfTI, NRRD, DICOM, ...): {error_reason(exc)}"
        ) from exc
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


def partial_name(path: str | Path) -> str:
    """The name of a temporary file of ``path`` (hidden; ``.ct_fused.nii.gz.<random>.part.nii.gz``): every run
    finds the leftovers of an interrupted one by the pattern ``.<name>.*.part*``."""
    path = Path(path)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix
    return f".{path.name}.{uuid.uuid4().hex[:8]}.part{suffix}"


def _publish(temporary: Path, path: Path, overwrite: bool) -> None:
    """Rename ``temporary`` to ``path``; without ``overwrite`` a hard link, which never replaces a file."""
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FusionInputError(
            f"{path} appeared while this run was writing it (another program?); it was "
            "kept: pass --overwrite true to replace it"
        ) from None
    except OSError:  # a file system without hard links: check, then rename (a small window)
        if path.exists():
            raise FusionInputError(f"{path} exists; it was kept: pass --overwrite true to replace it") from None
        os.replace(temporary, path)


def atomic_write(path: str | Path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """Call ``write(temporary)`` for a temporary path beside ``path`` (same extension), then rename it to
    ``path`` (never replacing an existing file unless ``overwrite``). On any failure the temporary file is
    removed, ``path`` is left as it was, and a :class:`FusionInputError` says why. Returns the path."""
    path = Path(path)
    temporary = path.with_name(partial_name(path))
    try:
        write(temporary)
        _publish(temporary, path, overwrite)
    except FusionInputError:
        raise
    except Exception as exc:  # OSError, or ITK's RuntimeError for an unknown format
        raise FusionInputError(f"cannot write {path}: {error_reason(exc)}") from exc
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def save_volume(volume: Volume, path: str | Path, overwrite: bool = True) -> Path:
    """Write ``volume`` to ``path`` atomically (see :func:`atomic_write`): the format follows the extension
    (``.nii.gz`` / ``.nii`` with nibabel, anything else ITK writes, e.g. ``.nrrd``). Returns the path."""
    if volume.array.ndim != 3 and not volume.is_rgb:
        raise FusionInputError(
            f"can only write a scalar (I, J, K) or RGB (I, J, K, 3) volume, got shape {volume.array.shape}"
        )
    return atomic_write(path, lambda temporary: _write(volume, temporary), overwrite)
