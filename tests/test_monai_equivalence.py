"""Where MONAI replaced hand-written code, it computes the same numbers (issue 14, item 8).

* The training loader of configs/train.json (``LoadImaged`` + ``EnsureChannelFirstd`` + ``ScaleIntensityRanged``
  + ``scripts.data.LumaChanneld`` + ``ConcatItemsd``) gives exactly (max abs difference 0) the network input of
  the project's reader, ``network_input(read_png(a), read_png(b))`` - which the former ``LoadHMIFPaird`` returned
  - on gray, colour, gray-stored-as-RGB, RGBA and non-square PNGs, and on the HMIF images when ../shared is there.
* The validation metric (MONAI ``IgniteMetricHandler(loss_fn=WDualMineLoss.image_loss)``) equals the former
  ``ValidationLoss``: the batch-size-weighted mean of the image terms over the validation batches.
* ``apply_norm`` (now MONAI ``ScaleIntensityRange``) equals the former hand-written float32 mapping within one
  float32 rounding step (5.96e-8 on [0, 1]).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose
from PIL import Image

from scripts.data import TASKS, datalist, network_input, read_png
from scripts.volume.normalize import NormRange, apply_norm

BUNDLE = Path(__file__).resolve().parents[1] / "monai_bundle"
FLOAT32_STEP = 2.0**-24  # half the float32 spacing just below 1: one rounding step of a value in [0, 1]


def train_config(**overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    for key, value in overrides.items():
        parser[key] = value
    return parser


@pytest.fixture(scope="module")
def training_loader() -> Compose:
    """The deterministic (cached) part of train.json's preprocessing: what the network sees before the crops."""
    return Compose(train_config().get_parsed_content("train#deterministic_transforms"))


def former_loader(pair: dict) -> np.ndarray:
    """What ``LoadHMIFPaird`` returned: the project's reader and network input."""
    return network_input(read_png(pair["a"]), read_png(pair["b"]))


def _save(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def synthetic_pairs(folder: Path) -> list[dict]:
    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (24, 40), dtype=np.uint8)  # non-square: rows and columns must not swap
    rgb = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, (24, 40), dtype=np.uint8)])
    gray_as_rgb = np.repeat(gray[..., None], 3, axis=2)
    mri = _save(folder / "mri.png", rng.integers(0, 256, (24, 40), dtype=np.uint8))
    sources = {"gray": gray, "rgb": rgb, "rgba": rgba, "gray_as_rgb": gray_as_rgb}
    pairs = [{"a": _save(folder / f"{name}.png", image), "b": mri} for name, image in sources.items()]
    pairs.append({"a": pairs[1]["a"], "b": pairs[3]["a"]})  # colour and gray-as-RGB on the MRI side too
    return pairs


def test_training_loader_equals_the_project_reader_on_every_png_kind(tmp_path, training_loader):
    for pair in synthetic_pairs(tmp_path):
        image = np.asarray(training_loader(dict(pair))["image"])
        expected = former_loader(pair)
        assert image.shape == expected.shape == (2, 24, 40) and image.dtype == np.float32
        assert np.abs(image - expected).max() == 0, pair


def test_training_loader_equals_the_project_reader_on_hmif(shared_dir, training_loader):
    root = shared_dir / "data" / "hmif-train"
    if not root.is_dir():
        pytest.skip(f"no HMIF training data at {root}")
    worst = 0.0
    for task in TASKS:
        for pair in datalist(root, task, "all")[::5]:
            image = np.asarray(training_loader(dict(pair))["image"])
            worst = max(worst, float(np.abs(image - former_loader(pair)).max()))
    assert worst == 0


def former_validation_loss(loss, batches) -> float:
    """``ValidationLoss`` as it was: per batch the weighted image terms (L_avg, L_grad, L_cc), weighted by the batch
    size, averaged over all pairs."""
    total = 0.0
    for pred, label in batches:
        value = sum(loss.weights[k] * getattr(loss, k)(pred, label) for k in ("avg", "grad", "cc") if loss.weights[k])
        total += float(value) * pred.shape[0]
    return total / sum(pred.shape[0] for pred, _ in batches)


@pytest.mark.parametrize("avg_weight", [0.0, 5.0])  # the shipped weights (L_avg off) and the paper's
def test_validation_metric_equals_the_former_validation_loss(avg_weight):
    parser = train_config(**{"loss_weights#avg": avg_weight})
    metric, loss = parser.get_parsed_content("validate#key_metric#val_loss"), parser.get_parsed_content("loss")
    torch.manual_seed(0)
    labels = torch.rand(10, 2, 32, 32)
    preds = (labels.mean(1, keepdim=True) + 0.1 * torch.randn(10, 1, 32, 32)).clamp(0, 1)
    batches = [(preds[i:i + 4], labels[i:i + 4]) for i in range(0, 10, 4)]  # 4 + 4 + 2 pairs
    metric.reset()
    for pred, label in batches:  # the evaluator's decollated output: lists of per-pair tensors
        metric.update((list(pred), list(label)))
    value = metric.compute()
    assert abs(value - former_validation_loss(loss, batches)) < 1e-6
    assert abs(value - float(loss.image_loss(preds, labels))) < 1e-6
    assert value > 0.01


def former_apply_norm(array: np.ndarray, mapping: NormRange) -> np.ndarray:
    """The hand-written mapping ``apply_norm`` had: float32 (x - low) * (1 / (high - low)), clipped to [0, 1]."""
    out = np.subtract(array, np.float32(mapping.low), dtype=np.float32)
    out *= np.float32(1.0 / (mapping.high - mapping.low))
    return np.clip(out, 0.0, 1.0, out=out)


@pytest.mark.parametrize(
    "dtype, low, high",
    [
        (np.int16, 0.0, 80.0),  # CT brain window (level 40, width 80)
        (np.int16, -500.0, 1300.0),  # CT bone window
        (np.float32, 3.25, 871.5),  # MRI percentiles
        (np.float64, -12.5, 1234.567),
        (np.uint8, 2.0, 250.0),
    ],
)
def test_apply_norm_equals_the_former_mapping(dtype, low, high):
    rng = np.random.default_rng(7)
    volume = rng.normal(300, 500, (32, 64, 64)).clip(-1024, 3000).astype(dtype)
    if dtype == np.uint8:
        volume = rng.integers(0, 256, (32, 64, 64), dtype=np.uint8)
    before = volume.copy()
    mapping = NormRange(low, high)
    fused_input = apply_norm(volume, mapping)
    assert fused_input.dtype == np.float32 and fused_input.shape == volume.shape
    assert float(np.abs(fused_input.astype(np.float64) - former_apply_norm(volume, mapping)).max()) <= FLOAT32_STEP
    assert 0.0 <= fused_input.min() and fused_input.max() <= 1.0 and (fused_input == 0).any()
    assert np.array_equal(volume, before)  # the input is not modified


def test_apply_norm_fills_nonfinite_before_the_mapping():
    volume = np.array([[np.nan, 10.0], [np.inf, 30.0]], dtype=np.float32)
    mapping = NormRange(10.0, 30.0, fill=10.0)
    np.testing.assert_array_equal(apply_norm(volume, mapping), [[0.0, 0.0], [0.0, 1.0]])
