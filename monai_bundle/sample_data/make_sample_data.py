"""Rebuild the bundle's sample volume pair from the HMIF training split (a developer tool; the files ship).

Case 2 of the CT-MRI training split (AANLIB, see ``docs/data_license.txt``): its 16 slices (2005-2022, the split
has no 2010 and 2013) stacked inferior to superior at a nominal 1 x 1 x 5 mm.

* ``ct_case2.nii.gz``: 256 x 256 x 16, stored LPS (i -> patient left, j -> posterior, as the PNGs are viewed).
  The 8-bit gray levels are scaled to the default CT preset's brain window (0 -> 0, 255 -> 80; NIfTI
  ``scl_slope``), so the default preset reproduces the source images. They are not calibrated Hounsfield units.
* ``mri_case2.nii.gz``: the MRI on a different grid - stored RAS (both in-plane axes reversed) and cropped to
  its field of view (224 x 240 x 16, other origin). The voxel centres coincide with the CT's, so resampling
  onto the CT grid is exact and the demo shows the geometry handling without interpolation loss.

Usage: ``python sample_data/make_sample_data.py [HMIF root]`` from ``monai_bundle/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

CASE, SPACING = "2", (1.0, 1.0, 5.0)
WINDOW = (0.0, 80.0)  # the ct-brain preset of scripts.volume.normalize: level 40, width 80
CROP_COLUMNS, CROP_ROWS = (16, 240), (0, 240)


def stack(folder: Path) -> np.ndarray:
    """(column, row, slice) uint8 array of the case's PNGs, slices in ascending index order."""
    names = sorted((p for p in folder.glob(f"{CASE}???.png")), key=lambda p: int(p.stem))
    return np.stack([np.asarray(Image.open(p).convert("L")).T for p in names], axis=-1)


def save(data: np.ndarray, affine: np.ndarray, path: Path, slope: float = 1.0) -> None:
    image = nib.Nifti1Image(data, affine)
    image.header.set_data_dtype(np.uint8)
    image.header.set_slope_inter(slope, 0.0)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def main(root: Path, out: Path) -> None:
    ct, mri = stack(root / "CT-MRI" / "CT"), stack(root / "CT-MRI" / "MRI")
    columns, rows, slices = ct.shape
    origin = np.array([(columns - 1) / 2, (rows - 1) / 2, -(slices - 1) * SPACING[2] / 2])
    ct_affine = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])  # x = origin - column, y = origin - row
    ct_affine[:3, 3] = origin
    save(ct, ct_affine, out / f"ct_case{CASE}.nii.gz", slope=(WINDOW[1] - WINDOW[0]) / 255.0)

    (c0, c1), (r0, r1) = CROP_COLUMNS, CROP_ROWS
    mri_ras = mri[c0:c1, r0:r1][::-1, ::-1]  # i -> right (column c1-1 first), j -> anterior (row r1-1 first)
    mri_affine = np.diag([SPACING[0], SPACING[1], SPACING[2], 1.0])
    mri_affine[:3, 3] = ct_affine[:3, :3] @ [c1 - 1, r1 - 1, 0] + origin
    save(np.ascontiguousarray(mri_ras), mri_affine, out / f"mri_case{CASE}.nii.gz")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[2] / "shared" / "data" / "hmif-train", here)
