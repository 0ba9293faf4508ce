"""configs/multi_gpu_train.json really runs: ``torchrun --nproc_per_node=2`` with the gloo backend on CPU.

Checks that the data are split between the ranks (DistributedSampler), that only rank 0 logs and writes
TensorBoard files and the final weights, and - from both ranks' state saved by an extra test-only ``finalize`` -
that DistributedDataParallel synchronised the gradients of every parameter, auxiliary heads included (the
reconstruction heads and the InfoNCE projection only run in ``training_outputs``): both ranks end with identical
weights although each trained on different pairs, and Adam holds a non-zero first moment for every parameter.
"""
from __future__ import annotations

import json
import re
import sys

import pytest
import torch
import torch.distributed as dist

from test_bundle_training import SMALL_CHANNELS, make_tiny_hmif, run_bundle, training_args

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is not available")

# test-only override: each rank saves its network and optimizer state before the process group is destroyed
SAVE_RANK_STATE = {
    "finalize": [
        "$torch.save({'model': @network_def.state_dict(), 'optimizer': @optimizer.state_dict()},"
        " os.path.join(@bundle_root, f'rank{dist.get_rank()}.pt'))",
        "$dist.is_initialized() and dist.destroy_process_group()",
    ]
}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """2-process torchrun of train.json + multi_gpu_train.json (+ the state-saving override); (bundle_root, log)."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = make_tiny_hmif(tmp / "hmif")
    extra = tmp / "save_rank_state.json"
    extra.write_text(json.dumps(SAVE_RANK_STATE))
    root = tmp / "bundle"
    configs = ["configs/train.json", "configs/multi_gpu_train.json", str(extra)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = run_bundle(training_args(configs, root, data), launcher=launcher, timeout=300)
    return root, log


def test_ranks_split_the_data_and_only_rank_0_logs_and_saves(ddp_run):
    root, log = ddp_run
    # 9 training pairs -> 5 per rank (DistributedSampler, even_divisible) -> 2 batches of 2 per rank (not 4)
    assert len(re.findall(r"Epoch: 1/1, Iter: 2/2 -- train_loss", log)) == 1  # one line: rank 1 does not log
    assert "Iter: 3/" not in log
    assert len(re.findall(r"Epoch\[1\] Metrics -- val_loss", log)) == 1
    assert len(re.findall(r"Epoch\[1\] Metrics -- loss_avg", log)) == 1
    assert (root / "models" / "model_ct-mri.pt").is_file()
    assert (root / "runs" / "ct-mri" / "checkpoints" / "checkpoint_epoch=1.pt").is_file()
    writers = sorted((root / "runs" / "ct-mri" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(writers) == 2 and len({w.name.split(".")[-2] for w in writers}) == 1  # train + val writer, one pid


def test_ddp_synchronised_every_parameter_including_the_auxiliary_heads(ddp_run):
    root, _ = ddp_run
    rank0 = torch.load(root / "rank0.pt", weights_only=True)
    rank1 = torch.load(root / "rank1.pt", weights_only=True)

    from scripts.network import WDualMine

    names = [n for n, _ in WDualMine(channels=SMALL_CHANNELS).named_parameters()]
    assert set(names) <= set(rank0["model"])
    for key, value in rank0["model"].items():
        assert torch.equal(value, rank1["model"][key]), f"{key} differs between the ranks"

    saved = torch.load(root / "models" / "model_ct-mri.pt", weights_only=True)
    for key, value in saved.items():
        assert torch.equal(value, rank0["model"][key]), key

    # optimizer state is indexed in network.parameters() order = WDualMine.named_parameters() order
    state = rank0["optimizer"]["state"]
    assert len(state) == len(names), "some parameters never received a gradient"
    moments = {name: float(state[i]["exp_avg"].abs().sum()) for i, name in enumerate(names)}
    for head in ("encoder.", "scales.", "decoder.", "reconstruct_a.", "reconstruct_b.", "projection."):
        assert sum(v for n, v in moments.items() if n.startswith(head)) > 0, head
    assert int(state[0]["step"]) == 2  # two synchronised optimizer steps on every rank
