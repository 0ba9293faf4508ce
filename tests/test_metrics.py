"""Fusion metrics: conformance with the published conventions (shared/reference/metric-vectors), an exact
cross-check of the vectorized FMI against a direct port of the per-window formula, and properties."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from scripts import metrics
from scripts.metrics import METRIC_NAMES, fusion_metrics

VECTORS = ("ct-max", "ct-mean", "pet-dwt3", "pet-mean", "spect-max", "spect-noisy-mean")


@pytest.mark.parametrize("case", VECTORS)
def test_conformance_vectors(shared_dir, case):
    """Every metric listed in expected.json matches within 1e-3 (absolute)."""
    folder = shared_dir / "reference" / "metric-vectors" / case
    if not folder.is_dir():
        pytest.skip(f"metric vector {case} not in {folder.parent}")
    a, b, f = (np.asarray(Image.open(folder / f"{n}.png")) for n in "ABF")
    expected = json.loads((folder / "expected.json").read_text())["expected"]
    got = fusion_metrics(a, b, f)
    assert set(expected) <= set(got)
    off = {k: (got[k], v) for k, v in expected.items() if abs(got[k] - v) > 1e-3}
    assert not off, off


def _reference_fmi_window(x: np.ndarray, f: np.ndarray) -> float:
    """Direct port of one window of Haghighat's fmi.m (81-cell joint pdf), with the tolerance fixes of
    metrics.md. x, f: raw 3x3 windows."""
    if np.array_equal(x, f):
        return 1.0

    def pdf(w):
        w = w.T.ravel()  # column-major
        w = np.ones(9) if w.max() == w.min() else (w - w.min()) / (w.max() - w.min())
        return w / w.sum()

    xp, fp = pdf(x), pdf(f)
    xc, fc = np.cumsum(xp), np.cumsum(fp)
    num = np.sum((xp - xp.mean()) * (fp - fp.mean()))
    c = 0.0 if abs(num) < 1e-12 else num / math.sqrt(np.sum((xp - xp.mean()) ** 2) * np.sum((fp - fp.mean()) ** 2))
    i = np.arange(1, 10)
    xsd = math.sqrt(max(np.sum(i * i * xp) - np.sum(i * xp) ** 2, 0.0))
    fsd = math.sqrt(max(np.sum(i * i * fp) - np.sum(i * fp) ** 2, 0.0))
    fi, xj = fc[:, None], xc[None, :]
    bound = np.minimum(fi, xj) if c >= 0 else np.maximum(fi + xj - 1, 0)
    cov = np.sum(bound - fi * xj)
    w = 0.0 if (abs(c) < 1e-12 or xsd == 0 or fsd == 0) else c / (cov / (xsd * fsd))
    cells = np.diff(np.diff(np.pad(bound, ((1, 0), (1, 0))), axis=0), axis=1)
    joint = w * cells + (1 - w) * np.outer(fp, xp)
    nz = joint[joint != 0]
    hj = float(np.sum(-nz * np.log2(np.abs(nz))))
    hx = float(-np.sum(xp[xp > 0] * np.log2(xp[xp > 0])))
    hf = float(-np.sum(fp[fp > 0] * np.log2(fp[fp > 0])))
    mi = hx + hf - hj
    return 0.0 if abs(mi) < 1e-12 else 2 * mi / (hx + hf)


def _reference_fmi(a, b, f) -> float:
    h, w = f.shape
    total = 0.0
    for r in range(h - 2):
        for c in range(w - 2):
            win = (slice(r, r + 3), slice(c, c + 3))
            total += _reference_fmi_window(a[win], f[win]) + _reference_fmi_window(b[win], f[win])
    return total / (2 * (h - 2) * (w - 2))


@pytest.mark.parametrize("feature", ["pixel", "dct"])
def test_fmi_matches_direct_per_window_port(feature):
    """The merged-CDF vectorization equals the 81-cell formula: ties, flat patches, both bound signs."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, (14, 17)) / 3.0  # few levels: many ties and constant windows
    b = rng.random((14, 17))
    f = 0.5 * (a + b)
    f[:5, :5] = a[:5, :5]  # identical windows score 1
    b[8:, 10:] = 0.25  # a flat patch
    if feature == "dct":
        from scipy.fft import dctn
        ref = _reference_fmi(*(dctn(x, norm="ortho") for x in (a, b, f)))
    else:
        ref = _reference_fmi(a, b, f)
    assert metrics.fmi(a, b, f, feature) == pytest.approx(ref, abs=1e-12)


