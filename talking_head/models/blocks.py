"""Building blocks shared by the warping families (FOMM, MRAA, TPSMM, Monkey-Net, ...).

Module attribute names follow the published checkpoints (``conv``, ``norm``, ``down_blocks``...),
so a family that composes these blocks gets the published ``state_dict`` keys for free.
Family-specific variants take a ``norm`` factory (BatchNorm2d vs InstanceNorm2d(affine=True)) and
a ``conv`` factory (Monkey-Net's per-frame Conv3d weights); sampling helpers take the family's
``align_corners`` explicitly, since the checkpoints were trained with different conventions.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.precision import float32_math


def batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, affine=True)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters and state_dict keys) computed as a group norm of one channel per group.

    The same statistics (per sample and channel, biased variance), but about 4x faster on a CPU, and a
    channels-last input stays channels-last: ``instance_norm`` returns a contiguous copy that the next
    convolution converts back (bf16, 2 cores: 121 -> 31 ms at 8 x 64 x 256 x 256).
    """

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__(channels, eps=eps, affine=affine, track_running_stats=False)

    def forward(self, x):
        return instance_normalize(x, self.weight, self.bias, self.eps)


def instance_normalize(x: torch.Tensor, weight=None, bias=None, eps: float = 1e-5) -> torch.Tensor:
    """Instance normalisation of (B, C, ...) ``x`` (``F.instance_norm`` without running stats), as a group norm."""
    return F.group_norm(x, x.shape[1], weight, bias, eps)


def instance_norm(channels: int) -> nn.Module:
    return InstanceNorm2d(channels, affine=True)


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


def coordinate_grid_3d(depth: int, height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z) = (width, height, depth) positions, each 2 i / (n - 1) - 1."""

    def axis(n):
        return 2 * (torch.arange(n, dtype=dtype, device=device) / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def spatial_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, K, H, W) logits -> heatmaps, each a softmax over its H x W positions at ``temperature``."""
    b, k, h, w = logits.shape
    return F.softmax(logits.view(b, k, -1) / temperature, dim=2).view(b, k, h, w)


@float32_math
def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
    """Softmax heatmaps (B, K, H, W) -> expected (x, y) positions (B, K, 2) on the heatmap's own grid."""
    grid = make_coordinate_grid(heatmap.shape[2], heatmap.shape[3], heatmap.dtype, heatmap.device)
    return (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3))


