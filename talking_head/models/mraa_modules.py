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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models import blocks
from talking_head.models.blocks import (
    Encoder,
    Hourglass,
    WarpingGenerator,
    combine_motions,
    covariance_gaussians,
    downsampler,
    heatmap_moments,
    local_affine_motions,
    resize_bilinear,
    resize_grid,
    spatial_softmax,
    warp,
    warp_parts,
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


# ---------------------------------------------------------------- region math
def covariance_sqrt(covar: torch.Tensor) -> torch.Tensor:
    """``U diag(sqrt(S))`` of each 2x2 covariance, from the LAPACK SVD on the CPU (published signs)."""
    shape = covar.shape
    u, s, _ = torch.linalg.svd(covar.detach().to("cpu").reshape(-1, 2, 2))
    affine = u * (s**0.5).unsqueeze(-2)
    return affine.reshape(shape).to(covar.device)


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
        self.down = downsampler(num_channels, scale_factor)

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        """The predictor's anti-aliased, downsampled input."""
        return self.down(image)

    def forward(self, image: torch.Tensor) -> Regions:
        heatmap = spatial_softmax(self.regions(self.predictor(self.downsample(image))), self.temperature)
        shift, covar = heatmap_moments(heatmap)
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
        self.region_var = region_var
        self.use_covar_heatmap = use_covar_heatmap
        self.use_deformed_source = use_deformed_source
        self.revert_axis_swap = revert_axis_swap
        self.down = downsampler(num_channels, scale_factor)

    def downsample(self, image: torch.Tensor) -> torch.Tensor:
        """The source at the resolution the motion is estimated at."""
        return self.down(image)

    def heatmaps(self, driving: Regions, source: Regions, h: int, w: int) -> torch.Tensor:
        """Driving minus source Gaussians, a zero background map first: (B, K+1, h, w)."""
        if self.use_covar_heatmap:
            gd = covariance_gaussians(driving.shift, driving.covar, h, w)
            gs = covariance_gaussians(source.shift, source.covar, h, w)
        else:
            eye = torch.eye(2, dtype=driving.shift.dtype, device=driving.shift.device) * self.region_var
            gd = covariance_gaussians(driving.shift, eye.expand(*driving.shift.shape[:2], 2, 2), h, w)
            gs = covariance_gaussians(source.shift, eye.expand(*source.shift.shape[:2], 2, 2), h, w)
        diff = gd - gs
        return torch.cat([diff.new_zeros(diff.shape[0], 1, h, w), diff], dim=1)

    def sparse_motions(self, driving: Regions, source: Regions, h: int, w: int) -> torch.Tensor:
        """For each region (identity background first), where each output point samples the source: (B, K+1, h, w, 2)."""
        affine = torch.matmul(source.affine, torch.linalg.inv(driving.affine))
        if self.revert_axis_swap:
            affine = affine * torch.sign(affine[:, :, 0:1, 0:1])
        return local_affine_motions(driving.shift, source.shift, affine, h, w)

    def forward(self, source_down: torch.Tensor, driving: Regions, source: Regions) -> DenseMotion:
        """``source_down``: the source after ``downsample`` (1 or B, C, h, w); regions with batch B."""
        b = driving.shift.shape[0]
        h, w = source_down.shape[2:]
        motions = self.sparse_motions(driving, source, h, w)
        parts = [self.heatmaps(driving, source, h, w).unsqueeze(2)]
        if self.use_deformed_source:
            parts.append(warp_parts(source_down, motions, align_corners=False))
        features = self.hourglass(torch.cat(parts, dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = combine_motions(motions, mask)
        occlusion = torch.sigmoid(self.occlusion(features))
        return DenseMotion(deformation, occlusion, mask)


# ---------------------------------------------------------------- generator
@dataclass
class GeneratorOutput:
    prediction: torch.Tensor  # (B, C, H, W) in (0, 1)
    motion: DenseMotion


class Generator(WarpingGenerator):
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
        self.build_layers(num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks)

    def forward(self, source: torch.Tensor, features: list[torch.Tensor], source_down: torch.Tensor,
                driving: Regions, source_regions: Regions) -> GeneratorOutput:
        """``source``/``features``/``source_down`` from a batch of one (or B); regions with batch B."""
        motion = self.pixelwise_flow_predictor(source_down, driving, source_regions)

        def blend(skip, current):
            size = skip.shape[2:]
            occ = resize_bilinear(motion.occlusion, size, align_corners=False)
            warped = warp(skip, resize_grid(motion.deformation, size, align_corners=False), align_corners=False) * occ
            return warped if current is None else warped + current * (1 - occ)

        out = self.bottleneck(blend(features[-1], None))
        for i, block in enumerate(self.up_blocks):
            out = block(blend(features[-(i + 1)], out))
        out = blend(features[0], out)
        out = torch.sigmoid(self.final(out))
        return GeneratorOutput(blend(source, out), motion)


# ---------------------------------------------------------------- animation via disentanglement
class AVDNetwork(blocks.AVDNetwork):
    """MRAA's AVD network: pose from the driving regions, identity (shape) from the source's.

    Region embedding per region: [shift_x, shift_y, a00, a01, a10, a11]; output covar = A A^T.
    """

    def __init__(self, num_regions, id_bottle_size=64, pose_bottle_size=64, revert_axis_swap=True):
        super().__init__(6 * num_regions, id_bottle_size, pose_bottle_size)
        self.num_regions = num_regions
        self.revert_axis_swap = revert_axis_swap

    @staticmethod
    def embed(shift: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        b, k = shift.shape[:2]
        return torch.cat([shift, affine.reshape(b, k, 4)], dim=-1).reshape(b, -1)

    def forward(self, source: Regions, driving: Regions) -> Regions:
        src_affine = source.affine
        if self.revert_axis_swap:
            rel = torch.matmul(source.affine, torch.linalg.inv(driving.affine))
            src_affine = src_affine * torch.sign(rel[:, :, 0:1, 0:1])
        out = super().forward(self.embed(source.shift, src_affine), self.embed(driving.shift, driving.affine))
        out = out.view(-1, self.num_regions, 6)
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
