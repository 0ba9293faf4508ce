"""Slice-wise inference and intensities: batching, progress, CUDA out-of-memory fall-back (simulated),
normalization presets, colour fusion, strength, and inputs left untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_volume_support import MeanFusionNet, OutOfMemoryNet, make_affine, smooth_volume

import scripts.volume.slicing as slicing
from scripts.color import rgb_to_ycbcr
from scripts.volume import FusionOptions, Volume, fuse_volumes, fuse_volumes_detailed
from scripts.volume.color_fusion import colormap_lut, pseudo_colour
from scripts.volume.normalize import normalize, resolve_norm
from scripts.volume.slicing import GuardedForward

SHAPE = (32, 30, 6)
AFFINE = make_affine((1.0, 1.0, 3.0))


def pair():
    return smooth_volume(SHAPE, AFFINE, 1), smooth_volume(SHAPE, AFFINE, 2)


def test_fused_is_the_network_applied_to_the_normalized_inputs():
    a, b = pair()
    result = fuse_volumes_detailed(a, b, FusionOptions(norm_a="minmax"), network=MeanFusionNet(0.3, 0.7))
    np.testing.assert_allclose(result.fused.array, 0.3 * result.a.array + 0.7 * result.b.array, atol=1e-6)
    expected_a = (a.array - a.array.min()) / (a.array.max() - a.array.min())
    np.testing.assert_allclose(result.a.array, expected_a, atol=1e-6)
    assert result.fused.array.dtype == np.float32
    assert 0.0 <= result.fused.array.min() and result.fused.array.max() <= 1.0


def test_output_is_clipped_to_unit_range():
    a, b = pair()
    fused = fuse_volumes(a, b, network=MeanFusionNet(2.0, 2.0))
    assert fused.array.max() == 1.0 and fused.array.min() >= 0.0


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_batch_size_does_not_change_the_result(batch_size):
    a, b = pair()
    reference = fuse_volumes(a, b, FusionOptions(batch_size=3), network=MeanFusionNet())
    net = MeanFusionNet()
    fused = fuse_volumes(a, b, FusionOptions(batch_size=batch_size), network=net)
    np.testing.assert_array_equal(fused.array, reference.array)
    assert max(s[0] for s in net.shapes) == min(batch_size, SHAPE[2])
    assert sum(s[0] for s in net.shapes) == SHAPE[2]


def test_progress_rises_to_one():
    a, b = pair()
    seen = []
    fuse_volumes(a, b, FusionOptions(batch_size=2), network=MeanFusionNet(), progress=seen.append)
    assert seen == sorted(seen) and seen[0] >= 0.0 and seen[-1] == 1.0
    assert len(seen) >= 3 + SHAPE[2] // 2  # stages + one report per batch


def test_out_of_memory_halves_the_batch():
    a, b = pair()
    notes = []
    net = OutOfMemoryNet(max_batch=2)
    fused = fuse_volumes(a, b, FusionOptions(batch_size=8), network=net, notify=notes.append)
    expected = fuse_volumes(a, b, FusionOptions(batch_size=2), network=MeanFusionNet())
    np.testing.assert_array_equal(fused.array, expected.array)
    assert any("retrying with 4" in n for n in notes) and any("retrying with 2" in n for n in notes)


def test_out_of_memory_at_one_slice_falls_back_to_the_cpu(monkeypatch):
    """A (simulated) GPU that cannot take even one slice: the network moves to the CPU and finishes there."""
    placement = {"network": None}

    def fake_transfer(item, device):  # no GPU here: record where things would go, keep them on the CPU
        if isinstance(item, torch.nn.Module):
            placement["network"] = torch.device(device).type
        return item

    class GpuOutOfMemoryNet(MeanFusionNet):
        def forward(self, x):
            if placement["network"] == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().forward(x)

    monkeypatch.setattr(slicing, "_transfer", fake_transfer)
    notes = []
    guarded = GuardedForward(GpuOutOfMemoryNet(), torch.device("cuda"), batch_size=4, total=5, notify=notes.append)
    x = torch.rand(5, 2, 16, 16)
    out = guarded(x)
    torch.testing.assert_close(out, x.mean(1, keepdim=True))
    assert guarded.device.type == "cpu" and placement["network"] == "cpu"
    assert any("continuing on the CPU" in n for n in notes)


def test_out_of_memory_on_the_cpu_at_one_slice_is_raised():
    guarded = GuardedForward(OutOfMemoryNet(max_batch=0), torch.device("cpu"), batch_size=2, total=2,
                             notify=lambda m: None)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        guarded(torch.rand(2, 2, 16, 16))


def test_window_and_percentile_normalization():
    ct = np.array([-1000.0, 0.0, 40.0, 80.0, 1000.0], np.float32)
    np.testing.assert_allclose(normalize(ct, resolve_norm("CT-MRI", "a"), "A"), [0, 0, 0.5, 1, 1])
    wide = resolve_norm("CT-MRI", "a", {"width": 400})  # a dict without kind adjusts the preset
    assert wide == {"kind": "window", "level": 40.0, "width": 400.0}
    mri = np.arange(1001, dtype=np.float32)
    out = normalize(mri, resolve_norm("CT-MRI", "b"), "B")
    assert out[5] == 0.0 and out[995] == 1.0 and out[500] == pytest.approx(0.5, abs=1e-3)
    assert resolve_norm("PET-MRI", "a") == {"kind": "percentile", "low": 0.5, "high": 99.5}
    assert resolve_norm("CT-MRI", "a", "percentile")["kind"] == "percentile"


def test_integer_input_and_nan_fill():
    ints = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    out = normalize(ints, {"kind": "percentile", "low": 0.0, "high": 100.0}, "A")
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    data = np.linspace(0, 1, 60, dtype=np.float32).reshape(3, 4, 5)
    data[0, 0, 1] = np.nan
    notes = []
    out = normalize(data, {"kind": "percentile", "low": 0.0, "high": 100.0}, "A", "fill", notes.append)
    assert np.isfinite(out).all() and out[0, 0, 1] == 0.0 and "1 NaN/Inf voxel(s) replaced" in notes[0]


def test_inputs_are_never_modified():
    a, b = pair()
    data = a.array.copy()
    data[1, 2, 3] = np.nan
    a = Volume(data, AFFINE)
    before = [v.array.copy() for v in (a, b)], [v.affine.copy() for v in (a, b)]
    fuse_volumes(a, b, FusionOptions(nonfinite="fill", task="PET-MRI", color=True, reference="b"),
                 network=MeanFusionNet())
    for v, array, affine in zip((a, b), *before):
        np.testing.assert_array_equal(v.array, array)
        np.testing.assert_array_equal(v.affine, affine)


def test_strength_is_given_to_the_network():
    a, b = pair()
    net = MeanFusionNet()
    fuse_volumes(a, b, FusionOptions(strength=0.8), network=net)
    assert net.strength == 0.8


def test_colour_fusion_restores_the_pseudo_colour():
    """A network that returns its channel 0 (the Y of the pseudo-colour A) gives back the pseudo-colour A."""
    a, b = pair()
    options = FusionOptions(task="PET-MRI", color=True)
    result = fuse_volumes_detailed(a, b, options, network=MeanFusionNet(1.0, 0.0))
    assert result.fused.array.shape == SHAPE + (3,) and result.fused.array.dtype == np.float32
    rgb_a, _ = pseudo_colour(normalize(a.array, resolve_norm("PET-MRI", "a"), "A"), "nipy_spectral")
    np.testing.assert_allclose(result.a.array, rgb_a, atol=1e-6)
    np.testing.assert_allclose(result.fused.array, rgb_a, atol=0.02)  # YCbCr round trip (clipped gamut)
    net = MeanFusionNet(0.0, 1.0)  # fused Y = MRI: the luminance of the output follows B
    fused = fuse_volumes(a, b, options, network=net).array
    y = rgb_to_ycbcr(fused)[..., 0]
    inside = (fused > 0.01).all(-1) & (fused < 0.99).all(-1)  # away from gamut clipping
    np.testing.assert_allclose(y[inside], result.b.array[inside], atol=0.02)


def test_colormap_lut_starts_black():
    for name in ("nipy_spectral", "hot"):
        lut = colormap_lut(name)
        assert lut.shape[1] == 3 and np.allclose(lut[0], 0.0, atol=0.05)  # a black background stays dark


def test_slice_inference_equals_the_network_on_each_slice():
    """infer_slices runs the network in the channels-last memory format (faster on the CPU); the result must be
    the plain network's on every slice, to float rounding."""
    from scripts.network import WDualMine

    torch.manual_seed(0)
    net = WDualMine(channels=(4, 8, 8, 16), residual_mode="additive", decoder="spatial").eval()
    with torch.no_grad():
        net.decoder.head[-1].weight.normal_(0, 0.5)
    a, b = (np.random.default_rng(s).random((20, 36, 5), dtype=np.float32) for s in (1, 2))
    reference = torch.from_numpy(np.stack([a, b])).permute(3, 0, 1, 2).contiguous()  # (slices, 2, I, J)
    with torch.inference_mode():
        expected = torch.clamp(net(reference), 0, 1)[:, 0].permute(1, 2, 0).numpy()
    fused = slicing.infer_slices(a, b, 2, net, torch.device("cpu"), batch_size=2)
    assert fused.shape == a.shape and fused.dtype == np.float32
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    assert np.abs(expected - (a + b) / 2).max() > 1e-3  # the residual really acts
