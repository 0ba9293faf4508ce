"""Strict checking of the fusion options: every value is validated before any volume is read.

:func:`validate_options` is the one check every entry point runs (command line, Python API, Slicer): task,
strength (inside :data:`scripts.task_defaults.STRENGTH_RANGE`), flags (``True`` / ``False`` or the words
``true`` / ``false`` - never a non-empty string taken as true), reference, slice axis, batch size, device (a
CUDA device without a GPU is refused here, not after the volumes have been read), normalizations and colour
map. :func:`closest` suggests the nearest valid name for a misspelled one.
"""

from __future__ import annotations

import difflib

from ..task_defaults import check_strength
from .color_fusion import COLORMAPS, colormap_lut
from .normalize import TASK_PRESETS, resolve_norm
from .slicing import resolve_device
from .types import FusionInputError, FusionOptions

__all__ = ["validate_options", "parse_flag", "closest", "check_choice"]

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def closest(name: str, valid, prefix: str = "") -> str:
    """``"; did you mean '<prefix>X'?"`` for the valid name nearest to ``name`` (case-insensitive; a task
    written the other way round, ``MRI-CT``, is matched too), else ``""``."""
    lowered = {str(v).lower(): str(v) for v in valid}
    for guess in (str(name).lower(), "-".join(reversed(str(name).lower().split("-")))):
        match = difflib.get_close_matches(guess, list(lowered), n=1, cutoff=0.6)
        if match:
            return f"; did you mean '{prefix}{lowered[match[0]]}'?"
    return ""


def check_choice(value, valid, what: str):
    """``value`` when it is one of ``valid``; else a FusionInputError listing them and the closest."""
    if value in valid:
        return value
    listed = ", ".join(repr(v) for v in valid)
    raise FusionInputError(f"unknown {what} {value!r}: expected one of {listed}{closest(value, valid)}")


def parse_flag(value, name: str) -> bool:
    """A yes/no option: a bool, 0/1, or one of the words true/false, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise FusionInputError(f"{name} must be true or false, got {value!r}")


def validate_options(options: FusionOptions) -> tuple[dict, dict, str | None]:
    """Check every option (normalizing flags and the strength in place); returns (normalization of A, of B,
    colour map or None). Raises :class:`FusionInputError` naming the option and what is allowed."""
    check_choice(options.task, tuple(TASK_PRESETS), "task")
    try:
        options.strength = check_strength(options.strength)
    except ValueError as exc:
        raise FusionInputError(str(exc)) from None
    options.register = parse_flag(options.register, "register")
    options.color = parse_flag(options.color, "color")
    check_choice(options.reference, ("auto", "a", "b"), "reference")
    if options.slice_axis not in (None, 0, 1, 2) or isinstance(options.slice_axis, bool):
        raise FusionInputError(f"slice_axis must be None, 0, 1 or 2, got {options.slice_axis!r}")
    batch = options.batch_size
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise FusionInputError(f"batch_size must be a positive integer (slices per network call), got {batch!r}")
    resolve_device(options.device)
    if not isinstance(options.nonfinite, str) or options.nonfinite not in ("error", "fill"):
        check_choice(options.nonfinite, ("error", "fill"), "nonfinite policy")
    colormap = None
    if options.color:
        if options.task not in COLORMAPS:
            raise FusionInputError(f"colour fusion is for PET/SPECT tasks ({', '.join(COLORMAPS)}), not {options.task}")
        colormap = options.colormap or COLORMAPS[options.task]
        colormap_lut(colormap)  # refuses an unknown name now, not after the network has run
    return resolve_norm(options.task, "a", options.norm_a), resolve_norm(options.task, "b", options.norm_b), colormap