@float32_math
def heatmap_moments(heatmap: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps (B, K, H, W) + ``eps`` as weights -> mean (B, K, 2) and covariance (B, K, 2, 2) of (x, y)."""
    weights = heatmap.unsqueeze(-1) + eps
    grid = make_coordinate_grid(heatmap.shape[2], heatmap.shape[3], heatmap.dtype, heatmap.device)
    mean = (weights * grid).sum(dim=(2, 3))
    centred = grid - mean[:, :, None, None, :]
    covar = (centred.unsqueeze(-1) * centred.unsqueeze(-2) * weights.unsqueeze(-1)).sum(dim=(2, 3))
    return mean, covar


@float32_math
def keypoints_to_gaussian(kp: torch.Tensor, height: int, width: int, variance: float) -> torch.Tensor:
    """Keypoints (B, K, 2) -> unnormalised Gaussians (B, K, H, W): exp(-0.5 |z - kp|^2 / variance)."""
    grid = make_coordinate_grid(height, width, kp.dtype, kp.device)
    diff = grid[None, None] - kp[:, :, None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


@float32_math
def covariance_gaussians(mean: torch.Tensor, covar: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Means (B, K, 2), covariances (B, K, 2, 2) -> exp(-0.5 (z - mean)^T covar^-1 (z - mean)), (B, K, H, W)."""
    grid = make_coordinate_grid(height, width, mean.dtype, mean.device)
    diff = grid[None, None] - mean[:, :, None, None, :]
    inv = torch.linalg.inv(covar)[:, :, None, None]
    quad = torch.matmul(torch.matmul(diff.unsqueeze(-2), inv), diff.unsqueeze(-1))
    return torch.exp(-0.5 * quad[..., 0, 0])


@float32_math
def local_affine_motions(driving: torch.Tensor, source: torch.Tensor, transforms: torch.Tensor | None,
                         height: int, width: int) -> torch.Tensor:
    """Where each point z of an (h, w) grid samples the source, per keypoint, identity (background) first.

    For keypoint k: ``transforms_k (z - driving_k) + source_k`` (a pure shift when ``transforms`` is
    None). driving (B, K, 2), source (1 or B, K, 2), transforms (B, K, 2, 2) -> (B, K+1, h, w, 2).
    """
    b = driving.shape[0]
    identity = make_coordinate_grid(height, width, driving.dtype, driving.device)[None, None]
    offsets = identity - driving[:, :, None, None, :]
    if transforms is not None:
        offsets = torch.matmul(transforms[:, :, None, None], offsets.unsqueeze(-1)).squeeze(-1)
    moved = offsets + source[:, :, None, None, :]
    return torch.cat([identity.expand(b, 1, height, width, 2), moved], dim=1)


@float32_math
def combine_motions(motions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-part sampling grids (B, N, h, w, 2) weighted by soft masks (B, N, h, w) -> one grid (B, h, w, 2)."""
    return (motions * weights.unsqueeze(-1)).sum(dim=1)


# ---------------------------------------------------------------- sampling
def warp(image: torch.Tensor, grid: torch.Tensor, align_corners: bool, padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinear ``grid_sample`` of ``image`` (B or 1, C, H, W) at ``grid`` (B, h, w, 2); a batch of one is shared."""
    if image.shape[0] != grid.shape[0]:
        image = image.expand(grid.shape[0], *image.shape[1:])
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


def warp_parts(image: torch.Tensor, grids: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """``image`` (B or 1, C, h, w) warped by each of N grids (B, N, h, w, 2) -> (B, N, C, h, w)."""
    b, n, h, w, _ = grids.shape
    c = image.shape[1]
    images = image.expand(b, *image.shape[1:]).unsqueeze(1).expand(b, n, c, *image.shape[2:])
    warped = warp(images.reshape(b * n, c, *image.shape[2:]), grids.reshape(b * n, h, w, 2), align_corners)
    return warped.view(b, n, c, h, w)


def resize_bilinear(x: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) maps to ``size`` (h, w); unchanged when already that size."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


def resize_grid(grid: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    """Bilinear resize of a sampling grid (B, h, w, 2) to ``size``; unchanged when already that size."""
    if tuple(grid.shape[1:3]) == tuple(size):
        return grid
    return resize_bilinear(grid.permute(0, 3, 1, 2), size, align_corners).permute(0, 2, 3, 1)


# ---------------------------------------------------------------- conv blocks
class ResBlock2d(nn.Module):
    """Pre-activation residual block: norm -> relu -> conv -> norm -> relu -> conv, + input."""

    def __init__(self, in_features: int, kernel_size: int = 3, padding: int = 1, norm=batch_norm, conv=nn.Conv2d):
        super().__init__()
        self.conv1 = conv(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = conv(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = norm(in_features)
        self.norm2 = norm(in_features)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling -> conv -> norm -> relu."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1, norm=batch_norm, conv=nn.Conv2d):
        super().__init__()
        self.conv = conv(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2)
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """conv -> norm -> relu -> 2x2 average pool."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1, norm=batch_norm, conv=nn.Conv2d):
        super().__init__()
        self.conv = conv(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv -> norm -> relu at the same resolution."""

    def __init__(self, in_features, out_features, groups=1, kernel_size=3, padding=1, norm=batch_norm, conv=nn.Conv2d):
        super().__init__()
        self.conv = conv(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = norm(out_features)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


def _features(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    """Hourglass encoder: returns the input and every down block's output."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm, conv=nn.Conv2d):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                in_features if i == 0 else _features(block_expansion, i, max_features),
                _features(block_expansion, i + 1, max_features),
                kernel_size=3,
                padding=1,
                norm=norm,
                conv=conv,
            )
            for i in range(num_blocks)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: up block, then concatenate [upsampled, skip].

    ``extra_features``: channels the caller added to every skip (Monkey-Net's keypoint embedding).
    ``level_filters``: channels of each level's output, coarsest first; ``out_filters`` is the last.
    """

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm, conv=nn.Conv2d,
                 extra_features=0):
        super().__init__()
        blocks = []
        self.level_filters = []
        for i in reversed(range(num_blocks)):
            up_in = (1 if i == num_blocks - 1 else 2) * _features(block_expansion, i + 1, max_features) + extra_features
            up_out = _features(block_expansion, i, max_features)
            blocks.append(UpBlock2d(up_in, up_out, kernel_size=3, padding=1, norm=norm, conv=conv))
            skip = in_features if i == 0 else up_out
            self.level_filters.append(up_out + skip + extra_features)
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features + extra_features

    def forward(self, outs, return_all: bool = False):
        """``outs`` from ``Encoder``; the last level's output, or every level's (coarsest first)."""
        outs = list(outs)
        out = outs.pop()
        levels = []
        for block in self.up_blocks:
            out = torch.cat([block(out), outs.pop()], dim=1)
            levels.append(out)
        return levels if return_all else out


class Hourglass(nn.Module):
    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, norm=batch_norm):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, norm=norm)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, norm=norm)
        self.out_filters = self.decoder.out_filters

    def forward(self, x, return_all: bool = False):
        return self.decoder(self.encoder(x), return_all=return_all)


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


def downsampler(channels: int, scale: float) -> nn.Module:
    """``AntiAliasInterpolation2d`` for ``scale`` < 1; for scale 1 an identity with no weights (no checkpoint keys)."""
    return nn.Identity() if scale == 1 else AntiAliasInterpolation2d(channels, scale)


# ---------------------------------------------------------------- generators and AVD
class WarpingGenerator(nn.Module):
    """Base of the FOMM and MRAA generators: the layers around the warp, with their published names.

    ``build_layers`` adds ``first`` (7x7 SameBlock2d), ``down_blocks``, ``up_blocks``,
    ``bottleneck`` (ResBlock2d ``r0``, ``r1``, ...) and ``final`` (7x7 conv back to image channels).
    A subclass creates its motion network first and then calls ``build_layers`` (the checkpoints'
    key order); how the warped features are decoded is the subclass's own.
    """

    def build_layers(self, num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks):
        widths = [_features(block_expansion, i, max_features) for i in range(num_down_blocks + 1)]
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1]) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(UpBlock2d(widths[i + 1], widths[i]) for i in reversed(range(num_down_blocks)))
        residual = ((f"r{i}", ResBlock2d(widths[-1], kernel_size=3, padding=1)) for i in range(num_bottleneck_blocks))
        self.bottleneck = nn.Sequential(OrderedDict(residual))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Source (B, C, H, W) -> features of every level, highest resolution first."""
        features = [self.first(source)]
        for block in self.down_blocks:
            features.append(block(features[-1]))
        return features


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers through ``sizes``, with BatchNorm1d and ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """Animation via disentanglement (MRAA, TPSMM) on flat motion vectors of ``size``.

    A pose code from the driving motion and an identity code from the source's are decoded
    together into motion with the driving pose and the source's shape. Families subclass it and
    flatten their regions or keypoints into the vectors.
    """

    def __init__(self, size: int, id_bottle_size: int = 64, pose_bottle_size: int = 64):
        super().__init__()
        self.id_encoder = mlp([size, 256, 512, 1024, id_bottle_size])
        self.pose_encoder = mlp([size, 256, 512, 1024, pose_bottle_size])
        self.decoder = mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size])

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """source (1 or B, size), driving (B, size) -> (B, size)."""
        pose = self.pose_encoder(driving)
        identity = self.id_encoder(source.expand(driving.shape[0], -1))
        return self.decoder(torch.cat([pose, identity], dim=1))
