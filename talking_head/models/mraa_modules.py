"""Networks of MRAA (Motion Representations for Articulated Animation, Siarohin et al., CVPR 2021).

Attribute names follow the published checkpoints (``region_predictor``, ``generator``,
``avd_network``, ``bg_predictor``), so ``state_dict()`` keys and shapes equal the published files.

Conventions of the published model, kept here on purpose:
- coordinates are (x, y) in [-1, 1] on grids with ``x_i = 2 i / (W - 1) - 1``;
- every ``grid_sample`` and bilinear resize uses ``align_corners=False`` (unlike FOMM);
- a region's affine is ``U diag(sqrt(S))`` from the LAPACK SVD of its covariance, computed on the
  CPU; the column signs LAPACK picks are part of the trained behaviour (the AVD network sees them).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models.blocks import (
    AntiAliasInterpolation2d,
    DownBlock2d,
    Encoder,
    Hourglass,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    make_coordinate_grid,
)


@dataclass
class Regions:
    """Region parameters of a batch: centres (B, K, 2), covariances and affines (B, K, 2, 2).

    ``heatmap`` (B, K, h, w) is the softmax region map the parameters came from (None for
    parameters that were computed, e.g. by the AVD network or relative transfer).
    """

    shift: torch.Tensor
    covar: torch.Tensor
    affine: torch.Tensor
    heatmap: torch.Tensor | None = None

    def expand(self, batch: int) -> "Regions":
        """The same regions repeated to ``batch`` (from a batch of one)."""
        def grow(t):
            return None if t is None else t.expand(batch, *t.shape[1:])

        return Regions(grow(self.shift), grow(self.covar), grow(self.affine), grow(self.heatmap))


# ---------------------------------------------------------------- sampling helpers
def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear ``grid_sample`` with zero padding and align_corners=False, as MRAA samples everywhere."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resize_bilinear(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of an NCHW map, align_corners=False (a no-op at the same size)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def covariance_sqrt(covar: torch.Tensor) -> torch.Tensor:
    """``U diag(sqrt(S))`` of each 2x2 covariance, from the LAPACK SVD on the CPU (published signs)."""
    shape = covar.shape
    u, s, _ = torch.linalg.svd(covar.detach().to("cpu").reshape(-1, 2, 2))
    affine = u * (s**0.5).unsqueeze(-2)
    return affine.reshape(shape).to(covar.device)


def region_gaussians(shift: torch.Tensor, covar: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Full-covariance Gaussians exp(-0.5 (z - shift)^T covar^-1 (z - shift)) as (B, K, H, W) maps."""
    grid = make_coordinate_grid(height, width, shift.dtype, shift.device)
    diff = grid[None, None] - shift[:, :, None, None, :]
    inv = torch.linalg.inv(covar)[:, :, None, None]
    quad = torch.matmul(torch.matmul(diff.unsqueeze(-2), inv), diff.unsqueeze(-1))
    return torch.exp(-0.5 * quad[..., 0, 0])


# ---------------------------------------------------------------- region predictor
class RegionPredictor(nn.Module):
    """Finds K regions: softmax heatmaps -> centre, covariance and its square root (PCA affine)."""

    def __init__(self, num_regions, num_channels, block_expansion, max_features, num_blocks, temperature,
                 scale_factor=1.0, pad=3, pca_based=True):
        super().__init__()
        if not pca_based:
            raise ValueError("only the PCA-based region predictor (pca_based: True) of the published models is supported")
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.regions = nn.Conv2d(self.predictor.out_filters, num_regions, kernel_size=7, padding=pad)
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        return self.down(image) if self.scale_factor != 1 else image

    def forward(self, image: torch.Tensor) -> Regions:
        logits = self.regions(self.predictor(self.downsample(image)))
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        weights = heatmap.unsqueeze(-1)
        grid = make_coordinate_grid(h, w, heatmap.dtype, heatmap.device)[None, None]
        shift = (weights * grid).sum(dim=(2, 3))
        diff = grid - shift[:, :, None, None, :]
        outer = diff.unsqueeze(-1) * diff.unsqueeze(-2)
        covar = (outer * weights.unsqueeze(-1)).sum(dim=(2, 3))
        return Regions(shift, covar, covariance_sqrt(covar), heatmap)


# ---------------------------------------------------------------- dense motion
@dataclass
class DenseMotion:
    """What the flow predictor gives: sampling grid (B, h, w, 2) in source coordinates, occlusion
    (B, 1, h, w) (1 = take the warped source) and the per-region soft assignment (B, K+1, h, w)."""

    deformation: torch.Tensor
    occlusion: torch.Tensor
    mask: torch.Tensor


