"""Component tests of the W-DUALMINE network (paper sections 3.2-3.6)."""
from __future__ import annotations

import pytest
import torch

from scripts.network import (
    ECA,
    ReliabilityHead,
    ResidualToAverageOutput,
    SoftGradientMixer,
    WaveletFrequencyExpert,
    WDualMine,
)

from test_volume_support import last_decoder_layer  # noqa: E402

torch.manual_seed(0)


def _trained_like(residual_mode: str = "source_weighted", decoder: str = "spatial") -> WDualMine:
    """A network whose (zero-initialised) last decoder layer is not zero, as after training."""
    net = WDualMine(channels=(4, 8, 8, 16), residual_mode=residual_mode, decoder=decoder)
    last = last_decoder_layer(net)
    with torch.no_grad():
        last.weight.normal_(0, 0.5)
        last.bias.fill_(0.3)
    return net.eval()


@pytest.fixture(scope="module")
def trained_like_network() -> WDualMine:
    """A network whose residual head is not zero (as after training), so strength really matters."""
    return _trained_like()


def test_gate_is_convex_and_sums_to_one():
    head = ReliabilityHead(6)
    f1, f2 = torch.randn(2, 6, 9, 11), torch.randn(2, 6, 9, 11)
    w1, w2 = head(f1, f2)
    assert torch.allclose(w1 + w2, torch.ones_like(w1))
    assert (w1 >= 0).all() and (w1 <= 1).all()
    # identical features are equally reliable
    w1_same, _ = head(f1, f1)
    assert torch.allclose(w1_same, torch.full_like(w1_same, 0.5), atol=1e-5)


def test_max_absolute_rule_keeps_larger_magnitude():
    h1 = torch.tensor([1.0, -3.0, 0.5, -2.0])
    h2 = torch.tensor([-2.0, 1.0, 0.5, 2.5])
    out = WaveletFrequencyExpert.max_absolute(h1, h2)
    assert out.tolist() == [-2.0, -3.0, 0.5, 2.5]


def test_wavelet_expert_round_trips_identical_inputs():
    """With f1 == f2 the gated LL and the max-abs details are f's own: DWT -> IDWT returns f."""
    expert = WaveletFrequencyExpert()
    f = torch.randn(2, 3, 16, 20)
    w1 = torch.rand(2, 1, 16, 20)
    out = expert(f, f, w1, 1 - w1)
    assert torch.allclose(out, f, atol=1e-5)


def test_mixer_weights_are_a_softmax_over_two_experts():
    mixer = SoftGradientMixer(5)
    a, b = torch.randn(2, 5, 12, 12), torch.randn(2, 5, 12, 12)
    p = mixer.weights(a, b)
    assert p.shape == (2, 2, 12, 12)
    assert torch.allclose(p.sum(dim=1), torch.ones(2, 12, 12), atol=1e-6)
    out = mixer(a, b)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()  # a convex combination per pixel


def test_eca_rescales_channels_only():
    eca = ECA()
    x = torch.rand(1, 8, 5, 5)
    y = eca(x)
    ratio = y / x
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-6)
    assert ((ratio > 0) & (ratio < 1)).all()


@pytest.mark.parametrize("hw", [(256, 256), (37, 53), (16, 100), (7, 9)])
def test_forward_any_size_and_range(trained_like_network, hw):
    x = torch.rand(2, 2, *hw)
    with torch.inference_mode():
        y = trained_like_network(x)
    assert y.shape == (2, 1, *hw)
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("decoder", list(WDualMine.DECODERS))
@pytest.mark.parametrize("mode", ResidualToAverageOutput.MODES)
def test_strength_zero_gives_exactly_the_clipped_mean(mode, decoder):
    net = _trained_like(mode, decoder)
    x = torch.rand(3, 2, 40, 33)
    with torch.inference_mode():
        detailed = net(x)
        net.strength = 0.0
        y = net(x)
    mean = torch.clamp((x[:, :1] + x[:, 1:2]) / 2, 0, 1)
    assert torch.equal(y, mean)
    assert not torch.allclose(detailed, mean)


def test_strength_changes_output_after_loading(trained_like_network):
    x = torch.rand(1, 2, 32, 32)
    with torch.inference_mode():
        ys = []
        for s in (0.25, 1.0):
            trained_like_network.strength = s
            ys.append(trained_like_network(x))
    trained_like_network.strength = 0.5
    assert not torch.allclose(ys[0], ys[1])


def test_source_weighted_output_stays_between_the_sources():
    out = ResidualToAverageOutput("source_weighted")
    images = torch.rand(4, 2, 10, 10)
    fused = out(images, torch.randn(4, 1, 10, 10) * 5, strength=1.0)
    lo = images.min(dim=1, keepdim=True).values
    hi = images.max(dim=1, keepdim=True).values
    assert ((fused >= lo - 1e-6) & (fused <= hi + 1e-6)).all()


