"""Sample and test data: the synthetic CT/MRI phantom pair used by the self-test, and the SampleData entry.

:func:`synthetic_pair` builds a small, deterministic head phantom in two "modalities" on one grid (CT-like:
air -1000, soft tissue 40, skull 1000; MRI-like: dark skull, bright brain, darker ventricles).
:func:`register_sample_data` adds the sample pair that ships with the bundle (``sample_data/``: a CT-MRI case of
the Whole Brain Atlas) to Slicer's Sample Data module; loading it copies the files into Slicer's cache
(``file://`` URIs, SHA-256 checked) and creates the two volume nodes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SAMPLE_CATEGORY = "W-DUALMINE"
#: The bundle's sample pair (AANLIB CT-MRI case 2, see the bundle's docs/data_license.txt): (path inside the
#: bundle, node name) of the reference CT, then of the MRI.
SAMPLE_FILES = (
    ("sample_data/ct_case2.nii.gz", "WDualMineSampleCT"),
    ("sample_data/mri_case2.nii.gz", "WDualMineSampleMRI"),
)


def synthetic_pair(shape=(40, 36, 5), spacing=(0.9, 0.9, 3.0)):
    """``(ct, mri, affine)``: two float32 ``[i, j, k]`` phantoms of ``shape`` and their shared IJK -> RAS affine."""
    i, j, k = np.meshgrid(*(np.linspace(-1.0, 1.0, n) for n in shape), indexing="ij")
    radius = np.sqrt((i / 0.85) ** 2 + (j / 0.95) ** 2 + (0.3 * k) ** 2)
    head, brain = radius < 1.0, radius < 0.85
    ventricles = (np.abs(i) < 0.15) & (np.abs(j) < 0.35) & brain
    ct = np.full(shape, -1000.0, np.float32)
    ct[head] = 1000.0
    ct[brain] = 40.0
    ct[ventricles] = 5.0
    mri = np.zeros(shape, np.float32)
    mri[head] = 50.0
    mri[brain] = 600.0 + 80.0 * np.cos(6.0 * i[brain]) * np.cos(5.0 * j[brain])
    mri[ventricles] = 200.0
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = (20.0, 15.0, -6.0)
    return ct, mri, affine


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (SampleData verifies downloads against it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sample_source(bundle_dir: Path) -> dict | None:
    """Keyword arguments for ``SampleDataLogic.registerCustomSampleDataSource``; ``None`` without the files."""
    paths = [Path(bundle_dir) / name for name, _ in SAMPLE_FILES]
    if not all(p.is_file() for p in paths):
        return None
    return {
        "category": SAMPLE_CATEGORY,
        "sampleName": "WDualMineCTMRI",
        "uris": [p.resolve().as_uri() for p in paths],
        "fileNames": [f"{node}.nii.gz" for _, node in SAMPLE_FILES],  # names in Slicer's download cache
        "nodeNames": [node for _, node in SAMPLE_FILES],
        "checksums": [f"SHA256:{sha256(p)}" for p in paths],
        "loadFileType": ["VolumeFile"] * len(paths),
    }


def register_sample_data(bundle_dir: Path, thumbnail: Path | None = None) -> bool:
    """Add the bundle's sample pair to the Sample Data module; False when the bundle has no sample files."""
    source = sample_source(bundle_dir)
    if source is None:
        return False
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        thumbnailFileName=str(thumbnail) if thumbnail else None, **source
    )
    return True