class PixelwiseFlowPredictor(nn.Module):
    """Combines K+1 per-region affine motions (background first) into one dense flow + occlusion."""

    def __init__(self, num_regions, num_channels, block_expansion, num_blocks, max_features, scale_factor=1.0,
                 region_var=0.01, use_covar_heatmap=True, use_deformed_source=True, estimate_occlusion_map=True,
                 revert_axis_swap=True):
        super().__init__()
        if not estimate_occlusion_map:
            raise ValueError("the published MRAA models all estimate an occlusion map (estimate_occlusion_map: True)")
        per_region = (num_channels if use_deformed_source else 0) + 1
        self.hourglass = Hourglass(block_expansion, (num_regions + 1) * per_region, num_blocks, max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_regions + 1, kernel_size=7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
        self.num_regions = num_regions
        self.scale_factor = scale_factor
        self.region_var = region_var
        self.use_covar_heatmap = use_covar_heatmap
        self.use_deformed_source = use_deformed_source
        self.revert_axis_swap = revert_axis_swap
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        return self.down(image) if self.scale_factor != 1 else image

    def heatmaps(self, driving: Regions, source: Regions, h: int, w: int) -> torch.Tensor:
        """Driving minus source Gaussians, a zero background map first: (B, K+1, h, w)."""
        if self.use_covar_heatmap:
            gd = region_gaussians(driving.shift, driving.covar, h, w)
            gs = region_gaussians(source.shift, source.covar, h, w)
        else:
            eye = torch.eye(2, dtype=driving.shift.dtype, device=driving.shift.device) * self.region_var
            gd = region_gaussians(driving.shift, eye.expand(*driving.shift.shape[:2], 2, 2), h, w)
            gs = region_gaussians(source.shift, eye.expand(*source.shift.shape[:2], 2, 2), h, w)
        diff = gd - gs
        return torch.cat([diff.new_zeros(diff.shape[0], 1, h, w), diff], dim=1)

    def sparse_motions(self, driving: Regions, source: Regions, h: int, w: int) -> torch.Tensor:
        """For each region (identity background first), where each output point samples the source: (B, K+1, h, w, 2)."""
        b = driving.shift.shape[0]
        identity = make_coordinate_grid(h, w, driving.shift.dtype, driving.shift.device)[None, None]
        local = identity - driving.shift[:, :, None, None, :]
        affine = torch.matmul(source.affine, torch.linalg.inv(driving.affine))
        if self.revert_axis_swap:
            affine = affine * torch.sign(affine[:, :, 0:1, 0:1])
        moved = torch.matmul(affine[:, :, None, None], local.unsqueeze(-1)).squeeze(-1)
        moved = moved + source.shift[:, :, None, None, :]
        return torch.cat([identity.expand(b, 1, h, w, 2), moved], dim=1)

    def forward(self, source_down: torch.Tensor, driving: Regions, source: Regions) -> DenseMotion:
        """``source_down``: the source after ``downsample`` (1 or B, C, h, w); regions with batch B."""
        b = driving.shift.shape[0]
        _, c, h, w = source_down.shape
        n = self.num_regions + 1
        motions = self.sparse_motions(driving, source, h, w)
        parts = [self.heatmaps(driving, source, h, w).unsqueeze(2)]
        if self.use_deformed_source:
            src = source_down.unsqueeze(1).expand(b, n, c, h, w).reshape(b * n, c, h, w)
            deformed = warp(src, motions.reshape(b * n, h, w, 2)).view(b, n, c, h, w)
            parts.append(deformed)
        features = self.hourglass(torch.cat(parts, dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 1)
        occlusion = torch.sigmoid(self.occlusion(features))
        return DenseMotion(deformation, occlusion, mask)


# ---------------------------------------------------------------- generator
@dataclass
class GeneratorOutput:
    prediction: torch.Tensor  # (B, C, H, W) in (0, 1)
    motion: DenseMotion


class Generator(nn.Module):
    """Encoder-decoder that warps the source features (and the source image) with the dense motion.

    At every skip level the warped encoder features are blended in by the occlusion map:
    ``warp(skip) * occ + decoded * (1 - occ)``; the last blend uses the source image itself.
    """

    def __init__(self, num_regions, num_channels, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, pixelwise_flow_predictor_params, skips=True, revert_axis_swap=True):
        super().__init__()
        if not skips:
            raise ValueError("the published MRAA generators all use skip connections (skips: True)")
        self.pixelwise_flow_predictor = PixelwiseFlowPredictor(
            num_regions=num_regions, num_channels=num_channels, revert_axis_swap=revert_axis_swap,
            **pixelwise_flow_predictor_params,
        )
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        feats = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(feats[i], feats[i + 1]) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(UpBlock2d(feats[i + 1], feats[i]) for i in reversed(range(num_down_blocks)))
        self.bottleneck = nn.Sequential(
            OrderedDict((f"r{i}", ResBlock2d(feats[-1], kernel_size=3, padding=1)) for i in range(num_bottleneck_blocks))
        )
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Source-only work: encoder features at every level, highest resolution first."""
        out = self.first(source)
        feats = [out]
        for block in self.down_blocks:
            out = block(out)
            feats.append(out)
        return feats

    def forward(self, source: torch.Tensor, features: list[torch.Tensor], source_down: torch.Tensor,
                driving: Regions, source_regions: Regions) -> GeneratorOutput:
        """``source``/``features``/``source_down`` from a batch of one (or B); regions with batch B."""
        b = driving.shift.shape[0]
        motion = self.pixelwise_flow_predictor(source_down, driving, source_regions)
        flow_nchw = motion.deformation.permute(0, 3, 1, 2)

        def blend(skip, current):
            size = skip.shape[2:]
            grid = resize_bilinear(flow_nchw, size).permute(0, 2, 3, 1)
            occ = resize_bilinear(motion.occlusion, size)
            warped = warp(skip.expand(b, *skip.shape[1:]), grid) * occ
            return warped if current is None else warped + current * (1 - occ)

        out = self.bottleneck(blend(features[-1], None))
        for i, block in enumerate(self.up_blocks):
            out = block(blend(features[-(i + 1)], out))
        out = blend(features[0], out)
        out = torch.sigmoid(self.final(out))
        return GeneratorOutput(blend(source, out), motion)


# ---------------------------------------------------------------- animation via disentanglement
def _mlp(sizes: list[int], inplace: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(sizes[i + 1]), nn.ReLU(inplace=inplace)]
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """Animation via disentanglement: pose from the driving regions, identity (shape) from the source's.

    Region embedding per region: [shift_x, shift_y, a00, a01, a10, a11]; output covar = A A^T.
    """

    def __init__(self, num_regions, id_bottle_size=64, pose_bottle_size=64, revert_axis_swap=True):
        super().__init__()
        size = 6 * num_regions
        self.num_regions = num_regions
        self.revert_axis_swap = revert_axis_swap
        self.id_encoder = _mlp([size, 256, 512, 1024, id_bottle_size], inplace=True)
        self.pose_encoder = _mlp([size, 256, 512, 1024, pose_bottle_size], inplace=True)
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size], inplace=False)

    @staticmethod
    def embed(shift: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        b, k = shift.shape[:2]
        return torch.cat([shift, affine.reshape(b, k, 4)], dim=-1).reshape(b, -1)

    def forward(self, source: Regions, driving: Regions) -> Regions:
        src_affine = source.affine
        if self.revert_axis_swap:
            rel = torch.matmul(source.affine, torch.linalg.inv(driving.affine))
            src_affine = src_affine * torch.sign(rel[:, :, 0:1, 0:1])
        pose = self.pose_encoder(self.embed(driving.shift, driving.affine))
        ident = self.id_encoder(self.embed(source.shift, src_affine))
        out = self.decoder(torch.cat([pose, ident], dim=1)).view(-1, self.num_regions, 6)
        affine = out[:, :, 2:].reshape(-1, self.num_regions, 2, 2)
        return Regions(out[:, :, :2], torch.matmul(affine, affine.transpose(-1, -2)), affine)


# ---------------------------------------------------------------- background motion (training only)
class BGMotionPredictor(nn.Module):
    """Global background motion as a 3x3 matrix. Saved in the checkpoints but unused for animation."""

    def __init__(self, num_channels, block_expansion, max_features, num_blocks, bg_type="zero"):
        super().__init__()
        sizes = {"zero": 0, "shift": 2, "affine": 6, "perspective": 8}
        if bg_type not in sizes:
            raise ValueError(f"unknown bg_type {bg_type!r}")
        self.bg_type = bg_type
        if bg_type != "zero":
            self.encoder = Encoder(block_expansion, num_channels * 2, num_blocks, max_features)
            self.fc = nn.Linear(min(max_features, block_expansion * 2**num_blocks), sizes[bg_type])

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        b = source.shape[0]
        out = torch.eye(3, dtype=source.dtype, device=source.device).repeat(b, 1, 1)
        if self.bg_type == "zero":
            return out
        p = self.fc(self.encoder(torch.cat([source, driving], dim=1))[-1].mean(dim=(2, 3)))
        if self.bg_type == "shift":
            out[:, :2, 2] = p
        else:
            out[:, :2, :] = p[:, :6].view(b, 2, 3)
            if self.bg_type == "perspective":
                out[:, 2, :2] = p[:, 6:]
        return out
