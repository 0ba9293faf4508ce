"""Which fixed gain on the mean does the training loss prefer? (model card, *Choices* 3)

For every validation pair, evaluates ``w_avg * L_avg(F) + w_grad * L_grad(F)`` for ``F = clip(g * mean, 0, 1)``
on a grid of gains g (L_cc is blind to a gain; L_mi and L_rec need a network) with L_avg as the paper's l1 and as
the MSE, and prints the median and quartiles of the loss-optimal g per task.

    .venv/bin/python training/loss_optimal_gain.py [--data ../shared/data/hmif-train]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monai_bundle"))
from scripts.data import TASKS, datalist, network_input, read_png  # noqa: E402
from scripts.losses import AverageLoss, GradientLoss  # noqa: E402


def optimal_gains(pairs, norm: str, gains: torch.Tensor, w_avg: float = 5.0, w_grad: float = 2.0) -> np.ndarray:
    """The loss-optimal gain of every pair."""
    avg, grad = AverageLoss(norm), GradientLoss()
    best = []
    for pair in pairs:
        x = torch.from_numpy(network_input(read_png(pair["a"]), read_png(pair["b"])))[None]
        mean = x.mean(dim=1, keepdim=True)
        losses = [w_avg * avg(f, x) + w_grad * grad(f, x) for f in (torch.clamp(g * mean, 0, 1) for g in gains)]
        best.append(float(gains[int(torch.stack(losses).argmin())]))
    return np.asarray(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hmif-train"))
    args = parser.parse_args()
    gains = torch.linspace(0.9, 1.8, 46)
    print("| task | L_avg | median loss-optimal gain | quartiles |\n|---|---|---|---|")
    for task in TASKS:
        pairs = datalist(args.data, task, "val")
        for norm in AverageLoss.NORMS:
            g = optimal_gains(pairs, norm, gains)
            print(f"| {task} | {norm} | {np.median(g):.3f} | {np.percentile(g, 25):.3f}–{np.percentile(g, 75):.3f} |")


if __name__ == "__main__":
    main()
