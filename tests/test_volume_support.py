"""Helpers of the volume-fusion tests (stand-in networks, synthetic volumes, files), and their own checks.

The stand-in networks keep the tests fast and make the expected output exact: ``MeanFusionNet`` returns a
fixed weighted sum of its two input channels, so fusing is a known function of the resampled inputs.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from scripts.volume import Volume

#: Encoder widths of the small W-DUALMINE the command-line tests use (the configs' ``channels`` override).
CHANNELS = [4, 8, 8, 16]


class MeanFusionNet(torch.nn.Module):
    """Stand-in for W-DUALMINE: ``weight_a * A + weight_b * B`` per pixel; records the batch shapes it sees."""

    def __init__(self, weight_a: float = 0.5, weight_b: float = 0.5):
        super().__init__()
        self.weight_a, self.weight_b = weight_a, weight_b
        self.strength = 0.5
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.weight_a * x[:, :1] + self.weight_b * x[:, 1:2]


class OutOfMemoryNet(MeanFusionNet):
    """Raises a (simulated) CUDA out-of-memory error for batches larger than ``max_batch``."""

    def __init__(self, max_batch: int = 2):
        super().__init__()
        self.max_batch = max_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.max_batch:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().forward(x)


def rotation_z(degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])


def make_affine(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None) -> np.ndarray:
    """Voxel -> RAS affine from spacing, origin (RAS of voxel 0) and a 3x3 direction (columns = axes)."""
    affine = np.eye(4)
    affine[:3, :3] = (np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)) @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def voxel_points(shape, affine) -> np.ndarray:
    """(I, J, K, 3) RAS coordinates of every voxel centre."""
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return index @ affine[:3, :3].T + affine[:3, 3]


def blob_volume(shape, affine, centre, sigma: float = 3.0, background: float = 0.0) -> Volume:
    """A Gaussian blob (peak 100) at the RAS point ``centre`` on the grid (``shape``, ``affine``)."""
    d2 = np.sum((voxel_points(shape, affine) - np.asarray(centre)) ** 2, axis=-1)
    return Volume((background + 100.0 * np.exp(-d2 / (2 * sigma**2))).astype(np.float32), affine)


def smooth_volume(shape, affine, seed: int = 0) -> Volume:
    """A smooth, non-constant positive volume (sums of sines of the physical coordinates)."""
    p = voxel_points(shape, affine)
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.2, size=3)
    data = 50 + 20 * np.sin(p[..., 0] * f[0]) + 15 * np.cos(p[..., 1] * f[1]) + 10 * np.sin(p[..., 2] * f[2])
    return Volume(data.astype(np.float32), affine)


def centroid(volume: Volume) -> np.ndarray:
    """Intensity-weighted RAS centroid of a scalar volume."""
    w = np.asarray(volume.array, dtype=np.float64)
    return np.tensordot(w, voxel_points(volume.spatial_shape, volume.affine), axes=3) / w.sum()


def write_nifti(path: Path, data: np.ndarray, affine=None) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path


def test_blob_centroid_is_the_given_point():
    affine = make_affine((1.0, 1.5, 2.0), (-10, -12, -8), rotation_z(20))
    blob = blob_volume((24, 20, 12), affine, centre=(2.0, 1.0, 3.0))
    np.testing.assert_allclose(centroid(blob), (2.0, 1.0, 3.0), atol=0.05)


def test_mean_fusion_net_is_a_weighted_sum():
    net = MeanFusionNet(0.25, 0.75)
    x = torch.rand(3, 2, 5, 7)
    torch.testing.assert_close(net(x), 0.25 * x[:, :1] + 0.75 * x[:, 1:])
    assert net.shapes == [(3, 2, 5, 7)]


def last_decoder_layer(network) -> torch.nn.Module:
    """The zero-initialised last layer of a W-DUALMINE decoder (spatial: a conv, global: a linear layer)."""
    return [m for m in network.decoder.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][-1]


def small_models(folder: Path, bundle_root: Path) -> Path:
    """A models folder holding ``model.pt``: the shipped architecture of configs/inference.json (whatever it
    is) at :data:`CHANNELS` widths, random weights with a non-zero residual (so that the strength matters)."""
    from monai.bundle import ConfigParser

    folder.mkdir(parents=True, exist_ok=True)
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle_root), "channels": CHANNELS})
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    torch.nn.init.normal_(last_decoder_layer(network).weight, std=0.1)
    torch.save(network.state_dict(), folder / "model.pt")
    return folder
