"""The bundle's command-line entry points (``configs/inference.json``, ``configs/evaluate.json``).

:class:`VolumeFusionRunner` fuses one pair (``image_a`` / ``image_b``) and/or a datalist of pairs into
``<output_dir>/<A name><output_suffix>``. Everything that can be checked before work starts is checked first,
before any volume is fused: options (device and output format included), inputs (present, distinct, and read to
the end: a corrupt file is refused), weights, and the outputs - each one claimed exclusively
(:class:`~scripts.volume.outputs.OutputClaim`), so concurrent runs cannot both write it. An existing output is
kept unless ``overwrite``: a single pair is then refused, a datalist pair skipped. Each output is written
atomically; a run that fails leaves no lock, partial file or new empty folder behind.

A datalist run prints a summary (written / failed / skipped, with each reason); with ``continue_on_error`` it
goes on past a pair that fails and reports the failures at the end (an error, so the exit status says so).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .integrity import verify_volume_file
from .io import load_volume, output_path, save_volume
from .options import parse_flag
from .outputs import OutputClaim, OutputFolders, check_output_suffix
from .pipeline import fuse_volumes_detailed, prepare_network, validate_options
from .types import FusionInputError, FusionOptions, FusionResult

__all__ = ["VolumeFusionRunner", "read_datalist", "RunSummary"]


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
        raise FusionInputError(
            'a datalist is a list of {"image_a": ..., "image_b": ...} entries ' '(or {"pairs": [...]})'
        )
    pairs = []
    for number, entry in enumerate(datalist):
        if not isinstance(entry, dict) or not {"image_a", "image_b"} <= set(entry):
            raise FusionInputError(f"datalist entry {number} needs 'image_a' and 'image_b': {entry!r}")
        pairs.append((root / entry["image_a"], root / entry["image_b"]))
    return pairs


@dataclass
class RunSummary:
    """What happened to each pair of a run: ``(A path, reason)`` per written, failed and skipped pair."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    not_attempted: list[Path] = field(default_factory=list)

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


class VolumeFusionRunner:
    """Fuse the pairs given on the command line; :meth:`run` returns the written paths.

    Options are those of :class:`~scripts.volume.types.FusionOptions`; ``network`` (optional) replaces the
    task's trained network (``models_dir`` / ``network_kwargs`` tell where and how to load it otherwise);
    ``cancel`` (optional) is polled during every fusion (see :func:`~scripts.volume.pipeline.fuse_volumes`).
    ``overwrite`` replaces existing outputs; ``continue_on_error`` goes on past a failing datalist pair;
    ``show_progress`` (``None``: when stderr is a terminal) shows a progress bar.
    """

    keep_inputs = False  #: whether fuse_pair keeps the normalized inputs on the grid (evaluation and demo do)
    skip_existing = True  #: whether a datalist pair with an existing output is skipped (else refused)

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
        models_dir=None,
        network_kwargs=None,
        network=None,
        suffix="_fused.nii.gz",
        show_progress=None,
        cancel=None,
        overwrite=False,
        continue_on_error=False,
    ):
        self.image_a, self.image_b, self.datalist = image_a, image_b, datalist
        self.output_dir = Path(output_dir)
        self.suffix = suffix
        self.network = network
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.cancel = cancel
        self.overwrite, self.continue_on_error = overwrite, continue_on_error
        self.folders = OutputFolders()
        self.claims: list[OutputClaim] = []
        self.summary = RunSummary()
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
            models_dir=models_dir,
            network_kwargs=dict(network_kwargs or {}),
        )

    def pairs(self) -> list[tuple[Path, Path, Path]]:
        """(A, B, output) for every pair, checked: inputs exist and differ, outputs distinct and not inputs."""
        pairs = []
        if self.image_a is not None or self.image_b is not None:
            if self.image_a is None or self.image_b is None:
                raise FusionInputError("give both --image_a (CT/PET/SPECT) and --image_b (MRI)")
            pairs.append((Path(self.image_a), Path(self.image_b)))
        if self.datalist is not None:
            pairs.extend(read_datalist(self.datalist))
        if not pairs:
            raise FusionInputError("nothing to fuse: give --image_a and --image_b, or --datalist")
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

    def prepare(self) -> list[tuple[Path, Path, Path]]:
        """Every check before any volume is fused: options (device, output format), inputs (read to the end),
        weights, then the outputs claimed (folders created last). Returns the pairs to fuse."""
        validate_options(self.options)
        check_output_suffix(self.suffix)
        self.overwrite = parse_flag(self.overwrite, "overwrite")
        self.continue_on_error = parse_flag(self.continue_on_error, "continue_on_error")
        planned = self.pairs()
        checked = set()
        for a, b, _ in planned:
            for path in (a, b):
                if path not in checked:
                    verify_volume_file(path)
                    checked.add(path)
        self.load_network()
        todo = []
        for a, b, out in planned:
            if out.exists() and not self.overwrite and self.datalist is not None and self.skip_existing:
                self.summary.skipped.append((a, f"{out} exists (pass --overwrite true to replace it)"))
                continue
            self.folders.make(out.parent)
            claim = OutputClaim(out, self.overwrite).acquire()
            self.claims.append(claim)
            for note in claim.notes:
                self._notify(note)
            todo.append((a, b, out))
        return todo

    def release(self) -> None:
        """Give the claims back and remove the folders this run created that stayed empty (a failed run)."""
        for claim in self.claims:
            claim.release()
        self.claims.clear()
        self.folders.remove_unused()

    def pair_done(self, a_path: Path, b_path: Path, out_path: Path, result: FusionResult) -> None:
        """Called after each written pair (the evaluation scores it here)."""
        print(f"wrote {out_path}", flush=True)

    def finish(self):
        """Called once every pair is done; its value is what :meth:`run` returns (here: the written paths)."""
        return self.summary.written

    def run(self):
        """Fuse every pair; returns :meth:`finish`'s value (see the module docstring for failures)."""
        todo = None
        try:
            todo = self.prepare()
            for number, (a_path, b_path, out_path) in enumerate(todo):
                try:
                    result = self.fuse_pair(a_path, b_path, out_path)
                except (FusionInputError, ValueError) as exc:  # bad data or weights: this pair only
                    self.summary.failed.append((a_path, str(exc)))
                    if not self.continue_on_error:
                        self.summary.not_attempted = [a for a, _, _ in todo[number + 1 :]]
                        raise
                    continue
                self.summary.written.append(out_path)
                self.pair_done(a_path, b_path, out_path, result)
            value = self.finish()
        finally:
            self.release()
            if todo is not None and self.datalist is not None:
                print("\n".join(self.summary.lines()), flush=True)
        if self.summary.failed:
            raise FusionInputError(
                f"{len(self.summary.failed)} of {len(todo)} pairs failed (see the summary); the " "others were written"
            )
        return value
