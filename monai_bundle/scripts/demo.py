"""Demo: fuse the bundle's sample CT-MRI volume pair and write the fused volume and a PNG montage (replacing
those of an earlier demo).

The pair (``sample_data/``, AANLIB, see ``docs/data_license.txt``) is fused exactly as the command line does
(the evaluator of ``configs/inference.json``, weights loaded by its handler; only the runner keeps the normalized
inputs, :class:`DemoRunner`); the montage shows a few slices, one row each: A (normalized CT), B (MRI resampled
onto the CT grid), fused. Run from ``monai_bundle/``::

    python -m scripts.demo --output_dir eval/demo [--strength 0.5] [--ckpt_path models/model.pt] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file (python scripts/demo.py): make the bundle's package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.color import to_uint8  # noqa: E402
from scripts.volume.io import atomic_write  # noqa: E402
from scripts.volume.runner import VolumeFusionRunner  # noqa: E402
from scripts.volume.types import FusionResult  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1]
SAMPLE_A = BUNDLE / "sample_data" / "ct_case2.nii.gz"
SAMPLE_B = BUNDLE / "sample_data" / "mri_case2.nii.gz"


def montage(result: FusionResult, rows: int = 4) -> np.ndarray:
    """uint8 RGB image: ``rows`` evenly spaced slices (of those with content), columns A | B | fused.

    A slice's first in-plane axis runs left to right and its second top to bottom (the sample volumes then
    look like the source images: radiological view).
    """
    axis = result.slice_axis
    a, b, f = (np.moveaxis(v.array, axis, 0) for v in (result.a, result.b, result.fused))
    content = [k for k in range(a.shape[0]) if max(a[k].max(), b[k].max()) > 0.05] or list(range(a.shape[0]))
    picks = [content[int(round(p))] for p in np.linspace(0, len(content) - 1, min(rows, len(content)))]

    def rgb(image: np.ndarray) -> np.ndarray:
        image = np.swapaxes(image, 0, 1)  # (first, second in-plane) -> (rows, columns)
        image = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        return to_uint8(image)

    return np.concatenate([np.concatenate([rgb(v[k]) for v in (a, b, f)], axis=1) for k in picks], axis=0)


class DemoRunner(VolumeFusionRunner):
    """The command line's runner, keeping the normalized inputs and each pair's result (for the montage)."""

    keep_inputs = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.results: list[tuple[Path, FusionResult]] = []

    def pair_done(self, a_path, b_path, out_path, result: FusionResult) -> None:
        super().pair_done(a_path, b_path, out_path, result)
        self.results.append((out_path, result))


def build_evaluator(output_dir: Path, overrides: dict):
    """The evaluator of ``configs/inference.json`` with the sample pair, :class:`DemoRunner` and ``overrides``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser.update(
        {
            "bundle_root": str(BUNDLE),
            "image_a": str(SAMPLE_A),
            "image_b": str(SAMPLE_B),
            "output_dir": str(output_dir),
            "runner#_target_": "scripts.demo.DemoRunner",
            **overrides,
        }
    )
    return parser.get_parsed_content("evaluator")


def run_demo(output_dir: str | Path, rows: int = 4, **overrides) -> tuple[Path, Path]:
    """Fuse the sample pair into ``output_dir``; returns (fused volume path, montage PNG path)."""
    from PIL import Image

    output_dir = Path(output_dir)
    evaluator = build_evaluator(
        output_dir, {"overwrite": True, **{k: v for k, v in overrides.items() if v is not None}}
    )
    evaluator.run()
    ((out_path, result),) = evaluator.runner.results
    png = output_dir / "sample_montage.png"
    atomic_write(png, lambda tmp: Image.fromarray(montage(result, rows)).save(tmp, format="PNG"))
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    print(f"wrote {png}  (rows: slices; columns: A (CT), B (MRI), fused)")  # the runner named the volume
    return out_path, png


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=str(BUNDLE / "eval" / "demo"))
    parser.add_argument("--strength", type=float, default=None, help="detail strength (default: the config's)")
    parser.add_argument("--device", default=None, choices=("auto", "cuda", "cpu"))
    parser.add_argument("--ckpt_path", default=None, help="weights file (default: the bundle's models/model.pt)")
    parser.add_argument("--rows", type=int, default=4, help="slices in the montage")
    args = parser.parse_args(argv)
    try:
        run_demo(args.output_dir, rows=args.rows, strength=args.strength, device=args.device, ckpt_path=args.ckpt_path)
    except Exception as error:  # bad input or weights (FusionInputError, WeightsError): the message says why
        from scripts.volume.cli import error_line

        sys.exit(error_line(error))


if __name__ == "__main__":
    main()
