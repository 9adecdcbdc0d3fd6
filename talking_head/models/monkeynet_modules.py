"""Monkey-Net networks (Siarohin et al., CVPR 2019), named like the published checkpoints.

The published model stores every convolution as a Conv3d with a (1, k, k) kernel over (B, C, T, H, W)
video tensors, i.e. a 2-D convolution applied to each frame. Here frames are folded into the batch:
modules take 4-D (N, C, H, W) tensors and keep the 5-D weights, so ``state_dict()`` equals the
published one. Sampling follows torch 0.4.1, the version the checkpoints were trained with:
``grid_sample`` aligns corners, downsampling picks every n-th pixel, deformations are resized
bilinearly (``interpolation_mode='trilinear'`` on a depth-1 video) with align_corners=False.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models import blocks
from talking_head.models.blocks import (
    Encoder,
    ResBlock2d,
    SameBlock2d,
    covariance_gaussians,
    heatmap_moments,
    make_coordinate_grid,
    resize_bilinear,
    spatial_softmax,
    warp,
    warp_parts,
)

HEATMAP_EPS = 1e-7  # added to detector heatmaps before taking moments (published gaussian2kp)


# ---------------------------------------------------------------- per-frame blocks
class FrameConv(nn.Conv3d):
    """Conv3d with a (1, k, k) kernel, run as a 2-D convolution on (N, C, H, W) frames.

    Takes ``blocks``' conv-factory arguments, so the shared blocks get the published 5-D weights.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int | None = None,
                 groups: int = 1):
        pad = kernel_size // 2 if padding is None else padding
        super().__init__(in_features, out_features, (1, kernel_size, kernel_size), padding=(0, pad, pad), groups=groups)

    def forward(self, x):
        return F.conv2d(x, self.weight[:, :, 0], self.bias, padding=self.padding[1:], groups=self.groups)


class Decoder(blocks.Decoder):
    """``blocks.Decoder`` with per-frame convs and, unless ``last_conv`` is False, a final 3x3 conv.

    ``extra_features``: channels concatenated to every skip (the generator's keypoint embedding).
    """

    def __init__(self, block_expansion, in_features, out_features, num_blocks, max_features, extra_features=0,
                 last_conv=True):
        super().__init__(block_expansion, in_features, num_blocks, max_features, conv=FrameConv,
                         extra_features=extra_features)
        self.conv = FrameConv(self.out_filters, out_features, 3) if last_conv else None

    def forward(self, skips):
        out = super().forward(skips)
        return self.conv(out) if self.conv is not None else out


