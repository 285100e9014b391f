"""Residual networks for images of periodic samples: a regression ResNet and an encoder–decoder.

Architecture (FC22 after keras' ResNet50, reference/protocols.md §7): a stem (7 × 7 convolution,
stride 2, then 3 × 3 max pooling, stride 2) and four residual stages, the first at stride 1 and
the others halving the resolution, so a 128 px input gives stage maps of r = 32, 16, 8, 4 px.

- :class:`ResNetConfig` sets depth and width: ``"small"`` (default, CPU: one basic block per
  stage, 16–128 channels, 0.31 M parameters), ``"resnet18"``, and ``"resnet50"`` (FC22:
  bottleneck blocks 3-4-6-3, 256–2048 channels, about 23.5 M parameters).
- :class:`ResNetRegressor`: global average pooling and one linear layer (``outputs`` values),
  FC22's regression head.
- :class:`CrackNet` (FC22's colorization-style crack model): the same encoder to the
  r = 4 core, then ×2 nearest upsampling + 3 × 3 convolution steps back to the input size and
  a 1 × 1 convolution to one channel (linear output). With ``ResNetConfig.skips`` (decision
  beyond FC22, U-Net style) each upsampling step down to the first stage's resolution
  concatenates the encoder's map of that resolution, so the decoder sees stride-4 detail
  instead of only the 2 × 2 (64 px) or 4 × 4 (128 px) core.
- :class:`LocationMapNet` (decision beyond FC22, the ``heatmap`` location head): the skip
  decoder gives one logit per input pixel; the location is the periodic centroid of their
  softmax (:func:`periodic_centroid`), a differentiable (x, y) in fractional image
  coordinates. A pooled regressor with periodic padding cannot locate anything: its output is
  unchanged under a shift of the input by the total stride (32 px), while the target moves by
  32 / size of the image (half of it at 64 px); the heat map moves with the input instead.

Decision beyond FC22: every convolution and pooling pads periodically (``circular``), because
the images are of periodic samples; a translation of the input by a multiple of the total stride
(32 px) then translates every feature map exactly. ``periodic=False`` gives keras' zero padding.
``stage_maps`` returns the output of every stage, the layers Grad-CAM reads.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from glassfrac.core.errors import InputError

PRESETS = {
    "small": {"blocks": (1, 1, 1, 1), "widths": (16, 32, 64, 128), "stem": 16, "bottleneck": False},
    "resnet18": {"blocks": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "stem": 64, "bottleneck": False},
    "resnet50": {"blocks": (3, 4, 6, 3), "widths": (256, 512, 1024, 2048), "stem": 64, "bottleneck": True},
}


@dataclass(frozen=True)
class ResNetConfig:
    """Encoder shape: ``blocks`` per stage, output ``widths`` (channels) per stage, ``stem``
    channels, ``bottleneck`` blocks (1×1, 3×3, 1×1 with inner width = width / 4) or basic ones,
    ``periodic`` padding, ``in_channels`` of the image, ``skips``: the decoder of
    :class:`CrackNet` concatenates the encoder stage maps (U-Net; :class:`LocationMapNet`
    always does)."""

    blocks: tuple = (1, 1, 1, 1)
    widths: tuple = (16, 32, 64, 128)
    stem: int = 16
    bottleneck: bool = False
    periodic: bool = True
    in_channels: int = 1
    skips: bool = False

    def __post_init__(self):
        if len(self.blocks) != len(self.widths) or not self.blocks:
            raise InputError("blocks and widths need one entry per stage")
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @classmethod
    def preset(cls, name: str, **overrides) -> "ResNetConfig":
        """One of ``PRESETS`` (``small``, ``resnet18``, ``resnet50``), fields overridable."""
        if name not in PRESETS:
            raise InputError(f"unknown architecture {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def stride(self) -> int:
        """Total stride of the encoder (input px per pixel of the last stage)."""
        return 4 * 2 ** (len(self.blocks) - 1)


def _conv(cin, cout, k, stride, periodic):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                     padding_mode="circular" if periodic else "zeros")


class _Basic(nn.Module):
    def __init__(self, cin, cout, stride, periodic):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, cout, 3, stride, periodic), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = _conv(cout, cout, 3, 1, periodic), nn.BatchNorm2d(cout)
        self.skip = _shortcut(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class _Bottleneck(nn.Module):
    def __init__(self, cin, cout, stride, periodic):
        super().__init__()
        mid = cout // 4
        self.conv1, self.bn1 = _conv(cin, mid, 1, 1, periodic), nn.BatchNorm2d(mid)
        self.conv2, self.bn2 = _conv(mid, mid, 3, stride, periodic), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = _conv(mid, cout, 1, 1, periodic), nn.BatchNorm2d(cout)
        self.skip = _shortcut(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        return F.relu(self.bn3(self.conv3(y)) + self.skip(x))


def _shortcut(cin, cout, stride):
    if cin == cout and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class Encoder(nn.Module):
    """Stem and residual stages; ``forward`` returns the list of stage outputs (module docstring)."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(_conv(config.in_channels, config.stem, 7, 2, config.periodic),
                                  nn.BatchNorm2d(config.stem), nn.ReLU())
        block = _Bottleneck if config.bottleneck else _Basic
        stages, cin = [], config.stem
        for s, (n, width) in enumerate(zip(config.blocks, config.widths, strict=True)):
            layers = [block(cin if b == 0 else width, width, 2 if (b == 0 and s > 0) else 1, config.periodic)
                      for b in range(n)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x) -> list:
        x = self.stem(x)
        # after the ReLU every value is >= 0, so zero padding never wins the max (keras' ZeroPadding2D)
        x = F.pad(x, (1, 1, 1, 1), mode="circular" if self.config.periodic else "constant")
        x = F.max_pool2d(x, 3, stride=2)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


