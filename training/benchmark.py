"""Fusion benchmark: fuse an HMIF folder with W-DUALMINE and the classical baselines, then score every method.

    python training/benchmark.py fuse --task CT-MRI --data ../shared/data/hmif-train --split val --out out/ct \
        --methods wdualmine,mean,max,dwt,lp,gff,blend [--strength 0.25 0.5 1] [--mu 0.05 0.1 0.3]
    python training/benchmark.py evaluate --task CT-MRI --data ../shared/data/hmif-train --split val --fused out/ct
    python training/benchmark.py run ...   # fuse, then evaluate (same options; --out is the fused folder)

``--data`` is the HMIF root (``<root>/<task>/<CT|PET|SPECT>/*.png`` + ``.../MRI/*.png``) or one task folder;
``--split val`` is the project's validation split (``scripts.data``: slice index % 7 == 0 in every case).

``fuse`` writes ``OUT/<method>/<name>.png``: 8-bit gray for CT-MRI; for PET/SPECT the fused Y channel with the
functional image's Cb/Cr restored (RGB). ``evaluate`` scores every method folder under OUT (any folder holding
images named like the pairs, so published outputs of other methods can be dropped in) and writes
``OUT/metrics.csv`` (one row per image and method), ``OUT/report.md`` (mean ± std, best marked, medians) and
the figures ``OUT/metric_bars.png``, ``OUT/tradeoff_cc_qabf.png``, ``OUT/tradeoff_mi_qabf.png``, ``OUT/montage.png``; the
report and the console end with the dominance check (is any baseline point at least as good on all six metrics?).
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "monai_bundle"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from scripts.color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb  # noqa: E402
from scripts.data import TASKS, datalist, network_input, read_png  # noqa: E402
from scripts.metrics import fusion_metrics  # noqa: E402
from training import plots  # noqa: E402
from training.methods import (NETWORK, Method, NetworkFuser, expand_methods, fuse_batch,  # noqa: E402
                              shipped_architecture)
from training.report import dominance_lines, markdown_report, summarize, write_csv  # noqa: E402

DEFAULT_METHODS = "wdualmine,mean,max,dwt,lp,gff,blend"
FUSE_TIMES = "fuse_times.json"


def select_pairs(data: Path, task: str, split: str, every: int = 1) -> list[dict[str, str]]:
    """The ``{"name", "a", "b"}`` pairs of one split of ``task`` under ``data`` (every ``every``-th one)."""
    return datalist(data, task, split)[::every]


def fused_image(y: np.ndarray, source_a: np.ndarray) -> np.ndarray:
    """uint8 output: gray, or (when source A is colour) RGB from the fused Y and source A's Cb/Cr."""
    if source_a.ndim == 2:
        return to_uint8(y)
    ycc = rgb_to_ycbcr(source_a)
    ycc[..., 0] = y
    return to_uint8(ycbcr_to_rgb(ycc))


def _batches(pairs: Sequence[dict], size: int) -> Iterator[list[tuple[dict, np.ndarray, np.ndarray]]]:
    """Consecutive (pair, source A, network input) groups of at most ``size`` pairs of one image size."""
    batch: list[tuple[dict, np.ndarray, np.ndarray]] = []
    for pair in pairs:
        a = read_png(pair["a"])
        x = network_input(a, read_png(pair["b"]))
        if batch and (len(batch) == size or batch[0][2].shape != x.shape):
            yield batch
            batch = []
        batch.append((pair, a, x))
    if batch:
        yield batch


def fuse(data: Path, task: str, split: str, out: Path, methods: Sequence[Method], batch_size: int = 4,
         models_dir: Path | None = None, device: str | None = None, threads: int | None = None,
         network_kwargs: dict | None = None, every: int = 1) -> dict[str, float]:
    """Write ``out/<method>/<name>.png`` for every pair and method; returns seconds per image per method."""
    pairs = select_pairs(data, task, split, every)
    uses_network = any(m.family == NETWORK for m in methods)
    network = NetworkFuser(task, models_dir, device, threads, network_kwargs) if uses_network else None
    seconds = dict.fromkeys((m.label for m in methods), 0.0)
    for m in methods:
        (out / m.label).mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(pairs), desc=f"fuse {task}", unit="img") as bar:
        for batch in _batches(pairs, batch_size):
            x = np.stack([item[2] for item in batch])
            for m in methods:
                start = time.perf_counter()
                ys = fuse_batch(m, x, network)
                seconds[m.label] += time.perf_counter() - start
                for (pair, a, _), y in zip(batch, ys):
                    Image.fromarray(fused_image(y, a)).save(out / m.label / f"{pair['name']}.png")
            bar.update(len(batch))
    per_image = {label: s / max(len(pairs), 1) for label, s in seconds.items()}
    times_file = out / FUSE_TIMES  # merged: methods may be fused into one folder by several runs
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    times_file.write_text(json.dumps({**times, **per_image}, indent=1))
    return per_image


