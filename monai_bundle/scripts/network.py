"""W-DUALMINE: reliability-weighted dual-expert fusion with residual-to-average output.

One class per paper concept (section numbers of the W-DUALMINE paper):

* :class:`ECA` and :class:`EncoderStage` - the Siamese 4-stage encoder (3.2)
* :class:`ReliabilityHead` - per-scale reliability scores and the convex gate, eq. (3)-(4) (3.3)
* :class:`GlobalContextSpatialExpert` - parallel 3x3 and dilated 3x3 convolutions (3.4.1)
* :class:`WaveletFrequencyExpert` - Haar DWT, gated LL, max-absolute LH/HL/HH, inverse DWT (3.4.2)
* :class:`SoftGradientMixer` - Sobel-guided softmax over the two experts (3.5)
* :class:`ResidualDecoder` (the paper's per-pixel R) or :class:`GlobalDecoder` (one R per image, this project's
  shipped variant) and :class:`ResidualToAverageOutput` - ``clip((I1 + I2) / 2 + strength * D(R), 0, 1)`` (3.6)
* :class:`WDualMine` - the whole network; ``forward`` is the inference path, ``training_outputs`` adds the
  auxiliary heads that only the loss needs (reconstruction heads, InfoNCE projections; section 4).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .sobel import sobel_xy
from .wavelets import ScriptableDWTForward, ScriptableDWTInverse

__all__ = [
    "ECA",
    "EncoderStage",
    "SiameseEncoder",
    "ReliabilityHead",
    "GlobalContextSpatialExpert",
    "WaveletFrequencyExpert",
    "SoftGradientMixer",
    "ScaleFusion",
    "ResidualDecoder",
    "GlobalDecoder",
    "ResidualToAverageOutput",
    "WDualMine",
]


@torch.jit.interface
class _TensorModule(nn.Module):
    """TorchScript interface of a module mapping one tensor to one tensor (for ModuleList indexing by variable)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the name nn.Conv2d.forward uses
        pass


class ECA(nn.Module):
    """Efficient Channel Attention (3.2): global average pool, 1-D conv (k=3) across channels, sigmoid gate."""

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))  # (B, C)
        y = torch.sigmoid(self.conv(y.unsqueeze(1))).squeeze(1)
        return x * y[:, :, None, None]


