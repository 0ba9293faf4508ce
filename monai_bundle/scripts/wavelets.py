"""pytorch_wavelets' one-level Haar DWT and its inverse in a form TorchScript can compile (for ``ckpt_export``).

Eager calls run pytorch_wavelets itself; scripted calls run the same mode-'zero' filter bank as plain (transposed)
convolutions, with the same filters, buffers and coefficients. Used by the wavelet expert of ``network.py`` (3.4.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_wavelets import DWTForward, DWTInverse

__all__ = ["ScriptableDWTForward", "ScriptableDWTInverse"]


def _zero_mode_analysis(x: torch.Tensor, h0: torch.Tensor, h1: torch.Tensor, dim: int) -> torch.Tensor:
    """pytorch_wavelets' ``afb1d`` for mode 'zero' as plain convolutions: low/high bands interleaved per channel."""
    c, n, taps = x.shape[1], x.shape[dim], h0.numel()
    shape = [1, 1, taps, 1] if dim == 2 else [1, 1, 1, taps]
    h = torch.cat([h0.reshape(shape), h1.reshape(shape)] * c, dim=0)
    p = 2 * ((n + taps - 1) // 2 - 1) - n + taps
    if p % 2 == 1:
        x = F.pad(x, [0, 0, 0, 1] if dim == 2 else [0, 1, 0, 0])
    stride = [2, 1] if dim == 2 else [1, 2]
    padding = [p // 2, 0] if dim == 2 else [0, p // 2]
    return F.conv2d(x, h, stride=stride, padding=padding, groups=c)


def _zero_mode_synthesis(
    lo: torch.Tensor, hi: torch.Tensor, g0: torch.Tensor, g1: torch.Tensor, dim: int
) -> torch.Tensor:
    """pytorch_wavelets' ``sfb1d`` for mode 'zero' as plain transposed convolutions."""
    c, taps = lo.shape[1], g0.numel()
    shape = [1, 1, taps, 1] if dim == 2 else [1, 1, 1, taps]
    stride = [2, 1] if dim == 2 else [1, 2]
    padding = [taps - 2, 0] if dim == 2 else [0, taps - 2]
    return F.conv_transpose2d(
        lo, torch.cat([g0.reshape(shape)] * c, dim=0), stride=stride, padding=padding, groups=c
    ) + F.conv_transpose2d(hi, torch.cat([g1.reshape(shape)] * c, dim=0), stride=stride, padding=padding, groups=c)


class ScriptableDWTForward(DWTForward):
    """pytorch_wavelets' one-level ``DWTForward`` (same filters, buffers and coefficients) that TorchScript can
    compile: eager calls run pytorch_wavelets itself, scripted calls the same mode-'zero' filter bank as convs."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not torch.jit.is_scripting():
            return self._pytorch_wavelets(x)
        if self.mode != "zero" or self.J != 1:
            raise RuntimeError("the scripted DWT supports one level in mode 'zero' only")
        y = _zero_mode_analysis(_zero_mode_analysis(x, self.h0_row, self.h1_row, 3), self.h0_col, self.h1_col, 2)
        y = y.reshape(y.shape[0], -1, 4, y.shape[-2], y.shape[-1])
        return y[:, :, 0].contiguous(), [y[:, :, 1:].contiguous()]

    @torch.jit.unused
    def _pytorch_wavelets(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return DWTForward.forward(self, x)


class ScriptableDWTInverse(DWTInverse):
    """pytorch_wavelets' ``DWTInverse`` for one level, scriptable like :class:`ScriptableDWTForward`."""

    def forward(self, coeffs: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        if not torch.jit.is_scripting():
            return self._pytorch_wavelets(coeffs)
        low, highs = coeffs
        if self.mode != "zero" or len(highs) != 1:
            raise RuntimeError("the scripted inverse DWT supports one level in mode 'zero' only")
        lh, hl, hh = torch.unbind(highs[0], dim=2)
        lo = _zero_mode_synthesis(low, lh, self.g0_col, self.g1_col, 2)
        hi = _zero_mode_synthesis(hl, hh, self.g0_col, self.g1_col, 2)
        return _zero_mode_synthesis(lo, hi, self.g0_row, self.g1_row, 3)

    @torch.jit.unused
    def _pytorch_wavelets(self, coeffs: tuple[torch.Tensor, list[torch.Tensor]]) -> torch.Tensor:
        return DWTInverse.forward(self, coeffs)