def _read_uint8(path: str | Path) -> np.ndarray:
    """An 8-bit PNG through the project's loader (``scripts.data.read_png``), back to uint8."""
    return to_uint8(read_png(path))


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks instead of returning them to the kernel (mmap threshold 64 MiB, trim threshold
    256 MiB): the metrics allocate many short-lived 0.1-10 MB arrays, and re-faulting their pages otherwise costs
    about a quarter of the metric time in system calls. A no-op where glibc's ``mallopt`` is missing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _score_pair(job: tuple[dict, list[tuple[str, str]]]) -> list[dict]:
    """Metrics of every fused image of one pair (a multiprocessing job)."""
    pair, fused = job
    a8, b8 = _read_uint8(pair["a"]), _read_uint8(pair["b"])
    return [{"method": label, "name": pair["name"], **fusion_metrics(a8, b8, _read_uint8(path))}
            for label, path in fused]


def method_folders(fused: Path, pairs: Sequence[dict]) -> list[str]:
    """Sub-folders of ``fused`` holding at least one image named like a pair, in :meth:`Method.sort_key` order."""
    names = {p["name"] for p in pairs}
    found = [d.name for d in fused.iterdir() if d.is_dir() and any((d / f"{n}.png").exists() for n in names)]
    return sorted(found, key=lambda label: Method.from_label(label).sort_key())


def _montage_cases(fused: Path, pairs: Sequence[dict], methods: Sequence[str], count: int) -> list:
    """Up to ``count`` evenly spaced pairs: source A, source B, then every method's output."""
    picks = [pairs[i] for i in np.unique(np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int))]
    cases = []
    for pair in picks:
        images = [("A", _read_uint8(pair["a"])), ("B (MRI)", _read_uint8(pair["b"]))]
        images += [(m, _read_uint8(fused / m / f"{pair['name']}.png")) for m in methods
                   if (fused / m / f"{pair['name']}.png").exists()]
        cases.append((pair["name"], images))
    return cases


