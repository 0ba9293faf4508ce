"""How decisive a per-pixel (``source_weighted``) network's weight map is, on the validation pairs of a task.

Prints, over the pixels where the sources differ (|A - B| > 0.05), the mean of |2w - 1| (0: the mean everywhere,
1: always one source) and the share of pixels with |2w - 1| > 0.9 (a clear choice of one source).

    .venv/bin/python training/decisiveness.py --task CT-MRI [--models-dir DIR] [--arch '{"gate": false}']
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "monai_bundle"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from scripts.data import TASKS, datalist, network_input, read_png  # noqa: E402
from scripts.weights import load_network, weights_file  # noqa: E402
from training.methods import shipped_architecture  # noqa: E402


def decisiveness(network, pairs: list[dict], threshold: float = 0.05) -> tuple[float, float]:
    """(mean |2w - 1|, share of |2w - 1| > 0.9) over the pixels where |A - B| > ``threshold``."""
    values = []
    for pair in pairs:
        x = torch.from_numpy(network_input(read_png(pair["a"]), read_png(pair["b"])))[None]
        with torch.inference_mode():
            w = network.selection_weight(x)[0, 0].numpy()
        differ = np.abs(x[0, 0].numpy() - x[0, 1].numpy()) > threshold
        values.append(np.abs(2 * w - 1)[differ])
    choice = np.concatenate(values)
    return float(choice.mean()), float((choice > 0.9).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "hmif-train")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--arch", type=json.loads, default=None, help="JSON WDualMine keywords of the weights")
    args = parser.parse_args()
    torch.set_num_threads(1)
    network = load_network(args.task, weights_file(args.models_dir), **shipped_architecture(overrides=args.arch))
    mean_choice, clear = decisiveness(network, datalist(args.data, args.task, "val"))
    print(f"{args.task}: mean |2w-1| {mean_choice:.3f}, clear choice (|2w-1| > 0.9) on {100 * clear:.1f} % "
          f"of the pixels where the sources differ")


if __name__ == "__main__":
    main()
