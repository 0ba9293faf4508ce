"""Glue between the W-DUALMINE network/loss and MONAI's engines (used by configs/train.json).

* :class:`FusionTrainingModel` - the module the trainer optimises: auxiliary outputs while training.
* The loss is :class:`scripts.losses.WDualMineLoss`, called by the engine as ``loss(pred, label)`` where the
  label is the source pair itself (fusion is unsupervised; the transforms copy ``image`` to ``label``). The
  validation metric is MONAI's ``IgniteMetricHandler(loss_fn=WDualMineLoss.image_loss)`` (a ``LossMetric``: the
  mean over the validation pairs, gathered across the ranks of a distributed run).
* :class:`LossTermsHandler` - averages each loss term over an epoch into ``engine.state.metrics`` so that
  StatsHandler and TensorBoardStatsHandler log them (``loss_avg``, ``loss_grad``, ...). MONAI's handlers log the
  engine output or ignite metrics, not the terms a loss computed on the side.
* :class:`ResumableCheckpoint` - epoch checkpoints and resumption from the newest one (MONAI's CheckpointSaver and
  CheckpointLoader; the trainer itself is only known at ``attach`` time).
* :func:`check_dataset_dir` - a missing ``dataset_dir`` as one clear error (what to pass).

Where the weights go (configs/train.json): checkpoints in ``<run_dir>/checkpoints``, the final weights in
``<models_dir>/<final_weights>``, by default ``runs/<task>/model.pt`` (``models_dir`` defaults to ``run_dir``).
A training run never writes the shipped ``models/`` unless asked: ``--models_dir models``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
import torch.nn as nn

from .losses import WDualMineLoss

__all__ = ["FusionTrainingModel", "LossTermsHandler", "ResumableCheckpoint", "check_dataset_dir"]


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
    reference in the bundle config.

    Distributed training (configs/multi_gpu_train.json) attaches it on every rank: the saver writes on rank 0 only
    (MONAI's CheckpointSaver writes through ignite's ``DiskSaver``, ``save_on_rank=0``; checked by
    tests/test_bundle_multigpu.py), and every rank loads, as it must: each rank's trainer restarts at the same
    epoch and iteration (otherwise the ranks' collective calls no longer pair up) and keeps its own optimizer
    state. All ranks must therefore see ``ckpt_dir`` (one machine, or a shared file system)."""

    def __init__(self, ckpt_dir: str, items: dict, n_saved: int = 1, map_location: str = "cpu"):
        self.ckpt_dir, self.items, self.n_saved, self.map_location = ckpt_dir, dict(items), n_saved, map_location

    def latest(self):
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


def check_dataset_dir(dataset_dir: str) -> str:
    """``dataset_dir`` itself when it is a folder; otherwise a FileNotFoundError that says what to pass (the bundle
    command prints it as one line, see ``configs/train.json: validate_options``)."""
    if not Path(dataset_dir).is_dir():
        raise FileNotFoundError(
            f"dataset_dir {dataset_dir} not found: pass --dataset_dir <HMIF folder> (it holds "
            "<task>/<CT|PET|SPECT>/*.png and <task>/MRI/*.png, e.g. CT-MRI/CT/2004.png)"
        )
    return dataset_dir
