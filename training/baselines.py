"""Classical fusion rules, the trivial references every W-DUALMINE number is printed beside.

Every rule takes two float gray images in [0, 1] of one shape - source A (CT, or the Y channel of the
pseudo-colour PET/SPECT image) and source B (MRI) - and returns the fused float64 image, clipped to [0, 1].

* ``mean``, ``max``: per-pixel average and maximum.
* ``dwt``: 3-level Haar DWT (PyWavelets), averaged approximation, max-absolute details. Haar reproduces
  the ``pet-dwt3`` triple of shared/reference/metric-vectors.
* ``lp``: Laplacian pyramid (OpenCV ``pyrDown``/``pyrUp``, 4 levels), averaged base, max-absolute details.
* ``gff``: guided-filtering fusion (Li, Kang & Hu, IEEE TIP 2013): two-scale split by a 31x31 mean, saliency
  from a Gaussian-smoothed |Laplacian|, argmax weight maps refined by guided filters (r 45 / eps 0.3 for the
  base, r 7 / eps 1e-6 for the detail layer). The guided filter (He et al.) is built on ``cv2.boxFilter``.
* ``blend``: the mean-max blend of shared/reference/anchors.md, ``F = mean + mu * (max - mean)`` (mu 0.05 by
  default): mu = 0 is the mean, mu = 1 the max.
* ``gain``: the mean with a global contrast gain, ``F = g * mean`` (g 1.1 by default): the trivial rule the
  2026-12 ``mean_gain`` release (a learned per-image gain, docs/README.md) had to beat.
* ``select``: soft saliency selection (issue 13), the per-pixel rule the shipped network must beat. Per source
  ``E = G2(|Laplacian I|) + 0.5*G2(I)``, ``w = G1(sigmoid(40*(E_A - E_B)))``, ``sel = w*A + (1 - w)*B``,
  ``F = mean + lam*(sel - mean)`` (lam 0.5 by default); ``Gs`` a Gaussian of sigma s pixels (OpenCV).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import pywt

__all__ = ["BASELINES", "DEFAULT_PARAMS", "fuse_baseline", "fuse_mean", "fuse_max", "fuse_dwt", "fuse_laplacian",
           "fuse_gff", "fuse_blend", "fuse_gain", "fuse_select", "selection_weight", "guided_filter"]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two gray images of one shape and return them as float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"expected two gray images of one shape, got {a.shape} and {b.shape}")
    return a, b


def _max_abs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-element choice of the coefficient of larger magnitude (x on ties)."""
    return np.where(np.abs(x) >= np.abs(y), x, y)


def fuse_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel average."""
    a, b = _pair(a, b)
    return np.clip(0.5 * (a + b), 0.0, 1.0)


def fuse_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel maximum."""
    a, b = _pair(a, b)
    return np.clip(np.maximum(a, b), 0.0, 1.0)


def fuse_blend(a: np.ndarray, b: np.ndarray, mu: float = 0.05) -> np.ndarray:
    """``mean + mu * (max - mean)``: the one-line frontier between averaging (CC) and max (Qabf, MI)."""
    mean = fuse_mean(a, b)
    return np.clip(mean + mu * (fuse_max(a, b) - mean), 0.0, 1.0)


def fuse_gain(a: np.ndarray, b: np.ndarray, g: float = 1.1) -> np.ndarray:
    """``g * mean``: a global contrast gain on the average (g = 1 is the mean)."""
    return np.clip(g * fuse_mean(a, b), 0.0, 1.0)


