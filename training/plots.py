"""Benchmark figures (matplotlib, Agg): per-metric bar charts, the CC-vs-Qabf trade-off, a montage of cases."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from training.methods import Method  # noqa: E402
from training.report import TABLE_METRICS  # noqa: E402


def metric_bars(summary: dict, path: Path, title: str) -> None:
    """One bar chart per metric (mean with a std error bar per method), in one grid figure."""
    methods = list(summary)
    cols = 4
    rows = math.ceil(len(TABLE_METRICS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = plt.cm.tab20(np.linspace(0, 1, max(len(methods), 2)))
    for ax, metric in zip(axes.flat, TABLE_METRICS):
        means = [summary[m][metric]["mean"] for m in methods]
        stds = [summary[m][metric]["std"] for m in methods]
        ax.bar(range(len(methods)), means, yerr=stds, color=colors[: len(methods)], capsize=2)
        finite = [v for v in means if math.isfinite(v)]
        if finite:  # zoom on the differences: metrics differ in the 2nd-3rd decimal
            lo, hi = min(finite), max(finite)
            pad = 0.15 * (hi - lo) + 1e-3 * max(abs(hi), 1e-9)
            ax.set_ylim(lo - pad - max(stds, default=0), hi + pad + max(stds, default=0))
        ax.set_title(metric)
        ax.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=7)
    for ax in list(axes.flat)[len(TABLE_METRICS):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sweeps(methods: Sequence[str]) -> dict[str, list[tuple[float, str]]]:
    """family -> [(param, label)] for families with a parameter sweep; the blend sweep is anchored at
    mean (mu = 0) and max (mu = 1), the select and gain sweeps at the mean, when those were run."""
    sweeps: dict[str, list[tuple[float, str]]] = {}
    for label in methods:
        m = Method.from_label(label)
        if m.param is not None:
            sweeps.setdefault(m.family, []).append((m.param, label))
    if "blend" in sweeps:
        sweeps["blend"] += [(mu, end) for mu, end in ((0.0, "mean"), (1.0, "max")) if end in methods]
    for family, origin in (("select", 0.0), ("gain", 1.0)):  # lam = 0 and g = 1 are the mean
        if family in sweeps and "mean" in methods:
            sweeps[family].append((origin, "mean"))
    return {family: sorted(points) for family, points in sweeps.items() if len(points) > 1}


def tradeoff(summary: dict, path: Path, title: str, x: str = "CC", y: str = "Qabf") -> None:
    """One point per method (mean ``x`` vs mean ``y``); lines join each parameter sweep."""
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for family, points in _sweeps(list(summary)).items():
        xs = [summary[label][x]["mean"] for _, label in points]
        ys = [summary[label][y]["mean"] for _, label in points]
        ax.plot(xs, ys, "-", alpha=0.6, label=f"{family} sweep")
    for label, stats in summary.items():
        ax.plot(stats[x]["mean"], stats[y]["mean"], "o", color="black", markersize=4)
        ax.annotate(label, (stats[x]["mean"], stats[y]["mean"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"{x} (mean)")
    ax.set_ylabel(f"{y} (mean)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def montage(cases: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], path: Path) -> None:
    """A grid of images: one row per case (name, [(column title, uint8 gray or RGB image), ...])."""
    n_rows, n_cols = len(cases), max(len(images) for _, images in cases)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 2.0 * n_rows), squeeze=False)
    for row, (name, images) in zip(axes, cases):
        for ax, (title, image) in zip(row, images):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(title, fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