def test_mean_gain_output_is_a_clipped_gain_on_the_mean():
    out = ResidualToAverageOutput("mean_gain")
    images = torch.rand(3, 2, 10, 12)
    residual = torch.tensor([-0.5, 0.2, 3.0]).reshape(3, 1, 1, 1)
    mean = images.mean(dim=1, keepdim=True)
    expected = torch.clamp((1 + 0.8 * torch.tanh(residual)) * mean, 0, 1)
    assert torch.allclose(out(images, residual, strength=0.8), expected, atol=1e-6)


def test_global_decoder_gives_one_gain_per_image():
    """decoder="global" + mean_gain: F / mean is one number per image (where nothing clips), and it depends on
    the image."""
    net = _trained_like("mean_gain", "global")
    x = torch.rand(2, 2, 40, 52) * 0.5
    with torch.inference_mode():
        y = net(x)
    ratio = (y / x.mean(dim=1, keepdim=True)).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)
    assert not torch.allclose(ratio[0, 0], ratio[1, 0])
    assert y.shape == (2, 1, 40, 52)


@pytest.mark.parametrize("decoder", list(WDualMine.DECODERS))
def test_torchscript_equals_eager(decoder):
    net = _trained_like("mean_gain" if decoder == "global" else "source_weighted", decoder)
    x = torch.rand(2, 2, 45, 70)
    with torch.inference_mode():
        assert torch.allclose(torch.jit.script(net)(x), net(x), atol=1e-5)


def test_untrained_network_outputs_the_mean():
    net = WDualMine(channels=(4, 8, 8, 16)).eval()
    x = torch.rand(1, 2, 24, 24)
    with torch.inference_mode():
        assert torch.allclose(net(x), x.mean(dim=1, keepdim=True), atol=1e-6)


def test_training_outputs_only_in_training_path():
    net = WDualMine(channels=(4, 8, 8, 16))
    x = torch.rand(4, 2, 32, 32)
    out = net.training_outputs(x)
    assert set(out) == {"fused", "residual", "rec_a", "rec_b", "z_fused", "z_a", "z_b"}
    assert out["residual"].shape == (4, 1, 32, 32)
    assert out["rec_a"].shape == (4, 1, 32, 32)
    assert torch.allclose(out["z_a"].norm(dim=1), torch.ones(4), atol=1e-5)
    # the plain forward never touches the auxiliary heads
    calls = []
    hook = net.reconstruct_a.register_forward_hook(lambda *a: calls.append(1))
    net.projection.register_forward_hook(lambda *a: calls.append(1))
    net.eval()(x)
    hook.remove()
    assert calls == []


def test_bad_input_shape_is_refused():
    net = WDualMine(channels=(4, 8, 8, 16))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="4-stage"):
        WDualMine(channels=(4, 8, 16))
    with pytest.raises(ValueError, match="residual mode"):
        WDualMine(residual_mode="bogus")


def test_selection_weight_is_the_per_pixel_choice_of_the_output(trained_like_network):
    """source_weighted at strength 1: F = w*A + (1 - w)*B with w = selection_weight(x), per pixel."""
    x = torch.rand(2, 2, 40, 36)
    net = trained_like_network
    with torch.inference_mode():
        net.strength = 1.0
        fused = net(x)
        w = net.selection_weight(x)
    net.strength = 0.5
    assert w.shape == (2, 1, 40, 36) and (w >= 0).all() and (w <= 1).all()
    assert torch.allclose(fused, w * x[:, :1] + (1 - w) * x[:, 1:2], atol=1e-5)
    assert w.flatten(1).std(dim=1).min() > 1e-3  # a per-pixel map, not one number per image


@pytest.mark.parametrize("switches", [{"gate": False}, {"experts": "spatial"}, {"experts": "wavelet"},
                                      {"mixer": False}])
def test_ablation_switches_change_the_network_and_stay_scriptable(switches):
    torch.manual_seed(3)
    full = WDualMine(channels=(4, 8, 8, 16))
    ablated = WDualMine(channels=(4, 8, 8, 16), **switches)
    ablated.load_state_dict(full.state_dict())  # same parameters: only the switched-off part differs
    for net in (full, ablated):
        last = last_decoder_layer(net)
        with torch.no_grad():
            last.weight.copy_(torch.linspace(-1, 1, last.weight.numel()).reshape(last.weight.shape))
        net.strength = 1.0
        net.eval()
    x = torch.rand(1, 2, 32, 32)
    with torch.inference_mode():
        y_full, y_ablated = full(x), ablated(x)
        assert torch.allclose(torch.jit.script(ablated)(x), y_ablated, atol=1e-5)
    assert not torch.allclose(y_full, y_ablated)


def test_gate_off_mixes_the_features_half_and_half():
    from scripts.network import ScaleFusion

    scale = ScaleFusion(4, gate=False, experts="spatial")
    f1, f2 = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    expected = scale.spatial(f1, f2, torch.full((1, 1, 8, 8), 0.5), torch.full((1, 1, 8, 8), 0.5))
    assert torch.allclose(scale(f1, f2), expected)
    with pytest.raises(ValueError, match="experts"):
        ScaleFusion(4, experts="three")
