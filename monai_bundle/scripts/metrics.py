"""Image-fusion quality metrics: the one implementation used by the bundle's evaluation and the benchmark.

Conventions follow ``shared/reference/metrics.md`` (the MATLAB toolkit of the AdaFuse/ASFE author, which
reproduces the published HMIF tables). ``a8``/``b8``/``f8`` are the uint8 gray source A (CT/PET/SPECT),
source B (MRI) and fused image; ``A``/``B``/``F`` the same divided by 255 (float64).

================  ===================================================================================
EN                Shannon entropy (log2) of the 256-bin histogram of f8
MI                MI(F,A) + MI(F,B) on 256-bin histograms; the joint histogram merges 254 and 255
CC                mean of Pearson r(A,F) and r(B,F)
PSNR              published convention ``20 log10(255 / sqrt(MSE))``, MSE = mean of the two MSEs on
                  [0,1] images (= true PSNR + 48.13 dB); on RGB (B replicated) when a source or F is RGB
PSNR_true         ``10 log10(1 / MSE)`` with the same two-sided MSE on the gray [0,1] images
FMI_pixel/_dct    Haghighat's fast FMI, 3x3 windows, raw pixels or orthonormal ``dct2`` (vectorized)
Qabf              Xydeas-Petrovic edge transfer (Sobel, zero-padded ``conv2 'same'``)
SCD               corr2(F-B, A) + corr2(F-A, B)
SD                population standard deviation of f8
SF                sqrt(RF^2 + CF^2), RMS of row / column first differences of F
SSIM              SSIM(A,F) + SSIM(B,F), scikit-image with Wang et al.'s reference settings: 11x11
                  Gaussian window (sigma 1.5), K1 0.01, K2 0.03, population covariance, on uint8 (L=255)
VIF               VIFp(A,F) + VIFp(B,F): Sheikh & Bovik's multi-scale pixel-domain VIF (``vifp_mscale``,
                  sigma_n^2 = 2, on 0-255), the algorithm of ``sewar.full_ref.vifp`` with separable filters
================  ===================================================================================

Every metric is "higher is better" except that EN and SD also grow with noise (see metrics.md).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity

from .color import rgb2gray_uint8
from .fmi import fmi

__all__ = [
    "METRIC_NAMES",
    "fusion_metrics",
    "entropy",
    "mutual_information",
    "correlation",
    "psnr",
    "fmi",
    "qabf",
    "scd",
    "spatial_frequency",
    "ssim_sum",
    "vif_sum",
]

METRIC_NAMES = ("EN", "MI", "CC", "PSNR", "PSNR_true", "FMI_pixel", "FMI_dct", "Qabf", "SCD", "SD", "SF", "SSIM", "VIF")


def _entropy_of_counts(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram given as counts."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def entropy(f8: np.ndarray) -> float:
    """EN: entropy of the 256-bin histogram of a uint8 image."""
    return _entropy_of_counts(np.bincount(f8.ravel(), minlength=256))


def _mi_pair(x8: np.ndarray, f8: np.ndarray) -> float:
    """H(X) + H(F) - H(X,F); the joint histogram saturates at 254 like MATLAB's uint8 ``x + 1``."""
    xj = np.minimum(x8.ravel(), 254).astype(np.int64)
    fj = np.minimum(f8.ravel(), 254).astype(np.int64)
    joint = np.bincount(xj * 256 + fj, minlength=256 * 256)
    return entropy(x8) + entropy(f8) - _entropy_of_counts(joint)


def mutual_information(a8: np.ndarray, b8: np.ndarray, f8: np.ndarray) -> float:
    """MI = MI(F,A) + MI(F,B) on uint8 images."""
    return _mi_pair(a8, f8) + _mi_pair(b8, f8)