def evaluate(data: Path, task: str, split: str, fused: Path, workers: int = 2, montage_cases: int = 3,
             command: str = "", every: int = 1, montage_methods: Sequence[str] | None = None) -> dict:
    """Score every method folder under ``fused``; write metrics.csv, report.md and the figures there."""
    pairs = select_pairs(data, task, split, every)
    methods = method_folders(fused, pairs)
    if not methods:
        raise FileNotFoundError(f"no method folder with images named like the {task} pairs under {fused}")
    jobs = [(p, [(m, str(fused / m / f"{p['name']}.png")) for m in methods
                 if (fused / m / f"{p['name']}.png").exists()]) for p in pairs]
    jobs = [job for job in jobs if job[1]]
    start = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_keep_freed_memory) as pool:
            results = list(tqdm(pool.imap(_score_pair, jobs), total=len(jobs), desc=f"evaluate {task}", unit="img"))
    else:
        _keep_freed_memory()
        results = [_score_pair(job) for job in tqdm(jobs, desc=f"evaluate {task}", unit="img")]
    rows = [row for rows in results for row in rows]
    elapsed = time.perf_counter() - start
    write_csv(rows, fused / "metrics.csv")

    summary = summarize(rows, methods)
    # no repository path: the report is shipped inside the bundle (monai_bundle/docs/benchmark/)
    meta = {"task": task, "data": f"the HMIF folder `{Path(data).name}`" + (" (its validation pairs: slice index a "
            "multiple of 7)" if split == "val" else ""), "split": f"{split} ({len(jobs)} pairs)",
            "methods": ", ".join(methods)}
    if command:
        meta["produced by the project's benchmark"] = f"`{command}`"
    notes = [f"metrics of {len(rows)} fused images computed in {elapsed:.1f} s ({workers} worker(s))"]
    times_file = fused / FUSE_TIMES
    if times_file.exists():
        times = json.loads(times_file.read_text())
        notes.append("fusion time per image (s): " + ", ".join(f"{k} {v:.4f}" for k, v in times.items()))
    title = f"Fusion benchmark: {task}, {split} split"
    (fused / "report.md").write_text(markdown_report(summary, title, meta, notes))
    plots.metric_bars(summary, fused / "metric_bars.png", title)
    plots.tradeoff(summary, fused / "tradeoff_cc_qabf.png", f"{title}: CC vs Qabf")
    plots.tradeoff(summary, fused / "tradeoff_mi_qabf.png", f"{title}: MI vs Qabf", x="MI")
    print("\n".join(dominance_lines(summary)))
    if montage_cases > 0:
        shown = [m for m in montage_methods if m in methods] if montage_methods else methods
        plots.montage(_montage_cases(fused, [job[0] for job in jobs], shown, montage_cases), fused / "montage.png")
    print(f"evaluated {len(jobs)} pairs x {len(methods)} methods in {elapsed:.1f} s -> {fused / 'report.md'}")
    return summary


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--task", required=True, choices=TASKS)
    common.add_argument("--data", required=True, type=Path, help="HMIF root or one task folder")
    common.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="pairs to use: all, or the project's train / validation split (default all)")
    common.add_argument("--every", type=int, default=1, help="use every N-th pair of the split (default 1: all)")
    fusing = argparse.ArgumentParser(add_help=False)
    fusing.add_argument("--methods", default=DEFAULT_METHODS,
                        help=f"comma-separated; family or family@param (default {DEFAULT_METHODS})")
    fusing.add_argument("--strength", type=float, nargs="*", default=[],
                        help="wdualmine residual strengths: one wdualmine@strength folder each")
    fusing.add_argument("--mu", type=float, nargs="*", default=[], help="blend mu values (default 0.05)")
    fusing.add_argument("--batch", type=int, default=4, help="pairs per network call (default 4)")
    fusing.add_argument("--device", default=None, help="torch device for wdualmine (default cuda if available)")
    fusing.add_argument("--models-dir", type=Path, default=None, help="weights folder (default the bundle's)")
    fusing.add_argument("--gain", type=float, nargs="*", default=[], help="gain g values (default 1.1)")
    fusing.add_argument("--lam", type=float, nargs="*", default=[], help="select lam values (default 0.5)")
    fusing.add_argument("--arch", type=json.loads, default=None,
                        help='JSON object of WDualMine keywords the weights were trained with, e.g. \'{"gate": false}\'')
    fusing.add_argument("--residual-mode", default=None, choices=("additive", "source_weighted", "mean_gain"),
                        help="output stage the weights were trained with (default: configs/inference.json's)")
    fusing.add_argument("--decoder", default=None, choices=("spatial", "global"),
                        help="decoder the weights were trained with (default: configs/inference.json's)")
    fusing.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for wdualmine (default torch's; 1 is far faster on a busy machine)")
    scoring = argparse.ArgumentParser(add_help=False)
    scoring.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                         help="processes computing metrics (default min(2, cores))")
    scoring.add_argument("--montage-cases", type=int, default=3, help="validation cases in montage.png (0: none)")
    scoring.add_argument("--montage-methods", default=None,
                         help="comma-separated method folders shown in montage.png, in order (default: all)")

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fuse = sub.add_parser("fuse", parents=[common, fusing], help="write fused images")
    p_fuse.add_argument("--out", required=True, type=Path)
    p_eval = sub.add_parser("evaluate", parents=[common, scoring], help="score the method folders")
    p_eval.add_argument("--fused", required=True, type=Path)
    p_run = sub.add_parser("run", parents=[common, fusing, scoring], help="fuse, then evaluate")
    p_run.add_argument("--out", required=True, type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    words, command_words = list(sys.argv[1:] if argv is None else argv), []
    for word in words:  # the report names no local path: drop the folder options and their values
        if command_words and command_words[-1] in ("--data", "--out", "--fused"):
            command_words.pop()
        else:
            command_words.append(word)
    command = " ".join(command_words)
    if args.command in ("fuse", "run"):
        methods = expand_methods(args.methods.split(","), args.strength, args.mu, args.gain, args.lam)
        start = time.perf_counter()
        fuse(args.data, args.task, args.split, args.out, methods, args.batch, args.models_dir, args.device,
             args.threads, shipped_architecture(args.residual_mode, args.decoder, args.arch), args.every)
        print(f"fused with {len(methods)} methods in {time.perf_counter() - start:.1f} s -> {args.out}")
    if args.command in ("evaluate", "run"):
        fused = args.fused if args.command == "evaluate" else args.out
        evaluate(args.data, args.task, args.split, fused, args.workers, args.montage_cases, command, args.every,
                 args.montage_methods.split(",") if args.montage_methods else None)


if __name__ == "__main__":
    main()
