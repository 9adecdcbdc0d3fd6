"""First Order Motion Model networks (Siarohin et al., NeurIPS 2019), batch-friendly.

Attribute names follow the published checkpoints (``kp_detector`` / ``generator`` entries of
``vox-cpk.pth.tar`` and friends), so ``state_dict()`` keys and shapes equal the published ones.

Conventions (as the checkpoints were trained, torch 1.0):
- coordinates are normalised to [-1, 1], last axis (x, y), ``x_i = 2 i / (W - 1) - 1``;
- every ``grid_sample`` is bilinear, zero padding, ``align_corners=True``;
- a keypoint is the softmax-weighted mean over the keypoint heatmap's own grid (58x58 for the
  published 256 models), and is used as a full-image coordinate;
- a jacobian is a row-major 2x2 matrix acting on column vectors (x, y).

The generator is split so that the source-only work (encoder features, the dense-motion net's
downsampled source) is computed once and reused for every driving frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models.blocks import (
    Hourglass,
    WarpingGenerator,
    combine_motions,
    downsampler,
    heatmap_to_keypoints,
    keypoints_to_gaussian,
    local_affine_motions,
    resize_bilinear,
    resize_grid,
    spatial_softmax,
    warp,
    warp_parts,
)


class KeypointDetector(nn.Module):
    """Image -> K keypoints (x, y), their local 2x2 jacobians and the softmax heatmaps.

    Published name: ``KPDetector``. ``forward`` returns a dict with ``value`` (B, K, 2),
    ``heatmap`` (B, K, h, w) and, when jacobians are estimated, ``jacobian`` (B, K, 2, 2).
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
    ):
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        features = self.predictor.out_filters
        self.kp = nn.Conv2d(features, num_kp, kernel_size=7, padding=pad)
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(features, 4 * self.num_jacobian_maps, kernel_size=7, padding=pad)
            # Identity jacobians for an untrained model, as the published init does.
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.num_jacobian_maps = 0
            self.jacobian = None
        self.num_kp = num_kp
        self.temperature = temperature
        self.down = downsampler(num_channels, scale_factor)

    def shrink(self, image: torch.Tensor) -> torch.Tensor:
        """The detector's anti-aliased, downsampled input."""
        return self.down(image)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.predictor(self.shrink(image))
        heatmap = spatial_softmax(self.kp(features), self.temperature)
        b, k, h, w = heatmap.shape
        out = {"value": heatmap_to_keypoints(heatmap), "heatmap": heatmap}
        if self.jacobian is not None:
            maps = self.jacobian(features).reshape(b, self.num_jacobian_maps, 4, h, w)
            weighted = (heatmap.unsqueeze(2) * maps).view(b, k, 4, -1)
            out["jacobian"] = weighted.sum(dim=-1).view(b, k, 2, 2)
        return out


class DenseMotionNetwork(nn.Module):
    """Sparse keypoint motions -> dense backward flow, per-keypoint masks and occlusion map.

    Works on the anti-aliased, downsampled source (``shrink``), which a caller may cache.
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = 0.01,
    ):
        super().__init__()
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (num_channels + 1), num_blocks, max_features)
        features = self.hourglass.out_filters
        self.mask = nn.Conv2d(features, num_kp + 1, kernel_size=7, padding=3)
        self.occlusion = nn.Conv2d(features, 1, kernel_size=7, padding=3) if estimate_occlusion_map else None
        self.num_kp = num_kp
        self.kp_variance = kp_variance
        self.down = downsampler(num_channels, scale_factor)

    def shrink(self, source: torch.Tensor) -> torch.Tensor:
        """The source at the resolution the motion is estimated at."""
        return self.down(source)

    def heatmap_difference(self, kp_driving: dict, kp_source: dict, height: int, width: int) -> torch.Tensor:
        """(B, K+1, 1, h, w): driving Gaussians minus source Gaussians, zero map first (background)."""
        diff = keypoints_to_gaussian(kp_driving["value"], height, width, self.kp_variance) - keypoints_to_gaussian(
            kp_source["value"], height, width, self.kp_variance
        )
        background = diff.new_zeros(diff.shape[0], 1, height, width)
        return torch.cat([background, diff], dim=1).unsqueeze(2)

    def sparse_motions(self, kp_driving: dict, kp_source: dict, height: int, width: int) -> torch.Tensor:
        """(B, K+1, h, w, 2) source coordinates per keypoint: J_s inv(J_d) (z - kp_d) + kp_s; identity first."""
        jacobian = None
        if "jacobian" in kp_driving and "jacobian" in kp_source:
            jacobian = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
        return local_affine_motions(kp_driving["value"], kp_source["value"], jacobian, height, width)

    def forward(self, source_small: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        """source_small (1 or B, C, h, w) from ``shrink``; keypoint dicts with batch B (source: 1 or B)."""
        b = kp_driving["value"].shape[0]
        h, w = source_small.shape[2:]
        heatmaps = self.heatmap_difference(kp_driving, kp_source, h, w)
        motions = self.sparse_motions(kp_driving, kp_source, h, w)
        deformed = warp_parts(source_small, motions, align_corners=True)
        prediction = self.hourglass(torch.cat([heatmaps, deformed], dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = combine_motions(motions, mask)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out


class OcclusionAwareGenerator(WarpingGenerator):
    """Encoder -> warp features by the dense motion, mask by occlusion -> ResBlocks -> decoder."""

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
    ):
        super().__init__()
        if dense_motion_params is None:
            raise ValueError("FOMM needs dense_motion_params (every published configuration has them)")
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, num_channels=num_channels, estimate_occlusion_map=estimate_occlusion_map, **dense_motion_params
        )
        self.build_layers(num_channels, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks)

    def encode_bottom(self, source: torch.Tensor) -> torch.Tensor:
        """Source image (B, C, H, W) -> the lowest-resolution features, the ones that get warped."""
        return self.encode(source)[-1]

    def decode(self, features: torch.Tensor, deformation: torch.Tensor, occlusion: torch.Tensor | None) -> torch.Tensor:
        """Warp ``features`` (1 or B) by ``deformation`` (B, h, w, 2), mask, decode -> image in (0, 1).

        The deformation and occlusion are resized with align_corners=False, the features sampled
        with align_corners=True, as the published model does.
        """
        size = features.shape[2:]
        out = warp(features, resize_grid(deformation, size, align_corners=False), align_corners=True)
        if occlusion is not None:
            out = out * resize_bilinear(occlusion, size, align_corners=False)
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        """The published forward pass: source (B, C, H, W) and keypoint dicts -> prediction and motion."""
        motion = self.dense_motion_network(self.dense_motion_network.shrink(source), kp_driving, kp_source)
        prediction = self.decode(self.encode_bottom(source), motion["deformation"], motion.get("occlusion_map"))
        return {**motion, "prediction": prediction}
