"""Learning curves of a bundle training run, read from its TensorBoard event files, as one PNG.

    .venv/bin/python training/plot_learning_curves.py monai_bundle/runs/pixel/tensorboard \
        --out monai_bundle/docs/learning_curves.png
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def read_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value}; later event files (a resumed run) override earlier ones at the same step."""
    scalars: dict[str, dict[int, float]] = defaultdict(dict)
    for event_file in sorted(log_dir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            for event in acc.Scalars(tag):
                scalars[tag][event.step] = event.value
    if not scalars:
        raise SystemExit(f"no TensorBoard scalars under {log_dir}")
    return scalars


def plot(scalars: dict[str, dict[int, float]], out: Path) -> None:
    terms = sorted(t for t in scalars if t.startswith("loss_"))
    panels = terms + [t for t in ("val_loss",) if t in scalars]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3), squeeze=False)
    for ax, tag in zip(axes[0], panels):
        steps = sorted(scalars[tag])
        ax.plot(steps, [scalars[tag][s] for s in steps], marker="o", ms=3)
        ax.set_title(tag)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({', '.join(panels)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plot(read_scalars(args.log_dir), args.out)


if __name__ == "__main__":
    main()
