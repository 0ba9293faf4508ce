"""Per-task defaults of the shipped model, in plain Python (no torch: the Slicer module reads them before the
bundle's dependencies are installed).

``DEFAULT_STRENGTH`` is the operating point of each task: ``training/compare_anchors.py --choose`` on the
*training* split picks it (the middle of the strength range at which the model beats AdaFuse and ASFE-Fusion on
every metric of shared/reference/anchors.md, Qabf by a 0.03 margin; where no strength does, the strength with the
fewest failures, the smallest on ties); the validation split then estimates how it does. See
docs/README.md, *Default strength per task*. Every entry point takes an explicit ``strength`` instead.
"""

from __future__ import annotations

__all__ = ["DEFAULT_STRENGTH", "default_strength", "STRENGTH_RANGE", "check_strength"]

#: The documented range of the strength of every entry point (command line, Python API, Slicer slider): 0 gives
#: the plain mean of the two normalized inputs, 1 the model's full fusion.
STRENGTH_RANGE: tuple[float, float] = (0.0, 1.0)

DEFAULT_STRENGTH: dict[str, float] = {"CT-MRI": 0.1, "PET-MRI": 0.1, "SPECT-MRI": 0.3}


def default_strength(task: str) -> float:
    """The shipped default strength of ``task``; a ValueError names the known tasks otherwise."""
    try:
        return DEFAULT_STRENGTH[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(DEFAULT_STRENGTH)}") from None


def check_strength(value) -> float:
    """``value`` as a float inside :data:`STRENGTH_RANGE`; a ValueError naming the range otherwise."""
    low, high = STRENGTH_RANGE
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        strength = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number in [{low:g}, {high:g}], got {value!r}") from None
    if not low <= strength <= high:  # also refuses NaN
        raise ValueError(
            f"strength must be in [{low:g}, {high:g}] (0: the mean of the inputs, 1: the model's full "
            f"fusion), got {value!r}"
        )
    return strength