class EncoderStage(nn.Module):
    """One encoder stage (3.2): residual block (two 3x3 convs, projected shortcut) followed by ECA."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride)
        self.eca = ECA()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return self.eca(F.relu(y + self.shortcut(x)))


class SiameseEncoder(nn.Module):
    """Shared-weight 4-stage encoder (3.2). Every stage halves the resolution (stage 1 works at 1/2 scale, which
    is what makes a 256x256 forward fit the 0.1 s CPU budget; full-resolution detail reaches the decoder head
    through the input images themselves)."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        ins = (1,) + tuple(channels[:-1])
        self.stages = nn.ModuleList(EncoderStage(i, o, stride=2) for i, o in zip(ins, channels))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = image
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class ReliabilityHead(nn.Module):
    """Per-scale reliability (3.3): r_i = softplus(h(f_i)) (eq. 3); w1 = r1 / (r1 + r2 + eps), w2 = 1 - w1 (eq. 4)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.score = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 1, 1))
        self.eps = eps

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r1 = F.softplus(self.score(f1))
        r2 = F.softplus(self.score(f2))
        w1 = r1 / (r1 + r2 + self.eps)
        return w1, 1.0 - w1


class GlobalContextSpatialExpert(nn.Module):
    """Spatial expert (3.4.1) on the gated mix w1*f1 + w2*f2 (eq. 5): a 3x3 conv and a dilated (d=2) 3x3 conv
    in parallel, concatenated and merged by a 1x1 conv, with a residual connection (eq. 6)."""

    def __init__(self, channels: int):
        super().__init__()
        self.local = nn.Conv2d(channels, channels, 3, padding=1)
        self.context = nn.Conv2d(channels, channels, 3, padding=2, dilation=2)
        self.merge = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, f1, f2, w1, w2) -> torch.Tensor:
        mixed = w1 * f1 + w2 * f2
        both = torch.cat([F.relu(self.local(mixed)), F.relu(self.context(mixed))], dim=1)
        return mixed + self.merge(both)


class WaveletFrequencyExpert(nn.Module):
    """Frequency expert (3.4.2): one-level Haar DWT of both feature maps (pytorch_wavelets), LL fused by the
    (downsampled) reliability gate (eq. 7), LH/HL/HH by the max-absolute rule (eq. 8), inverse DWT (eq. 9)."""

    def __init__(self):
        super().__init__()
        self.dwt = ScriptableDWTForward(J=1, wave="haar", mode="zero")
        self.idwt = ScriptableDWTInverse(wave="haar", mode="zero")

    @staticmethod
    def max_absolute(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        """Eq. (8): per coefficient, keep the one of larger magnitude (ties go to the first source)."""
        return torch.where(h1.abs() >= h2.abs(), h1, h2)

    def forward(self, f1, f2, w1, w2) -> torch.Tensor:
        ll1, (h1,) = self.dwt(f1)
        ll2, (h2,) = self.dwt(f2)
        g1 = F.avg_pool2d(w1, 2)
        ll = g1 * ll1 + (1.0 - g1) * ll2
        return self.idwt((ll, [self.max_absolute(h1, h2)]))


class SoftGradientMixer(nn.Module):
    """Soft gradient mixer (3.5): each expert output E gets its Sobel magnitude |dE/dx| + |dE/dy| added
    (eq. 10), a shared 1x1 conv scores it, and a softmax over the two experts gives per-pixel mixing weights
    (eq. 11); the output is their weighted sum (eq. 12)."""

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Conv2d(channels, 1, 1)

    def logit(self, expert: torch.Tensor) -> torch.Tensor:
        """Eq. (10)-(11): the score of one expert output with its Sobel magnitude added."""
        gx, gy = sobel_xy(expert)
        return self.score(expert + (gx.abs() + gy.abs()))

    def weights(self, spatial: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) softmax weights of (spatial, frequency)."""
        return torch.softmax(torch.cat([self.logit(spatial), self.logit(frequency)], dim=1), dim=1)

    def forward(self, spatial: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
        p = self.weights(spatial, frequency)
        return p[:, :1] * spatial + p[:, 1:] * frequency


class ScaleFusion(nn.Module):
    """Everything that happens at one encoder scale: gate (3.3), two experts (3.4), mixer (3.5).

    The three switches exist for the ablation study of the model card (docs/README.md, *Ablations*):
    ``gate=False`` replaces the reliability gate by the constant w1 = w2 = 1/2, ``experts="spatial"`` or
    ``"wavelet"`` keeps one expert (the mixer then has nothing to mix and is skipped), ``mixer=False`` averages
    the two experts instead of the Sobel-guided softmax."""

    EXPERTS = ("both", "spatial", "wavelet")

    def __init__(self, channels: int, gate: bool = True, experts: str = "both", mixer: bool = True):
        super().__init__()
        if experts not in self.EXPERTS:
            raise ValueError(f"unknown experts {experts!r}; expected one of {self.EXPERTS}")
        self.use_gate, self.experts, self.use_mixer = bool(gate), experts, bool(mixer)
        self.reliability = ReliabilityHead(channels)
        self.spatial = GlobalContextSpatialExpert(channels)
        self.frequency = WaveletFrequencyExpert()
        self.mixer = SoftGradientMixer(channels)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        if self.use_gate:
            w1, w2 = self.reliability(f1, f2)
        else:
            w1 = torch.full_like(f1[:, :1], 0.5)
            w2 = w1
        if self.experts == "spatial":
            return self.spatial(f1, f2, w1, w2)
        if self.experts == "wavelet":
            return self.frequency(f1, f2, w1, w2)
        spatial, frequency = self.spatial(f1, f2, w1, w2), self.frequency(f1, f2, w1, w2)
        if self.use_mixer:
            return self.mixer(spatial, frequency)
        return 0.5 * (spatial + frequency)


class ResidualDecoder(nn.Module):
    """Decoder (3.6): coarse-to-fine, upsample + concatenate the next finer fused scale + 3x3 conv; the finest
    map is upsampled to full resolution, where the head sees it together with both input images and predicts
    the residual map R (zero-initialised, so an untrained network outputs exactly the mean image)."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        self.up = nn.ModuleList(
            nn.Conv2d(channels[k + 1] + channels[k], channels[k], 3, padding=1) for k in range(len(channels) - 1)
        )
        self.head = nn.Sequential(
            nn.Conv2d(channels[0] + 2, channels[0], 3, padding=1), nn.ReLU(), nn.Conv2d(channels[0], 1, 3, padding=1)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, fused: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        x = fused[-1]
        for k in range(len(fused) - 2, -1, -1):
            up: _TensorModule = self.up[k]  # the interface annotation lets TorchScript index by a variable
            x = F.interpolate(x, size=fused[k].shape[-2:], mode="bilinear", align_corners=False)
            x = F.relu(up.forward(torch.cat([x, fused[k]], dim=1)))
        x = F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([x, images], dim=1))


class GlobalDecoder(nn.Module):
    """Decoder variant of this project (docs/README.md, *Choices*): one residual value per image, from a small MLP
    on the global average of every fused scale (the scales of 3.3-3.5, concatenated). ``R`` is (B, 1, 1, 1) and
    broadcasts over the image; with ``residual_mode="mean_gain"`` the output is the per-image contrast gain
    ``F = (1 + strength * tanh(R)) * (I1 + I2) / 2``. Zero-initialised last layer: an untrained network outputs
    the mean."""

    def __init__(self, channels: tuple[int, ...], hidden: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(sum(channels), hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, fused: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        code = torch.cat([f.mean(dim=(2, 3)) for f in fused], dim=1)
        return self.mlp(code)[:, :, None, None]


class ResidualToAverageOutput(nn.Module):
    """Residual-to-average output (3.6, eq. 13): ``F = clip((I1 + I2)/2 + strength * D, 0, 1)``.

    ``mode="additive"`` is the paper's ``D = tanh(R)``. Two variants of this project (docs/README.md) keep F a
    function of the source values at each pixel, which keeps the intensity relations MI and FMI reward:
    ``"source_weighted"``, ``D = tanh(R) * (I1 - I2) / 2`` (a convex weight between the sources for
    strength <= 1), and ``"mean_gain"``, ``D = tanh(R) * (I1 + I2) / 2`` (a contrast gain ``1 + strength * tanh(R)``
    on the mean). With ``strength = 0`` every mode gives exactly the clipped mean.
    """

    MODES = ("additive", "source_weighted", "mean_gain")

    def __init__(self, mode: str = "additive"):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown residual mode {mode!r}; expected one of {self.MODES}")
        self.mode = mode

    def forward(self, images: torch.Tensor, residual: torch.Tensor, strength: float) -> torch.Tensor:
        i1, i2 = images[:, :1], images[:, 1:2]
        detail = torch.tanh(residual)
        if self.mode == "source_weighted":
            detail = detail * (i1 - i2) / 2
        elif self.mode == "mean_gain":
            detail = detail * (i1 + i2) / 2
        return torch.clamp((i1 + i2) / 2 + strength * detail, 0.0, 1.0)


class WDualMine(nn.Module):
    """The W-DUALMINE network.

    ``forward(x)``: x is (B, 2, H, W) in [0, 1] - channel 0 the functional/structural modality A (CT, or the
    Y channel of PET/SPECT), channel 1 the MRI - and the result is (B, 1, H, W) in [0, 1]. Any H, W: the input is
    padded (replicate) to a multiple of :attr:`size_multiple` and the output cropped back.

    ``strength`` is the residual scale lambda of eq. (13); change it after loading weights to choose the detail
    strength (0 gives exactly the clipped mean of the inputs).

    The defaults (``residual_mode="source_weighted"``, ``decoder="spatial"``) are the architecture of the shipped
    weights ``models/model.pt``: a per-pixel weight w = (1 + tanh R)/2 between the sources,
    ``F = clip(mean + strength * (2w - 1) * (I1 - I2)/2, 0, 1)`` (:meth:`selection_weight` returns w). The paper's
    additive residual is ``residual_mode="additive"``; the 2026-12 global-gain release is
    ``residual_mode="mean_gain", decoder="global"``. ``gate``, ``experts`` and ``mixer`` switch parts off for the
    ablation study (:class:`ScaleFusion`).
    """

    def __init__(
        self,
        channels=(16, 32, 64, 128),
        strength: float = 0.5,
        residual_mode: str = "source_weighted",
        projection_dim: int = 32,
        decoder: str = "spatial",
        gate: bool = True,
        experts: str = "both",
        mixer: bool = True,
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 4:
            raise ValueError(f"W-DUALMINE has a 4-stage encoder; got channels={channels}")
        self.channels = channels
        self.strength = float(strength)
        self.encoder = SiameseEncoder(channels)
        self.scales = nn.ModuleList(ScaleFusion(c, gate, experts, mixer) for c in channels)
        self.output = ResidualToAverageOutput(residual_mode)
        if decoder not in self.DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; expected one of {tuple(self.DECODERS)}")
        self.decoder = self.DECODERS[decoder](channels)
        # auxiliary heads used only by the loss (section 4); never run by forward()
        self.reconstruct_a = self._reconstruction_head(channels[0])
        self.reconstruct_b = self._reconstruction_head(channels[0])
        self.projection = nn.Sequential(
            nn.Linear(channels[-1], channels[-1]), nn.ReLU(), nn.Linear(channels[-1], projection_dim)
        )

    DECODERS = {"spatial": ResidualDecoder, "global": GlobalDecoder}
    size_multiple = 32  # 4 stride-2 stages, then a Haar DWT at the coarsest scale
    __constants__ = ["size_multiple"]  # TorchScript reads the class attribute as a constant

    @staticmethod
    def _reconstruction_head(width: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph > 0 or pw > 0:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, h, w

    def _fuse(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Padded (B, 2, H, W) images -> residual R and the encoder features of both sources."""
        b = images.shape[0]
        feats = self.encoder(torch.cat([images[:, :1], images[:, 1:2]], dim=0))  # Siamese: one pass, shared weights
        fused = [scale(feats[k][:b], feats[k][b:]) for k, scale in enumerate(self.scales)]
        return self.decoder(fused, images), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 2:
            raise ValueError(f"W-DUALMINE expects a (B, 2, H, W) tensor, got shape {list(x.shape)}")
        padded, h, w = self._pad(x)
        residual, _ = self._fuse(padded)
        return self.output(padded, residual, self.strength)[..., :h, :w]

    def selection_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The per-pixel weight of source A, w = (1 + tanh R)/2 in [0, 1] ((B, 1, H, W)); for the
        ``source_weighted`` output ``F = clip(w*I1 + (1 - w)*I2, 0, 1)`` at strength 1 (model card montages)."""
        padded, h, w = self._pad(x)
        residual, _ = self._fuse(padded)
        return ((1.0 + torch.tanh(residual)) / 2).expand(-1, -1, padded.shape[-2], padded.shape[-1])[..., :h, :w]

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """InfoNCE projection (section 4, L_mi): coarsest encoder features, global average pool, MLP, L2-norm."""
        deepest = self.encoder(image)[-1].mean(dim=(2, 3))
        return F.normalize(self.projection(deepest), dim=1)

    def training_outputs(self, x: torch.Tensor, strength: float | None = None) -> dict[str, torch.Tensor]:
        """Everything the loss needs: the fused image, the residual R, both reconstructions and the three
        projections."""
        padded, h, w = self._pad(x)
        residual, feats = self._fuse(padded)
        fused_full = self.output(padded, residual, self.strength if strength is None else strength)
        b = x.shape[0]
        z_sources = F.normalize(self.projection(feats[-1].mean(dim=(2, 3))), dim=1)
        return {
            "fused": fused_full[..., :h, :w],
            "residual": residual.expand(-1, -1, padded.shape[-2], padded.shape[-1])[..., :h, :w],
            "rec_a": self.reconstruct_a(fused_full)[..., :h, :w],
            "rec_b": self.reconstruct_b(fused_full)[..., :h, :w],
            "z_fused": self.embed(fused_full),
            "z_a": z_sources[:b],
            "z_b": z_sources[b:],
        }
