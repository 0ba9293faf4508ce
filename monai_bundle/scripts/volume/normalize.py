"""Intensity normalization to [0, 1] per modality: the presets, their user overrides, and the one normalizer.

Two kinds: ``window`` (CT: ``level`` / ``width`` in HU, values outside clipped) and ``percentile`` (MRI, PET,
SPECT: the ``low`` / ``high`` percentiles of the volume map to 0 / 1, robust to outliers). The default of each
task is in :data:`TASK_PRESETS`; a user override is a preset name of :data:`NORM_PRESETS` or a dict (a dict
without ``kind`` adjusts the task's preset, e.g. ``{'level': 60}``).

NaN / Inf voxels are never silently propagated: they are refused (``nonfinite='error'``) or replaced by the
volume's smallest finite value (``'fill'``), and the number of such voxels is reported.

The mapping itself is MONAI's ``ScaleIntensityRange`` (``low``/``high`` -> [0, 1], clipped; :func:`apply_norm`).
The range comes from the whole volume once (:func:`norm_range`) and is applied slab by slab, so MONAI's
``ScaleIntensityRangePercentiles`` (percentiles of whatever array it is given) does not apply; the percentiles
are ``np.percentile``'s, which MONAI's own ``percentile`` also falls back to on arrays and on tensors of more than
10^6 elements (``torch.quantile`` has an input-size limit, pytorch#64947). Equality with the former hand-written
mapping: ``tests/test_monai_equivalence.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from monai.transforms import ScaleIntensityRange
from monai.utils import convert_to_numpy

from .types import FusionInputError

__all__ = [
    "NORM_PRESETS",
    "TASK_PRESETS",
    "resolve_norm",
    "normalize",
    "describe_norm",
    "NormRange",
    "norm_range",
    "apply_norm",
]

NORM_PRESETS: dict[str, dict] = {
    "ct-brain": {"kind": "window", "level": 40.0, "width": 80.0},
    "ct-soft-tissue": {"kind": "window", "level": 40.0, "width": 400.0},
    "ct-bone": {"kind": "window", "level": 400.0, "width": 1800.0},
    "percentile": {"kind": "percentile", "low": 0.5, "high": 99.5},
    "minmax": {"kind": "percentile", "low": 0.0, "high": 100.0},
}

#: (preset of volume A, preset of volume B) per task. The brain window matches the look of the HMIF CT images
#: the network was trained on (tissue mid-gray, CSF dark, bone saturated).
TASK_PRESETS: dict[str, tuple[str, str]] = {
    "CT-MRI": ("ct-brain", "percentile"),
    "PET-MRI": ("percentile", "percentile"),
    "SPECT-MRI": ("percentile", "percentile"),
}

_KEYS = {"window": ("level", "width"), "percentile": ("low", "high")}
_NONFINITE = ("error", "fill")


def describe_norm(spec: dict) -> str:
    """``window level 40 width 80`` / ``percentiles 0.5-99.5``."""
    if spec["kind"] == "window":
        return f"window level {spec['level']:g} width {spec['width']:g}"
    return f"percentiles {spec['low']:g}-{spec['high']:g}"


def resolve_norm(task: str, which: str, override: dict | str | None = None) -> dict:
    """The validated normalization of volume ``which`` (``'a'`` or ``'b'``) for ``task`` with ``override``."""
    if task not in TASK_PRESETS:
        raise FusionInputError(f"unknown task {task!r}; expected one of {', '.join(TASK_PRESETS)}")
    base = dict(NORM_PRESETS[TASK_PRESETS[task][0 if which == "a" else 1]])
    if override is None:
        return base
    if isinstance(override, str):
        if override not in NORM_PRESETS:
            raise FusionInputError(
                f"unknown normalization preset {override!r} for volume {which.upper()}; "
                f"expected one of {', '.join(NORM_PRESETS)}"
            )
        return dict(NORM_PRESETS[override])
    if not isinstance(override, dict):
        raise FusionInputError(
            f"normalization of volume {which.upper()} must be a preset name or a dict, "
            f"got {type(override).__name__}"
        )
    kind = override.get("kind", base["kind"])
    if kind not in _KEYS:
        raise FusionInputError(
            f"unknown normalization kind {kind!r} for volume {which.upper()}; expected one of {', '.join(_KEYS)}"
        )
    unknown = set(override) - {"kind", *_KEYS[kind]}
    if unknown:
        raise FusionInputError(
            f"unknown {kind} normalization keys {sorted(unknown)} for volume {which.upper()}; "
            f"expected {', '.join(_KEYS[kind])}"
        )
    defaults = base if base["kind"] == kind else (NORM_PRESETS["percentile"] if kind == "percentile" else {})
    spec = {"kind": kind}
    for key in _KEYS[kind]:
        value = override.get(key, defaults.get(key))
        if value is None:
            raise FusionInputError(f"the {kind} normalization of volume {which.upper()} needs {key!r}")
        try:
            spec[key] = float(value)
        except (TypeError, ValueError):
            raise FusionInputError(f"{key} of volume {which.upper()} must be a number, got {value!r}") from None
        if not np.isfinite(spec[key]):
            raise FusionInputError(f"{key} of volume {which.upper()} must be finite, got {value!r}")
    if kind == "window" and spec["width"] <= 0:
        raise FusionInputError(f"window width of volume {which.upper()} must be positive, got {spec['width']:g}")
    if kind == "percentile" and not 0.0 <= spec["low"] < spec["high"] <= 100.0:
        raise FusionInputError(
            f"percentiles of volume {which.upper()} must satisfy 0 <= low < high <= 100, "
            f"got {spec['low']:g}, {spec['high']:g}"
        )
    return spec


@dataclass(frozen=True)
class NormRange:
    """The intensity mapping of one volume: ``low`` -> 0, ``high`` -> 1 (clipped); NaN/Inf -> ``fill``."""

    low: float
    high: float
    fill: float | None = None


def _without_nonfinite(
    array: np.ndarray, name: str, nonfinite: str, note: Callable[[str], None]
) -> tuple[np.ndarray, float | None]:
    """(``array`` or a copy without NaN/Inf, fill value or None); refused or filled per ``nonfinite``.

    Integer volumes have no NaN/Inf; float ones are scanned by their minimum and maximum (NaN propagates, so no
    mask of the whole volume is made unless there is something to replace)."""
    if nonfinite not in _NONFINITE:
        raise FusionInputError(f"nonfinite must be one of {_NONFINITE}, got {nonfinite!r}")
    if array.dtype.kind != "f" or (np.isfinite(np.min(array)) and np.isfinite(np.max(array))):
        return array, None
    finite = np.isfinite(array)
    bad = array.size - int(np.count_nonzero(finite))
    if nonfinite == "error" or bad == array.size:
        hint = "" if bad == array.size else "; fix the file, or pass nonfinite='fill' to replace them"
        raise FusionInputError(f"volume {name} has {bad} NaN/Inf voxel(s) of {array.size}{hint}")
    fill = float(array[finite].min())
    note(f"volume {name}: {bad} NaN/Inf voxel(s) replaced by its minimum {fill:g}")
    return np.where(finite, array, array.dtype.type(fill)), fill


def norm_range(
    array: np.ndarray, spec: dict, name: str, nonfinite: str = "error", note: Callable[[str], None] | None = None
) -> NormRange:
    """The :class:`NormRange` of ``array`` under ``spec`` (see :func:`resolve_norm`), from the whole volume.

    Refuses (:class:`FusionInputError`) NaN/Inf voxels (unless ``nonfinite='fill'``), a constant volume, and a
    normalization that leaves nothing but one value (e.g. a CT window entirely outside the data range).
    ``note`` receives messages for the user (NaN/Inf voxels replaced, degenerate percentiles).
    """
    note = note or (lambda message: None)
    values, fill = _without_nonfinite(np.asarray(array), name, nonfinite, note)
    v_min, v_max = float(values.min()), float(values.max())
    if v_min == v_max:
        raise FusionInputError(f"volume {name} is constant (every voxel is {v_min:g}): there is nothing to fuse")
    if spec["kind"] == "window":
        low, high = spec["level"] - spec["width"] / 2, spec["level"] + spec["width"] / 2
    else:
        low, high = (float(p) for p in np.percentile(values, [spec["low"], spec["high"]]))
        if high <= low:
            note(f"volume {name}: {describe_norm(spec)} are equal ({low:g}); using the full range instead")
            low, high = v_min, v_max
    ends = np.clip((np.array([v_min, v_max], dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    if ends[0] == ends[1]:
        raise FusionInputError(
            f"volume {name} is constant after normalization ({describe_norm(spec)} maps its "
            f"data range [{v_min:g}, {v_max:g}] to a single value); choose another "
            "window or preset"
        )
    return NormRange(low, high, fill)


def apply_norm(array: np.ndarray, mapping: NormRange) -> np.ndarray:
    """``array`` (a whole volume or a slab of it) mapped to a new float32 [0, 1] array; the input is unchanged.

    MONAI's ``ScaleIntensityRange`` (``mapping.low`` -> 0, ``mapping.high`` -> 1, clipped) on the float32 values
    (float64 input is rounded to float32 first, as the volume pipeline computes in float32)."""
    array = np.asarray(array)
    if mapping.fill is not None:
        array = np.where(np.isfinite(array), array, array.dtype.type(mapping.fill))
    scale = ScaleIntensityRange(a_min=mapping.low, a_max=mapping.high, b_min=0.0, b_max=1.0, clip=True)
    return convert_to_numpy(scale(array.astype(np.float32, copy=False)), dtype=np.float32)


def normalize(
    array: np.ndarray, spec: dict, name: str, nonfinite: str = "error", note: Callable[[str], None] | None = None
) -> np.ndarray:
    """``array`` mapped to float32 [0, 1] by ``spec``: :func:`apply_norm` of :func:`norm_range` (which see)."""
    return apply_norm(array, norm_range(array, spec, name, nonfinite, note))
