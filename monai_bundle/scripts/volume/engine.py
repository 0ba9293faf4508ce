"""The MONAI engine that runs volume fusion over a dataset of pairs: :class:`PairFusionEvaluator`.

``configs/inference.json`` and ``evaluate.json`` build it as their ``evaluator`` (``run``: ``$@evaluator.run()``),
and :meth:`scripts.volume.runner.VolumeFusionRunner.run` builds one over its own pairs, so every run goes through
it. Its data loader yields the pairs (``{"image_a": path, "image_b": path}``, one per iteration); one iteration
fuses one pair with the runner (:meth:`~scripts.volume.runner.VolumeFusionRunner.process`). Under
``torch.distributed`` (``configs/multi_gpu_inference.json``) a ``DistributedSampler`` gives each process its
share of the pairs; the summaries of the processes are gathered to rank 0, which prints the one summary
(``evaluate.json`` runs in one process: its metrics file is one).

Order of a run: the runner's checks of this process's pairs (options, inputs read to the end, outputs claimed;
:meth:`~scripts.volume.runner.VolumeFusionRunner.prepare`) -> ``Events.STARTED``: the handlers (the weights,
:class:`scripts.weights.WeightsLoader`) -> one iteration per pair -> the summary.
"""

from __future__ import annotations

import torch.distributed as dist
from monai.data import DataLoader, Dataset
from monai.engines import Evaluator

from .slicing import resolve_device

__all__ = ["PairFusionEvaluator", "first_item", "pair_loader", "process_rank"]


def first_item(batch: list):
    """The ``collate_fn`` of the pair loader: batches of one pair, passed on as the pair itself."""
    return batch[0]


def pair_loader(dataset: Dataset, sampler=None) -> DataLoader:
    """The loader of a pair dataset: one pair per iteration, in order (``sampler``: this process's share)."""
    return DataLoader(dataset, batch_size=1, shuffle=False, num_workers=0, sampler=sampler, collate_fn=first_item)


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class PairFusionEvaluator(Evaluator):
    """A MONAI ``Evaluator`` whose iteration fuses one pair of volumes with ``runner``.

    ``val_data_loader`` yields pairs (see :func:`pair_loader`); ``val_handlers`` are attached as usual (the
    bundle's weights loader among them). The device is the runner's (``options.device``).
    """

    def __init__(self, runner, val_data_loader: DataLoader, val_handlers=None):
        super().__init__(
            device=resolve_device(runner.options.device),
            val_data_loader=val_data_loader,
            val_handlers=val_handlers,
            decollate=False,
        )
        self.runner = runner
        self.todo: dict[tuple[str, str], tuple] = {}

    def _iteration(self, engine, batchdata: dict) -> dict:
        """Fuse the pair ``batchdata`` unless :meth:`run` left it out (its output exists); stop the engine when
        the runner says so (a failure without ``continue_on_error``)."""
        planned = self.todo.get((str(batchdata["image_a"]), str(batchdata["image_b"])))
        if planned is not None and not self.runner.process(*planned):
            self.terminate()
        return {"pair": batchdata}

    def run(self):
        """Check and claim this process's pairs, run the engine over them, and conclude (summary, failures);
        returns the runner's result (:meth:`~scripts.volume.runner.VolumeFusionRunner.finish`)."""
        runner = self.runner
        try:
            todo = runner.prepare(list(self.data_loader))
            self.todo = {(str(a), str(b)): (a, b, out) for a, b, out in todo}
            if todo:
                super().run()
            value = runner.finish() if runner.error is None else None
        except BaseException:
            runner.conclude(gather=False)  # says what was done before the error, which then ends the run
            raise
        finally:
            runner.release()
        return runner.conclude(value)
