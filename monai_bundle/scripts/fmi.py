"""Haghighat's fast feature mutual information (FMI) of a fused image, as ``shared/reference/metrics.md``
specifies it: 3x3 windows on raw pixels (``FMI_pixel``) or on the orthonormal 2-D DCT-II (``FMI_dct``), the
symmetric variant (both sides against the raw fused window), vectorized over cache-sized blocks of windows.
Part of the fusion metrics (:mod:`scripts.metrics`, which re-exports :func:`fmi`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dctn

__all__ = ["fmi"]

_FMI_CHUNK = 4096  # windows per block in FMI: keeps the temporaries cache-sized
_TINY = 1e-12  # replaces the MATLAB original's exact ``== 0`` tests in FMI (see metrics.md)


def _windows(x: np.ndarray) -> np.ndarray:
    """All 3x3 windows of x as columns (9, N), each flattened column-major like MATLAB's ``x(:)``."""
    return sliding_window_view(x, (3, 3)).transpose(3, 2, 0, 1).reshape(9, -1)


def _plogp(p: np.ndarray) -> np.ndarray:
    """Elementwise -p log2|p| (0 at p = 0): the real part of MATLAB's complex log for negative p."""
    out = np.abs(p)
    np.maximum(out, 1e-300, out=out)
    np.log2(out, out=out)
    out *= p
    return np.negative(out, out=out)


def _cumsum_rows(p: np.ndarray) -> np.ndarray:
    """(K + 1, N): a zero row, then the cumulative sums down the rows of a short (K, N) array (sequential like
    MATLAB's loop; much faster than ``np.cumsum(axis=0)`` on few long rows)."""
    out = np.empty((len(p) + 1, p.shape[1]))
    out[0] = 0.0
    for k in range(len(p)):
        np.add(out[k], p[k], out=out[k + 1])
    return out


