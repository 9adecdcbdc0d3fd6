"""LivePortrait networks as pure ``nn.Module``s, named so ``state_dict()`` equals the published files.

F  AppearanceFeatureExtractor   image -> 3-D feature volume f_s (B, 32, 16, 64, 64)
M  MotionExtractor              image -> canonical keypoints, head-pose bins, translation, expression, scale
W  WarpingNetwork               (f_s, x_s, x_d) -> warped 2-D feature, 3-D deformation, occlusion
G  SPADEDecoder                 warped feature -> image at twice the feature resolution x 4 (512 for 256 in)
S / R_eye / R_lip  KeypointMLP  stitching and eye/lip retargeting deltas on the 21 keypoints

Sizes come from the published ``models.yaml`` (``model_params``), passed as keyword arguments.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models.blocks import DownBlock2d, SameBlock2d, coordinate_grid_3d, instance_normalize  # noqa: F401 (re-exported)


# ---------------------------------------------------------------- shared 3-D pieces
def keypoint_gaussians(kp: torch.Tensor, grid: torch.Tensor, variance: float) -> torch.Tensor:
    """Keypoints (B, K, 3) on grid (D, H, W, 3) -> (B, K, D, H, W) = exp(-0.5 |grid - kp|^2 / variance)."""
    diff = grid[None, None] - kp[:, :, None, None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: BN -> ReLU -> conv -> BN -> ReLU -> conv, + input."""

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size, padding=padding)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm3d(channels, affine=True)
        self.norm2 = nn.BatchNorm3d(channels, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class DownBlock3d(nn.Module):
    """conv3d -> BN -> ReLU -> average pool over (H, W) only."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x):
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest upsampling over (H, W) -> conv3d -> BN -> ReLU."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(out)))


def _width(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder3d(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_features if i == 0 else _width(block_expansion, i, max_features), _width(block_expansion, i + 1, max_features))
            for i in range(num_blocks)
        )

    def forward(self, x):
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder3d(nn.Module):
    """Up blocks, each followed by ``cat([upsampled, skip])``, then conv3d -> BN -> ReLU."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.up_blocks = nn.ModuleList(
            UpBlock3d((1 if i == num_blocks - 1 else 2) * _width(block_expansion, i + 1, max_features), _width(block_expansion, i, max_features))
            for i in reversed(range(num_blocks))
        )
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, outs):
        outs = list(outs)
        out = outs.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), outs.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass3d(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = Encoder3d(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder3d(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------- F
class AppearanceFeatureExtractor(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> feature volume (B, reshape_channel, reshape_depth, H/4, W/4)."""

    def __init__(self, image_channel=3, block_expansion=64, num_down_blocks=2, max_features=512,
                 reshape_channel=32, reshape_depth=16, num_resblocks=6):
        super().__init__()
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth
        self.first = SameBlock2d(image_channel, block_expansion, kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList(
            DownBlock2d(_width(block_expansion, i, max_features), _width(block_expansion, i + 1, max_features), kernel_size=3, padding=1)
            for i in range(num_down_blocks)
        )
        self.second = nn.Conv2d(_width(block_expansion, num_down_blocks, max_features), max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))

    def forward(self, image):
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.view(b, self.reshape_channel, self.reshape_depth, h, w))


# ---------------------------------------------------------------- M (ConvNeXt V2)
class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of (B, C, H, W), computed by hand with the biased variance."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation on channels-last input (B, H, W, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x):
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 -> LayerNorm -> Linear 4x -> GELU -> GRN -> Linear, + input."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        out = self.dwconv(x).permute(0, 2, 3, 1)
        out = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(out)))))
        return x + out.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    """ConvNeXt V2 backbone with LivePortrait's seven heads (kp, scale, pitch, yaw, roll, t, exp)."""

    def __init__(self, num_kp=21, num_bins=66, in_chans=3, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)) for i in range(3)]
        )
        self.stages = nn.ModuleList(nn.Sequential(*[ConvNeXtBlock(dims[i]) for _ in range(depths[i])]) for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc_kp = nn.Linear(dims[-1], 3 * num_kp)
        self.fc_scale = nn.Linear(dims[-1], 1)
        self.fc_pitch = nn.Linear(dims[-1], num_bins)
        self.fc_yaw = nn.Linear(dims[-1], num_bins)
        self.fc_roll = nn.Linear(dims[-1], num_bins)
        self.fc_t = nn.Linear(dims[-1], 3)
        self.fc_exp = nn.Linear(dims[-1], 3 * num_kp)

    def forward(self, x) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        x = self.norm(x.mean([-2, -1]))
        return {
            "kp": self.fc_kp(x), "scale": self.fc_scale(x), "pitch": self.fc_pitch(x), "yaw": self.fc_yaw(x),
            "roll": self.fc_roll(x), "t": self.fc_t(x), "exp": self.fc_exp(x),
        }


class MotionExtractor(nn.Module):
    """Raw head outputs of the ConvNeXt V2 detector: logits, translation, flat keypoints/expression, scale."""

    def __init__(self, num_kp=21, backbone="convnextv2_tiny", num_bins=66, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        if backbone != "convnextv2_tiny":
            raise ValueError(f"unknown motion extractor backbone {backbone!r}")
        self.detector = ConvNeXtV2(num_kp=num_kp, num_bins=num_bins, depths=tuple(depths), dims=tuple(dims))

    def forward(self, image):
        return self.detector(image)


# ---------------------------------------------------------------- W
class DenseMotionNetwork(nn.Module):
    """Predicts the 3-D deformation (B, D, H, W, 3) and occlusion (B, 1, H, W) from source/driving keypoints."""

    def __init__(self, block_expansion=32, num_blocks=5, max_features=1024, num_kp=21, feature_channel=32,
                 reshape_depth=16, compress=4, estimate_occlusion_map=True):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass3d(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, affine=True)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3) if estimate_occlusion_map else None

    def source_cache(self, feature: torch.Tensor, kp_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """The source-only work: compressed feature, identity grid, source Gaussians."""
        compressed = F.relu(self.norm(self.compress(feature)))
        _, _, d, h, w = compressed.shape
        grid = coordinate_grid_3d(d, h, w, compressed.dtype, compressed.device)
        return {"compressed": compressed, "grid": grid, "gaussian_source": keypoint_gaussians(kp_source, grid, 0.01)}

    def forward(self, feature, kp_driving, kp_source, cache: dict | None = None) -> dict[str, torch.Tensor]:
        cache = cache if cache is not None else self.source_cache(feature, kp_source)
        compressed, grid = cache["compressed"], cache["grid"]
        b, k = kp_driving.shape[0], self.num_kp
        _, c, d, h, w = compressed.shape
        kp_source = kp_source.expand(b, -1, -1)
        # sparse motions: identity (background) first, then grid - x_d[k] + x_s[k] (zero order)
        to_source = grid[None, None] - kp_driving.view(b, k, 1, 1, 1, 3) + kp_source.reshape(b, k, 1, 1, 1, 3)
        sparse = torch.cat([grid[None, None].expand(b, 1, d, h, w, 3), to_source], dim=1)  # (B, K+1, D, H, W, 3)
        repeated = compressed.expand(b, -1, -1, -1, -1).unsqueeze(1).expand(b, k + 1, c, d, h, w).reshape(b * (k + 1), c, d, h, w)
        deformed = F.grid_sample(repeated, sparse.reshape(b * (k + 1), d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k + 1, c, d, h, w)
        heatmap = keypoint_gaussians(kp_driving, grid, 0.01) - cache["gaussian_source"].expand(b, -1, -1, -1, -1)
        heatmap = torch.cat([heatmap.new_zeros(b, 1, d, h, w), heatmap], dim=1).unsqueeze(2)
        prediction = self.hourglass(torch.cat([heatmap, deformed], dim=2).view(b, -1, d, h, w))
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (sparse.permute(0, 1, 5, 2, 3, 4) * mask.unsqueeze(2)).sum(dim=1).permute(0, 2, 3, 4, 1)
        out = {"mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction.reshape(b, -1, h, w)))
        return out


class LeakySameBlock2d(nn.Module):
    """conv -> BN -> LeakyReLU(0.01) (W's ``third`` block)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.leaky_relu(self.norm(self.conv(x)), 0.01)


class WarpingNetwork(nn.Module):
    """Warps f_s by the dense motion of (x_s -> x_d) and maps it to the generator's 2-D input."""

    def __init__(self, num_kp=21, block_expansion=64, max_features=512, num_down_blocks=2, reshape_channel=32,
                 estimate_occlusion_map=True, dense_motion_params=None, **_ignored):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, feature_channel=reshape_channel, estimate_occlusion_map=estimate_occlusion_map, **(dense_motion_params or {})
        )
        width = block_expansion * (2**num_down_blocks)
        self.third = LeakySameBlock2d(max_features, width)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def source_cache(self, feature_3d, kp_source):
        return self.dense_motion_network.source_cache(feature_3d, kp_source)

    def forward(self, feature_3d, kp_driving, kp_source, cache: dict | None = None) -> dict[str, torch.Tensor]:
        return warp_volume(self, feature_3d, kp_driving, kp_source, cache)


def warp_volume(net: nn.Module, feature_3d, kp_driving, kp_source, cache: dict | None = None) -> dict[str, torch.Tensor]:
    """Dense motion of (kp_source -> kp_driving), warp the feature volume, ``fourth(third(.))``, times occlusion.

    ``net`` holds ``dense_motion_network``, ``third`` and ``fourth`` (LivePortrait's W, face-vid2vid's
    generator). Returns the 2-D feature ``out`` plus deformation, occlusion map and motion mask.
    """
    motion = net.dense_motion_network(feature_3d, kp_driving, kp_source, cache)
    b = kp_driving.shape[0]
    deformation = motion["deformation"]
    out = F.grid_sample(feature_3d.expand(b, -1, -1, -1, -1), deformation, align_corners=False)
    _, c, d, h, w = out.shape
    out = net.fourth(net.third(out.view(b, c * d, h, w)))
    occlusion = motion.get("occlusion_map")
    if occlusion is not None:
        out = out * occlusion
    return {"out": out, "deformation": deformation, "occlusion_map": occlusion, "mask": motion["mask"]}


# ---------------------------------------------------------------- G
class SpectralConv2d(nn.Module):
    """Conv2d whose weight is ``weight_orig / (u . (W v))`` with the stored u, v (eval-mode spectral norm)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True):
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("weight_u", torch.ones(out_channels))
        self.register_buffer("weight_v", torch.ones(in_channels * kernel_size * kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        self._estimate_singular_vectors()

    @torch.no_grad()
    def _estimate_singular_vectors(self, iterations: int = 10) -> None:
        """Power iteration for fresh weights (a loaded checkpoint brings its own u, v)."""
        w = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        v = F.normalize(torch.randn(w.shape[1]), dim=0)
        for _ in range(iterations):
            u = F.normalize(torch.mv(w, v), dim=0)
            v = F.normalize(torch.mv(w.t(), u), dim=0)
        self.weight_u.copy_(u)
        self.weight_v.copy_(v)

    def weight(self) -> torch.Tensor:
        w = self.weight_orig
        with torch.autocast(w.device.type, enabled=False):  # sigma in the parameters' own precision
            sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x):
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Parameter-free instance norm modulated by (1 + gamma(seg)) and beta(seg)."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size=3, padding=1)

    def forward(self, x, segmap):
        normalized = instance_normalize(x, eps=1e-5)
        actv = self.mlp_shared(F.interpolate(segmap, size=x.shape[2:], mode="nearest"))
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    def __init__(self, fin: int, fout: int, label_nc: int, hidden: int = 128):
        super().__init__()
        self.learned_shortcut = fin != fout
        middle = min(fin, fout)
        self.conv_0 = SpectralConv2d(fin, middle, kernel_size=3, padding=1)
        self.conv_1 = SpectralConv2d(middle, fout, kernel_size=3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralConv2d(fin, fout, kernel_size=1, bias=False)
            self.norm_s = SPADE(fin, label_nc, hidden)
        self.norm_0 = SPADE(fin, label_nc, hidden)
        self.norm_1 = SPADE(middle, label_nc, hidden)

    def forward(self, x, seg):
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEDecoder(nn.Module):
    """Warped feature (B, C, h, w) -> image (B, 3, 4h * upscale, 4w * upscale) in (0, 1)."""

    def __init__(self, upscale=2, max_features=512, block_expansion=64, out_channels=64, num_down_blocks=2, spade_hidden=128):
        super().__init__()
        channels = _width(block_expansion, num_down_blocks, max_features)
        self.upscale = upscale
        self.fc = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        for i in range(6):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * channels, 2 * channels, channels, spade_hidden))
        self.up_0 = SPADEResnetBlock(2 * channels, channels, channels, spade_hidden)
        self.up_1 = SPADEResnetBlock(channels, out_channels, channels, spade_hidden)
        if upscale is None or upscale <= 1:
            self.conv_img = nn.Conv2d(out_channels, 3, 3, padding=1)
        else:
            self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * upscale * upscale, 3, padding=1), nn.PixelShuffle(upscale))

    def forward(self, feature):
        x = self.fc(feature)
        for i in range(6):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


# ---------------------------------------------------------------- S, R_eye, R_lip
class KeypointMLP(nn.Module):
    """Linear/ReLU stack with no activation on the last layer (stitching and retargeting)."""

    def __init__(self, input_size: int, hidden_sizes, output_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [input_size, *hidden_sizes]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)
