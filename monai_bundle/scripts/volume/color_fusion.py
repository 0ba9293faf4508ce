"""RGB colour fusion for PET/SPECT (the HMIF protocol, applied to volumes).

The normalized functional volume A goes through a colour map (the pseudo-colour image a reader knows); the
network fuses its luminance Y with the MRI, and the chroma (Cb, Cr) of the pseudo-colour image is put back.
Colour conversions are the project's conventions of :mod:`scripts.color` (BT.601 full range).
"""

from __future__ import annotations

import numpy as np

from ..color import rgb_to_ycbcr, ycbcr_to_rgb
from .types import FusionInputError

__all__ = ["COLORMAPS", "colormap_lut", "pseudo_colour", "restore_colour"]

#: Default colour map per task: both start at (near) black, so the background stays dark.
COLORMAPS = {"PET-MRI": "nipy_spectral", "SPECT-MRI": "hot"}
_LUT_SIZE = 1024


def colormap_lut(name: str) -> np.ndarray:
    """(N, 3) float32 RGB table of the matplotlib colour map ``name``."""
    from matplotlib import colormaps

    if name not in colormaps:
        raise FusionInputError(
            f"unknown colour map {name!r} (any matplotlib colour map name, e.g. "
            f"{', '.join(sorted(set(COLORMAPS.values())))})"
        )
    return colormaps[name](np.linspace(0.0, 1.0, _LUT_SIZE))[:, :3].astype(np.float32)


def pseudo_colour(a01: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, YCbCr) of the colour map ``name`` applied to ``a01`` (values in [0, 1]), both (..., 3) float32."""
    index = np.rint(np.asarray(a01, dtype=np.float32) * (_LUT_SIZE - 1)).astype(np.int32)
    rgb = colormap_lut(name)[index]
    return rgb, rgb_to_ycbcr(rgb)


def restore_colour(ycbcr: np.ndarray, fused_y: np.ndarray) -> np.ndarray:
    """RGB (..., 3) float32 in [0, 1] from the fused luminance and the pseudo-colour image's chroma."""
    merged = np.array(ycbcr, dtype=np.float32)  # a copy: the caller's YCbCr stays as it was
    merged[..., 0] = fused_y
    return ycbcr_to_rgb(merged).astype(np.float32, copy=False)
