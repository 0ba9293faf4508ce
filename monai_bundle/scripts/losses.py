"""The W-DUALMINE training objective (paper section 4).

``L = w_avg*L_avg + w_grad*L_grad + w_cc*L_cc + w_mi*L_mi + w_rec*L_rec`` with the paper's weights
(5, 2, 1, 0.1, 0.1) as defaults, plus two terms of this project that make the per-pixel output choose
(docs/README.md, *Choices*): ``w_sal*L_sal`` (:class:`SaliencySelectionLoss`) and ``w_tv*L_tv``
(:class:`WeightSmoothnessLoss`), 0 by default (the paper's objective). Every term is its own class and
:class:`WDualMineLoss` keeps the last value of each term in ``last_terms`` so that training can log them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers import GaussianFilter

from .sobel import sobel_xy

__all__ = [
    "AverageLoss",
    "GradientLoss",
    "CorrelationLoss",
    "InfoNCELoss",
    "ReconstructionLoss",
    "SaliencySelectionLoss",
    "WeightSmoothnessLoss",
    "WDualMineLoss",
]


def _mean_image(images: torch.Tensor) -> torch.Tensor:
    return images[:, :2].mean(dim=1, keepdim=True)


class AverageLoss(nn.Module):
    """L_avg (eq. 14): distance between the fused image and the mean of the two sources - l1 as in the paper
    (``norm="l1"``) or the mean squared error (``norm="l2"``, this project's choice for ``mean_gain``: it is
    what the PSNR metric measures, and its quadratic growth gives the gain an interior optimum, docs/README.md)."""

    NORMS = ("l1", "l2")

    def __init__(self, norm: str = "l1"):
        super().__init__()
        if norm not in self.NORMS:
            raise ValueError(f"unknown L_avg norm {norm!r}; expected one of {self.NORMS}")
        self.distance = F.l1_loss if norm == "l1" else F.mse_loss

    def forward(self, fused: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.distance(fused, _mean_image(images))


class GradientLoss(nn.Module):
    """L_grad (eq. 15): l1 distance between the Sobel gradient magnitudes of F and, per pixel and direction,
    the larger absolute Sobel gradient of the two sources: ``| |dF| - max(|dI1|, |dI2|) |``."""

    def forward(self, fused: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        fx, fy = sobel_xy(fused)
        sx, sy = sobel_xy(images[:, :2])
        tx = sx.abs().amax(dim=1, keepdim=True)
        ty = sy.abs().amax(dim=1, keepdim=True)
        return F.l1_loss(fx.abs(), tx) + F.l1_loss(fy.abs(), ty)


class CorrelationLoss(nn.Module):
    """L_cc (eq. 16): 1 - Pearson correlation between F and the mean image, averaged over the batch."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, fused: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        f = fused.flatten(1)
        m = _mean_image(images).flatten(1)
        f = f - f.mean(dim=1, keepdim=True)
        m = m - m.mean(dim=1, keepdim=True)
        r = (f * m).sum(1) / (f.norm(dim=1) * m.norm(dim=1) + self.eps)
        return (1.0 - r).clamp_min(0.0).mean()  # r can round to just above 1 when F is a gain on the mean


class InfoNCELoss(nn.Module):
    """L_mi (eq. 17): InfoNCE between projected features of the fused image and of each source over the batch
    (temperature tau = 0.5); positives are the same pair, negatives the other pairs of the batch. Averaged over
    the two sources. Inputs are L2-normalised (B, D) embeddings."""

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z_fused: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        target = torch.arange(z_fused.shape[0], device=z_fused.device)
        terms = [F.cross_entropy(z_fused @ z.t() / self.temperature, target) for z in (z_a, z_b)]
        return sum(terms) / 2


