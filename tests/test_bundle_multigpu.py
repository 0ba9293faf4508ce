"""configs/multi_gpu_train.json really runs: ``torchrun --nproc_per_node=2`` with the gloo backend on CPU.

Checks that the data are split between the ranks (DistributedSampler: training evenly, validation - 3 pairs -
without padding, 2 + 1), that only rank 0 logs, writes TensorBoard files, checkpoints and the final weights (a
test-only override gives each rank its own checkpoint and weights folder: rank 1's stay absent), that the
validation metric is the mean over all validation pairs (gathered across the ranks, identical on both), and - from
both ranks' state saved by an extra test-only ``finalize`` - that DistributedDataParallel synchronised the
gradients of every parameter, auxiliary heads included (the reconstruction heads and the InfoNCE projection only
run in ``training_outputs``): both ranks end with identical weights although each trained on different pairs, and
Adam holds a non-zero first moment for every parameter. A second run continues to 2 epochs from rank 0's
checkpoint: every rank loads it (trainer, network and optimizer state).
"""
from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

from test_bundle_training import BUNDLE, SMALL_CHANNELS, make_tiny_hmif, run_bundle, training_args

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is not available")

# test-only overrides: a checkpoint and weights folder per rank, and each rank saves its network and optimizer
# state, validation metric and number of validated pairs before the process group is destroyed
PER_RANK = {
    "ckpt_dir": "$os.path.join(@run_dir, f'checkpoints_rank{dist.get_rank()}')",
    "models_dir": "$os.path.join(@run_dir, f'weights_rank{dist.get_rank()}')",
    "finalize": [
        "$torch.save({'model': @network_def.state_dict(), 'optimizer': @optimizer.state_dict(),"
        " 'val_loss': @validate#evaluator.state.metrics['val_loss'], 'val_pairs': len(@validate#sampler)},"
        " os.path.join(@bundle_root, f'rank{dist.get_rank()}.pt'))",
        "$dist.is_initialized() and dist.destroy_process_group()",
    ],
}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """2-process torchrun of train.json + multi_gpu_train.json (+ the per-rank override) on 21 pairs (18 training,
    3 validation); (bundle_root, log, dataset_dir)."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = make_tiny_hmif(tmp / "hmif", pairs=21)
    extra = tmp / "per_rank.json"
    extra.write_text(json.dumps(PER_RANK))
    root = tmp / "bundle"
    configs = ["configs/train.json", "configs/multi_gpu_train.json", str(extra)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = run_bundle(training_args(configs, root, data), launcher=launcher, timeout=300)
    return root, log, data


@pytest.fixture(scope="module")
def ddp_resumed(ddp_run, tmp_path_factory):
    """The 1-epoch run continued to 2 epochs, both ranks reading the checkpoint folder rank 0 wrote (as with the
    default, shared ``ckpt_dir``); (bundle_root, log)."""
    root = tmp_path_factory.mktemp("resumed") / "bundle"
    shutil.copytree(ddp_run[0], root)
    extra = root.parent / "shared_checkpoints.json"
    extra.write_text(json.dumps({**PER_RANK, "ckpt_dir": "$os.path.join(@run_dir, 'checkpoints_rank0')"}))
    configs = ["configs/train.json", "configs/multi_gpu_train.json", str(extra)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = run_bundle(training_args(configs, root, ddp_run[2], max_epochs=2), launcher=launcher, timeout=300)
    return root, log


def test_ranks_split_the_data_and_only_rank_0_logs_and_saves(ddp_run):
    root, log, _ = ddp_run
    # 18 training pairs -> 9 per rank (DistributedSampler, even_divisible) -> 4 batches of 2 per rank (not 9)
    assert len(re.findall(r"Epoch: 1/1, Iter: 4/4 -- train_loss", log)) == 1  # one line: rank 1 does not log
    assert "Iter: 5/" not in log
    assert len(re.findall(r"Epoch\[1\] Metrics -- val_loss", log)) == 1
    assert len(re.findall(r"Epoch\[1\] Metrics -- loss_avg", log)) == 1
    run_dir = root / "runs" / "ct-mri"
    assert (run_dir / "weights_rank0" / "model.pt").is_file()
    assert (run_dir / "checkpoints_rank0" / "checkpoint_epoch=1.pt").is_file()
    assert not (run_dir / "weights_rank1").exists() and not (run_dir / "checkpoints_rank1").exists()
    writers = sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(writers) == 2 and len({w.name.split(".")[-2] for w in writers}) == 1  # train + val writer, one pid


def test_every_rank_validates_its_share_and_the_metric_covers_all_pairs(ddp_run):
    root, _, data = ddp_run
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [rank["val_pairs"] for rank in ranks] == [2, 1]  # DistributedSampler(even_divisible=False): no padding
    assert ranks[0]["val_loss"] == ranks[1]["val_loss"]

    from monai.bundle import ConfigParser

    from scripts.data import datalist, network_input, read_png

    config = ConfigParser()  # the network and the loss of the run
    config.read_config(str(BUNDLE / "configs" / "train.json"))
    config["channels"] = SMALL_CHANNELS
    net, loss = config.get_parsed_content("network_def").eval(), config.get_parsed_content("loss")
    net.load_state_dict(torch.load(root / "runs" / "ct-mri" / "weights_rank0" / "model.pt", weights_only=True))
    pairs = datalist(data, "CT-MRI", "val")
    assert len(pairs) == 3
    with torch.no_grad():
        images = torch.from_numpy(np.stack([network_input(read_png(p["a"]), read_png(p["b"])) for p in pairs]))
        per_pair = [float(loss.image_loss(net(x[None]), x[None])) for x in images]
    assert abs(ranks[0]["val_loss"] - float(np.mean(per_pair))) < 1e-5  # the mean of all 3, not of a rank's share


def test_ddp_synchronised_every_parameter_including_the_auxiliary_heads(ddp_run):
    root, _, _ = ddp_run
    rank0 = torch.load(root / "rank0.pt", weights_only=True)
    rank1 = torch.load(root / "rank1.pt", weights_only=True)

    from scripts.network import WDualMine

    names = [n for n, _ in WDualMine(channels=SMALL_CHANNELS).named_parameters()]
    assert set(names) <= set(rank0["model"])
    for key, value in rank0["model"].items():
        assert torch.equal(value, rank1["model"][key]), f"{key} differs between the ranks"

    saved = torch.load(root / "runs" / "ct-mri" / "weights_rank0" / "model.pt", weights_only=True)
    for key, value in saved.items():
        assert torch.equal(value, rank0["model"][key]), key

    # optimizer state is indexed in network.parameters() order = WDualMine.named_parameters() order
    state = rank0["optimizer"]["state"]
    assert len(state) == len(names), "some parameters never received a gradient"
    moments = {name: float(state[i]["exp_avg"].abs().sum()) for i, name in enumerate(names)}
    for head in ("encoder.", "scales.", "decoder.", "reconstruct_a.", "reconstruct_b.", "projection."):
        assert sum(v for n, v in moments.items() if n.startswith(head)) > 0, head
    assert int(state[0]["step"]) == 4  # four synchronised optimizer steps on every rank


def test_every_rank_resumes_from_the_checkpoint(ddp_resumed):
    root, log = ddp_resumed
    checkpoint = root / "runs" / "ct-mri" / "checkpoints_rank0" / "checkpoint_epoch=1.pt"
    assert f"resuming from {checkpoint}" in log
    assert "Epoch: 2/2, Iter: 4/4" in log and "Epoch: 1/2" not in log  # epoch 1 is not trained again
    # had rank 1 not loaded, it would train 2 epochs against rank 0's one and the collectives would not pair up
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank in ranks:
        assert int(rank["optimizer"]["state"][0]["step"]) == 8  # 4 restored + 4 of epoch 2, on every rank
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), key
    assert not (root / "runs" / "ct-mri" / "checkpoints_rank1").exists()
