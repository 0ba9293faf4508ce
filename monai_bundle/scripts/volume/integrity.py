"""Input files read to the end and checked before anything is fused: a damaged file is an error, never data.

The readers stop as soon as they have the voxels they need, so a damaged compressed stream can go unnoticed:
nibabel does not reach the gzip trailer of a ``.nii.gz`` (the CRC-32 and length are never checked), and
ITK's MetaImage reader decodes a corrupt zlib stream into garbage. :func:`verify_volume_file` therefore reads
every compressed stream of the file to its end (``zlib`` checks the gzip CRC-32 and length, or the zlib
Adler-32) and compares the number of decoded bytes with what the header describes (dimensions x voxel type).
It streams in 1 MiB blocks: constant memory whatever the volume's size.

Covered: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``; raw or gzip, attached or detached data) and
MetaImage (``.mha``, ``.mhd``; raw or zlib). Other formats (DICOM, Analyze) are left to their readers.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import numpy as np

from .types import FusionInputError

__all__ = ["verify_volume_file", "decoded_size"]

_BLOCK = 1 << 20
_GZIP, _ZLIB = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS
_NRRD_TYPES = {
    1: ("char", "signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: (
        "short",
        "short int",
        "signed short",
        "signed short int",
        "int16",
        "int16_t",
        "ushort",
        "unsigned short",
        "unsigned short int",
        "uint16",
        "uint16_t",
    ),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: (
        "longlong",
        "long long",
        "long long int",
        "signed long long",
        "signed long long int",
        "int64",
        "int64_t",
        "ulonglong",
        "unsigned long long",
        "unsigned long long int",
        "uint64",
        "uint64_t",
        "double",
    ),
}
_NRRD_SIZE = {name: size for size, names in _NRRD_TYPES.items() for name in names}
_META_SIZE = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}


def decoded_size(handle, wbits: int, name: str) -> int:
    """Bytes of the compressed stream(s) read from ``handle`` to its end; a FusionInputError names ``name``
    when a checksum or length check fails or the stream ends early. Concatenated gzip members are allowed."""
    total, stream = 0, zlib.decompressobj(wbits)
    try:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            total += len(stream.decompress(block))
            while wbits == _GZIP and stream.eof and stream.unused_data.strip(b"\0"):  # another gzip member
                rest, stream = stream.unused_data, zlib.decompressobj(wbits)
                total += len(stream.decompress(rest))
        total += len(stream.flush())
    except zlib.error as exc:
        kind = "gzip" if wbits == _GZIP else "zlib"
        raise FusionInputError(
            f"{name} is corrupt: its {kind} data fail the integrity check ({exc}); the file "
            "was damaged on disk or in transfer: copy it again from its source"
        ) from exc
    if not stream.eof:
        raise FusionInputError(
            f"{name} is truncated: its compressed data end early (after {total} bytes); "
            "copy the file again from its source"
        )
    return total


def _check_size(name: str, actual: int, expected: int) -> None:
    """Refuse voxel data shorter or longer than the header describes."""
    if actual < expected:
        raise FusionInputError(
            f"{name} is truncated: its header describes {expected} bytes of voxel data but the "
            f"file holds {actual}; copy the file again from its source"
        )
    if actual > expected:
        raise FusionInputError(
            f"{name} holds {actual} bytes of voxel data where its header describes {expected}: "
            "the header (dimensions or voxel type) does not match the data"
        )


def _verify_nifti(path: Path) -> None:
    import nibabel as nib

    try:
        image = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for foreign headers
        raise FusionInputError(f"cannot read {path} as NIfTI: {str(exc).strip().splitlines()[0]}") from exc
    proxy = image.dataobj
    expected = int(np.prod(proxy.shape)) * np.dtype(image.header.get_data_dtype()).itemsize
    offset = int(proxy.offset)
    if str(path).lower().endswith(".gz"):
        with open(path, "rb") as handle:
            _check_size(str(path), decoded_size(handle, _GZIP, str(path)) - offset, expected)
    else:
        _check_size(str(path), os.path.getsize(path) - offset, expected)


def _header_lines(path: Path, separator: str) -> tuple[dict[str, str], int]:
    """(``{key: value}``, byte offset of the data) of a text header ending at a blank line (NRRD) or at the
    ``ElementDataFile`` line (MetaImage); keys are lower-case."""
    fields, offset = {}, 0
    with open(path, "rb") as handle:
        for raw in iter(handle.readline, b""):
            offset += len(raw)
            line = raw.decode("latin-1").strip()
            if not line:
                if separator == ":":
                    break
                continue
            if line.startswith("#") or separator not in line:
                continue
            key, value = line.split(separator, 1)
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":
                break
    return fields, offset


def _verify_stream(name: str, data: Path, offset: int, compressed: str | None, expected: int | None) -> None:
    """Check the data of ``data`` from ``offset``: decode a compressed stream to its end; compare the size."""
    if compressed is None:
        actual = os.path.getsize(data) - offset
        if expected is not None and actual < expected:
            _check_size(name, actual, expected)
        return
    with open(data, "rb") as handle:
        handle.seek(offset)
        actual = decoded_size(handle, _GZIP if compressed == "gzip" else _ZLIB, name)
    if expected is not None:
        _check_size(name, actual, expected)


def _verify_nrrd(path: Path) -> None:
    fields, offset = _header_lines(path, ":")
    if any(key in fields for key in ("line skip", "lineskip", "byte skip", "byteskip")):
        return  # skipped headers inside the data: left to the reader
    encoding = fields.get("encoding", "raw").lower()
    if encoding not in ("raw", "gzip", "gz"):
        return
    size = _NRRD_SIZE.get(fields.get("type", "").lower())
    sizes = [int(s) for s in re.findall(r"\d+", fields.get("sizes", ""))]
    expected = size * int(np.prod(sizes)) if size and sizes else None
    detached = fields.get("data file") or fields.get("datafile")
    data = path if detached is None else path.parent / detached
    if detached is not None:
        offset = 0
        if not data.is_file():
            raise FusionInputError(f"{path} names the data file {data}, which does not exist")
    _verify_stream(str(data), data, offset, "gzip" if encoding != "raw" else None, expected)


def _verify_metaimage(path: Path) -> None:
    fields, offset = _header_lines(path, "=")
    size = _META_SIZE.get(fields.get("elementtype", "").upper())
    dims = [int(s) for s in re.findall(r"\d+", fields.get("dimsize", ""))]
    channels = int(fields.get("elementnumberofchannels", "1") or 1)
    expected = size * channels * int(np.prod(dims)) if size and dims else None
    element_file = fields.get("elementdatafile", "LOCAL")
    if element_file.upper() == "LIST" or "%" in element_file:
        return  # one file per slice: left to the reader
    data = path if element_file.upper() == "LOCAL" else path.parent / element_file
    if data is not path:
        offset = 0
        if not data.is_file():
            raise FusionInputError(f"{path} names the data file {data}, which does not exist")
    compressed = "zlib" if fields.get("compresseddata", "false").lower() == "true" else None
    _verify_stream(str(data), data, offset, compressed, expected)


def verify_volume_file(path: str | Path) -> None:
    """Read ``path`` (and a detached data file) completely; a :class:`FusionInputError` naming the file when it
    is corrupt (failed gzip CRC-32 / zlib Adler-32), truncated, or longer than its header describes."""
    path = Path(path)
    if path.is_dir():
        return
    lower = path.name.lower()
    if lower.endswith((".nii", ".nii.gz")):
        _verify_nifti(path)
    elif lower.endswith((".nrrd", ".nhdr")):
        _verify_nrrd(path)
    elif lower.endswith((".mha", ".mhd")):
        _verify_metaimage(path)
