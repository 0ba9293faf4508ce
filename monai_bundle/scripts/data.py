"""HMIF 2-D pairs: file discovery, the validation split, and the one PNG loader every entry point uses.

HMIF layout: ``<root>/<task>/<A-modality>/<name>.png`` with ``<root>/<task>/MRI/<name>.png`` (same name). A file
name is a case id followed by a 3-digit slice index (``16003`` = case 16, slice 3).

Validation split (never trained on): every slice whose index is a multiple of 7 (``slice % 7 == 0``), in every
case - neighbouring slices are near-duplicates, so whole slices are held out, mimicking how the official test
split was drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
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
    "LoadHMIFPaird",
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


def read_png(path: str | Path) -> np.ndarray:
    """A PNG as float32 in [0, 1]: (H, W) for gray, (H, W, 3) for colour (alpha dropped)."""
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.dtype == np.uint16:
        arr = arr / 65535.0
    else:
        arr = arr / 255.0
    if arr.ndim == 3:
        arr = arr[..., :3]
        if np.allclose(arr[..., 0], arr[..., 1]) and np.allclose(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]
    return arr.astype(np.float32)


def network_input(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 network input from source A (gray, or RGB -> its Y channel) and the MRI B (gray)."""
    a_y = rgb_to_ycbcr(a)[..., 0] if a.ndim == 3 else a
    b_y = rgb_to_ycbcr(b)[..., 0] if b.ndim == 3 else b
    if a_y.shape != b_y.shape:
        raise ValueError(f"source images differ in size: {a_y.shape} vs {b_y.shape}")
    return np.stack([a_y, b_y]).astype(np.float32)


class LoadHMIFPaird(MapTransform):
    """Reads the PNG pair named by keys ``a`` and ``b`` into ``image``: (2, H, W) float32 in [0, 1]."""

    def __init__(self, keys: KeysCollection = ("a", "b"), output_key: str = "image"):
        super().__init__(keys)
        self.output_key = output_key

    def __call__(self, data):
        d = dict(data)
        key_a, key_b = self.keys
        d[self.output_key] = network_input(read_png(d[key_a]), read_png(d[key_b]))
        return d
