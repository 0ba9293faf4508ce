"""The bundle's command-line runner (``configs/inference.json``, ``configs/evaluate.json``): the pair-level work.

:class:`VolumeFusionRunner` fuses one pair (``image_a`` / ``image_b``) and/or a datalist of pairs - or the pairs
of a MONAI ``Dataset`` (the configs' ``dataset``) - into ``<output_dir>/<A name><output_suffix>``; the MONAI
engine :class:`~scripts.volume.engine.PairFusionEvaluator` drives it, one pair per iteration. Everything that
can be checked before work starts is checked first, before any volume is fused: options (device and output format
included), inputs (present, distinct, and read to the end: a corrupt file is refused), weights, and the outputs -
each one claimed exclusively (:class:`~scripts.volume.outputs.OutputClaim`), so concurrent runs cannot both write
it. An existing output is kept unless ``overwrite``: a single pair is then refused, a cohort pair skipped. Each
output is written atomically; a run that fails leaves no lock, partial file or new empty folder behind.

A cohort run (a datalist, or several pairs) prints a summary (written / failed / skipped, with each reason); with
``continue_on_error`` it goes on past a pair that fails and reports the failures at the end (an error, so the
exit status says so). Several processes (``torchrun``, ``configs/multi_gpu_inference.json``) each fuse their
share; rank 0 prints the one summary of all of them and reports their failures.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .engine import PairFusionEvaluator, pair_loader, process_rank
from .integrity import verify_volume_file
from .io import load_volume, output_path, save_volume
from .options import parse_flag
from .outputs import OutputClaim, OutputFolders, check_output_suffix
from .pipeline import fuse_volumes_detailed, prepare_network, validate_options
from .types import FusionInputError, FusionOptions, FusionResult

__all__ = ["VolumeFusionRunner", "read_datalist", "pair_items", "RunSummary"]


def read_datalist(datalist, dataset_dir=".") -> list[dict]:
    """Pairs ``{"image_a": Path, "image_b": Path}`` from a datalist: a JSON file (paths relative to it) or a list
    (paths relative to ``dataset_dir``), of ``{"image_a", "image_b"}`` entries, optionally under ``"pairs"``."""
    root = Path(dataset_dir)
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
        raise FusionInputError('a datalist is a list of {"image_a": ..., "image_b": ...} entries (or {"pairs": [...]})')
    pairs = []
    for number, entry in enumerate(datalist):
        if not isinstance(entry, dict) or not {"image_a", "image_b"} <= set(entry):
            raise FusionInputError(f"datalist entry {number} needs 'image_a' and 'image_b': {entry!r}")
        pairs.append({"image_a": root / entry["image_a"], "image_b": root / entry["image_b"]})
    return pairs


def pair_items(image_a=None, image_b=None, datalist=None, dataset_dir=".") -> list[dict]:
    """The pairs to fuse, ``{"image_a": Path, "image_b": Path}`` each (the configs' ``dataset#data``): the pair
    of the command line (relative paths from ``dataset_dir``), then the datalist's (see :func:`read_datalist`)."""
    pairs = []
    if image_a is not None or image_b is not None:
        if image_a is None or image_b is None:
            raise FusionInputError("give both --image_a (CT/PET/SPECT) and --image_b (MRI)")
        pairs.append({"image_a": Path(dataset_dir) / image_a, "image_b": Path(dataset_dir) / image_b})
    if datalist is not None:
        pairs.extend(read_datalist(datalist, dataset_dir))
    if not pairs:
        raise FusionInputError("nothing to fuse: give --image_a and --image_b, or --datalist")
    return pairs


@dataclass
class RunSummary:
    """What happened to each pair of a run: ``(A path, reason)`` per written, failed and skipped pair."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    not_attempted: list[Path] = field(default_factory=list)

    @classmethod
    def merge(cls, parts: list["RunSummary"]) -> "RunSummary":
        """One summary of several (the processes of a distributed run)."""
        return cls(*(sum((getattr(part, name) for part in parts), []) for name in cls.__dataclass_fields__))

    def lines(self) -> list[str]:
        counts = f"summary: {len(self.written)} written, {len(self.failed)} failed, {len(self.skipped)} skipped" + (
            f", {len(self.not_attempted)} not attempted" if self.not_attempted else ""
        )
        return (
            [counts]
            + [f"  failed  {a}: {reason}" for a, reason in self.failed]
            + [f"  skipped {a}: {reason}" for a, reason in self.skipped]
            + [f"  not attempted {a} (the run stopped at the first failure)" for a in self.not_attempted]
        )


def gathered(summary: RunSummary) -> RunSummary:
    """The summary of every process of a distributed run (``summary`` itself in a single process)."""
    rank, world = process_rank()
    if world == 1:
        return summary
    import torch.distributed as dist

    parts = [None] * world
    dist.all_gather_object(parts, summary)
    return RunSummary.merge(parts)


class VolumeFusionRunner:
    """Fuse the pairs given on the command line; :meth:`run` returns the written paths.

    Options are those of :class:`~scripts.volume.types.FusionOptions`; ``network`` (optional) is the network to
    use (its weights loaded by the caller: the configs' ``WeightsLoader``); without it the trained network is
    loaded from ``weights`` (default ``models/model.pt``) with the architecture ``network_kwargs``. ``pairs``
    (optional): a dataset of ``{"image_a", "image_b"}`` pairs, in place of ``image_a`` / ``image_b`` /
    ``datalist`` (relative paths from ``dataset_dir``). ``inferer`` (a MONAI inferer, default ``SimpleInferer``)
    runs the network on each batch of slices. ``cancel`` (optional) is polled during every fusion (see
    :func:`~scripts.volume.pipeline.fuse_volumes`). ``overwrite`` replaces existing outputs;
    ``continue_on_error`` goes on past a failing cohort pair; ``show_progress`` (``None``: when stderr is a
    terminal) shows a progress bar.
    """

    keep_inputs = False  #: whether fuse_pair keeps the normalized inputs on the grid (evaluation and demo do)
    skip_existing = True  #: whether a cohort pair with an existing output is skipped (else refused)

    def __init__(
        self,
        image_a=None,
        image_b=None,
        output_dir="eval",
        datalist=None,
        task="CT-MRI",
        strength=None,
        device="auto",
        reference="auto",
        slice_axis=None,
        batch_size=8,
        register=False,
        norm_a=None,
        norm_b=None,
        color=False,
        colormap=None,
        nonfinite="error",
        weights=None,
        network_kwargs=None,
        network=None,
        suffix="_fused.nii.gz",
        show_progress=None,
        cancel=None,
        overwrite=False,
        continue_on_error=False,
        pairs=None,
        dataset_dir=".",
        inferer=None,
    ):
        self.image_a, self.image_b, self.datalist = image_a, image_b, datalist
        self.dataset, self.dataset_dir = pairs, dataset_dir
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.network, self.inferer = network, inferer
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.cancel = cancel
        self.overwrite, self.continue_on_error = overwrite, continue_on_error
        self.folders = OutputFolders()
        self.claims: list[OutputClaim] = []
        self.summary = RunSummary()
        self.todo: list[tuple[Path, Path, Path]] | None = None  # this process's pairs, once prepared
        self.error: Exception | None = None  # the failure that stopped the run (without continue_on_error)
        self.options = FusionOptions(
            task=task,
            strength=strength,
            reference=reference,
            slice_axis=slice_axis,
            device=device,
            batch_size=batch_size,
            register=register,
            norm_a=norm_a,
            norm_b=norm_b,
            color=color,
            colormap=colormap,
            nonfinite=nonfinite,
            weights=weights,
            network_kwargs=dict(network_kwargs or {}),
        )

    def items(self) -> list[dict]:
        """Every pair of the run, ``{"image_a", "image_b"}`` (the dataset's, else the command line's)."""
        if self.dataset is not None:
            return [self.dataset[index] for index in range(len(self.dataset))]
        return pair_items(self.image_a, self.image_b, self.datalist, self.dataset_dir)

    @property
    def cohort(self) -> bool:
        """Whether this is a cohort run (a datalist or several pairs): summary printed, existing outputs skipped."""
        return self.datalist is not None or (self.dataset is not None and len(self.dataset) > 1)

    def pairs(self) -> list[tuple[Path, Path, Path]]:
        """(A, B, output) for every pair, checked: inputs exist and differ, outputs distinct and not inputs."""
        pairs = [(Path(item["image_a"]), Path(item["image_b"])) for item in self.items()]
        inputs = {os.path.realpath(path) for pair in pairs for path in pair}
        planned, seen = [], {}
        for a, b in pairs:
            for path in (a, b):
                if not path.exists():
                    raise FusionInputError(f"input volume not found: {path}")
            if os.path.realpath(a) == os.path.realpath(b):
                raise FusionInputError(
                    f"image_a and image_b are the same file ({a}); give the CT/PET/SPECT as "
                    "image_a and the MRI as image_b"
                )
            out = output_path(a, self.output_dir, self.suffix)
            if os.path.realpath(out) in inputs:
                raise FusionInputError(
                    f"the output path {out} is an input volume; choose another output folder "
                    "(inputs are never overwritten)"
                )
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
        """Read, fuse and write one pair; the output appears only when complete (and never replaces a file
        unless ``overwrite``)."""
        a, b = load_volume(a_path, verify=False), load_volume(b_path, verify=False)  # verified by prepare()
        bar = None
        if self.show_progress:
            from tqdm import tqdm

            bar = tqdm(
                total=100, desc=a_path.name, unit="%", bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}]", file=sys.stderr
            )
        try:
            result = fuse_volumes_detailed(
                a,
                b,
                self.options,
                network=self.load_network(),
                keep_inputs=self.keep_inputs,
                progress=None if bar is None else (lambda f: bar.update(100 * f - bar.n)),
                cancel=self.cancel,
                notify=(lambda message: bar.write(f"  {message}")) if bar is not None else self._notify,
                inferer=self.inferer,
            )
        finally:
            if bar is not None:
                bar.close()
        del a, b
        save_volume(result.fused, out_path, overwrite=self.overwrite)
        return result

    @staticmethod
    def _notify(message: str) -> None:
        """Notes to stdout; warnings to stderr, where they are seen."""
        print(f"  {message}", file=sys.stderr if message.startswith("warning:") else sys.stdout, flush=True)

    def prepare(self, share: list[dict] | None = None) -> list[tuple[Path, Path, Path]]:
        """Every check before any volume is fused: options (device, output format), the pairs (all of them),
        then for this process's ``share`` of them (default: all) the inputs (read to the end), the network, and
        the outputs claimed (folders created last). Returns the pairs to fuse (also kept as :attr:`todo`)."""
        validate_options(self.options)
        check_output_suffix(self.suffix)
        self.overwrite = parse_flag(self.overwrite, "overwrite")
        self.continue_on_error = parse_flag(self.continue_on_error, "continue_on_error")
        planned = self.pairs()
        if share is not None:
            mine = {(str(item["image_a"]), str(item["image_b"])) for item in share}
            planned = [(a, b, out) for a, b, out in planned if (str(a), str(b)) in mine]
        checked = set()
        for a, b, _ in planned:
            for path in (a, b):
                if path not in checked:
                    verify_volume_file(path)
                    checked.add(path)
        self.load_network()
        todo = []
        for a, b, out in planned:
            if out.exists() and not self.overwrite and self.cohort and self.skip_existing:
                self.summary.skipped.append((a, f"{out} exists (pass --overwrite true to replace it)"))
                continue
            self.folders.make(out.parent)
            claim = OutputClaim(out, self.overwrite).acquire()
            self.claims.append(claim)
            for note in claim.notes:
                self._notify(note)
            todo.append((a, b, out))
        self.todo = todo
        return todo

    def release(self) -> None:
        """Give the claims back and remove the folders this run created that stayed empty (a failed run)."""
        for claim in self.claims:
            claim.release()
        self.claims.clear()
        self.folders.remove_unused()

    def process(self, a_path: Path, b_path: Path, out_path: Path) -> bool:
        """Fuse one prepared pair and record what happened in the summary; False when the run must stop (the
        pair failed and ``continue_on_error`` is off; the failure is kept in :attr:`error`)."""
        try:
            result = self.fuse_pair(a_path, b_path, out_path)
        except (FusionInputError, ValueError) as exc:  # bad data or weights: this pair only
            self.summary.failed.append((a_path, str(exc)))
            if not self.continue_on_error:
                self.error = exc
                return False
            return True
        self.summary.written.append(out_path)
        self.pair_done(a_path, b_path, out_path, result)
        return True

    def pair_done(self, a_path: Path, b_path: Path, out_path: Path, result: FusionResult) -> None:
        """Called after each written pair (the evaluation scores it here)."""
        print(f"wrote {out_path}", flush=True)

    def finish(self):
        """Called once every pair is done; its value is what :meth:`run` returns (here: the written paths)."""
        return self.summary.written

    def conclude(self, value=None, gather: bool = True):
        """The end of a run: the summary of a cohort run printed (with ``gather``, that of every process, by
        rank 0; else this process's, its rank named in a distributed run), then failures raised: the one that
        stopped this process's run, else (rank 0, with ``gather``) ``k of n pairs failed``. Returns ``value``."""
        if self.todo is None:
            return value
        done = {a for a, _ in self.summary.failed} | set(self.summary.written)
        self.summary.not_attempted = [a for a, _, out in self.todo if a not in done and out not in done]
        rank, world = process_rank()
        summary = gathered(self.summary) if gather else self.summary
        if self.cohort and (rank == 0 or not gather):
            label = f"rank {rank}: " if world > 1 and not gather else ""
            print("\n".join(label + line for line in summary.lines()), flush=True)
        if not gather:
            return value
        if self.error is not None:
            raise self.error
        if summary.failed and rank == 0:
            attempted = len(summary.written) + len(summary.failed) + len(summary.not_attempted)
            raise FusionInputError(
                f"{len(summary.failed)} of {attempted} pairs failed (see the summary); the others were written"
            )
        return value

    def run(self):
        """Fuse every pair with the MONAI engine (:class:`~scripts.volume.engine.PairFusionEvaluator`); returns
        :meth:`finish`'s value (see the module docstring for failures)."""
        from monai.data import Dataset

        if self.dataset is None:
            self.dataset = Dataset(self.items())
        return PairFusionEvaluator(self, pair_loader(self.dataset)).run()
