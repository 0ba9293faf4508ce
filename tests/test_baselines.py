"""Classical fusion rules (training/baselines.py)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.baselines import (BASELINES, fuse_baseline, fuse_blend, fuse_dwt, fuse_max, fuse_mean, fuse_select,
                                guided_filter, selection_weight)


def _pair(shape=(37, 50), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    b = np.clip(np.roll(a, 4, axis=0) * 0.8 + 0.1 * rng.random(shape), 0, 1)
    return a, b


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("shape", [(37, 50), (64, 64)])
def test_shape_and_range(name, shape):
    a, b = _pair(shape)
    out = fuse_baseline(name, a, b)
    assert out.shape == shape and out.dtype == np.float64
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", [n for n in BASELINES if n != "gain"])
def test_identical_sources_give_the_source(name):
    a, _ = _pair((48, 40))
    assert np.allclose(fuse_baseline(name, a, a), a, atol=1e-9)


def test_mean_max_blend_relations():
    a, b = _pair()
    mean, mx = fuse_mean(a, b), fuse_max(a, b)
    assert np.all(mx >= mean)
    assert np.allclose(mean, (a + b) / 2)
    assert np.array_equal(fuse_blend(a, b, 0.0), mean)
    assert np.allclose(fuse_blend(a, b, 1.0), mx)
    mid = fuse_blend(a, b, 0.3)
    assert np.all(mid >= mean - 1e-12) and np.all(mid <= mx + 1e-12)
    assert np.allclose(fuse_baseline("blend", a, b), fuse_blend(a, b, 0.05))  # default mu
    assert np.allclose(fuse_baseline("blend", a, b, 0.3), mid)


def test_dwt_keeps_the_stronger_detail():
    """A step present in one source only keeps its full local contrast under DWT fusion (max-abs details),
    while averaging halves it."""
    a = np.full((64, 64), 0.5)
    a[:, 33:] = 0.9  # the step falls inside a level-1 Haar block: carried by its detail coefficient
    b = np.full((64, 64), 0.5)
    out, mean = fuse_dwt(a, b), fuse_mean(a, b)
    assert np.all(out[:, 33] - out[:, 32] > 0.35)
    assert np.allclose(mean[:, 33] - mean[:, 32], 0.2)


def test_guided_filter_is_edge_preserving_identity_for_self_guidance():
    a, _ = _pair()
    assert np.allclose(guided_filter(a, a, 3, 1e-10), a, atol=1e-5)
    smooth = guided_filter(a, a, 3, 10.0)  # large eps: a box blur
    assert smooth.std() < a.std()


def test_rejects_bad_input_and_unknown_names():
    a, b = _pair()
    with pytest.raises(ValueError):
        fuse_mean(a, b[:-1])
    with pytest.raises(ValueError):
        fuse_baseline("nope", a, b)
    with pytest.raises(ValueError):
        fuse_baseline("dwt", a, b, 0.5)  # dwt has no parameter


def test_dwt_reproduces_the_pet_dwt3_reference(shared_dir):
    """Haar, 3 levels, on the Y channel with Cb/Cr restored: the metric vector's fused image, up to ties."""
    from scripts.data import network_input, read_png
    from training.benchmark import fused_image

    folder = shared_dir / "reference" / "metric-vectors" / "pet-dwt3"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    a, b = read_png(folder / "A.png"), read_png(folder / "B.png")
    x = network_input(a, b)
    ours = fused_image(fuse_dwt(x[0], x[1]), a).astype(int)
    ref = np.asarray(Image.open(folder / "F.png")).astype(int)
    assert (ours == ref).mean() > 0.95
    assert np.abs(ours - ref).mean() < 0.1


def test_mean_of_8bit_images_is_written_with_exact_ties():
    """float32 inputs (scripts.data.read_png) must not break the .5 ties of the mean: half to even, as exact."""
    from scripts.color import to_uint8

    rng = np.random.default_rng(5)
    a8, b8 = rng.integers(0, 256, (2, 64, 64))
    a, b = (a8 / 255.0).astype(np.float32), (b8 / 255.0).astype(np.float32)
    assert np.array_equal(to_uint8(fuse_mean(a, b)), np.round((a8 + b8) / 2))


def test_gain_is_a_clipped_contrast_gain_on_the_mean():
    a, b = _pair()
    mean = fuse_mean(a, b)
    assert np.array_equal(fuse_baseline("gain", a, b, 1.0), mean)
    assert np.allclose(fuse_baseline("gain", a, b, 1.3), np.clip(1.3 * mean, 0, 1))
    assert np.allclose(fuse_baseline("gain", a, b), np.clip(1.1 * mean, 0, 1))  # the default g


def test_select_moves_from_the_mean_to_the_salient_source():
    a, b = np.full((40, 40), 0.2), np.full((40, 40), 0.2)
    a[:, :20] = np.indices((40, 20)).sum(0) % 2  # A has structure (and brightness) on the left
    b[:, 20:] = np.indices((40, 20)).sum(0) % 2  # B on the right
    w = selection_weight(a, b)
    assert w[5:35, 3:15].min() > 0.95 and w[5:35, 25:37].max() < 0.05  # decisive away from the seam
    assert np.array_equal(fuse_select(a, b, 0.0), fuse_mean(a, b))
    full = fuse_select(a, b, 1.0)
    assert np.allclose(full[5:35, 3:15], a[5:35, 3:15], atol=0.05)
    assert np.allclose(full[5:35, 25:37], b[5:35, 25:37], atol=0.05)
    assert np.allclose(fuse_baseline("select", a, b, 0.5), fuse_select(a, b, 0.5))
