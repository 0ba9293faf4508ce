"""Sobel gradients on batched tensors, used by the soft gradient mixer (3.5) and by L_grad (section 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sobel_xy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (depthwise) Sobel derivatives of a (B, C, H, W) tensor, replicate-padded, same size."""
    c = x.shape[1]
    # built per call (not a module-level tensor) so that TorchScript can compile this function
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    kx = kx.expand(c, 1, 3, 3)
    ky = kx.transpose(-1, -2)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kx, groups=c), F.conv2d(padded, ky, groups=c)
