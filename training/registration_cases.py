"""Rigid registration of every HMIF CT-MRI case's own (unmoved) pair, stacked as the bundle's sample pair is.

The HMIF pairs are registered by the dataset; this prints how far the registration's optimum lands from that
nominal alignment for each case (rotation angle and shift at the volume centre), the mutual information before
and after, and the outcome (``registered`` / ``rejected`` / ``already aligned``). It measures the precision
that can be expected on real CT-MRI stacks of 16 thick (5 mm) slices, which the known-transform tests of
``tests/test_volume_registration.py`` are judged against.

Usage: ``.venv/bin/python training/registration_cases.py [HMIF training folder]`` (default ``../shared/data/hmif-train``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "monai_bundle"), str(ROOT / "monai_bundle" / "sample_data")]

import make_sample_data  # noqa: E402  (the sample pair's own builder)
from scripts.volume.io import load_volume  # noqa: E402
from scripts.volume.registration import register_rigid  # noqa: E402


def main(data: Path) -> None:
    cases = sorted({p.stem[:-3] for p in (data / "CT-MRI" / "CT").glob("*.png")}, key=int)
    for case in cases:
        make_sample_data.CASE = case
        with tempfile.TemporaryDirectory() as tmp:
            make_sample_data.main(data, Path(tmp))
            ct, mri = (load_volume(Path(tmp) / f"{name}_case{case}.nii.gz") for name in ("ct", "mri"))
            result = register_rigid(ct, mri)
        rotation = result.found[:3, :3]
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
        centre = ct.affine @ np.r_[np.array(ct.array.shape) / 2, 1.0]
        shift = np.linalg.norm((result.found @ centre)[:3] - centre[:3])
        print(f"case {case:>2} ({ct.array.shape[2]} slices): optimum {angle:.2f} deg, {shift:.2f} mm at the centre; "
              f"MI {result.mi_before:.3f} -> {result.mi_after:.3f}; {result.outcome}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "hmif-train")
