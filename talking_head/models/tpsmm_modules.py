"""Networks of the Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022).

Attribute names follow the published checkpoints (``yoyo-nb/Thin-Plate-Spline-Motion-Model``),
so each module's ``state_dict()`` equals the corresponding top-level entry of a published
``*.pth.tar``: ``kp_detector``, ``dense_motion_network``, ``inpainting_network``,
``avd_network``, ``bg_predictor``.

Coordinates are normalised (x, y) in [-1, 1] with the align_corners=True convention throughout.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models import blocks
from talking_head.models.blocks import (
    DownBlock2d,
    Hourglass,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    combine_motions,
    downsampler,
    instance_norm,
    keypoints_to_gaussian,
    make_coordinate_grid,
    resize_grid,
    warp,
    warp_parts,
)
from talking_head.models.resnet import ResNet18
from talking_head.precision import float32_math

POINTS_PER_TPS = 5


# ---------------------------------------------------------------- thin-plate splines
def _tps_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """U(r^2) = r^2 log(r^2 + 1e-9), on SQUARED distances as the published model does."""
    return squared_distance * torch.log(squared_distance + 1e-9)


@float32_math
def fit_tps(control: torch.Tensor, target: torch.Tensor, regulariser: float = 0.01):
    """Thin-plate splines mapping ``control`` points onto ``target`` points, one per group.

    control, target: (B, G, N, 2). Returns (affine (B, G, 2, 3), weights (B, G, N, 2)).
    The system matrix is regularised with ``regulariser * I`` on its whole diagonal.
    """
    b, g, n, _ = control.shape
    kernel = _tps_kernel(((control[:, :, :, None] - control[:, :, None, :]) ** 2).sum(-1))
    homogeneous = torch.cat([control, control.new_ones(b, g, n, 1)], dim=3)  # (B, G, N, 3)
    top = torch.cat([kernel, homogeneous], dim=3)
    bottom = torch.cat([homogeneous.transpose(2, 3), control.new_zeros(b, g, 3, 3)], dim=3)
    system = torch.cat([top, bottom], dim=2)
    system = system + regulariser * torch.eye(n + 3, dtype=control.dtype, device=control.device)
    rhs = torch.cat([target, target.new_zeros(b, g, 3, 2)], dim=2)
    params = torch.linalg.inv(system) @ rhs
    return params[:, :, n:, :].transpose(2, 3), params[:, :, :n, :]


@float32_math
def warp_tps(points: torch.Tensor, control: torch.Tensor, affine: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Apply fitted splines to points (P, 2): returns (B, G, P, 2)."""
    linear = (affine[:, :, None, :, :2] @ points[None, None, :, :, None]).squeeze(-1) + affine[:, :, None, :, 2]
    squared = ((points[None, None, :, None, :] - control[:, :, None, :, :]) ** 2).sum(-1)  # (B, G, P, N)
    return linear + _tps_kernel(squared) @ weights


