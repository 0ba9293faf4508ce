"""Slice-wise inference of the 2-D network over a volume pair, one slab of slices at a time.

For each slab (:func:`fuse_slab`) the two normalized arrays (same grid) are stacked as channels with the slice
axis first, and :class:`GuardedForward` runs batches of whole slices on the compute device and returns them
to the CPU - the one place where CUDA out-of-memory is handled (the Slicer module relies on it too). Each batch
is computed by a MONAI inferer (``inferer(batch, network)``; the configs' ``inferer``, default
``SimpleInferer``). It also

* checks the ``cancel`` flag before every batch (raising :class:`FusionCancelled`) and reports progress;
* on a CUDA out-of-memory error halves its batch and retries; at one slice per batch it moves the network to
  the CPU and carries on there, telling the user each time.

The network itself pads any slice size it needs (W-DUALMINE: to a multiple of 32) and crops its output back.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from monai.inferers import Inferer, SimpleInferer

from .types import FusionCancelled, FusionInputError

__all__ = ["resolve_device", "GuardedForward", "fuse_slab", "infer_slices", "MIN_SLICE_SIZE"]

logger = logging.getLogger(__name__)

#: The smallest slice (both in-plane sizes) the network accepts.
MIN_SLICE_SIZE = 16
_CPU = torch.device("cpu")


def resolve_device(name: str | torch.device) -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without a GPU is refused."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not str(name).startswith("cuda:"):
        raise FusionInputError(f"unknown device {name!r}; expected 'auto', 'cuda' or 'cpu'")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise FusionInputError(f"device {name!r} was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(name)


def _transfer(item, device: torch.device):
    """Move a tensor or module to ``device`` (the one place data changes device), in the channels-last memory
    format: oneDNN's convolutions run about 25 % faster on it on this kind of CPU (training/bench_volume.py),
    and the values are the same (to float rounding)."""
    return item.to(device, memory_format=torch.channels_last)


class GuardedForward:
    """The network as the slab loop calls it: ``(n, 2, H, W)`` CPU tensor -> ``(n, 1, H, W)`` CPU tensor,
    batch by batch through ``inferer`` (default: MONAI's ``SimpleInferer``)."""

    def __init__(
        self,
        network: torch.nn.Module,
        device: torch.device,
        batch_size: int,
        total: int,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        notify: Callable[[str], None] | None = None,
        inferer: Inferer | None = None,
    ):
        self.device = device
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.network = _transfer(network, device)
        self.batch_size = int(batch_size)
        self.total = max(int(total), 1)
        self.done = 0
        self.progress, self.cancel = progress, cancel
        self.notify = notify or logger.warning

    def _degrade(self) -> bool:
        """React to an out-of-memory error: smaller batch, else CPU. False when there is nothing left to try."""
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()
        if self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            self.notify(f"CUDA out of memory: retrying with {self.batch_size} slice(s) per batch")
            return True
        if self.device.type != "cpu":
            self.device = _CPU
            self.network = _transfer(self.network, _CPU)
            self.notify("CUDA out of memory even with one slice per batch: continuing on the CPU (slower)")
            return True
        return False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        start = 0
        while start < x.shape[0]:
            if self.cancel is not None and self.cancel():
                raise FusionCancelled("fusion cancelled by the user")
            chunk = x[start : start + self.batch_size]
            try:
                y = self.inferer(_transfer(chunk, self.device), self.network)
            except torch.cuda.OutOfMemoryError:
                if not self._degrade():
                    raise
                continue
            expected = (chunk.shape[0], 1) + tuple(chunk.shape[2:])
            if tuple(y.shape) != expected:
                raise RuntimeError(
                    f"the network returned shape {tuple(y.shape)} for input {tuple(chunk.shape)}; "
                    f"expected {expected}"
                )
            outputs.append(_transfer(y, _CPU).float())
            start += chunk.shape[0]
            self.done += chunk.shape[0]
            if self.progress is not None:
                self.progress(min(self.done / self.total, 1.0))
        return torch.cat(outputs)


def fuse_slab(guarded: GuardedForward, a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """Fuse a slab of slices (two same-shape float [0, 1] arrays, slices along ``axis``): float32 in [0, 1]."""
    x = torch.empty((a.shape[axis], 2) + tuple(n for i, n in enumerate(a.shape) if i != axis), dtype=torch.float32)
    x[:, 0] = torch.from_numpy(np.moveaxis(np.asarray(a, dtype=np.float32), axis, 0))
    x[:, 1] = torch.from_numpy(np.moveaxis(np.asarray(b, dtype=np.float32), axis, 0))
    with torch.inference_mode():
        fused = guarded(x)[:, 0].numpy()
    out = np.moveaxis(fused, 0, axis)
    return np.clip(out, 0.0, 1.0, out=out)


def infer_slices(
    a: np.ndarray,
    b: np.ndarray,
    axis: int,
    network: torch.nn.Module,
    device: torch.device,
    batch_size: int = 8,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    notify: Callable[[str], None] | None = None,
    inferer: Inferer | None = None,
) -> np.ndarray:
    """Fuse two same-shape float [0, 1] volumes slice by slice along ``axis``: float32 [0, 1] volume.

    ``progress`` gets the fraction of slices done; ``cancel`` is polled before every batch; ``inferer`` runs each
    batch (see :class:`GuardedForward`). Works slab by slab
    (:func:`fuse_slab`), so no stacked copy of the two volumes is made.
    """
    from .geometry import slab_size

    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"expected two 3-D volumes of one shape, got {a.shape} and {b.shape}")
    guarded = GuardedForward(network.eval(), device, batch_size, a.shape[axis], progress, cancel, notify, inferer)
    out = np.empty(a.shape, dtype=np.float32)
    step = slab_size(a.shape, axis, batch_size)
    for start in range(0, a.shape[axis], step):
        index = [slice(None)] * 3
        index[axis] = slice(start, start + step)
        out[tuple(index)] = fuse_slab(guarded, a[tuple(index)], b[tuple(index)], axis)
    return out
