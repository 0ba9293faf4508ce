"""Benchmark results: the per-image CSV and the Markdown summary (mean +- std, best marked, medians)."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from scripts.metrics import METRIC_NAMES
from training.compare_anchors import METRICS as TARGET_METRICS

#: metric -> decimals printed in the tables
DECIMALS = {"EN": 3, "MI": 3, "CC": 4, "PSNR": 2, "PSNR_true": 2, "FMI_pixel": 3, "FMI_dct": 4, "Qabf": 3,
            "SCD": 3, "SD": 2, "SF": 4, "SSIM": 3, "VIF": 3}
TABLE_METRICS = tuple(m for m in METRIC_NAMES if m != "PSNR_true")  # PSNR_true = PSNR - 48.13: kept in the CSV


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """One row per (method, image): ``method, name`` then every metric of :data:`METRIC_NAMES`."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["method", "name", *METRIC_NAMES])
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    """Rows written by :func:`write_csv`, metrics as floats."""
    with open(path, newline="") as fh:
        return [{k: (v if k in ("method", "name") else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]


def summarize(rows: Iterable[dict], methods: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """method -> metric -> {mean, std (population), median, n} over the images (non-finite values skipped)."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    rows = list(rows)
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        summary[method] = {}
        for metric in METRIC_NAMES:
            values = np.array([r[metric] for r in mine], dtype=np.float64)
            values = values[np.isfinite(values)]
            stats = (values.mean(), values.std(), np.median(values)) if values.size else (math.nan,) * 3
            summary[method][metric] = dict(zip(("mean", "std", "median"), map(float, stats)), n=len(mine))
    return summary


def _best(summary: dict, metric: str, stat: str) -> float:
    """Largest finite value of ``stat`` for ``metric`` (every metric here is higher-is-better)."""
    values = [s[metric][stat] for s in summary.values() if math.isfinite(s[metric][stat])]
    return max(values) if values else math.nan


def _table(summary: dict, stat: str, with_std: bool) -> list[str]:
    """A Markdown table, one row per method; the best value of each column in bold."""
    lines = ["| method | n | " + " | ".join(TABLE_METRICS) + " |", "|---|---|" + "---|" * len(TABLE_METRICS)]
    for method, stats in summary.items():
        cells = []
        for metric in TABLE_METRICS:
            value, d = stats[metric][stat], DECIMALS[metric]
            text = f"{value:.{d}f}" + (f" ± {stats[metric]['std']:.{d}f}" if with_std else "")
            best = math.isfinite(value) and f"{value:.{d}f}" == f"{_best(summary, metric, stat):.{d}f}"
            cells.append(f"**{text}**" if best else text)
        n = next(iter(stats.values()))["n"]
        lines.append(f"| {method} | {n} | " + " | ".join(cells) + " |")
    return lines


#: The six metrics the targets name (anchors.md), one definition shared with training/compare_anchors.py.
DOMINANCE_METRICS = TARGET_METRICS


def dominated_by(summary: dict, method: str, rivals: Iterable[str], metrics: Sequence[str] = DOMINANCE_METRICS,
                 stat: str = "mean") -> list[str]:
    """The rivals at least as good as ``method`` on every one of ``metrics`` (empty: nothing dominates it)."""
    ours = summary[method]
    return [r for r in rivals if r != method and all(summary[r][m][stat] >= ours[m][stat] for m in metrics)]


def closest_rival(summary: dict, method: str, rivals: Iterable[str], metrics: Sequence[str] = DOMINANCE_METRICS,
                  stat: str = "mean") -> tuple[str, dict[str, float]]:
    """The rival that comes closest to dominating ``method``, and ``method``'s lead over it on each metric where it
    leads: fewest such metrics first, then the smallest sum of relative leads."""

    def leads(rival: str) -> dict[str, float]:
        return {m: summary[method][m][stat] - summary[rival][m][stat] for m in metrics
                if summary[method][m][stat] > summary[rival][m][stat]}

    def closeness(rival: str) -> tuple[int, float]:
        lead = leads(rival)
        return len(lead), sum(v / max(abs(summary[method][m][stat]), 1e-12) for m, v in lead.items())

    rival = min((r for r in rivals if r != method), key=closeness)
    return rival, leads(rival)


def dominance_lines(summary: dict, network_prefix: str = "wdualmine") -> list[str]:
    """The report's "does the network earn its keep" check: per network row, the baseline rows (every other
    method of the run, each parameter of every sweep) at least as good on all six metrics of the targets; for a
    row that none dominates, the closest call (the baseline that is at least as good on the most metrics) and the
    network's lead over it, so that a lead of a hundredth of a dB is not mistaken for a margin."""
    baselines = [m for m in summary if not m.startswith(network_prefix)]
    lines = []
    for method in (m for m in summary if m.startswith(network_prefix)):
        beaten_by = dominated_by(summary, method, baselines)
        if beaten_by:
            lines.append(f"| {method} | dominated by {', '.join(beaten_by)} | |")
            continue
        rival, lead = closest_rival(summary, method, baselines)
        margins = ", ".join(f"{m} {v:+.3g}" for m, v in lead.items())
        lines.append(f"| {method} | not dominated | {rival}: the network leads on {len(lead)} of "
                     f"{len(DOMINANCE_METRICS)} ({margins}) |")
    if not lines:
        return []
    return ["## Does the network earn its keep?", "",
            f"A baseline point *dominates* a network row when its mean is at least as high on all of "
            f"{', '.join(DOMINANCE_METRICS)} (baselines compared: {', '.join(baselines)}).", "",
            "| network | check | closest baseline |", "|---|---|---|"] + lines


def markdown_report(summary: dict, title: str, meta: dict[str, str], notes: Sequence[str] = ()) -> str:
    """The report: settings, mean ± std table, median table, notes."""
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "Metric conventions: the bundle's `scripts/metrics.py`, as in the HMIF papers; every "
              "column is higher-is-better, the best value is in bold (EN and SD also grow with noise). PSNR is the "
              "published convention (true PSNR + 48.13 dB; RGB for PET/SPECT); SSIM and VIF are sums over the "
              "two sources.", "", "## Mean ± std over images", ""]
    lines += _table(summary, "mean", with_std=True)
    lines += ["", "## Median over images", ""]
    lines += _table(summary, "median", with_std=False)
    dominance = dominance_lines(summary)
    if dominance:
        lines += [""] + dominance
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
