"""Colour conventions shared by every entry point.

* ``rgb_to_ycbcr`` / ``ycbcr_to_rgb``: BT.601 full range, as OpenCV's ``COLOR_RGB2YCrCb`` (the HMIF protocol:
  fuse the Y channel of the pseudo-colour PET/SPECT image with the MRI, then restore Cb/Cr).
* ``rgb2gray_uint8``: MATLAB's ``rgb2gray`` (used by the metric conventions of shared/reference/metrics.md).

All functions take float arrays in [0, 1] (or uint8 for ``rgb2gray_uint8``), channel-last, and never modify
their input.
"""

from __future__ import annotations

import numpy as np

_KR, _KG, _KB = 0.299, 0.587, 0.114
_MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] -> (..., 3) Y, Cb, Cr in [0, 1] (BT.601 full range, offset 0.5 on chroma)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected a channel-last RGB array (..., 3), got shape {rgb.shape}")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) * 0.564 + 0.5
    cr = (r - y) * 0.713 + 0.5
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`, clipped to [0, 1]."""
    ycbcr = np.asarray(ycbcr, dtype=np.float32)
    y, cb, cr = ycbcr[..., 0], ycbcr[..., 1] - 0.5, ycbcr[..., 2] - 0.5
    r = y + 1.403 * cr
    g = y - 0.714 * cr - 0.344 * cb
    b = y + 1.773 * cb
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def rgb2gray_uint8(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on uint8: round(0.2989 R + 0.5870 G + 0.1140 B). Gray input is returned as a copy."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.uint8, copy=True)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        w = np.asarray(_MATLAB_GRAY)
        return np.round(img[..., :3].astype(np.float64) @ w).clip(0, 255).astype(np.uint8)
    raise ValueError(f"expected a gray (H, W) or RGB (H, W, 3) image, got shape {img.shape}")


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0, 1] float image -> uint8 (times 255, clipped), rounding half to even as exact arithmetic would.

    The product is first rounded to 1e-4, so float32 noise (up to ~2e-5 at 255) cannot break an exact tie such
    as the mean of two 8-bit values: ``to_uint8((a / 255 + b / 255) / 2)`` equals ``np.round((a + b) / 2)``.
    """
    x = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0
    return np.round(np.round(x, 4)).astype(np.uint8)
