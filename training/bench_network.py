"""Speed of one W-DUALMINE forward on this machine (issue 2's target: <= 0.10 s median, batch 1, 256x256, fp32).

Prints the median forward time, FLOPs per pair (torch's FlopCounterMode; a multiply-add counts 2), achieved
GFLOP/s, parameter count and peak resident memory of the process. Not a test: run it on an idle machine.

    .venv/bin/python training/bench_network.py [--size 256] [--repeats 30] [--threads N]
                                               [--memory-format channels_last|contiguous]

The default memory format is the one volume inference uses (``scripts.volume.slicing``): channels-last.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monai_bundle"))
from scripts.network import WDualMine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-format", default="channels_last", choices=("channels_last", "contiguous"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    memory_format = getattr(torch, f"{args.memory_format}_format" if args.memory_format == "contiguous"
                            else args.memory_format)
    net = WDualMine().eval().to(memory_format=memory_format)
    x = torch.rand(args.batch, 2, args.size, args.size).contiguous(memory_format=memory_format)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            net(x)
        flops = counter.get_total_flops() / args.batch
        for _ in range(3):
            net(x)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    median = statistics.median(times) / args.batch
    params = sum(p.numel() for p in net.parameters())
    inference_params = params - sum(p.numel() for m in (net.reconstruct_a, net.reconstruct_b, net.projection)
                                    for p in m.parameters())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"W-DUALMINE channels={net.channels} residual_mode={net.output.mode} "
          f"decoder={type(net.decoder).__name__} threads={torch.get_num_threads()} "
          f"memory format {args.memory_format}")
    print(f"input                 {args.batch} x 2 x {args.size} x {args.size} fp32")
    print(f"median forward / pair {median * 1000:.1f} ms  (min {min(times) * 1000 / args.batch:.1f}, "
          f"max {max(times) * 1000 / args.batch:.1f}, n={args.repeats})")
    print(f"FLOPs / pair          {flops / 1e9:.2f} GFLOP")
    print(f"achieved              {flops / median / 1e9:.1f} GFLOP/s")
    print(f"parameters            {params:,} ({inference_params:,} used at inference)")
    print(f"peak RSS (process)    {peak_mb:.0f} MB")
    print(f"vs AdaFuse 1.99 s     {1.99 / median:.0f}x faster")


if __name__ == "__main__":
    main()
