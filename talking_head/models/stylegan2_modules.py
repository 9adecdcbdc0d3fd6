"""StyleGAN2 image generator (config-f), pure PyTorch, with the rosinality/stylegan2-pytorch key names.

Our own implementation of the generator MoCoGAN-HD keeps frozen (Karras et al. 2020; the layout of
``rosinality/stylegan2-pytorch``'s ``Generator``, so its ``g_ema`` state dicts load strictly):

- mapping ``style``: PixelNorm, then ``n_mlp`` equalized-lr linear layers (lr_mul 0.01) with leaky ReLU x sqrt 2;
- synthesis: a learned 4x4 constant, then per resolution an upsampling and a plain modulated 3x3 conv
  (weight demodulation, per-layer noise, bias + leaky ReLU x sqrt 2) and a ToRGB 1x1 modulated conv
  (no demodulation) whose output is added to the upsampled RGB skip of the resolution below.

Upsampling/blur are ``upfirdn2d`` in plain torch: zero insertion, padding, a *true* convolution with
the FIR kernel stored in the checkpoint (persistent buffers, ``[1,3,3,1]`` x 4 in a trained model).
No custom CUDA ops: it runs wherever torch runs.

The modulated convolutions are computed the "unfused" way (scale the input by the style, one shared
convolution, scale the output by the demodulation factor), which equals the per-sample grouped
convolution of the original and lets a batch of frames share one convolution.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
DEFAULT_BLUR = (1, 3, 3, 1)


def channel_table(channel_multiplier: int = 2) -> dict[int, int]:
    """Feature channels per resolution (config-f with channel_multiplier 2)."""
    m = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}


def make_kernel(taps=DEFAULT_BLUR) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Per channel: insert ``up - 1`` zeros after every sample, zero-pad ``pad`` (before, after) on both
    axes, then convolve (true convolution: flipped kernel) with ``kernel``, valid. (N, C, H, W) in and out."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x.dtype)
    weight = k.view(1, 1, *k.shape).expand(c, 1, *k.shape)
    return F.conv2d(x, weight, groups=c)


def leaky_relu_gain(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Equalized-lr linear: ``x @ (W * lr_mul / sqrt(in))^T + b * lr_mul``, optionally leaky ReLU x sqrt 2."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, bias_init: float = 0.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return leaky_relu_gain(out) if self.activate else out


class Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", make_kernel() * gain)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 FIR upsampling of the RGB skip: up 2, pad (2, 1)."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_kernel() * factor ** 2)
        self.factor = factor

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=(2, 1))


class ModulatedConv2d(nn.Module):
    """Style-modulated conv; ``upsample``: stride-2 transposed conv followed by a (1, 1)-padded blur."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            self.blur = Blur(pad=(1, 1), gain=4.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.modulation(style)  # (N, C_in)
        weight = self.weight[0] * self.scale  # (C_out, C_in, k, k)
        x = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
        else:
            out = F.conv2d(x, weight, padding=self.kernel_size // 2)
        if self.demodulate:
            energy = (s * s) @ weight.pow(2).sum(dim=(2, 3)).t()  # (N, C_out)
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        if self.upsample:
            out = self.blur(out)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        return x if noise is None else x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU (0.2) x sqrt 2; the name keeps the checkpoint key ``activate.bias``."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return leaky_relu_gain(x + self.bias.view(1, -1, 1, 1))


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise=None):
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class Generator(nn.Module):
    """StyleGAN2 generator with rosinality's key names; ``map`` z -> w, ``synthesize`` w -> image.

    One w per image is used for every layer (no w+, no style mixing, no truncation), as MoCoGAN-HD does.
    """

    def __init__(self, size: int = 256, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01):
        super().__init__()
        self.size, self.style_dim = size, style_dim
        self.log_size = int(math.log2(size))
        if 2 ** self.log_size != size or size < 8:
            raise ValueError(f"StyleGAN2 size must be a power of two >= 8, got {size}")
        channels = channel_table(channel_multiplier)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True)
                                                  for _ in range(n_mlp)])
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], style_dim)
        self.to_rgb1 = ToRGB(channels[4], style_dim, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        in_channel = channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, style_dim, upsample=True))
            self.convs.append(StyledConv(out_channel, out_channel, style_dim))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.noises = nn.Module()  # fixed noise buffers stored in checkpoints; never used here
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.zeros(1, 1, r, r))
        self.n_latent = self.log_size * 2 - 2

    def noise_shapes(self) -> list[tuple[int, int]]:
        """(r, r) of the noise map each layer takes: conv1, then convs.0 ... in order."""
        return [(2 ** ((i + 5) // 2),) * 2 for i in range(self.num_layers)]

    def map(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)

    def synthesize(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None, trace: dict | None = None
                   ) -> torch.Tensor:
        """Images (N, 3, size, size), not clamped, for latents ``w`` (N, style_dim).

        ``noise``: one map per layer, each broadcastable to (N, 1, r, r) (a clip shares one map per
        layer), or None for no noise. ``trace``: when a dict, gets ``conv1``, ``conv1_style`` and
        ``skip.<r>`` (the RGB skip at each resolution) for inspection.
        """
        noise = noise if noise is not None else [None] * self.num_layers
        x = self.conv1(self.input(w.shape[0]), w, noise[0])
        if trace is not None:
            trace["conv1"] = x
            trace["conv1_style"] = self.conv1.conv.modulation(w)
        skip = self.to_rgb1(x, w)
        if trace is not None:
            trace["skip.004"] = skip
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, w, noise[2 * k + 1])
            x = self.convs[2 * k + 1](x, w, noise[2 * k + 2])
            skip = to_rgb(x, w, skip)
            if trace is not None:
                trace[f"skip.{2 ** (k + 3):03d}"] = skip
        return skip
