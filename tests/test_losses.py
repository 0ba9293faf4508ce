"""Each loss term of section 4 on inputs with known values."""
from __future__ import annotations

import math

import pytest
import torch

from scripts.losses import (
    AverageLoss,
    CorrelationLoss,
    GradientLoss,
    InfoNCELoss,
    ReconstructionLoss,
    WDualMineLoss,
)


def _pair(b=2, h=16, w=16):
    torch.manual_seed(1)
    return torch.rand(b, 2, h, w)


def test_average_loss_zero_at_mean_and_l1_otherwise():
    x = _pair()
    mean = x.mean(dim=1, keepdim=True)
    assert AverageLoss()(mean, x) == 0
    assert torch.isclose(AverageLoss()(mean + 0.1, x), torch.tensor(0.1), atol=1e-6)


def test_gradient_loss_zero_when_fused_has_the_max_gradient():
    ramp = torch.linspace(0, 1, 16).expand(16, 16)
    images = torch.stack([ramp, torch.zeros(16, 16)])[None]  # only source A has a gradient
    assert GradientLoss()(images[:, :1], images) < 1e-6
    # the mean halves the gradient: loss is half the mean Sobel magnitude of A
    assert GradientLoss()(images.mean(1, keepdim=True), images) > 0.01


def test_correlation_loss_values():
    x = _pair()
    mean = x.mean(dim=1, keepdim=True)
    assert CorrelationLoss()(mean, x) < 1e-6
    assert CorrelationLoss()(3 * mean + 1, x) < 1e-6  # Pearson is affine invariant
    assert torch.isclose(CorrelationLoss()(-mean, x), torch.tensor(2.0), atol=1e-5)


def test_infonce_known_values():
    n = 4
    z = torch.eye(n)
    loss = InfoNCELoss(temperature=0.5)
    # perfectly aligned, orthogonal negatives: -log(e^2 / (e^2 + 3))
    expected = -math.log(math.exp(2) / (math.exp(2) + 3))
    assert math.isclose(float(loss(z, z, z)), expected, rel_tol=1e-5)
    # misaligned pairs cost more
    assert loss(z, z.roll(1, 0), z.roll(1, 0)) > loss(z, z, z)


def test_reconstruction_loss():
    x = _pair()
    assert ReconstructionLoss()(x[:, :1], x[:, 1:2], x) == 0
    assert torch.isclose(ReconstructionLoss()(x[:, :1] + 0.2, x[:, 1:2], x), torch.tensor(0.1), atol=1e-6)


def test_total_uses_paper_weights_and_logs_each_term():
    x = _pair(b=4)
    outputs = {
        "fused": x.mean(1, keepdim=True) + 0.05,
        "rec_a": x[:, :1] + 0.1,
        "rec_b": x[:, 1:2],
        "z_fused": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
        "z_a": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
        "z_b": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
    }
    loss_fn = WDualMineLoss()
    total = loss_fn(outputs, x)
    assert loss_fn.weights == {"avg": 5.0, "grad": 2.0, "cc": 1.0, "mi": 0.1, "rec": 0.1}
    terms = loss_fn.last_terms
    assert set(terms) == {"avg", "grad", "cc", "mi", "rec"}
    assert math.isclose(terms["avg"], 0.05, rel_tol=1e-4)
    assert math.isclose(terms["rec"], 0.05, rel_tol=1e-4)
    expected = sum(loss_fn.weights[k] * v for k, v in terms.items())
    assert math.isclose(float(total), expected, rel_tol=1e-5)


def test_loss_backpropagates_to_every_head():
    from scripts.network import WDualMine

    net = WDualMine(channels=(4, 8, 8, 16))
    x = torch.rand(4, 2, 32, 32)
    WDualMineLoss()(net.training_outputs(x), x).backward()
    decoder_last = [n for n, _ in net.named_parameters() if n.startswith("decoder.") and n.endswith(".weight")][-1]
    for name in ("reconstruct_a.0.weight", "projection.0.weight", decoder_last, "encoder.stages.0.conv1.weight"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name


@pytest.mark.parametrize("key", ["w_avg", "w_grad", "w_cc", "w_mi", "w_rec"])
def test_weights_are_configurable(key):
    loss_fn = WDualMineLoss(**{key: 0.0})
    assert loss_fn.weights[key[2:]] == 0.0