def test_vif_matches_sewar():
    """VIF is sewar's vifp algorithm, reimplemented with separable filters for speed."""
    sewar = pytest.importorskip("sewar")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 80)).astype(np.uint8)
    b = np.clip(a.astype(float)[::-1] * 0.7 + 20, 0, 255).astype(np.uint8)
    f = np.clip(0.5 * a + 0.5 * b + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)
    want = sewar.vifp(a.astype(float), f.astype(float)) + sewar.vifp(b.astype(float), f.astype(float))
    assert metrics.vif_sum(a, b, f) == pytest.approx(want, abs=1e-10)


def _random_triple(seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 200, (48, 40)).astype(np.uint8)
    b = np.clip(np.roll(a, 5, axis=1).astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    f = ((a.astype(int) + b) // 2).astype(np.uint8)
    return a, b, f


def test_identical_images_give_known_values():
    a, _, _ = _random_triple()
    m = fusion_metrics(a, a, a)
    h = metrics.entropy(a)
    assert m["EN"] == pytest.approx(h)
    assert m["MI"] == pytest.approx(2 * h)  # no value 255, so the joint histogram quirk does not bite
    assert m["CC"] == pytest.approx(1.0)
    assert math.isinf(m["PSNR"]) and math.isinf(m["PSNR_true"])
    assert m["FMI_pixel"] == 1.0 and m["FMI_dct"] == 1.0
    assert m["SCD"] == 0.0  # F - B is constant: corr2 defined as 0
    assert m["SSIM"] == pytest.approx(2.0)
    assert m["VIF"] == pytest.approx(2.0)
    assert m["SD"] == pytest.approx(a.std())


def test_all_metrics_are_symmetric_in_a_and_b():
    a, b, f = _random_triple(1)
    m_ab, m_ba = fusion_metrics(a, b, f), fusion_metrics(b, a, f)
    for k in METRIC_NAMES:
        assert m_ab[k] == pytest.approx(m_ba[k], rel=1e-12, abs=1e-12), k


def test_fmi_symmetric_variant_differs_from_matlab_in_place_quirk():
    """B-side equality is tested against the raw fused window, so F == B windows score 1 on the B side."""
    a, b, _ = _random_triple(2)
    assert metrics.fmi(a / 255.0, b / 255.0, b / 255.0) == pytest.approx(metrics.fmi(b / 255.0, a / 255.0, b / 255.0))
    assert metrics.fmi(a / 255.0, b / 255.0, b / 255.0) > 0.5


@pytest.mark.parametrize("values", [(10, 200, 105), (7, 7, 7)])
def test_constant_images_give_defined_values(values):
    a, b, f = (np.full((20, 24), v, np.uint8) for v in values)
    m = fusion_metrics(a, b, f)
    assert set(m) == set(METRIC_NAMES)
    assert all(not math.isnan(v) for v in m.values())
    assert m["EN"] == 0.0 and m["MI"] == 0.0 and m["SD"] == 0.0 and m["SF"] == 0.0
    assert m["CC"] == 0.0 and m["SCD"] == 0.0 and m["VIF"] == 0.0
    assert 0.0 <= m["Qabf"] <= 1.0  # zero padding gives even a constant image edges at its border
    assert m["FMI_pixel"] == (1.0 if len(set(values)) == 1 else 0.0)  # flat windows: uniform pdfs, c = 0
    assert 0.0 <= m["FMI_dct"] <= 1.0  # the DCT of a constant is zero but for DC: mostly equal windows


def test_psnr_conventions():
    a, b, f = _random_triple(3)
    m = fusion_metrics(a, b, f)
    assert m["PSNR"] - m["PSNR_true"] == pytest.approx(20 * math.log10(255))
    rgb = fusion_metrics(np.dstack([a] * 3), b, np.dstack([f] * 3))
    assert rgb["PSNR"] == pytest.approx(m["PSNR"])  # gray as RGB: the RGB variant reduces to the gray one
    colour_a = np.dstack([a, np.roll(a, 3, 0), b])
    assert fusion_metrics(colour_a, b, np.dstack([f] * 3))["PSNR"] != pytest.approx(m["PSNR"])


def test_mi_merges_254_and_255_in_the_joint_histogram():
    x = np.array([[254, 255, 254, 255]], np.uint8)
    assert metrics.mutual_information(x, x, x) == pytest.approx(2 * (1.0 + 1.0 - 0.0))


def test_rejects_non_uint8_and_mismatched_sizes():
    a, b, f = _random_triple()
    with pytest.raises(ValueError):
        fusion_metrics(a / 255.0, b, f)
    with pytest.raises(ValueError):
        fusion_metrics(a, b[:-1], f)
