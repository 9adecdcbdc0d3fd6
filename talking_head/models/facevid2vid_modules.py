"""face-vid2vid networks as pure ``nn.Module``s, named so ``state_dict()`` equals the published checkpoint.

Port of zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis (``config/vox-256.yaml``,
``--gen spade``), whose generator LivePortrait later reused. What is the same is LivePortrait's code
(``liveportrait_modules``): the 3-D dense-motion network, ResBlock3d, UpBlock3d, the ``third`` block and
the SPADE decoder. What differs is explicit here:

KPDetector      image -> 15 canonical 3-D keypoints (anti-alias downsampling, 2-D encoder, 3-D decoder)
HEEstimator     image -> head-pose bin logits (with the published yaw/roll name swap), t, expression
OcclusionAwareSPADEGenerator
                image + (kp_source, kp_driving) -> image: LivePortrait's F, W and G under one module,
                with all their layers at the top level (``first``, ..., ``dense_motion_network``,
                ``third``, ``fourth``, ``decoder``) and a decoder without pixel shuffle (256 out).

Sizes come from the published ``model_params``, passed as keyword arguments.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models.blocks import AntiAliasInterpolation2d, DownBlock2d, coordinate_grid_3d
from talking_head.models.liveportrait_modules import (
    AppearanceFeatureExtractor,
    DenseMotionNetwork,
    LeakySameBlock2d,
    SPADEDecoder,
    UpBlock3d,
    warp_volume,
)


def _width(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * (2**level))


# ---------------------------------------------------------------- canonical keypoints
class KPHourglass(nn.Module):
    """2-D down blocks ``down0..`` -> 1x1 conv -> viewed as a 3-D volume -> 3-D up blocks ``up0..`` (no skips)."""

    def __init__(self, block_expansion: int, in_features: int, reshape_features: int, reshape_depth: int,
                 num_blocks: int = 3, max_features: int = 256):
        super().__init__()
        self.down_blocks = nn.Sequential()
        for i in range(num_blocks):
            self.down_blocks.add_module(f"down{i}", DownBlock2d(
                in_features if i == 0 else _width(block_expansion, i, max_features),
                _width(block_expansion, i + 1, max_features), kernel_size=3, padding=1))
        self.conv = nn.Conv2d(_width(block_expansion, num_blocks, max_features), reshape_features, kernel_size=1)
        self.up_blocks = nn.Sequential()
        for i in range(num_blocks):
            self.up_blocks.add_module(f"up{i}", UpBlock3d(_width(block_expansion, num_blocks - i, max_features),
                                                          _width(block_expansion, num_blocks - i - 1, max_features)))
        self.reshape_depth = reshape_depth
        self.out_filters = _width(block_expansion, 0, max_features)

    def forward(self, x):
        out = self.conv(self.down_blocks(x))
        b, c, h, w = out.shape
        return self.up_blocks(out.view(b, c // self.reshape_depth, self.reshape_depth, h, w))


class KPDetector(nn.Module):
    """Image (B, 3, 256, 256) in [0, 1] -> {'value': canonical keypoints (B, K, 3) as (x, y, z), 'heatmap'}.

    The anti-alias kernel ``down.weight`` is a checkpoint buffer: it is loaded, never rebuilt.
    """

    def __init__(self, block_expansion=32, feature_channel=32, num_kp=15, image_channel=3, max_features=1024,
                 reshape_channel=16384, reshape_depth=16, num_blocks=5, temperature=0.1, estimate_jacobian=False,
                 scale_factor=0.25, **_ignored):
        super().__init__()
        if estimate_jacobian:
            raise ValueError("face-vid2vid with jacobians is not supported (no published checkpoint uses them)")
        self.predictor = KPHourglass(block_expansion, in_features=image_channel, max_features=max_features,
                                     reshape_features=reshape_channel, reshape_depth=reshape_depth, num_blocks=num_blocks)
        self.kp = nn.Conv3d(self.predictor.out_filters, num_kp, kernel_size=3, padding=1)
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(image_channel, scale_factor)

    def forward(self, x) -> dict[str, torch.Tensor]:
        if self.scale_factor != 1:
            x = self.down(x)
        prediction = self.kp(self.predictor(x))
        b, k, d, h, w = prediction.shape
        heatmap = F.softmax(prediction.view(b, k, -1) / self.temperature, dim=2).view(b, k, d, h, w)
        grid = coordinate_grid_3d(d, h, w, heatmap.dtype, heatmap.device)
        value = (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3, 4))
        return {"value": value, "heatmap": heatmap}


# ---------------------------------------------------------------- head pose and expression
class ResBottleneck(nn.Module):
    """1x1 (C/4) -> 3x3 stride s -> 1x1 (C), BN after each; with stride 2 the skip is a 1x1 stride-2 conv + BN."""

    def __init__(self, in_features: int, stride: int):
        super().__init__()
        quarter = in_features // 4
        self.conv1 = nn.Conv2d(in_features, quarter, kernel_size=1)
        self.conv2 = nn.Conv2d(quarter, quarter, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(quarter, in_features, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(quarter, affine=True)
        self.norm2 = nn.BatchNorm2d(quarter, affine=True)
        self.norm3 = nn.BatchNorm2d(in_features, affine=True)
        self.stride = stride
        if stride != 1:
            self.skip = nn.Conv2d(in_features, in_features, kernel_size=1, stride=stride)
            self.norm4 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        if self.stride != 1:
            x = self.norm4(self.skip(x))
        return F.relu(out + x)


def _stage(prefix: str, channels: int, count: int) -> nn.Sequential:
    stage = nn.Sequential()
    for i in range(count):
        stage.add_module(f"{prefix}_{i}", ResBottleneck(channels, stride=1))
    return stage


class HEEstimator(nn.Module):
    """Image -> head-pose bin logits, translation t (B, 3) and expression deltas (B, 3K).

    The published forward returns ``yaw = fc_roll(x)`` and ``roll = fc_yaw(x)``; the layer names stay
    as in the checkpoint and the swap is kept here, so the returned 'yaw'/'roll' are the model's.
    """

    def __init__(self, block_expansion=64, feature_channel=32, num_kp=15, image_channel=3, max_features=2048,
                 num_bins=66, estimate_jacobian=False, **_ignored):
        super().__init__()
        self.conv1 = nn.Conv2d(image_channel, block_expansion, kernel_size=7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(block_expansion, affine=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(block_expansion, 256, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(256, affine=True)
        self.block1 = _stage("b1", 256, 3)
        self.conv3 = nn.Conv2d(256, 512, kernel_size=1)
        self.norm3 = nn.BatchNorm2d(512, affine=True)
        self.block2 = ResBottleneck(512, stride=2)
        self.block3 = _stage("b3", 512, 3)
        self.conv4 = nn.Conv2d(512, 1024, kernel_size=1)
        self.norm4 = nn.BatchNorm2d(1024, affine=True)
        self.block4 = ResBottleneck(1024, stride=2)
        self.block5 = _stage("b5", 1024, 5)
        self.conv5 = nn.Conv2d(1024, 2048, kernel_size=1)
        self.norm5 = nn.BatchNorm2d(2048, affine=True)
        self.block6 = ResBottleneck(2048, stride=2)
        self.block7 = _stage("b7", 2048, 2)
        self.fc_roll = nn.Linear(2048, num_bins)
        self.fc_pitch = nn.Linear(2048, num_bins)
        self.fc_yaw = nn.Linear(2048, num_bins)
        self.fc_t = nn.Linear(2048, 3)
        self.fc_exp = nn.Linear(2048, 3 * num_kp)

    def stem(self, x):
        """conv1 -> BN -> ReLU -> max pool (the 64x64 feature a 256 input gives)."""
        return self.maxpool(F.relu(self.norm1(self.conv1(x))))

    def pooled(self, x):
        """The globally averaged 2048-channel feature the heads read."""
        out = F.relu(self.norm2(self.conv2(self.stem(x))))
        out = F.relu(self.norm3(self.conv3(self.block1(out))))
        out = F.relu(self.norm4(self.conv4(self.block3(self.block2(out)))))
        out = F.relu(self.norm5(self.conv5(self.block5(self.block4(out)))))
        out = self.block7(self.block6(out))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x) -> dict[str, torch.Tensor]:
        feature = self.pooled(x)
        return {
            "yaw": self.fc_roll(feature),  # sic: the published name swap
            "pitch": self.fc_pitch(feature),
            "roll": self.fc_yaw(feature),  # sic
            "t": self.fc_t(feature),
            "exp": self.fc_exp(feature),
        }


# ---------------------------------------------------------------- generator
class OcclusionAwareSPADEGenerator(AppearanceFeatureExtractor):
    """Source image + keypoints -> image (B, 3, 256, 256) in (0, 1).

    The encoder (``first``, ``down_blocks``, ``second``, ``resblocks_3d``) is LivePortrait's appearance
    extractor (``encode``); the warp (``dense_motion_network``, ``third``, ``fourth``) is its warping
    module's; ``decoder`` is its SPADE decoder with a plain 3x3 ``conv_img`` (no upscaling).
    """

    def __init__(self, image_channel=3, feature_channel=32, num_kp=15, block_expansion=64, max_features=512,
                 num_down_blocks=2, reshape_channel=32, reshape_depth=16, num_resblocks=6, estimate_occlusion_map=True,
                 dense_motion_params=None, estimate_jacobian=False, **_ignored):
        super().__init__(image_channel=image_channel, block_expansion=block_expansion, num_down_blocks=num_down_blocks,
                         max_features=max_features, reshape_channel=reshape_channel, reshape_depth=reshape_depth,
                         num_resblocks=num_resblocks)
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channel=feature_channel,
                                                       estimate_occlusion_map=estimate_occlusion_map,
                                                       **(dense_motion_params or {}))
        width = block_expansion * (2**num_down_blocks)
        self.third = LeakySameBlock2d(max_features, width)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)
        self.decoder = SPADEDecoder(upscale=1, max_features=max_features, block_expansion=block_expansion,
                                    num_down_blocks=num_down_blocks)

    def encode(self, image):
        """The source's 3-D feature volume (B, reshape_channel, reshape_depth, H/4, W/4)."""
        return super().forward(image)

    def source_cache(self, feature_3d, kp_source):
        """The dense-motion network's source-only work (compressed feature, grid, source Gaussians)."""
        return self.dense_motion_network.source_cache(feature_3d, kp_source)

    def warp_decode(self, feature_3d, kp_driving, kp_source, cache: dict | None = None) -> dict[str, torch.Tensor]:
        """Warp the volume by the keypoint motion and decode: 'prediction' plus the warp's outputs."""
        out = warp_volume(self, feature_3d, kp_driving, kp_source, cache)
        out["prediction"] = self.decoder(out["out"])
        return out

    def forward(self, source_image, kp_driving, kp_source) -> dict[str, torch.Tensor]:
        return self.warp_decode(self.encode(source_image), kp_driving, kp_source)
