"""End-to-end speed and memory of volume fusion (issue 4's target: a 256x256x160 pair, the other volume at a
different spacing and size, read -> resample -> normalize -> infer -> write in <= 10 s, peak memory <= 2 GB).

Writes a synthetic head-like pair to a temporary folder (not timed, in a child process): A (CT, HU) 256 x 256 x 160 at
0.9 x 0.9 x 1.2 mm - the reference - and B (MRI) 192 x 200 x 120 at 1.25 x 1.2 x 1.6 mm, rotated 4 degrees,
another origin. Then fuses it with exactly the command line's code (the runner of configs/inference.json:
the same network architecture, the trained weights of models/ when present, else random weights of that
architecture - same cost) and prints per-stage wall times, the run's CPU time (all threads of this process: a
load-independent measure of the work), peak resident memory and the machine's load.

    .venv/bin/python training/bench_volume.py [--repeats 2] [--batch_size 8] [--device auto] [--threads N]
                                              [--channels 8,16,32,64]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / "monai_bundle"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def synthetic_pair(folder: Path):
    """(A path, B path): a CT-like and an MRI-like head phantom on different grids (NIfTI)."""
    import numpy as np

    from scripts.volume import Volume, save_volume

    def head(shape, spacing, origin, angle, ct: bool):
        t = np.radians(angle)
        rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
        affine = np.eye(4)
        affine[:3, :3] = rotation @ np.diag(spacing)
        affine[:3, 3] = origin
        axes = [np.arange(n, dtype=np.float32) for n in shape]
        i, j, k = np.meshgrid(*axes, indexing="ij", sparse=True)
        x = affine[0, 0] * i + affine[0, 1] * j + affine[0, 3]
        y = affine[1, 0] * i + affine[1, 1] * j + affine[1, 3]
        z = affine[2, 2] * k + affine[2, 3]
        r = np.sqrt((x / 75) ** 2 + (y / 95) ** 2 + (z / 85) ** 2)
        rng = np.random.default_rng(0 if ct else 1)
        brain = (r < 0.92).astype(np.float32)
        skull = ((r >= 0.92) & (r < 1.0)).astype(np.float32)
        texture = np.sin(x / 7.0) * np.cos(y / 9.0) * np.sin(z / 5.0)
        if ct:
            data = -1000 + brain * (1030 + 8 * texture) + skull * 2000
        else:
            data = brain * (400 + 120 * texture) + skull * 150
        data = data + rng.normal(0, 5, size=shape).astype(np.float32)
        return Volume(data.astype(np.int16 if ct else np.float32), affine)

    a = head((256, 256, 160), (0.9, 0.9, 1.2), (-115.0, -115.0, -95.0), 0.0, ct=True)
    b = head((192, 200, 120), (1.25, 1.2, 1.6), (-118.0, -122.0, -96.0), 4.0, ct=False)
    return save_volume(a, folder / "ct_bench.nii.gz"), save_volume(b, folder / "mri_bench.nii.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="end-to-end runs (the first one is cold)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--channels", default=None,
                        help="encoder widths, e.g. 8,16,32,64, instead of the config's (random weights)")
    parser.add_argument("--make_data", default=None, help=argparse.SUPPRESS)  # child process: write the pair
    args = parser.parse_args()
    if args.make_data:
        sys.path.insert(0, str(BUNDLE))
        synthetic_pair(Path(args.make_data))
        return

    print(load_line(), "- at start")
    t0 = time.perf_counter()
    sys.path.insert(0, str(BUNDLE))
    import torch
    from monai.bundle import ConfigParser

    from scripts.volume import fuse_volumes_detailed, load_volume, save_volume
    from scripts.weights import weights_path

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"imports (torch, monai, scripts.volume)  {time.perf_counter() - t0:6.2f} s   "
          f"RSS {peak_rss_mb():.0f} MB; torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # the data are made in a child process, so that their memory does not count in this one's peak
        subprocess.run([sys.executable, __file__, "--make_data", tmp], check=True)
        a_path, b_path = folder / "ct_bench.nii.gz", folder / "mri_bench.nii.gz"
        config = ConfigParser()
        config.read_config(str(BUNDLE / "configs" / "inference.json"))
        config.update({"bundle_root": str(BUNDLE), "image_a": str(a_path), "image_b": str(b_path),
                       "output_dir": str(folder / "out"), "device": args.device, "batch_size": args.batch_size})
        if args.channels:
            config.update({"channels": [int(c) for c in args.channels.split(",")]})
        runner = config.get_parsed_content("runner")
        weights = weights_path(runner.options.task, runner.options.models_dir)
        t = time.perf_counter()
        if weights.exists() and not args.channels:
            (_, _, out_path), = runner.prepare()
            source = f"trained weights {weights.name}"
        else:
            from scripts.network import WDualMine

            runner.network = WDualMine(strength=runner.options.strength, **runner.options.network_kwargs).eval()
            (_, _, out_path), = runner.prepare()
            source = "random weights" + ("" if args.channels else f" (no {weights.name} yet)")
        print(f"network {runner.options.network_kwargs} from {source}: {time.perf_counter() - t:.2f} s")
        print(f"A {a_path.name} 256x256x160 @ 0.9x0.9x1.2 mm (reference), "
              f"B {b_path.name} 192x200x120 @ 1.25x1.2x1.6 mm, rotated 4 deg")

        for run in range(1, args.repeats + 1):
            stages = {}
            cpu_start, start = time.process_time(), time.perf_counter()
            a, b = load_volume(a_path), load_volume(b_path)
            stages["read"] = time.perf_counter() - start
            result = fuse_volumes_detailed(a, b, runner.options, network=runner.network)
            stages.update({k: v for k, v in result.timings.items() if k != "load network"})
            t = time.perf_counter()
            save_volume(result.fused, out_path)
            stages["write"] = time.perf_counter() - t
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            slices = result.fused.spatial_shape[result.slice_axis]
            times = ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
            print(f"run {run} ({'cold' if run == 1 else 'warm'}): {times} | total {total:.2f} s, CPU {cpu:.1f} s "
                  f"({slices} slices, {1000 * stages['infer'] / slices:.0f} ms/slice) | peak RSS {peak_rss_mb():.0f} MB"
                  f" | {load_line()}")
    print(load_line(), "- at end")


if __name__ == "__main__":
    main()
