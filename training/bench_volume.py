"""End-to-end speed and memory of volume fusion (issue 4's target: a 256x256x160 pair, the other volume at a
different spacing and size, read -> resample -> normalize -> infer -> write in <= 10 s, peak memory <= 2 GB;
issue 15's: a 512x512x300 pair in <= 2 GB peak RSS, no slower per slice).

Writes a synthetic head-like pair to a temporary folder (not timed, in a child process): A (CT, HU, int16) of
``--size`` voxels (default 256 x 256 x 160 at 0.9 x 0.9 x 1.2 mm: a 230 x 230 x 192 mm field of view) - the
reference - and B (MRI) with 3/4 of A's voxels along i and k and 200/256 along j over a 240 x 240 x 192 mm field
of view (192 x 200 x 120 at 1.25 x 1.2 x 1.6 mm for the default), rotated 4 degrees, another origin. Then fuses
it with exactly the command line's code (the runner of configs/inference.json: the input check, the same network
architecture, the trained weights of models/ when present, else random weights of that architecture - same
cost; reference A, as the runner's ``reference: auto`` picks) and prints per-stage wall times, the run's CPU time
(all threads of this process: a load-independent measure of the work), time per slice, peak resident memory
(the process's maximum RSS: imports, network and data together) and the machine's load.

    .venv/bin/python training/bench_volume.py [--size 512,512,300] [--repeats 2] [--batch_size 2]
                                              [--device auto] [--threads N] [--channels 8,16,32,64]
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


A_FOV, B_FOV = (230.4, 230.4, 192.0), (240.0, 240.0, 192.0)  # mm


def grids(size) -> tuple[tuple, tuple, tuple, tuple]:
    """(A shape, A spacing, B shape, B spacing) for an A of ``size`` voxels (see the module docstring)."""
    a_shape = tuple(int(n) for n in size)
    b_shape = (round(a_shape[0] * 0.75), round(a_shape[1] * 200 / 256), round(a_shape[2] * 0.75))
    return (a_shape, tuple(f / n for f, n in zip(A_FOV, a_shape)), b_shape,
            tuple(f / n for f, n in zip(B_FOV, b_shape)))


def synthetic_pair(folder: Path, size=(256, 256, 160)):
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
        x = (affine[0, 0] * i + affine[0, 1] * j + affine[0, 3]).astype(np.float32)
        y = (affine[1, 0] * i + affine[1, 1] * j + affine[1, 3]).astype(np.float32)
        z = (affine[2, 2] * k + affine[2, 3]).astype(np.float32)
        rng = np.random.default_rng(0 if ct else 1)
        data = np.empty(shape, dtype=np.int16 if ct else np.float32)
        for slab in range(shape[2]):  # slice by slice: the pair of a 512 x 512 x 300 CT fits in little memory
            zk = z[..., slab: slab + 1]
            r = np.sqrt((x / 75) ** 2 + (y / 95) ** 2 + (zk / 85) ** 2)
            brain, skull = (r < 0.92), (r >= 0.92) & (r < 1.0)
            texture = np.sin(x / 7.0) * np.cos(y / 9.0) * np.sin(zk / 5.0)
            if ct:
                value = -1000 + brain * (1030 + 8 * texture) + skull * 2000
            else:
                value = brain * (400 + 120 * texture) + skull * 150
            data[..., slab: slab + 1] = value + rng.normal(0, 5, size=value.shape).astype(np.float32)
        return Volume(data, affine)

    a_shape, a_spacing, b_shape, b_spacing = grids(size)
    a = head(a_shape, a_spacing, (-115.0, -115.0, -95.0), 0.0, ct=True)
    b = head(b_shape, b_spacing, (-118.0, -122.0, -96.0), 4.0, ct=False)
    return save_volume(a, folder / "ct_bench.nii.gz"), save_volume(b, folder / "mri_bench.nii.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256,256,160", help="A's voxels i,j,k, e.g. 512,512,300")
    parser.add_argument("--repeats", type=int, default=2, help="end-to-end runs (the first one is cold)")
    parser.add_argument("--batch_size", type=int, default=None, help="slices per network call (default: the config's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--channels", default=None,
                        help="encoder widths, e.g. 8,16,32,64, instead of the config's (random weights)")
    parser.add_argument("--make_data", default=None, help=argparse.SUPPRESS)  # child process: write the pair
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split(","))
    if args.make_data:
        sys.path.insert(0, str(BUNDLE))
        synthetic_pair(Path(args.make_data), size)
        return

    print(load_line(), "- at start")
    t0 = time.perf_counter()
    sys.path.insert(0, str(BUNDLE))
    import torch
    from monai.bundle import ConfigParser

    from scripts.volume import fuse_volumes_detailed, load_volume, save_volume
    from scripts.volume.integrity import verify_volume_file
    from scripts.weights import load_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"imports (torch, monai, scripts.volume)  {time.perf_counter() - t0:6.2f} s   "
          f"RSS {peak_rss_mb():.0f} MB; torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # the data are made in a child process, so that their memory does not count in this one's peak
        subprocess.run([sys.executable, __file__, "--make_data", tmp, "--size", args.size], check=True)
        a_path, b_path = folder / "ct_bench.nii.gz", folder / "mri_bench.nii.gz"
        config = ConfigParser()
        config.read_config(str(BUNDLE / "configs" / "inference.json"))
        config.update({"bundle_root": str(BUNDLE), "image_a": str(a_path), "image_b": str(b_path),
                       "output_dir": str(folder / "out"), "device": args.device, "overwrite": True})
        if args.batch_size:
            config.update({"batch_size": args.batch_size})
        if args.channels:
            config.update({"channels": [int(c) for c in args.channels.split(",")]})
        runner = config.get_parsed_content("runner")
        weights = Path(config.get_parsed_content("ckpt_path"))
        t = time.perf_counter()
        if weights.exists() and not args.channels:
            load_weights(runner.network, weights)
            (_, _, out_path), = runner.prepare()
            source = f"trained weights {weights.name}"
        else:  # the config's network_def as built: random weights
            (_, _, out_path), = runner.prepare()
            source = "random weights" + ("" if args.channels else f" (no {weights.name} yet)")
        print(f"network channels {list(runner.network.channels)} from {source}: {time.perf_counter() - t:.2f} s")
        a_shape, a_spacing, b_shape, b_spacing = grids(size)
        fmt = lambda values, spec: "x".join(format(v, spec) for v in values)  # noqa: E731
        print(f"A {a_path.name} {fmt(a_shape, 'd')} @ {fmt(a_spacing, '.3g')} mm (reference), "
              f"B {b_path.name} {fmt(b_shape, 'd')} @ {fmt(b_spacing, '.3g')} mm, rotated 4 deg")

        for run in range(1, args.repeats + 1):
            stages = {}
            cpu_start, start = time.process_time(), time.perf_counter()
            verify_volume_file(a_path), verify_volume_file(b_path)
            stages["verify"] = time.perf_counter() - start
            a, b = load_volume(a_path, verify=False), load_volume(b_path, verify=False)
            stages["read"] = time.perf_counter() - start - stages["verify"]
            result = fuse_volumes_detailed(a, b, runner.options, network=runner.network,
                                           keep_inputs=runner.keep_inputs)
            del a, b
            stages.update({k: v for k, v in result.timings.items() if k != "load network"})
            t = time.perf_counter()
            save_volume(result.fused, out_path, overwrite=True)
            stages["write"] = time.perf_counter() - t
            total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            slices = result.fused.spatial_shape[result.slice_axis]
            times = ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
            print(f"run {run} ({'cold' if run == 1 else 'warm'}): {times} | total {total:.2f} s, CPU {cpu:.1f} s "
                  f"({slices} slices, {1000 * total / slices:.0f} ms/slice end to end, "
                  f"{1000 * stages['infer'] / slices:.0f} ms/slice inference) | peak RSS {peak_rss_mb():.0f} MB"
                  f" | {load_line()}")
            del result
        runner.release()
    print(load_line(), "- at end")


if __name__ == "__main__":
    main()