def _corr2(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two images (MATLAB ``corr2``); 0 when either is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # exact test: the mean of a constant can be off by one ulp
        return 0.0
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    return float((xc * yc).sum() / den) if den > 0 else 0.0


def correlation(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """CC = mean of r(A,F) and r(B,F)."""
    return 0.5 * (_corr2(a, f) + _corr2(b, f))


def scd(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Sum of correlations of differences: corr2(F-B, A) + corr2(F-A, B)."""
    return _corr2(f - b, a) + _corr2(f - a, b)


def _two_sided_mse(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Mean of MSE(F,A) and MSE(F,B) (arrays broadcast, e.g. gray B against RGB F)."""
    return 0.5 * float(np.mean((f - a) ** 2)) + 0.5 * float(np.mean((f - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, f: np.ndarray, peak: float = 255.0) -> float:
    """``20 log10(peak / sqrt(MSE))`` of [0,1] images with the two-sided MSE; ``peak=255`` is the published
    convention, ``peak=1`` the true PSNR. Identical images give ``inf``."""
    mse = _two_sided_mse(a, b, f)
    return float(20.0 * np.log10(peak / np.sqrt(mse))) if mse > 0 else float("inf")


_SOBEL_Y = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel strength and angle (atan(y/x), pi/2 where x = 0), zero-padded ``conv2 'same'`` on [0,1].

    The published values depend on conv2's rounding on [0,1] data (the angle of a gradient that is zero up to
    1e-17 is atan(y/x), not pi/2): scipy's ``convolve2d`` reproduces them, integer-exact filtering does not.
    """
    gx, gy = convolve2d(x, _SOBEL_X, mode="same"), convolve2d(x, _SOBEL_Y, mode="same")
    angle = np.where(gx == 0, np.pi / 2, np.arctan(gy / np.where(gx == 0, 1.0, gx)))
    return np.sqrt(gx * gx + gy * gy), angle


def _edge_preservation(gx, ax, gf, af) -> np.ndarray:
    """Q^{XF} map: sigmoid-weighted relative strength and orientation preservation."""
    safe = np.where(gx > gf, gx, np.where(gf > 0, gf, 1.0))
    g = np.where(gx > gf, gf / safe, np.where(gx == gf, gf, gx / safe))
    orient = 1.0 - np.abs(ax - af) / (np.pi / 2)
    return 0.9994 / (1 + np.exp(-15 * (g - 0.5))) * 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Xydeas-Petrovic Q^{AB/F} on [0,1] images; 0 when neither source has an edge."""
    (ga, aa), (gb, ab), (gf, af) = _edges(a), _edges(b), _edges(f)
    den = (ga + gb).sum()
    if den == 0:
        return 0.0
    num = (_edge_preservation(ga, aa, gf, af) * ga + _edge_preservation(gb, ab, gf, af) * gb).sum()
    return float(num / den)


def spatial_frequency(f: np.ndarray) -> float:
    """SF = sqrt(RF^2 + CF^2) with RF / CF the RMS of horizontal / vertical first differences."""
    rf2 = np.mean(np.diff(f, axis=1) ** 2)
    cf2 = np.mean(np.diff(f, axis=0) ** 2)
    return float(np.sqrt(rf2 + cf2))


def ssim_sum(a8: np.ndarray, b8: np.ndarray, f8: np.ndarray) -> float:
    """SSIM(A,F) + SSIM(B,F) with scikit-image in Wang et al.'s reference configuration (module docstring)."""
    kw = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    return float(structural_similarity(a8, f8, **kw) + structural_similarity(b8, f8, **kw))


def _gauss_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation with a 1-D kernel, 'valid' part only (like ``filter2(..., 'valid')``)."""
    r = len(kernel) // 2
    if min(x.shape) <= 2 * r:  # nothing valid (small image at a coarse scale)
        return np.zeros((max(x.shape[0] - 2 * r, 0), max(x.shape[1] - 2 * r, 0)))
    out = cv2.sepFilter2D(x, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    return out[r : x.shape[0] - r, r : x.shape[1] - r]


def _vifp(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """Multi-scale pixel-domain VIF of ``dist`` against ``ref`` (0-255 float images), 4 scales."""
    eps = 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        k = cv2.getGaussianKernel(n, n / 5.0, cv2.CV_64F).ravel()
        if scale > 1:
            ref, dist = _gauss_valid(ref, k)[::2, ::2], _gauss_valid(dist, k)[::2, ::2]
        mu_r, mu_d = _gauss_valid(ref, k), _gauss_valid(dist, k)
        s_rr = np.maximum(_gauss_valid(ref * ref, k) - mu_r * mu_r, 0.0)
        s_dd = np.maximum(_gauss_valid(dist * dist, k) - mu_d * mu_d, 0.0)
        s_rd = _gauss_valid(ref * dist, k) - mu_r * mu_d
        g = s_rd / (s_rr + eps)
        sv = s_dd - g * s_rd
        flat_ref = s_rr < eps
        g[flat_ref], sv[flat_ref], s_rr[flat_ref] = 0.0, s_dd[flat_ref], 0.0
        flat_dist = s_dd < eps
        g[flat_dist], sv[flat_dist] = 0.0, 0.0
        neg = g < 0
        sv[neg], g[neg] = s_dd[neg], 0.0
        sv = np.maximum(sv, eps)
        num += np.log10(1.0 + g * g * s_rr / (sv + sigma_nsq)).sum()
        den += np.log10(1.0 + s_rr / sigma_nsq).sum()
    return float(num / den) if den > 0 else 0.0


def vif_sum(a8: np.ndarray, b8: np.ndarray, f8: np.ndarray) -> float:
    """VIFp(A,F) + VIFp(B,F) on the 0-255 scale."""
    fd = f8.astype(np.float64)
    return _vifp(a8.astype(np.float64), fd) + _vifp(b8.astype(np.float64), fd)


def _as_uint8(img: np.ndarray, name: str) -> np.ndarray:
    """Validate an 8-bit image (gray (H, W) or RGB (H, W, 3))."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"{name}: expected uint8 (H, W) or (H, W, 3), got {img.dtype} {img.shape}")
    return img


def _rgb01(img: np.ndarray) -> np.ndarray:
    """uint8 gray or RGB -> float64 (H, W, 3) in [0, 1] (gray replicated)."""
    x = img.astype(np.float64) / 255.0
    return x if x.ndim == 3 else np.repeat(x[:, :, None], 3, axis=2)


def fusion_metrics(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` for one (A, B, F) triple of uint8 images, gray or RGB.

    RGB inputs (pseudo-colour PET/SPECT source, colour fused image) become gray with MATLAB's ``rgb2gray``
    for every metric except ``PSNR``, which then follows the published RGB variant (gray images replicated to
    3 channels). All images must have the same height and width.
    """
    a, b, f = _as_uint8(a, "a"), _as_uint8(b, "b"), _as_uint8(f, "f")
    if not a.shape[:2] == b.shape[:2] == f.shape[:2]:
        raise ValueError(f"size mismatch: a {a.shape}, b {b.shape}, f {f.shape}")
    a8, b8, f8 = rgb2gray_uint8(a), rgb2gray_uint8(b), rgb2gray_uint8(f)
    ga, gb, gf = (x.astype(np.float64) / 255.0 for x in (a8, b8, f8))
    colour = any(x.ndim == 3 for x in (a, b, f))
    return {
        "EN": entropy(f8),
        "MI": mutual_information(a8, b8, f8),
        "CC": correlation(ga, gb, gf),
        "PSNR": psnr(_rgb01(a), _rgb01(b), _rgb01(f)) if colour else psnr(ga, gb, gf),
        "PSNR_true": psnr(ga, gb, gf, peak=1.0),
        "FMI_pixel": fmi(ga, gb, gf, "pixel"),
        "FMI_dct": fmi(ga, gb, gf, "dct"),
        "Qabf": qabf(ga, gb, gf),
        "SCD": scd(ga, gb, gf),
        "SD": float(f8.std()),
        "SF": spatial_frequency(gf),
        "SSIM": ssim_sum(a8, b8, f8),
        "VIF": vif_sum(a8, b8, f8),
    }