class ReconstructionLoss(nn.Module):
    """L_rec (eq. 18): l1 error of the two auxiliary heads that map the fused image back to each source."""

    def forward(self, rec_a: torch.Tensor, rec_b: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return (F.l1_loss(rec_a, images[:, :1]) + F.l1_loss(rec_b, images[:, 1:2])) / 2


class SaliencySelectionLoss(nn.Module):
    """L_sal (this project): per pixel, the weight w of source A should prefer the source that carries the local
    structure. Saliency of a source ``s = G_sigma(|dI/dx| + |dI/dy|) + beta * G_sigma(I)`` (Sobel structure plus
    brightness, Gaussian-smoothed); target weight ``w* = sigmoid((s_A - s_B) / (tau * (s_A + s_B + eps)))``:
    near 1 where A is clearly the more salient source, near 0 where B is, 1/2 (the mean) where neither is clearly
    so - ``tau`` is the temperature that sets how clear "clearly" is. The loss is the binary cross-entropy between
    w = sigmoid(2R) and w*, weighted per pixel by |I1 - I2| (only there does the choice change the output) and
    computed on the logits, so its gradient never vanishes as w saturates."""

    def __init__(self, sigma: float = 2.0, beta: float = 2.0, tau: float = 0.03, eps: float = 1e-3):
        super().__init__()
        self.smooth = GaussianFilter(spatial_dims=2, sigma=sigma)
        self.beta, self.tau, self.eps = beta, tau, eps

    def saliency(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, C, H, W) saliency maps, one per channel."""
        gx, gy = sobel_xy(images)
        return self.smooth(gx.abs() + gy.abs() + self.beta * images)

    def target(self, images: torch.Tensor) -> torch.Tensor:
        """The (B, 1, H, W) target weight w* of source A."""
        s = self.saliency(images[:, :2])
        s_a, s_b = s[:, :1], s[:, 1:2]
        return torch.sigmoid((s_a - s_b) / (self.tau * (s_a + s_b + self.eps)))

    def forward(self, residual: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        gap = (images[:, :1] - images[:, 1:2]).abs()
        bce = F.binary_cross_entropy_with_logits(2 * residual, self.target(images), reduction="none")
        return (bce * gap).sum() / gap.sum().clamp_min(1e-8)


class WeightSmoothnessLoss(nn.Module):
    """L_tv (this project): total variation ``mean(|d(x+1) - d(x)|)`` over both axes of the bounded residual
    d = tanh(R) = 2w - 1 (given R). It favours weight maps that are constant over regions with short seams: the fused value
    then stays one function of the source values inside a region, which is what MI and FMI_dct reward (a weight
    that changes from pixel to pixel blurs the joint histogram and adds high frequencies)."""

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        detail = torch.tanh(residual)
        dx = (detail[..., :, 1:] - detail[..., :, :-1]).abs().mean()
        dy = (detail[..., 1:, :] - detail[..., :-1, :]).abs().mean()
        return dx + dy


class WDualMineLoss(nn.Module):
    """Weighted sum of the seven terms. Call with the dict of :meth:`WDualMine.training_outputs` and the (B, 2, H, W)
    source images; returns the scalar loss and stores each (unweighted) term in ``last_terms``. Terms of weight 0
    are logged but left out of the sum (the paper's objective has no L_sal and L_tv; the ablations switch terms off
    this way)."""

    def __init__(
        self,
        w_avg: float = 5.0,
        w_grad: float = 2.0,
        w_cc: float = 1.0,
        w_mi: float = 0.1,
        w_rec: float = 0.1,
        temperature: float = 0.5,
        avg_norm: str = "l1",
        w_sal: float = 0.0,
        w_tv: float = 0.0,
        saliency_sigma: float = 2.0,
        saliency_beta: float = 2.0,
        saliency_tau: float = 0.03,
    ):
        super().__init__()
        self.weights = {"avg": w_avg, "grad": w_grad, "cc": w_cc, "mi": w_mi, "rec": w_rec, "sal": w_sal, "tv": w_tv}
        self.avg, self.grad, self.cc = AverageLoss(avg_norm), GradientLoss(), CorrelationLoss()
        self.mi, self.rec = InfoNCELoss(temperature), ReconstructionLoss()
        self.sal = SaliencySelectionLoss(saliency_sigma, saliency_beta, saliency_tau)
        self.tv = WeightSmoothnessLoss()
        self.last_terms: dict[str, float] = {}

    #: the terms that need nothing but the fused image (the others need the training heads)
    IMAGE_TERMS = ("avg", "grad", "cc")

    def image_loss(self, fused: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the :data:`IMAGE_TERMS` (L_avg, L_grad, L_cc, with this loss's weights) of a fused
        image: the validation loss (configs/train.json, MONAI ``IgniteMetricHandler(loss_fn=...)``), which the
        eval-mode network - fused image only - allows. Lower is better."""
        return sum(
            (self.weights[k] * getattr(self, k)(fused, images) for k in self.IMAGE_TERMS if self.weights[k] != 0),
            fused.new_zeros(()),
        )

    def forward(self, outputs: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        fused = outputs["fused"]
        terms = {
            "avg": self.avg(fused, images),
            "grad": self.grad(fused, images),
            "cc": self.cc(fused, images),
            "mi": self.mi(outputs["z_fused"], outputs["z_a"], outputs["z_b"]),
            "rec": self.rec(outputs["rec_a"], outputs["rec_b"], images),
            "sal": self.sal(outputs["residual"], images),
            "tv": self.tv(outputs["residual"]),
        }
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        return sum(self.weights[k] * v for k, v in terms.items() if self.weights[k] != 0)
