"""Glue between the W-DUALMINE network/loss and MONAI's engines (used by configs/train.json).

* :class:`FusionTrainingModel` - the module the trainer optimises: auxiliary outputs while training.
* The loss is :class:`scripts.losses.WDualMineLoss`, called by the engine as ``loss(pred, label)`` where the
  label is the source pair itself (fusion is unsupervised; the transforms copy ``image`` to ``label``).
* :class:`LossTermsHandler` - averages each loss term over an epoch into ``engine.state.metrics`` so that
  StatsHandler and TensorBoardStatsHandler log them (``loss_avg``, ``loss_grad``, ...).
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn as nn
from ignite.metrics import Metric
from monai.handlers import from_engine

from .losses import WDualMineLoss

__all__ = ["FusionTrainingModel", "LossTermsHandler", "ResumableCheckpoint", "ValidationLoss"]


class FusionTrainingModel(nn.Module):
    """Wraps a :class:`WDualMine` so that the engine's plain ``network(x)`` call returns what the loss needs:
    :meth:`WDualMine.training_outputs` in training mode (auxiliary heads included), the fused image in eval mode.
    DistributedDataParallel wraps this module, so gradients of every head are synchronised. Checkpoints save the
    inner ``network`` (plain W-DUALMINE state dict)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, inputs: torch.Tensor):
        return self.network.training_outputs(inputs) if self.training else self.network(inputs)


class LossTermsHandler:
    """Epoch means of the loss terms of ``loss`` (a :class:`WDualMineLoss`) into ``engine.state.metrics``."""

    def __init__(self, loss: WDualMineLoss, prefix: str = "loss_"):
        self.loss, self.prefix = loss, prefix
        self._sums: dict[str, float] = defaultdict(float)
        self._count = 0

    def attach(self, engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._publish)

    def _accumulate(self, engine) -> None:
        for k, v in self.loss.last_terms.items():
            self._sums[k] += v
        self._count += 1

    def _publish(self, engine) -> None:
        for k, v in self._sums.items():
            engine.state.metrics[self.prefix + k] = v / max(self._count, 1)
        self._sums.clear()
        self._count = 0


class ResumableCheckpoint:
    """Epoch checkpoints of network, optimizer and trainer state in ``ckpt_dir`` (MONAI CheckpointSaver, the last
    ``n_saved`` kept), and - when such a checkpoint already exists - resumption from the newest one (MONAI
    CheckpointLoader) before the first epoch. The trainer is added at ``attach`` time, which avoids a circular
    reference in the bundle config."""

    def __init__(self, ckpt_dir: str, items: dict, n_saved: int = 1, map_location: str = "cpu"):
        self.ckpt_dir, self.items, self.n_saved, self.map_location = ckpt_dir, dict(items), n_saved, map_location

    def latest(self):
        from pathlib import Path

        found = sorted(Path(self.ckpt_dir).glob("*checkpoint_epoch=*.pt"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def attach(self, engine) -> None:
        from monai.handlers import CheckpointLoader, CheckpointSaver

        items = {**self.items, "trainer": engine}
        path = self.latest()
        if path is not None:
            engine.logger.info(f"resuming from {path}")
            CheckpointLoader(load_path=str(path), load_dict=items, map_location=self.map_location).attach(engine)
        CheckpointSaver(
            save_dir=self.ckpt_dir, save_dict=items, save_interval=1, n_saved=self.n_saved, epoch_level=True
        ).attach(engine)


class ValidationLoss(Metric):
    """Ignite metric for the validation loop: the terms of the training loss ``loss`` (a :class:`WDualMineLoss`)
    that need only the fused image - L_avg, L_grad and L_cc, with the loss's own weights (the feature
    terms need the training heads) - averaged over the validation pairs. Lower is better."""

    IMAGE_TERMS = ("avg", "grad", "cc")

    def __init__(self, loss: WDualMineLoss | None = None):
        self.loss = loss if loss is not None else WDualMineLoss()
        super().__init__(output_transform=from_engine(["pred", "label"]))

    def reset(self) -> None:
        self._sum, self._n = 0.0, 0

    def update(self, output) -> None:
        preds, labels = output
        pred, label = torch.stack(list(preds)), torch.stack(list(labels))
        with torch.no_grad():
            value = sum(
                self.loss.weights[k] * getattr(self.loss, k)(pred, label)
                for k in self.IMAGE_TERMS
                if self.loss.weights[k]
            )
        self._sum += float(value) * pred.shape[0]
        self._n += pred.shape[0]

    def compute(self) -> float:
        return self._sum / max(self._n, 1)
