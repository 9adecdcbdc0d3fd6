"""Building blocks shared by the warping families (FOMM, MRAA, TPSMM, Monkey-Net, ...).

Module attribute names follow the published checkpoints (``conv``, ``norm``, ``down_blocks``...),
so a family that composes these blocks gets the published ``state_dict`` keys for free.
Family-specific variants take a ``norm`` factory (BatchNorm2d vs InstanceNorm2d(affine=True)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, affine=True)


def instance_norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


# ---------------------------------------------------------------- grids and keypoints
def make_coordinate_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1], align_corners=True convention: x_i = 2 i / (W - 1) - 1."""
    x = torch.arange(width, dtype=dtype, device=device)
    y = torch.arange(height, dtype=dtype, device=device)
    x = 2 * (x / (width - 1)) - 1
    y = 2 * (y / (height - 1)) - 1
    yy = y.view(-1, 1).repeat(1, width)
    xx = x.view(1, -1).repeat(height, 1)
    return torch.cat([xx.unsqueeze(2), yy.unsqueeze(2)], 2)


def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
    """Softmax heatmaps (B, K, H, W) -> expected (x, y) positions (B, K, 2) on the heatmap's own grid."""
    grid = make_coordinate_grid(heatmap.shape[2], heatmap.shape[3], heatmap.dtype, heatmap.device)
    return (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3))


def keypoints_to_gaussian(kp: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Keypoints (B, K, 2) -> unnormalised Gaussians (B, K, H, W): exp(-0.5 |z - kp|^2 / variance)."""
    grid = make_coordinate_grid(height, width, kp.dtype, kp.device)
    diff = grid[None, None] - kp[:, :, None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


# ---------------------------------------------------------------- conv blocks
class ResBlock2d(nn.Module):
    """Pre-activation residual block: norm -> relu -> conv -> norm -> relu -> conv, + input."""

    def __init__(self, in_features: int, kernel_size: int = 3, padding: int = 1, norm=batch_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = norm(in_features)
        self.norm2 = norm(in_features)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling -> conv -> norm -> relu."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1, norm=batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2)
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """conv -> norm -> relu -> 2x2 average pool."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1, norm=batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv -> norm -> relu at the same resolution."""

    def __init__(self, in_features, out_features, groups=1, kernel_size=3, padding=1, norm=batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


def _features(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    """Hourglass encoder: returns the input and every down block's output."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                in_features if i == 0 else _features(block_expansion, i, max_features),
                _features(block_expansion, i + 1, max_features),
                kernel_size=3,
                padding=1,
                norm=norm,
            )
            for i in range(num_blocks)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: up block, then concatenate [upsampled, skip]."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * _features(block_expansion, i + 1, max_features)
            blocks.append(UpBlock2d(in_filters, _features(block_expansion, i, max_features), kernel_size=3, padding=1, norm=norm))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, outs):
        outs = list(outs)
        out = outs.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), outs.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, norm=norm)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, norm=norm)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then strided subsampling, as the published first-order models do.

    The kernel is a persistent buffer named ``weight`` (it is in the checkpoints): always use the
    loaded copy, never recompute it.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        coords = torch.arange(kernel_size, dtype=torch.float32)
        mean = (kernel_size - 1) / 2
        g = torch.exp(-((coords - mean) ** 2) / (2 * sigma**2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale
        self.int_inv_scale = int(1 / scale)

    def forward(self, x):
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight, groups=self.groups)
        return out[:, :, :: self.int_inv_scale, :: self.int_inv_scale]
