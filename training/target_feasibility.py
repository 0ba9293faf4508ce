"""Which per-pixel output can meet issue 13's default-strength targets? Output families on the shipped weights.

The targets at the default strength: at least AdaFuse's and ASFE-Fusion's MI, PSNR, FMI_pixel, FMI_dct, CC
within 0.001 and Qabf + 0.03 (relative to the mean rule, as ``training/compare_anchors.py`` compares), while the
output stays per-pixel (the best single gain on the mean explains at most half of ``F - mean``). This script
scores, on one split, every way we tried of turning the shipped network's per-pixel weight ``w`` into an output,
beside the pure gain the per-pixel test rules out. With ``D = (2w - 1)(A - B)/2``, ``M`` the mean:

* ``net@λ``: ``M + λD``, the shipped output;
* ``gain@g``: ``g·M`` (a baseline of the benchmark; not per-pixel);
* ``gain+net@g/λ``: ``g·M + λD``;
* ``cc-shift(κ)@λ``: ``M + λ(D + κ·(σ_B - σ_A)/(σ_A + σ_B)·(A - B)/2)``, κ = 1, 1.5, 2: the weight shifted
  per image toward the blend of the sources that maximises CC (each source weighted by 1/σ);
* ``detail@λ``: ``M + λ(D - G_4 * D)``: only the detail (high-pass, Gaussian σ = 4 px) of the selection;
* ``edge@λ``: ``M + λ·m·D``, ``m`` the sources' larger Sobel magnitude (Gaussian σ = 2 px) over its 90th
  percentile, clipped to 1: the selection only near edges.

Every output is clipped to [0, 1]. Prints one table per task: the metric deltas to the mean, the per-pixel
fraction (mean over images of ``min_g ‖F - clip(g·M)‖ / ‖F - M‖``) and the targets each row misses.

    .venv/bin/python training/target_feasibility.py [--split val] [--every 1] [--out training/results/target_feasibility.md]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "monai_bundle"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter, sobel  # noqa: E402

from scripts.color import to_uint8  # noqa: E402
from scripts.data import TASKS, network_input, read_png  # noqa: E402
from scripts.metrics import fusion_metrics  # noqa: E402
from training.benchmark import fused_image, select_pairs  # noqa: E402
from training.compare_anchors import METRICS, failures, read_anchor_table  # noqa: E402

FAMILIES = (
    [("net", None, lam) for lam in (0.05, 0.1, 0.15, 0.2)]
    + [("gain", g, 0.0) for g in (1.05, 1.1, 1.2)]
    + [("gain+net", g, lam) for g, lam in ((1.06, 0.05), (1.1, 0.05), (1.1, 0.1))]
    + [("cc-shift", k, lam) for k in (1.0, 1.5, 2.0) for lam in (0.1, 0.15, 0.2)]
    + [("detail", 4.0, lam) for lam in (0.1, 0.2, 0.3)]
    + [("edge", 2.0, lam) for lam in (0.1, 0.2, 0.3)]
)
_NETWORKS: dict = {}


def label(family: str, param: float | None, lam: float) -> str:
    if family == "gain":
        return f"gain@{param:g}"
    if family == "gain+net":
        return f"gain+net@{param:g}/{lam:g}"
    if family == "cc-shift":
        return f"cc-shift(κ={param:g})@{lam:g}"
    return f"{family}@{lam:g}"


def output(family: str, param: float | None, lam: float, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The fused Y channel of one family (see the module docstring), unclipped."""
    mean, d = (a + b) / 2, (2 * w - 1) * (a - b) / 2
    if family in ("gain", "gain+net"):
        return param * mean + lam * d
    if family == "cc-shift":
        sa, sb = a.std(), b.std()
        return mean + lam * (d + param * (sb - sa) / (sa + sb + 1e-12) * (a - b) / 2)
    if family == "detail":
        return mean + lam * (d - gaussian_filter(d, param))
    if family == "edge":
        g = np.maximum(np.hypot(sobel(a, 0), sobel(a, 1)), np.hypot(sobel(b, 0), sobel(b, 1)))
        g = gaussian_filter(g, param)
        return mean + lam * np.clip(g / (np.percentile(g, 90) + 1e-12), 0, 1) * d
    return mean + lam * d


GAINS = np.linspace(0.5, 2.0, 301)


def unexplained_by_a_gain(fused: np.ndarray, mean: np.ndarray) -> float:
    """``min_g ||F - clip(g * mean, 0, 1)|| / ||F - mean||`` over a fine grid of gains g (1 = the mean): the part
    of the change from the mean that no single gain explains (issue 13's per-pixel test: at least 0.5)."""
    deviation = np.linalg.norm(fused - mean)
    if deviation == 0:
        return 0.0
    return min(np.linalg.norm(fused - np.clip(g * mean, 0, 1)) for g in GAINS) / deviation


def _score(job: tuple[str, dict]) -> list[dict]:
    import torch

    from scripts.weights import load_network, weights_file

    task, pair = job
    torch.set_num_threads(1)
    if task not in _NETWORKS:
        _NETWORKS[task] = load_network(task, weights_file(None), device="cpu")
    a_image, b_image = read_png(pair["a"]), read_png(pair["b"])
    x = network_input(a_image, b_image).astype(np.float64)
    with torch.inference_mode():
        w = _NETWORKS[task].selection_weight(torch.from_numpy(x[None].astype(np.float32)))[0, 0].double().numpy()
    a8, b8 = to_uint8(a_image), to_uint8(b_image)  # as the benchmark reads them (_read_uint8), without a re-read
    mean = (x[0] + x[1]) / 2
    rows = [{"method": "mean", "per_pixel": 0.0, **fusion_metrics(a8, b8, fused_image(mean, a_image))}]
    for family, param, lam in FAMILIES:
        fused = np.clip(output(family, param, lam, x[0], x[1], w), 0, 1)
        metrics = fusion_metrics(a8, b8, fused_image(fused, a_image))
        rows.append({"method": label(family, param, lam), "per_pixel": unexplained_by_a_gain(fused, mean), **metrics})
    return rows


def table(task: str, rows: list[dict], anchors) -> list[str]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row["method"]].append(row)
    means = {k: {m: float(np.mean([r[m] for r in v])) for m in (*METRICS, "per_pixel")} for k, v in grouped.items()}
    base = means["mean"]
    lines = [
        f"### {task} ({len(grouped['mean'])} pairs)",
        "",
        "| output | " + " | ".join(f"Δ{m}" for m in METRICS) + " | per-pixel | misses |",
        "|---|" + "---|" * (len(METRICS) + 2),
    ]
    for method, values in means.items():
        if method == "mean":
            continue
        missed = failures(task, anchors, means, method)
        if values["per_pixel"] < 0.5:
            missed.append("per-pixel test")
        deltas = " | ".join(f"{values[m] - base[m]:+.4f}" for m in METRICS)
        lines.append(f"| {method} | {deltas} | {values['per_pixel']:.2f} | {', '.join(missed) or '**none**'} |")
    return lines + [""]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "hmif-train")
    parser.add_argument("--anchors", type=Path, default=REPO.parent / "shared" / "reference" / "anchors.md")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    anchors = read_anchor_table(args.anchors)
    lines = [f"Output families on the shipped weights, {args.split} split (every {args.every}); deltas to the mean.", ""]
    with Pool(2) as pool:
        for task in args.tasks:
            jobs = [(task, p) for p in select_pairs(args.data, task, args.split, args.every)]
            rows = [r for part in pool.imap(_score, jobs) for r in part]
            block = table(task, rows, anchors)
            lines += block
            print("\n".join(block), flush=True)
    if args.out:
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
