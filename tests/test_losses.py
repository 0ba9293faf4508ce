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
    SaliencySelectionLoss,
    WeightSmoothnessLoss,
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
        "residual": torch.zeros(4, 1, 16, 16),
        "z_fused": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
        "z_a": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
        "z_b": torch.nn.functional.normalize(torch.randn(4, 8), dim=1),
    }
    loss_fn = WDualMineLoss()
    total = loss_fn(outputs, x)
    assert loss_fn.weights == {"avg": 5.0, "grad": 2.0, "cc": 1.0, "mi": 0.1, "rec": 0.1, "sal": 0.0, "tv": 0.0}
    terms = loss_fn.last_terms
    assert set(terms) == {"avg", "grad", "cc", "mi", "rec", "sal", "tv"}
    assert math.isclose(terms["avg"], 0.05, rel_tol=1e-4)
    assert math.isclose(terms["rec"], 0.05, rel_tol=1e-4)
    expected = sum(loss_fn.weights[k] * v for k, v in terms.items())  # sal and tv: logged, weight 0
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


def _half_structured_pair():
    """Source A has a checkerboard on the left half, source B on the right; both flat elsewhere (0.3)."""
    board = ((torch.arange(32)[:, None] // 2 + torch.arange(32)[None, :] // 2) % 2).float()
    left = torch.zeros(32, 32)
    left[:, :16] = 1
    a = torch.where(left.bool(), board, torch.full_like(board, 0.3))
    b = torch.where(left.bool(), torch.full_like(board, 0.3), board)
    return torch.stack([a, b])[None], left


def test_saliency_target_prefers_the_structured_source_per_pixel():
    images, left = _half_structured_pair()
    target = SaliencySelectionLoss().target(images)[0, 0]
    assert target[4:28, 3:12].min() > 0.9  # A carries the structure on the left
    assert target[4:28, 20:29].max() < 0.1  # B on the right
    same = SaliencySelectionLoss().target(torch.stack([images[0, 0]] * 2)[None])
    assert torch.allclose(same, torch.full_like(same, 0.5))  # neither clearly more salient: the mean


def test_saliency_loss_is_lowest_for_the_right_choice_and_keeps_its_gradient_when_saturated():
    images, left = _half_structured_pair()
    loss = SaliencySelectionLoss()
    choose = (2 * left - 1)[None, None]  # R > 0 (w > 1/2) where A is salient
    right, wrong = loss(3 * choose, images), loss(-3 * choose, images)
    assert right < loss(torch.zeros_like(choose), images) < wrong
    residual = (-20 * choose).requires_grad_()  # saturated on the wrong side
    loss(residual, images).backward()
    assert residual.grad.abs().max() > 1e-4


def test_weight_smoothness_is_zero_for_a_constant_map_and_counts_seams():
    loss = WeightSmoothnessLoss()
    assert loss(torch.full((1, 1, 8, 8), 5.0)) == 0
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 20.0  # tanh: 0 -> ~1 across one vertical seam
    assert loss(step) == pytest.approx(1 / 7, abs=1e-4)


def test_weighted_loss_includes_the_selection_terms():
    from scripts.network import WDualMine

    net = WDualMine(channels=(4, 8, 8, 16), strength=1.0)
    x = torch.rand(4, 2, 32, 32)
    loss = WDualMineLoss(w_sal=1.0, w_tv=0.1)
    value = loss(net.training_outputs(x), x)
    assert set(loss.last_terms) == {"avg", "grad", "cc", "mi", "rec", "sal", "tv"}
    assert loss.last_terms["tv"] == 0  # zero-initialised head: w = 1/2 everywhere
    expected = sum(loss.weights[k] * v for k, v in loss.last_terms.items())
    assert float(value) == pytest.approx(expected, rel=1e-5)
    off = WDualMineLoss(w_avg=0.0, w_sal=1.0)  # a term of weight 0 is logged but adds nothing
    value = off(net.training_outputs(x), x)
    assert "avg" in off.last_terms
    assert float(value) == pytest.approx(sum(off.weights[k] * v for k, v in off.last_terms.items()), rel=1e-5)