class ResNetRegressor(nn.Module):
    """Encoder + global average pooling + linear layer: ``(B, C, H, W)`` → ``(B, outputs)``."""

    def __init__(self, config: ResNetConfig | None = None, outputs: int = 1):
        super().__init__()
        self.config = config or ResNetConfig()
        self.outputs = outputs
        self.encoder = Encoder(self.config)
        self.head = nn.Linear(self.config.widths[-1], outputs)

    def stage_maps(self, x) -> list:
        return self.encoder(x)

    def head_from_maps(self, maps) -> torch.Tensor:
        return self.head(maps[-1].mean(dim=(2, 3)))

    def forward(self, x):
        return self.head_from_maps(self.encoder(x))


class CrackNet(nn.Module):
    """Encoder to the last stage, decoder back to the input size: ``(B, C, H, W)`` → ``(B, 1, H, W)``."""

    def __init__(self, config: ResNetConfig | None = None, decoder_widths: tuple | None = None):
        super().__init__()
        self.config = config or ResNetConfig()
        self.outputs = 1
        steps = len(self.config.blocks) + 1  # stages 2..n halve, stem and pool halve twice
        if decoder_widths is None:
            top = self.config.widths[-1]
            decoder_widths = tuple(max(top // 2 ** (k + 1), 8) for k in range(steps))
        if len(decoder_widths) != steps:
            raise InputError(f"decoder_widths needs {steps} entries (one per ×2 upsampling)")
        self.decoder_widths = tuple(int(w) for w in decoder_widths)
        self.encoder = Encoder(self.config)
        layers, cin = [], self.config.widths[-1]
        for width in self.decoder_widths:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, width, 3, 1, self.config.periodic),
                       nn.BatchNorm2d(width), nn.ReLU()]
            cin = width
        layers.append(nn.Conv2d(cin, 1, 1))
        self.decoder = nn.Sequential(*layers)

    def stage_maps(self, x) -> list:
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encoder(x)[-1])