class Hourglass(nn.Module):
    """Per-frame encoder and decoder with a final conv to ``out_features`` (published Hourglass)."""

    def __init__(self, block_expansion, in_features, out_features, num_blocks, max_features):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, conv=FrameConv)
        self.decoder = Decoder(block_expansion, in_features, out_features, num_blocks, max_features)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def downsample(image: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """Nearest downsampling by ``scale_factor`` (keeps pixel (i/s, j/s)), as torch 0.4.1 interpolate does."""
    if scale_factor == 1:
        return image
    step = round(1 / scale_factor)
    if abs(step * scale_factor - 1) > 1e-6:
        return F.interpolate(image, scale_factor=scale_factor, mode="nearest")
    return image[:, :, ::step, ::step]


# ---------------------------------------------------------------- keypoint math
def keypoint_moments(heatmap: torch.Tensor, clip_variance: float | None):
    """Softmax heatmaps (N, K, H, W) -> mean (N, K, 2) and covariance (N, K, 2, 2), published gaussian2kp.

    With ``clip_variance``, a covariance whose smallest singular value is below it is scaled up to it.
    """
    mean, var = heatmap_moments(heatmap, eps=HEATMAP_EPS)
    if clip_variance:
        sg = smallest_singular(var).unsqueeze(-1)
        var = torch.clamp(sg, min=clip_variance) * var / sg
    return mean, var


def smallest_singular(m: torch.Tensor) -> torch.Tensor:
    """Closed-form smallest singular value of 2x2 matrices (..., 2, 2) -> (..., 1)."""
    a, b, c, d = m[..., 0, 0:1], m[..., 0, 1:2], m[..., 1, 0:1], m[..., 1, 1:2]
    s1 = a**2 + b**2 + c**2 + d**2
    s2 = torch.sqrt((a**2 + b**2 - c**2 - d**2) ** 2 + 4 * (a * c + b * d) ** 2)
    return torch.sqrt((s1 - s2) / 2)


def symmetric_positive(m: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """(M + M^T) / 2 with eigenvalues <= 0 replaced by ``floor`` (published make_symetric_matrix), 2x2 closed form."""
    s = (m + m.transpose(-1, -2)) / 2
    a, b, d = s[..., 0, 0], s[..., 0, 1], s[..., 1, 1]
    half_trace = (a + d) / 2
    radius = torch.sqrt(((a - d) / 2) ** 2 + b**2)
    low, high = half_trace - radius, half_trace + radius
    new_low = torch.where(low <= 0, torch.full_like(low, floor), low)
    new_high = torch.where(high <= 0, torch.full_like(high, floor), high)
    eye = torch.eye(2, dtype=m.dtype, device=m.device)
    # projector on the larger eigenvalue's eigenvector: (S - low I) / (high - low); isotropic S when radius = 0
    safe = torch.where(radius > 0, 2 * radius, torch.ones_like(radius))
    p_high = (s - low[..., None, None] * eye) / safe[..., None, None]
    p_high = torch.where((radius > 0)[..., None, None], p_high, eye / 2)
    p_low = eye - p_high
    return s + (new_low - low)[..., None, None] * p_low + (new_high - high)[..., None, None] * p_high


# ---------------------------------------------------------------- keypoint detector
class KPDetector(nn.Module):
    """Hourglass on the (downsampled) frame -> softmax heatmaps -> keypoint mean and covariance."""

    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 kp_variance="matrix", scale_factor=1, clip_variance=None):
        super().__init__()
        if kp_variance != "matrix":
            raise ValueError(f"Monkey-Net port supports kp_variance='matrix' only (got {kp_variance!r}).")
        self.predictor = Hourglass(block_expansion, num_channels, num_kp, num_blocks, max_features)
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.clip_variance = clip_variance

    def forward(self, image: torch.Tensor) -> dict:
        heatmap = spatial_softmax(self.predictor(downsample(image, self.scale_factor)), self.temperature)
        mean, var = keypoint_moments(heatmap, self.clip_variance)
        return {"mean": mean, "var": var, "heatmap": heatmap}


# ---------------------------------------------------------------- movement embedding
class MovementEmbedding(nn.Module):
    """Keypoint movement as image channels (published MovementEmbeddingModule, no weights).

    Per keypoint (background first when ``add_bg_feature_map``): [heatmap difference or driving heatmap,
    (x, y) shift source - driving, source warped by that shift], keypoint-major.
    """

    def __init__(self, num_kp, num_channels, use_deformed_source_image=False, use_difference=False, use_heatmap=True,
                 add_bg_feature_map=False, heatmap_type="gaussian", norm_const="sum", scale_factor=1):
        super().__init__()
        if heatmap_type not in ("gaussian", "difference"):
            raise ValueError(f"unknown heatmap_type {heatmap_type!r}")
        self.use_heatmap = use_heatmap
        self.use_difference = use_difference
        self.use_deformed_source_image = use_deformed_source_image
        self.add_bg = add_bg_feature_map
        self.heatmap_type = heatmap_type
        self.norm_const = norm_const
        self.scale_factor = scale_factor
        per_kp = int(use_heatmap) + 2 * int(use_difference) + num_channels * int(use_deformed_source_image)
        self.out_channels = per_kp * (num_kp + int(add_bg_feature_map))

    def _normalise(self, heatmap):
        if self.norm_const == "sum":
            return heatmap / heatmap.sum(dim=(2, 3), keepdim=True)
        return heatmap / self.norm_const

    def forward(self, source_small: torch.Tensor, kp_driving: dict, kp_source: dict) -> torch.Tensor:
        """source_small: the source already downsampled by ``scale_factor`` (1 or N, C, h, w)."""
        n = kp_driving["mean"].shape[0]
        h, w = source_small.shape[2:]
        parts = []
        if self.use_heatmap:
            heat = self._normalise(covariance_gaussians(kp_driving["mean"], kp_driving["var"], h, w))
            if self.heatmap_type == "difference":
                heat = heat - self._normalise(covariance_gaussians(kp_source["mean"], kp_source["var"], h, w))
            if self.add_bg:
                heat = torch.cat([heat.new_zeros(heat.shape[0], 1, h, w), heat], dim=1)
            parts.append(heat.unsqueeze(2))
        shift = None
        if self.use_difference or self.use_deformed_source_image:
            shift = kp_source["mean"] - kp_driving["mean"]
            if self.add_bg:
                shift = torch.cat([shift.new_zeros(shift.shape[0], 1, 2), shift], dim=1)
        if self.use_difference:
            parts.append(shift[:, :, :, None, None].expand(-1, -1, -1, h, w))
        if self.use_deformed_source_image:
            grid = make_coordinate_grid(h, w, shift.dtype, shift.device)
            parts.append(warp_parts(source_small, grid[None, None] + shift[:, :, None, None, :], align_corners=True))
        return torch.cat(parts, dim=2).reshape(n, -1, h, w)


# ---------------------------------------------------------------- dense motion
class DenseMotion(nn.Module):
    """Keypoint shifts + source -> per-keypoint soft masks and a correction -> deformation grid."""

    def __init__(self, block_expansion, num_blocks, max_features, mask_embedding_params, num_kp, num_channels,
                 use_correction=True, use_mask=True, num_group_blocks=0, scale_factor=1):
        super().__init__()
        self.mask_embedding = MovementEmbedding(num_kp, num_channels, add_bg_feature_map=True, **mask_embedding_params)
        channels = self.mask_embedding.out_channels
        self.group_blocks = nn.ModuleList(
            SameBlock2d(channels, channels, groups=num_kp + 1, kernel_size=1, padding=0, conv=FrameConv)
            for _ in range(num_group_blocks)
        )
        out = (num_kp + 1) * int(use_mask) + 2 * int(use_correction)
        self.hourglass = Hourglass(block_expansion, channels, out, num_blocks, max_features)
        self.num_kp = num_kp
        self.use_mask = use_mask
        self.use_correction = use_correction
        self.scale_factor = scale_factor

    def forward(self, source_small: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict:
        x = self.mask_embedding(source_small, kp_driving, kp_source)
        for block in self.group_blocks:
            x = F.leaky_relu(block(x), 0.2)
        logits = self.hourglass(x)
        n, _, h, w = logits.shape
        relative = logits.new_zeros(n, 2, h, w)
        mask = None
        if self.use_mask:
            mask = F.softmax(logits[:, : self.num_kp + 1], dim=1)
            shift = kp_source["mean"] - kp_driving["mean"]
            shift = torch.cat([shift.new_zeros(n, 1, 2), shift], dim=1)
            relative = (shift[:, :, :, None, None] * mask.unsqueeze(2)).sum(dim=1)
        if self.use_correction:
            relative = relative + logits[:, -2:]
        grid = make_coordinate_grid(h, w, logits.dtype, logits.device)
        deformation = relative.permute(0, 2, 3, 1) + grid[None]
        return {"deformation": deformation, "logits": logits, "mask": mask}


# ---------------------------------------------------------------- generator
class MotionTransferGenerator(nn.Module):
    """Source appearance + driving keypoints -> animated frame (published MotionTransferGenerator)."""

    def __init__(self, num_channels, num_kp, kp_variance, block_expansion, max_features, num_blocks, num_refinement_blocks,
                 dense_motion_params=None, kp_embedding_params=None, interpolation_mode="nearest"):
        super().__init__()
        if interpolation_mode not in ("nearest", "trilinear"):
            raise ValueError(f"unsupported interpolation_mode {interpolation_mode!r}")
        if kp_variance != "matrix":
            raise ValueError(f"Monkey-Net port supports kp_variance='matrix' only (got {kp_variance!r}).")
        self.appearance_encoder = Encoder(block_expansion, num_channels, num_blocks, max_features, conv=FrameConv)
        self.kp_embedding_module = (
            MovementEmbedding(num_kp, num_channels, **kp_embedding_params) if kp_embedding_params is not None else None
        )
        extra = self.kp_embedding_module.out_channels if self.kp_embedding_module is not None else 0
        self.dense_motion_module = (
            DenseMotion(num_kp=num_kp, num_channels=num_channels, **dense_motion_params)
            if dense_motion_params is not None
            else None
        )
        self.video_decoder = Decoder(block_expansion, num_channels, num_channels, num_blocks, max_features, extra, last_conv=False)
        features = self.video_decoder.out_filters
        self.refinement_module = nn.Sequential()
        for i in range(num_refinement_blocks):
            self.refinement_module.add_module(f"r{i}", ResBlock2d(features, conv=FrameConv))
        self.refinement_module.add_module("conv-last", FrameConv(features, num_channels, 1))
        self.interpolation_mode = interpolation_mode

    def _resize(self, x: torch.Tensor, size) -> torch.Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        if self.interpolation_mode == "trilinear":  # depth 1: bilinear, align_corners=False, no anti-aliasing
            return resize_bilinear(x, size, align_corners=False)
        return F.interpolate(x, size=size, mode="nearest")

    def deform(self, features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp (1 or N, C, h, w) features by the (N, h0, w0, 2) deformation resized to (h, w)."""
        grid = self._resize(deformation.permute(0, 3, 1, 2), features.shape[2:]).permute(0, 2, 3, 1)
        return warp(features, grid, align_corners=True)

    def encode_source(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Appearance skips of the source (1, C, H, W); computed once per source."""
        return self.appearance_encoder(source)

    def identity_deformation(self, source: torch.Tensor, n: int) -> torch.Tensor:
        h, w = source.shape[2:]
        return make_coordinate_grid(h, w, source.dtype, source.device)[None].expand(n, -1, -1, -1)

    def forward(self, source: torch.Tensor, skips: list[torch.Tensor], kp_driving: dict, kp_source: dict) -> dict:
        """source (1, C, H, W) in [0, 1]; skips from ``encode_source``; kp_driving batched over N frames."""
        n = kp_driving["mean"].shape[0]
        if self.dense_motion_module is not None:
            dense = self.dense_motion_module(downsample(source, self.dense_motion_module.scale_factor), kp_driving, kp_source)
        else:
            dense = {"deformation": self.identity_deformation(source, n), "logits": None, "mask": None}
        deformation = dense["deformation"]
        warped = [self.deform(skip, deformation) for skip in skips]
        if self.kp_embedding_module is not None:
            emb = self.kp_embedding_module(downsample(source, self.kp_embedding_module.scale_factor), kp_driving, kp_source)
            warped = [torch.cat([skip, self._resize(emb, skip.shape[2:])], dim=1) for skip in warped]
        deformed_source = warped[0][:, : source.shape[1]]  # skip 0 is the source itself
        out = self.refinement_module(self.video_decoder(warped))
        return {
            "prediction": torch.sigmoid(out),
            "deformed": deformed_source,
            "deformation": deformation,
            "dense_logits": dense["logits"],
            "dense_mask": dense["mask"],
        }
