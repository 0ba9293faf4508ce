"""Fusion metrics of volume pairs (``configs/evaluate.json``).

Each pair is fused as by the command line (the fused volume is written too), then the 2-D metrics of
:func:`scripts.metrics.fusion_metrics` are computed slice by slice along the slice axis, on 8-bit versions of
the normalized A and B on the reference grid and of the fused volume (the RGB pseudo-colour A and RGB output in
colour mode), and averaged over the slices where A or B has content. ``metrics.json`` holds the per-pair and
overall means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..color import to_uint8
from ..metrics import fusion_metrics
from .engine import process_rank
from .io import atomic_write
from .outputs import OutputClaim
from .runner import VolumeFusionRunner
from .types import FusionInputError, FusionResult

__all__ = ["volume_metrics", "VolumeEvaluationRunner"]


def volume_metrics(result: FusionResult, slice_step: int = 1) -> dict:
    """Mean of the per-slice metrics of one fused pair, with ``slices``: how many slices were scored.

    Slices where both A and B are empty (below one gray level) are skipped: metrics of black images are noise.
    """
    axis = result.slice_axis
    a, b, f = (np.moveaxis(v.array, axis, 0) for v in (result.a, result.b, result.fused))
    per_slice = []
    for index in range(0, a.shape[0], max(1, int(slice_step))):
        if max(a[index].max(), b[index].max()) < 1.0 / 255.0:
            continue
        per_slice.append(fusion_metrics(to_uint8(a[index]), to_uint8(b[index]), to_uint8(f[index])))
    if not per_slice:
        return {"slices": 0}
    names = per_slice[0].keys()
    return {"slices": len(per_slice), **{name: float(np.mean([m[name] for m in per_slice])) for name in names}}


class VolumeEvaluationRunner(VolumeFusionRunner):
    """Fuse every pair (writing the fused volumes) and write ``<output_dir>/<metrics_file>``.

    ``slice_step`` scores every n-th slice (the metrics cost about a second per 256x256 slice). Every pair is
    fused (an existing output is refused unless ``overwrite``, never skipped: its metrics are needed), and the
    metrics file is claimed like the fused volumes.
    """

    keep_inputs = True
    skip_existing = False

    def __init__(self, *args, metrics_file: str = "metrics.json", slice_step: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.metrics_file = metrics_file
        self.slice_step = int(slice_step)
        self.per_pair: dict[str, dict] = {}

    @property
    def metrics_path(self) -> Path:
        return Path(self.output_dir) / self.metrics_file

    def prepare(self, share=None):
        if process_rank()[1] > 1:
            raise FusionInputError(
                "evaluate.json runs in one process (its metrics file is one); run it without torchrun, or fuse "
                "the cohort with configs/inference.json + configs/multi_gpu_inference.json"
            )
        todo = super().prepare(share)
        self.claims.append(OutputClaim(self.metrics_path, self.overwrite).acquire())
        return todo

    def pair_done(self, a_path, b_path, out_path, result: FusionResult) -> None:
        super().pair_done(a_path, b_path, out_path, result)
        scores = {"image_b": b_path.name, "fused": out_path.name, **volume_metrics(result, self.slice_step)}
        self.per_pair[a_path.name] = scores
        print(f"{a_path.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, float)))

    def finish(self) -> dict:
        """Returns ``{"pairs": {A name: metrics}, "mean": metrics over pairs}`` (also written as JSON)."""
        scored = [m for m in self.per_pair.values() if m["slices"] > 0]
        names = [k for k, v in scored[0].items() if isinstance(v, float)] if scored else []
        summary = {
            "task": self.options.task,
            "strength": float(self.options.strength),
            "pairs": self.per_pair,
            "mean": {n: float(np.mean([m[n] for m in scored])) for n in names},
        }
        atomic_write(self.metrics_path, lambda tmp: tmp.write_text(json.dumps(summary, indent=2)), self.overwrite)
        print(f"wrote {self.metrics_path}")
        return summary