class SkipDecoder(nn.Module):
    """Stage maps (deepest last) → one map at the input size (B, 1, H, W): per stage from the
    deepest, ×2 nearest upsampling, concatenation with the next shallower stage map and a
    3 × 3 convolution (+ BN, ReLU) to that stage's width; then ×2 steps (3 × 3 convolutions of
    ``widths[0]`` / 2) back to the input size (stem and pool: 4×) and a 1 × 1 convolution."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        w = config.widths
        self.merge = nn.ModuleList(
            nn.Sequential(_conv(w[s + 1] + w[s], w[s], 3, 1, config.periodic), nn.BatchNorm2d(w[s]), nn.ReLU())
            for s in reversed(range(len(w) - 1)))
        fine = max(w[0] // 2, 8)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(w[0], fine, 3, 1, config.periodic),
            nn.BatchNorm2d(fine), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(fine, fine, 3, 1, config.periodic),
            nn.BatchNorm2d(fine), nn.ReLU(), nn.Conv2d(fine, 1, 1))

    def forward(self, maps):
        x = maps[-1]
        for merge, skip in zip(self.merge, reversed(maps[:-1]), strict=True):
            x = merge(torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], dim=1))
        return self.up(x)


class SkipCrackNet(nn.Module):
    """:class:`CrackNet` with the U-Net decoder (``ResNetConfig.skips``): (B, C, H, W) → (B, 1, H, W)."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.outputs = 1
        self.encoder = Encoder(config)
        self.decoder = SkipDecoder(config)

    def stage_maps(self, x) -> list:
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def periodic_centroid(logits) -> torch.Tensor:
    """Periodic centroid (B, 2) = (x, y) in [0, 1) of softmax(``logits`` (B, 1, H, W)) over the
    pixels: per axis the circular mean of the pixel centres (c + 0.5) / W with those weights."""
    b, _, h, w = logits.shape
    p = torch.softmax(logits.reshape(b, -1), dim=1).reshape(b, h, w)
    out = []
    for weights, n in ((p.sum(dim=1), w), (p.sum(dim=2), h)):  # marginals along x (columns), y (rows)
        angle = 2 * torch.pi * (torch.arange(n, dtype=logits.dtype, device=logits.device) + 0.5) / n
        mean = torch.atan2((weights * torch.sin(angle)).sum(1), (weights * torch.cos(angle)).sum(1))
        out.append(torch.remainder(mean / (2 * torch.pi), 1.0))
    return torch.stack(out, dim=1)


class LocationMapNet(nn.Module):
    """Encoder + :class:`SkipDecoder` → location logits per pixel (:meth:`heatmap`); the output
    (B, 2) is their :func:`periodic_centroid` (module docstring)."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.outputs = 2
        self.encoder = Encoder(config)
        self.decoder = SkipDecoder(config)

    def stage_maps(self, x) -> list:
        return self.encoder(x)

    def heatmap_from_maps(self, maps) -> torch.Tensor:
        return self.decoder(maps)

    def heatmap(self, x) -> torch.Tensor:
        """Logits (B, 1, H, W) of the rupture site per pixel."""
        return self.decoder(self.encoder(x))

    def head_from_maps(self, maps) -> torch.Tensor:
        return periodic_centroid(self.decoder(maps))

    def forward(self, x):
        return self.head_from_maps(self.encoder(x))


def build_model(kind: str, config: ResNetConfig, outputs: int = 1) -> nn.Module:
    """``kind`` "regressor" (``outputs`` values), "crack" (image output; U-Net decoder with
    ``config.skips``) or "heatmap" (:class:`LocationMapNet`)."""
    if kind == "regressor":
        return ResNetRegressor(config, outputs)
    if kind == "crack":
        return SkipCrackNet(config) if config.skips else CrackNet(config)
    if kind == "heatmap":
        return LocationMapNet(config)
    raise InputError(f"unknown model kind {kind!r}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
