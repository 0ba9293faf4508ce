"""The bundle's trained weights: one file, loaded exactly as configured, its name and hash logged.

Inference loads the file its config names (``ckpt_path`` in ``configs/inference.json`` / ``evaluate.json``,
default ``models/model.pt``): :class:`WeightsLoader` is MONAI's ``CheckpointLoader`` handler on the evaluator
(attached to ``Events.STARTED``, or called directly), with this module's loading. Library callers use
:func:`load_network`. Either way :func:`load_weights` is the one place a file is read: a plain state dict (or a
CheckpointSaver dict with a ``model`` entry), always with ``torch.load(..., weights_only=True)``, loaded strictly
into the network (an eager W-DUALMINE or a TorchScript module), and logged as ``weights: <path> (sha256 ...)``.
A missing, corrupt or mismatched file is a :class:`WeightsError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from monai.handlers import CheckpointLoader

from .data import TASKS
from .network import WDualMine
from .task_defaults import default_strength

__all__ = [
    "TASKS",
    "WeightsError",
    "MODELS_DIR",
    "DEFAULT_WEIGHTS",
    "weights_file",
    "file_digest",
    "load_state_dict",
    "load_weights",
    "load_network",
    "WeightsLoader",
]

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_WEIGHTS = MODELS_DIR / "model.pt"
logger = logging.getLogger(__name__)


class WeightsError(ValueError):
    """The weights file is missing, unreadable, or does not fit the W-DUALMINE architecture."""


def weights_file(models_dir: str | Path | None = None) -> Path:
    """``<models_dir>/model.pt`` (the name the bundle ships and training writes); the bundle's by default."""
    return DEFAULT_WEIGHTS if models_dir is None else Path(models_dir) / DEFAULT_WEIGHTS.name


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with ``weights_only=True``; unwrap a CheckpointSaver ``{"model": ...}`` dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path} (train with configs/train.json or reinstall the bundle)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        reason = str(exc).strip().split(". ")[0]  # not torch's advice to retry with weights_only=False (unsafe)
        raise WeightsError(
            f"cannot read weights file {path}: it is corrupt or not a PyTorch file ({reason}); "
            "restore it from the bundle, or train new weights"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return state


def load_weights(network: torch.nn.Module, path: str | Path, log=None) -> str:
    """Load the file ``path`` strictly into ``network`` (in place); returns and logs (``log``, default this
    module's logger) the line ``weights: <path> (sha256 <hex>)``."""
    state = load_state_dict(path)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        architecture = f"W-DUALMINE{network.channels}" if hasattr(network, "channels") else "the configured network"
        raise WeightsError(
            f"{path} holds weights for a different architecture than {architecture}: {str(exc).splitlines()[0]}"
        ) from exc
    line = f"weights: {path} (sha256 {file_digest(path)})"
    (log or logger).info(line)
    return line


def load_network(
    task: str,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    strength: float | None = None,
    **network_kwargs,
) -> WDualMine:
    """A W-DUALMINE network with the weights file ``weights`` (default ``models/model.pt``), in eval mode on
    ``device``, at ``strength`` (default: ``task``'s, :data:`scripts.task_defaults.DEFAULT_STRENGTH`)."""
    network = WDualMine(strength=default_strength(task) if strength is None else strength, **network_kwargs)
    load_weights(network, DEFAULT_WEIGHTS if weights is None else weights)
    return network.to(device).eval()


class WeightsLoader(CheckpointLoader):
    """MONAI's ``CheckpointLoader`` for the bundle's weights: ``load_dict`` is ``{"model": network}``; loading
    goes through :func:`load_weights` (``weights_only=True``, one-line errors, name and hash logged to the
    engine's logger)."""

    def __call__(self, engine) -> None:
        load_weights(self.load_dict["model"], self.load_path, self.logger)