# ---------------------------------------------------------------- keypoints and background
class KeypointDetector(nn.Module):
    """ResNet-18 regressing ``num_tps * 5`` keypoints (x, y) in (-1, 1) from a [0, 1] RGB image."""

    def __init__(self, num_tps: int = 10, num_channels: int = 3):
        super().__init__()
        self.num_points = num_tps * POINTS_PER_TPS
        self.fg_encoder = ResNet18(num_channels, self.num_points * 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = torch.sigmoid(self.fg_encoder(image)) * 2 - 1
        return out.view(image.shape[0], self.num_points, 2)


class BackgroundMotionPredictor(nn.Module):
    """ResNet-18 on [source, driving] giving a (B, 3, 3) affine background motion (last row 0 0 1)."""

    def __init__(self, num_channels: int = 3):
        super().__init__()
        self.bg_encoder = ResNet18(2 * num_channels, 6)

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        b = driving.shape[0]
        pair = torch.cat([source.expand(b, -1, -1, -1), driving], dim=1)
        top = self.bg_encoder(pair).view(b, 2, 3)
        bottom = torch.tensor([0.0, 0.0, 1.0], dtype=top.dtype, device=top.device).expand(b, 1, 3)
        return torch.cat([top, bottom], dim=1)


class AVDNetwork(blocks.AVDNetwork):
    """TPSMM's AVD network: pose from the driving keypoints, identity from the source's."""

    def __init__(self, num_tps: int = 10, id_bottle_size: int = 64, pose_bottle_size: int = 64):
        super().__init__(num_tps * POINTS_PER_TPS * 2, id_bottle_size, pose_bottle_size)

    def forward(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        """kp_source (1 or B, K, 2), kp_driving (B, K, 2) -> keypoints (B, K, 2)."""
        flat = super().forward(kp_source.flatten(1), kp_driving.flatten(1))
        return flat.view(kp_driving.shape)


# ---------------------------------------------------------------- dense motion
class DenseMotionNetwork(nn.Module):
    """Keypoints -> TPS warps -> contribution maps, a dense deformation and multi-resolution occlusion."""

    def __init__(
        self,
        block_expansion: int = 64,
        num_blocks: int = 5,
        max_features: int = 1024,
        num_tps: int = 10,
        num_channels: int = 3,
        scale_factor: float = 0.25,
        kp_variance: float = 0.01,
        occlusion_levels: int = 4,
    ):
        super().__init__()
        self.num_tps = num_tps
        self.kp_variance = kp_variance
        self.down = downsampler(num_channels, scale_factor)
        in_features = num_channels * (num_tps + 1) + num_tps * POINTS_PER_TPS + 1
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features, norm=instance_norm)
        decoder_channels = self.hourglass.decoder.level_filters
        last = decoder_channels[-1]
        self.maps = nn.Conv2d(last, num_tps + 1, kernel_size=7, padding=3)
        self.up_levels = int(round(math.log2(1 / scale_factor)))
        self.up = nn.ModuleList(
            UpBlock2d(last // 2**i, last // 2 ** (i + 1), kernel_size=3, padding=1, norm=instance_norm)
            for i in range(self.up_levels)
        )
        self.decoder_levels = occlusion_levels - self.up_levels
        occlusion_in = decoder_channels[len(decoder_channels) - self.decoder_levels :]
        occlusion_in += [last // 2 ** (i + 1) for i in range(self.up_levels)]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=7, padding=3) for c in occlusion_in)

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        """The anti-aliased low-resolution image the motion is estimated on."""
        return self.down(image)

    def gaussians(self, kp: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return keypoints_to_gaussian(kp, height, width, self.kp_variance)

    @float32_math
    def transformations(self, kp_driving, kp_source, height, width, bg_param=None) -> torch.Tensor:
        """(B, num_tps + 1, H, W, 2) source coordinates: background (identity or affine), then each TPS."""
        b = kp_driving.shape[0]
        grid = make_coordinate_grid(height, width, kp_driving.dtype, kp_driving.device)
        control = kp_driving.view(b, self.num_tps, POINTS_PER_TPS, 2)
        target = kp_source.expand(b, -1, -1).reshape(b, self.num_tps, POINTS_PER_TPS, 2)
        affine, weights = fit_tps(control, target)
        warped = warp_tps(grid.view(-1, 2), control, affine, weights).view(b, self.num_tps, height, width, 2)
        if bg_param is None:
            background = grid.expand(b, 1, height, width, 2)
        else:
            homogeneous = torch.cat([grid, grid.new_ones(height, width, 1)], dim=-1)
            moved = torch.einsum("bij,hwj->bhwi", bg_param, homogeneous)
            background = (moved[..., :2] / moved[..., 2:3]).unsqueeze(1)
        return torch.cat([background, warped], dim=1)

    def forward(self, source_small, kp_driving, kp_source, source_gaussians=None, bg_param=None) -> dict:
        """source_small: ``downsample(source)`` (1 or B, C, h, w); keypoints (B or 1, K, 2).

        Returns ``deformation`` (B, h, w, 2), ``contribution_maps`` (B, num_tps + 1, h, w),
        ``occlusion_map`` (list of (B, 1, h_i, w_i), coarse to fine) and ``deformed_source``.
        """
        b = kp_driving.shape[0]
        h, w = source_small.shape[2:]
        if source_gaussians is None:
            source_gaussians = self.gaussians(kp_source, h, w)
        heatmaps = self.gaussians(kp_driving, h, w) - source_gaussians
        heatmaps = torch.cat([heatmaps.new_zeros(b, 1, h, w), heatmaps], dim=1)

        transformations = self.transformations(kp_driving, kp_source, h, w, bg_param)
        deformed = warp_parts(source_small, transformations, align_corners=True)  # (B, num_tps + 1, C, h, w)
        decoded = self.hourglass(torch.cat([heatmaps, deformed.flatten(1, 2)], dim=1), return_all=True)

        contribution = F.softmax(self.maps(decoded[-1]), dim=1)
        deformation = combine_motions(transformations, contribution)

        occlusion = [
            torch.sigmoid(self.occlusion[i](decoded[len(decoded) - self.decoder_levels + i]))
            for i in range(self.decoder_levels)
        ]
        out = decoded[-1]
        for i, block in enumerate(self.up):
            out = block(out)
            occlusion.append(torch.sigmoid(self.occlusion[self.decoder_levels + i](out)))
        return {
            "deformation": deformation,
            "contribution_maps": contribution,
            "occlusion_map": occlusion,
            "deformed_source": deformed,
        }


# ---------------------------------------------------------------- inpainting generator
def warp_resized(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """Sample (1 or B, C, H, W) features at a deformation (B, h, w, 2) resized to H x W (align_corners=True)."""
    return warp(features, resize_grid(deformation, features.shape[2:], align_corners=True), align_corners=True)


class InpaintingNetwork(nn.Module):
    """Encoder on the source, warped and occlusion-masked features at every scale, decoder to RGB."""

    def __init__(self, num_channels: int = 3, block_expansion: int = 64, max_features: int = 512, num_down_blocks: int = 3):
        super().__init__()
        self.num_down_blocks = num_down_blocks
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3, norm=instance_norm)
        down, up, res = [], [], []
        for i in range(num_down_blocks):
            in_features = min(max_features, block_expansion * 2**i)
            out_features = min(max_features, block_expansion * 2 ** (i + 1))
            down.append(DownBlock2d(in_features, out_features, kernel_size=3, padding=1, norm=instance_norm))
            decoder_in = out_features if i == num_down_blocks - 1 else 2 * out_features
            up.append(UpBlock2d(decoder_in, in_features, kernel_size=3, padding=1, norm=instance_norm))
            res += [ResBlock2d(decoder_in, kernel_size=3, padding=1, norm=instance_norm) for _ in range(2)]
        self.down_blocks = nn.ModuleList(down)
        self.up_blocks = nn.ModuleList(up[::-1])
        self.resblock = nn.ModuleList(res[::-1])
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Source features, finest first: [full, 1/2, 1/4, ...]."""
        maps = [self.first(source)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        return maps

    def forward(self, source: torch.Tensor, encoded: list[torch.Tensor], deformation, occlusion) -> torch.Tensor:
        """Prediction (B, C, H, W) in (0, 1); ``occlusion`` coarse to fine, one per encoder level."""
        out = warp_resized(encoded[-1], deformation) * occlusion[0]
        for i in range(self.num_down_blocks):
            out = self.up_blocks[i](self.resblock[2 * i + 1](self.resblock[2 * i](out)))
            skip = warp_resized(encoded[-(i + 2)], deformation) * occlusion[i + 1]
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, skip], dim=1)
        last = occlusion[-1]
        out = torch.sigmoid(self.final(out * (1 - last) + skip))
        return out * (1 - last) + warp_resized(source, deformation) * last