def selection_weight(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The soft per-pixel weight of source A of the ``select`` rule: 1 where A is the more salient source."""
    a, b = _pair(a, b)

    def saliency(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(np.abs(cv2.Laplacian(x, cv2.CV_64F)), (0, 0), 2) + 0.5 * cv2.GaussianBlur(x, (0, 0), 2)

    return cv2.GaussianBlur(1.0 / (1.0 + np.exp(-40.0 * (saliency(a) - saliency(b)))), (0, 0), 1)


def fuse_select(a: np.ndarray, b: np.ndarray, lam: float = 0.5) -> np.ndarray:
    """Soft saliency selection: ``mean + lam * (w*A + (1 - w)*B - mean)`` (lam = 0 the mean, 1 the selection)."""
    a, b = _pair(a, b)
    w = selection_weight(a, b)
    mean = 0.5 * (a + b)
    return np.clip(mean + lam * (w * a + (1.0 - w) * b - mean), 0.0, 1.0)


def fuse_dwt(a: np.ndarray, b: np.ndarray, levels: int = 3, wavelet: str = "haar") -> np.ndarray:
    """DWT fusion: averaged approximation, max-absolute detail coefficients at every level."""
    a, b = _pair(a, b)
    ca, cb = pywt.wavedec2(a, wavelet, level=levels), pywt.wavedec2(b, wavelet, level=levels)
    fused = [0.5 * (ca[0] + cb[0])]
    fused += [tuple(_max_abs(x, y) for x, y in zip(da, db)) for da, db in zip(ca[1:], cb[1:])]
    out = pywt.waverec2(fused, wavelet)[: a.shape[0], : a.shape[1]]
    return np.clip(out, 0.0, 1.0)


def _laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """``levels`` detail layers (fine to coarse) followed by the low-pass base."""
    pyramid, current = [], x
    for _ in range(levels):
        down = cv2.pyrDown(current)
        up = cv2.pyrUp(down, dstsize=(current.shape[1], current.shape[0]))
        pyramid.append(current - up)
        current = down
    return pyramid + [current]


def fuse_laplacian(a: np.ndarray, b: np.ndarray, levels: int = 4) -> np.ndarray:
    """Laplacian-pyramid fusion: averaged base, max-absolute details, collapsed coarse to fine."""
    a, b = _pair(a, b)
    pa, pb = _laplacian_pyramid(a, levels), _laplacian_pyramid(b, levels)
    out = 0.5 * (pa[-1] + pb[-1])
    for da, db in zip(reversed(pa[:-1]), reversed(pb[:-1])):
        out = cv2.pyrUp(out, dstsize=(da.shape[1], da.shape[0])) + _max_abs(da, db)
    return np.clip(out, 0.0, 1.0)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, reflected borders."""
    return cv2.boxFilter(x, cv2.CV_64F, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter: the local linear model ``q = a * guide + b`` fitted in (2r+1)^2 windows."""
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    cov_ip = _box(guide * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius) * guide + _box(b, radius)


def fuse_gff(a: np.ndarray, b: np.ndarray, base_radius: int = 45, base_eps: float = 0.3,
             detail_radius: int = 7, detail_eps: float = 1e-6) -> np.ndarray:
    """Guided-filtering fusion (Li et al. 2013) with the paper's parameters."""
    a, b = _pair(a, b)
    sources = (a, b)
    bases = [cv2.blur(x, (31, 31), borderType=cv2.BORDER_REFLECT) for x in sources]
    details = [x - base for x, base in zip(sources, bases)]
    saliency = [cv2.GaussianBlur(np.abs(cv2.Laplacian(x, cv2.CV_64F, ksize=1)), (11, 11), 5.0) for x in sources]
    choose_a = (saliency[0] >= saliency[1]).astype(np.float64)
    masks = (choose_a, 1.0 - choose_a)

    def weights(radius: int, eps: float) -> list[np.ndarray]:
        w = [np.clip(guided_filter(x, m, radius, eps), 0.0, None) for x, m in zip(sources, masks)]
        total = w[0] + w[1]
        safe = np.where(total > 1e-12, total, 1.0)
        return [np.where(total > 1e-12, wi / safe, 0.5) for wi in w]

    wb, wd = weights(base_radius, base_eps), weights(detail_radius, detail_eps)
    out = sum(w * x for w, x in zip(wb, bases)) + sum(w * x for w, x in zip(wd, details))
    return np.clip(out, 0.0, 1.0)


BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "mean": fuse_mean,
    "max": fuse_max,
    "dwt": fuse_dwt,
    "lp": fuse_laplacian,
    "gff": fuse_gff,
    "blend": fuse_blend,
    "gain": fuse_gain,
    "select": fuse_select,
}
#: The one numeric parameter a method name may carry (``blend@0.1``, ``gain@1.2``), with its default.
DEFAULT_PARAMS: dict[str, tuple[str, float]] = {"blend": ("mu", 0.05), "gain": ("g", 1.1), "select": ("lam", 0.5)}


def fuse_baseline(name: str, a: np.ndarray, b: np.ndarray, param: float | None = None) -> np.ndarray:
    """Fuse with the rule ``name``; ``param`` sets the rule's parameter (``blend``: mu, ``gain``: g, ``select``: lam)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    if param is None:
        return BASELINES[name](a, b)
    if name not in DEFAULT_PARAMS:
        raise ValueError(f"baseline {name!r} takes no parameter (got @{param})")
    return BASELINES[name](a, b, **{DEFAULT_PARAMS[name][0]: param})
