"""HMIF 2-D pairs: file discovery, the validation split, and the PNG readers (one conversion to gray / Y).

HMIF layout: ``<root>/<task>/<A-modality>/<name>.png`` with ``<root>/<task>/MRI/<name>.png`` (same name). A file
name is a case id followed by a 3-digit slice index (``16003`` = case 16, slice 3).

Validation split (never trained on): every slice whose index is a multiple of 7 (``slice % 7 == 0``), in every
case - neighbouring slices are near-duplicates, so whole slices are held out, mimicking how the official test
split was drawn.

Two readers of a pair, proven identical on the HMIF images by ``tests/test_monai_equivalence.py``:

* training (``configs/train.json``): MONAI's ``LoadImaged`` (PILReader, row-major) -> ``EnsureChannelFirstd`` ->
  ``ScaleIntensityRanged`` (0-255 to [0, 1]) -> :class:`LumaChanneld` -> ``ConcatItemsd`` into ``image``.
  :class:`LumaChanneld` is the one step MONAI has no transform for: the Y channel (BT.601 full range) of a
  pseudo-colour PET/SPECT image.
* the benchmark and the experiment scripts of ``training/``: :func:`read_png` (keeps the colour, which the
  benchmark puts back after fusion, and reads 16-bit PNGs too) and :func:`network_input`.

The training loader scales 0-255 (HMIF is 8-bit gray or RGB); :class:`LumaChanneld` refuses values above 1 (a
16-bit PNG) instead of training on them.

Both share :func:`drop_redundant_channels` and :func:`luma`, so gray and colour images are handled one way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.transforms import MapTransform
from monai.utils import convert_to_numpy
from PIL import Image

from .color import rgb_to_ycbcr

__all__ = [
    "TASKS",
    "MODALITY_A",
    "hmif_pairs",
    "split_pairs",
    "is_validation",
    "read_png",
    "network_input",
    "drop_redundant_channels",
    "luma",
    "LumaChanneld",
    "datalist",
]

TASKS = ("CT-MRI", "PET-MRI", "SPECT-MRI")
MODALITY_A = {"CT-MRI": "CT", "PET-MRI": "PET", "SPECT-MRI": "SPECT"}
VALIDATION_EVERY = 7


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task


def task_dir(root: str | Path, task: str) -> Path:
    """Accept either the HMIF root (``<root>/<task>/...``) or the task folder itself."""
    root = Path(root)
    modality = MODALITY_A[check_task(task)]
    for candidate in (root / task, root):
        if (candidate / modality).is_dir() and (candidate / "MRI").is_dir():
            return candidate
    raise FileNotFoundError(f"no HMIF {task} data under {root}: expected {root}/{task}/{modality} and .../MRI")


def hmif_pairs(root: str | Path, task: str) -> list[dict[str, str]]:
    """Sorted list of ``{"name", "a", "b"}`` dicts for every pair of ``task`` under ``root``."""
    folder = task_dir(root, task)
    a_dir, b_dir = folder / MODALITY_A[task], folder / "MRI"
    pairs = []
    for a in sorted(a_dir.glob("*.png")):
        b = b_dir / a.name
        if b.exists():
            pairs.append({"name": a.stem, "a": str(a), "b": str(b)})
    if not pairs:
        raise FileNotFoundError(f"no matching PNG pairs in {a_dir} and {b_dir}")
    return pairs


def is_validation(name: str) -> bool:
    """True for held-out slices: the last three digits of the name (slice index) are a multiple of 7."""
    return int(Path(name).stem[-3:]) % VALIDATION_EVERY == 0


def split_pairs(pairs: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, validation) by :func:`is_validation`."""
    train = [p for p in pairs if not is_validation(p["name"])]
    val = [p for p in pairs if is_validation(p["name"])]
    return train, val


def datalist(root: str | Path, task: str | list[str], split: str = "train") -> list[dict[str, str]]:
    """Pairs of one split (``"train"``, ``"val"`` or ``"all"``) of one task or of several (a joint model)."""
    if not isinstance(task, str):
        return [p for t in task for p in datalist(root, t, split)]
    pairs = hmif_pairs(root, task)
    if split == "all":
        return pairs
    train, val = split_pairs(pairs)
    return {"train": train, "val": val}[split]


def drop_redundant_channels(image: np.ndarray) -> np.ndarray:
    """A channel-last image without what carries nothing: alpha dropped, an RGB image whose three channels are
    equal returned as gray (H, W) (its channel 0). Gray (H, W) is returned as it is."""
    if image.ndim == 3:
        image = image[..., :3]
        if np.allclose(image[..., 0], image[..., 1]) and np.allclose(image[..., 0], image[..., 2]):
            image = image[..., 0]
    return image


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W) float32: a gray image itself, or the Y channel (BT.601 full range, :func:`rgb_to_ycbcr`) of an RGB
    (H, W, 3) image in [0, 1] - the HMIF protocol fuses the Y channel of PET/SPECT with the MRI."""
    return (rgb_to_ycbcr(image)[..., 0] if image.ndim == 3 else image).astype(np.float32)


def read_png(path: str | Path) -> np.ndarray:
    """A PNG as float32 in [0, 1]: (H, W) for gray, (H, W, 3) for colour (:func:`drop_redundant_channels`)."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    arr = arr / (65535.0 if arr.dtype == np.uint16 else 255.0)
    return drop_redundant_channels(arr).astype(np.float32)


def network_input(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 network input from source A (gray, or RGB -> its Y channel) and the MRI B (gray)."""
    a_y, b_y = luma(a), luma(b)
    if a_y.shape != b_y.shape:
        raise ValueError(f"source images differ in size: {a_y.shape} vs {b_y.shape}")
    return np.stack([a_y, b_y])


class LumaChanneld(MapTransform):
    """Channel-first images in [0, 1] (MONAI's ``EnsureChannelFirstd`` output: (1, H, W) gray, (3 or 4, H, W)
    colour) -> (1, H, W) float32: :func:`luma` of :func:`drop_redundant_channels` of each. MONAI has colour-space
    transforms for neither this nor alpha/gray-as-RGB handling, so this is the project's one custom step of the
    training loader (configs/train.json). Values above 1 (a 16-bit PNG scaled as 8-bit) are refused."""

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            image = convert_to_numpy(d[key])
            if image.max() > 1.0:
                source = getattr(d[key], "meta", {}).get("filename_or_obj", key)
                raise ValueError(f"{source}: values above 1 after the 0-255 scaling; training reads 8-bit PNGs")
            channel_last = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
            d[key] = luma(drop_redundant_channels(channel_last))[None]
        return d
