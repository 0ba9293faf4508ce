"""The bundle's command-line entry points (``configs/inference.json``, ``configs/evaluate.json``).

:class:`VolumeFusionRunner` fuses one pair (``image_a`` / ``image_b``) and/or a datalist of pairs into
``<output_dir>/<A name>_fused.nii.gz``. Everything that can be checked before work starts is checked first
(inputs exist, outputs writable and distinct from the inputs, options valid, weights loadable), so a bad run
fails in seconds and writes nothing. Each output is written atomically.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .io import check_output_path, load_volume, output_path, save_volume
from .pipeline import fuse_volumes_detailed, prepare_network, validate_options
from .types import FusionInputError, FusionOptions, FusionResult

__all__ = ["VolumeFusionRunner", "read_datalist"]


def read_datalist(datalist) -> list[tuple[Path, Path]]:
    """Pairs from a datalist: a JSON file (paths relative to it) or a list, of ``{"image_a", "image_b"}``
    entries, optionally under a ``"pairs"`` key."""
    root = Path(".")
    if isinstance(datalist, (str, Path)):
        path = Path(datalist)
        try:
            datalist = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise FusionInputError(f"cannot read the datalist {path}: {exc}") from exc
        root = path.parent
    if isinstance(datalist, dict):
        datalist = datalist.get("pairs")
    if not isinstance(datalist, list):
        raise FusionInputError('a datalist is a list of {"image_a": ..., "image_b": ...} entries '
                               '(or {"pairs": [...]})')
    pairs = []
    for number, entry in enumerate(datalist):
        if not isinstance(entry, dict) or not {"image_a", "image_b"} <= set(entry):
            raise FusionInputError(f"datalist entry {number} needs 'image_a' and 'image_b': {entry!r}")
        pairs.append((root / entry["image_a"], root / entry["image_b"]))
    return pairs


class VolumeFusionRunner:
    """Fuse the pairs given on the command line; :meth:`run` returns the written paths.

    Options are those of :class:`~scripts.volume.types.FusionOptions`; ``network`` (optional) replaces the
    task's trained network (``models_dir`` / ``network_kwargs`` tell where and how to load it otherwise);
    ``cancel`` (optional) is polled during every fusion (see :func:`~scripts.volume.pipeline.fuse_volumes`).
    """

    def __init__(self, image_a=None, image_b=None, output_dir="eval", datalist=None, task="CT-MRI",
                 strength=None, device="auto", reference="auto", slice_axis=None, batch_size=8, register=False,
                 norm_a=None, norm_b=None, color=False, colormap=None, nonfinite="error", models_dir=None,
                 network_kwargs=None, network=None, suffix="_fused.nii.gz", show_progress=True, cancel=None):
        self.image_a, self.image_b, self.datalist = image_a, image_b, datalist
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.network = network
        self.show_progress = show_progress
        self.cancel = cancel
        self.options = FusionOptions(
            task=task, strength=strength, reference=reference, slice_axis=slice_axis, device=device,
            batch_size=batch_size, register=register, norm_a=norm_a, norm_b=norm_b, color=color,
            colormap=colormap, nonfinite=nonfinite, models_dir=models_dir, network_kwargs=dict(network_kwargs or {}))

    def pairs(self) -> list[tuple[Path, Path, Path]]:
        """(A, B, output) for every pair, checked: inputs exist, outputs distinct."""
        pairs = []
        if self.image_a is not None or self.image_b is not None:
            if self.image_a is None or self.image_b is None:
                raise FusionInputError("give both --image_a (CT/PET/SPECT) and --image_b (MRI)")
            pairs.append((Path(self.image_a), Path(self.image_b)))
        if self.datalist is not None:
            pairs.extend(read_datalist(self.datalist))
        if not pairs:
            raise FusionInputError("nothing to fuse: give --image_a and --image_b, or --datalist")
        planned, seen = [], {}
        for a, b in pairs:
            for path in (a, b):
                if not path.exists():
                    raise FusionInputError(f"input volume not found: {path}")
            out = output_path(a, self.output_dir, self.suffix)
            if out in seen:
                raise FusionInputError(f"{a} and {seen[out]} would both be written to {out}; rename one of them")
            seen[out] = a
            planned.append((a, b, out))
        return planned

    def load_network(self):
        """The network used for every pair (loaded once)."""
        self.network = prepare_network(self.options, self.network)
        return self.network

    def fuse_pair(self, a_path: Path, b_path: Path, out_path: Path) -> FusionResult:
        """Read, fuse and write one pair; the output appears only when complete."""
        a, b = load_volume(a_path), load_volume(b_path)
        bar = None
        if self.show_progress:
            from tqdm import tqdm

            bar = tqdm(total=100, desc=a_path.name, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}]",
                       file=sys.stderr)
        try:
            result = fuse_volumes_detailed(
                a, b, self.options, network=self.load_network(),
                progress=None if bar is None else (lambda f: bar.update(100 * f - bar.n)), cancel=self.cancel,
                notify=(lambda message: bar.write(f"  {message}")) if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()
        save_volume(result.fused, out_path)
        return result

    def prepare(self) -> list[tuple[Path, Path, Path]]:
        """Every check that needs no image data: options, inputs, weights, then the output folder (created
        last, so that an earlier failure leaves nothing behind)."""
        validate_options(self.options)
        planned = self.pairs()
        self.load_network()
        inputs = tuple(path for a, b, _ in planned for path in (a, b))
        for _, _, out in planned:
            check_output_path(out, inputs=inputs)
        return planned

    def run(self) -> list[Path]:
        """Fuse every pair; returns the written output paths."""
        written = []
        for a_path, b_path, out_path in self.prepare():
            self.fuse_pair(a_path, b_path, out_path)
            print(f"wrote {out_path}")
            written.append(out_path)
        return written
