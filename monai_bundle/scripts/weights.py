"""Finding and loading the bundle's trained weights (``models/``), one file per task.

``models/model_<task>.pt`` (e.g. ``model_ct-mri.pt``) is used for a task when present, else ``models/model.pt``
(the default the bundle specification expects). Files are plain state dicts (or a CheckpointSaver dict with a
``model`` entry) and are always loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .data import TASKS, check_task
from .network import WDualMine
from .task_defaults import default_strength

__all__ = ["TASKS", "WeightsError", "MODELS_DIR", "weights_path", "load_state_dict", "load_network"]

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


class WeightsError(ValueError):
    """The weights file is missing, unreadable, or does not fit the W-DUALMINE architecture."""


def weights_path(task: str, models_dir: str | Path | None = None) -> Path:
    """The file used for ``task``: ``model_<task>.pt`` if present, else ``model.pt``."""
    folder = Path(models_dir) if models_dir is not None else MODELS_DIR
    specific = folder / f"model_{check_task(task).lower()}.pt"
    return specific if specific.exists() else folder / "model.pt"


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


def load_network(
    task: str,
    models_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    strength: float | None = None,
    **network_kwargs,
) -> WDualMine:
    """A W-DUALMINE network for ``task`` with its trained weights, in eval mode on ``device``, at ``strength``
    (default: the task's, :data:`scripts.task_defaults.DEFAULT_STRENGTH`)."""
    path = weights_path(task, models_dir)
    state = load_state_dict(path)
    network = WDualMine(strength=default_strength(task) if strength is None else strength, **network_kwargs)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path} holds weights for a different architecture than W-DUALMINE{network.channels}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return network.to(device).eval()