class _Windows(NamedTuple):
    """Per-window marginals of 3x3 windows, one column per window: ``pdf_ext`` (10, N) is the pdf with its last
    bin repeated, ``cdf_ext`` (10, N) the CDF after a zero row; ``sd`` the population standard deviation of the
    bin index under the pdf and ``ent`` the pdf's entropy (N,)."""

    pdf_ext: np.ndarray
    cdf_ext: np.ndarray
    sd: np.ndarray
    ent: np.ndarray

    @property
    def pdf(self) -> np.ndarray:
        return self.pdf_ext[:9]

    @property
    def cdf(self) -> np.ndarray:
        return self.cdf_ext[1:]

    @classmethod
    def of(cls, w: np.ndarray) -> "_Windows":
        """Min-max normalize each raw window column (constant window -> ones) and divide by its sum."""
        lo = w.min(axis=0)
        rng = w.max(axis=0) - lo
        norm = (w - lo) / np.where(rng > 0, rng, 1.0)
        norm[:, rng == 0] = 1.0
        pdf_ext = np.empty((10, w.shape[1]))
        pdf = pdf_ext[:9]
        np.divide(norm, norm.sum(axis=0), out=pdf)
        pdf_ext[9] = pdf[8]
        idx = np.arange(1, 10, dtype=np.float64)[:, None]
        mean, second = (idx * pdf).sum(axis=0), (idx * idx * pdf).sum(axis=0)
        return cls(pdf_ext, _cumsum_rows(pdf), np.sqrt(np.maximum(second - mean * mean, 0.0)), _plogp(pdf).sum(axis=0))

    def cols(self, keep: np.ndarray) -> "_Windows":
        """The windows selected by a boolean mask."""
        return _Windows(self.pdf_ext[:, keep], self.cdf_ext[:, keep], self.sd[keep], self.ent[keep])


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index[k, n], n]`` for a (K, N) table and an integer (M, N) index."""
    return np.take_along_axis(table, index, axis=0)


_LOWER_V_CELL = np.array([8, 8, 7, 6, 5, 4, 3, 2, 1, 0])  # X cell of V cell k under the lower bound: clip(9 - k)


def _bound_terms(f: _Windows, x: _Windows, upper: np.ndarray):
    """Frechet-bound coupling of the window marginals f (rows i) and x (columns j).

    The bound H is ``min(F_i, X_j)`` (upper, comonotone) or ``max(F_i + X_j - 1, 0)`` (lower). Its cell
    masses (the double difference of H, zero-padded) are nonzero only on the <= 17 cells that
    ``u -> (F^-1(u), X^-1(u))`` (or ``X^-1(1 - u)``) crosses: the segments between consecutive breakpoints of
    the merge of F with ``V = X`` (upper) or ``V = 1 - X`` reversed (lower), 18 segments instead of 81 cells.
    Returns ``(cov, mass, f_pdf, x_pdf)``: ``cov = sum_ij (H_ij - F_i X_j)`` (N,), and (18, N) arrays with each
    segment's mass and the marginal probabilities of its cell.
    """
    fc, fz, n = f.cdf, f.cdf_ext, f.sd.shape[0]
    vz = np.empty((10, n))  # V after a zero row
    vz[0] = 0.0
    vz[1:] = np.where(upper, x.cdf, 1.0 - x.cdf_ext[:0:-1])
    v = vz[1:]
    v_pdf = np.where(upper, x.pdf_ext, x.pdf_ext[_LOWER_V_CELL])  # x-pdf of V cell k = 0..9
    below = np.zeros((9, n), np.int8)  # below[i] = #{V < F_i}
    for k in range(9):
        below += v[k] < fc
    # upto[k] = #{F <= V_k} = #{i : below[i] <= k} (V sorted): int8 compares instead of float ones
    upto = np.zeros((9, n), np.int8)
    ks = np.arange(9, dtype=np.int8)[:, None]
    for i in range(9):
        upto += below[i] <= ks
    # the segment ending at F_i starts at max(F_{i-1}, V_{below-1}); the one ending at V_k at max(V_{k-1}, F_{upto-1})
    mass, f_pdf, x_pdf = np.empty((18, n)), np.empty((18, n)), np.empty((18, n))
    np.subtract(fc, np.maximum(fz[:-1], _gather(vz, below)), out=mass[:9])
    np.subtract(v, np.maximum(vz[:-1], _gather(fz, upto)), out=mass[9:])
    f_pdf[:9], f_pdf[9:] = f.pdf, _gather(f.pdf_ext, upto)
    x_pdf[:9], x_pdf[9:] = _gather(v_pdf, below), v_pdf[:9]
    # sum_ij min(F_i, V_k) = sum F_i #{V >= F_i} + sum V_k #{F > V_k}; sum_ij max(F_i - V_k, 0) likewise
    s_f, s_fb, s_v = fc.sum(axis=0), (fc * below).sum(axis=0), (v * (9 - upto)).sum(axis=0)
    h_sum = np.where(upper, 9 * s_f - s_fb + s_v, s_fb - s_v)
    return h_sum - s_f * x.cdf.sum(axis=0), mass, f_pdf, x_pdf


def _fmi_side(xw: np.ndarray, fw: np.ndarray, f_all: _Windows) -> np.ndarray:
    """Per-window normalized MI between source windows ``xw`` and fused windows ``fw`` ((9, N) raw values;
    ``f_all`` holds the fused windows' marginals).

    Fast-FMI of Haghighat & Razian (2014): joint pdf ``w * bound + (1 - w) * independent`` with the Frechet
    bound (upper if the pdfs' Pearson c >= 0, lower otherwise) and Nelsen's weight ``w = c / corr(bound)``.
    The joint entropy of the 81 cells is the closed form of the scaled independent part plus corrections on
    the bound's nonzero cells (:func:`_bound_terms`). Windows identical to the fused window score 1.
    """
    score = np.ones(xw.shape[1])
    todo = ~np.all(xw == fw, axis=0)
    if not todo.any():
        return score
    x, f = _Windows.of(xw[:, todo]), f_all.cols(todo)
    xt, ft = x.pdf - x.pdf.mean(axis=0), f.pdf - f.pdf.mean(axis=0)
    num = (xt * ft).sum(axis=0)
    den = np.sqrt((xt * xt).sum(axis=0) * (ft * ft).sum(axis=0))
    c = np.where(np.abs(num) < _TINY, 0.0, num / np.where(den > 0, den, 1.0))

    cov, mass, f_pdf, x_pdf = _bound_terms(f, x, c >= 0)
    ok = (np.abs(c) >= _TINY) & (x.sd > 0) & (f.sd > 0) & (cov != 0)
    w = np.where(ok, c * x.sd * f.sd / np.where(ok, cov, 1.0), 0.0)

    h_marg = x.ent + f.ent
    indep = (1.0 - w) * f_pdf * x_pdf
    fix = (_plogp(w * mass + indep) - _plogp(indep)).sum(axis=0)
    mi = h_marg - (_plogp(1.0 - w) + (1.0 - w) * h_marg + fix)
    score[todo] = np.where(np.abs(mi) < _TINY, 0.0, 2.0 * mi / np.where(h_marg > 0, h_marg, 1.0))
    return score


def fmi(a: np.ndarray, b: np.ndarray, f: np.ndarray, feature: str = "pixel") -> float:
    """FMI with 3x3 windows on raw pixels (``feature='pixel'``) or on the orthonormal 2-D DCT-II ('dct').

    The map value is the mean of the A-side and B-side window scores; both sides compare against the raw
    fused window (the symmetric variant of metrics.md); FMI is the mean over all windows.
    """
    if feature == "dct":
        a, b, f = (dctn(x, type=2, norm="ortho") for x in (a, b, f))
    elif feature != "pixel":
        raise ValueError(f"feature must be 'pixel' or 'dct', got {feature!r}")
    aw, bw, fw = _windows(a), _windows(b), _windows(f)
    total = 0.0
    for start in range(0, fw.shape[1], _FMI_CHUNK):  # cache-sized blocks of windows
        cols = slice(start, start + _FMI_CHUNK)
        f_stats = _Windows.of(fw[:, cols])
        total += _fmi_side(aw[:, cols], fw[:, cols], f_stats).sum() + _fmi_side(bw[:, cols], fw[:, cols], f_stats).sum()
    return float(total / (2 * fw.shape[1]))
