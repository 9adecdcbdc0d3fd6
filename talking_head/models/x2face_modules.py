"""X2Face networks (Wiles et al., ECCV 2018): the two pix2pix-style U-Nets of ``UnwrappedFaceWeightedAverage``.

Module names follow the released ``x2face_model.pth`` (``pix2pixUnwrapped.netG.model.submodule...``).
Torch 0.2 semantics, which the released weights were trained with: bilinear upsampling with aligned
corners. The published code applies its down-path LeakyReLU in place, so the skip a level concatenates
is LeakyReLU(0.2) of its input, not the input itself; this port reproduces that explicitly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.models.blocks import warp


class UNetLevel(nn.Module):
    """One level of the published UnetSkipConnectionBlockBetterUpsampler.

    down: [LeakyReLU, Conv4x4/2, BN] (outermost: conv only; innermost: no BN);
    up: [ReLU, bilinear x2, Conv3x3, BN] (outermost: no BN, optional Tanh).
    ``skip``: concatenate [up, LeakyReLU(input)] (embedding net) or not (driving net).
    Returns (output, bottleneck), the bottleneck being the innermost conv output after ReLU.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False, skip=True, final_tanh=False):
        super().__init__()
        self.outermost = outermost
        self.innermost = innermost
        self.skip = skip
        input_nc = outer_nc if input_nc is None else input_nc
        conv_down = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        up_in = inner_nc * 2 if (skip and not innermost) else inner_nc
        up = [
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(up_in, outer_nc, kernel_size=3, stride=1, padding=1, bias=False),
        ]
        if outermost:
            down = [conv_down]
            if final_tanh:
                up.append(nn.Tanh())
        elif innermost:
            down = [nn.LeakyReLU(0.2), conv_down]
            up.append(nn.BatchNorm2d(outer_nc))
        else:
            down = [nn.LeakyReLU(0.2), conv_down, nn.BatchNorm2d(inner_nc)]
            up.append(nn.BatchNorm2d(outer_nc))
        self.down = nn.Sequential(*down)
        self.up = nn.Sequential(*up)
        self.submodule = submodule

    def forward(self, x):
        if self.outermost:
            inner, bottleneck = self.submodule(self.down(x))
            return self.up(inner), bottleneck
        y = self.down[0](x)  # the skip: the published in-place LeakyReLU overwrote the input
        h = y
        for layer in list(self.down)[1:]:
            h = layer(h)
        if self.innermost:
            bottleneck = F.relu(h)  # the up path's in-place ReLU also changes the returned bottleneck
            out = self.up[1:](bottleneck)
        else:
            inner, bottleneck = self.submodule(h)
            out = self.up(inner)
        if self.skip:
            out = torch.cat([out, y], dim=1)
        return out, bottleneck


class UNet(nn.Module):
    """Published UnetGeneratorBetterUpsampler (8 levels for 256x256), as ``netG``."""

    def __init__(self, input_nc, output_nc, ngf=64, num_downs=8, innermost_nc=None, skip=True, final_tanh=False):
        super().__init__()
        block = UNetLevel(ngf * 8, innermost_nc or ngf * 8, innermost=True, skip=skip)
        for _ in range(num_downs - 5):
            block = UNetLevel(ngf * 8, ngf * 8, submodule=block, skip=skip)
        for mult in (4, 2, 1):
            block = UNetLevel(ngf * mult, ngf * mult * 2, submodule=block, skip=skip)
        self.model = UNetLevel(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, skip=skip, final_tanh=final_tanh)

    def forward(self, x):
        return self.model(x)


class Pix2Pix(nn.Module):
    """The published Pix2PixModel wrapper (holds the U-Net as ``netG``)."""

    def __init__(self, **unet):
        super().__init__()
        self.netG = UNet(**unet)

    def forward(self, x):
        return self.netG(x)


def identity_grid(size: int, device=None) -> torch.Tensor:
    """(size, size, 2) (x, y) grid from np.linspace(-1, 1, size), as the published forward builds it."""
    import numpy as np

    xs = np.linspace(-1, 1, size)
    grid = np.stack(np.meshgrid(xs, xs), axis=2).astype(np.float32)
    return torch.from_numpy(grid).to(device)


class X2FaceNet(nn.Module):
    """UnwrappedFaceWeightedAverage(output_num_channels=2, input_num_channels=3, inner_nc)."""

    def __init__(self, inner_nc: int = 128, ngf: int = 64, num_downs: int = 8):
        super().__init__()
        self.pix2pixUnwrapped = Pix2Pix(input_nc=3, output_nc=3, ngf=ngf, num_downs=num_downs, skip=True)
        self.pix2pixSampler = Pix2Pix(
            input_nc=3, output_nc=2, ngf=ngf, num_downs=num_downs, innermost_nc=inner_nc, skip=False, final_tanh=True
        )

    def embed(self, sources: torch.Tensor, grid: torch.Tensor) -> dict:
        """Source frames (S, 3, H, W) in [0, 1] -> one embedded face, confidence-weighted over the S sources."""
        raw, _ = self.pix2pixUnwrapped(sources)
        sampler = torch.tanh(raw[:, :2]).permute(0, 2, 3, 1) + grid
        confidence = raw[:, 2:3].exp() + 0.1
        weighted = warp(sources, sampler, align_corners=True) * confidence
        face = weighted.sum(0, keepdim=True) / confidence.sum(0, keepdim=True)
        return {"raw": raw, "sampler": sampler, "confidence": confidence, "face": face}

    def drive(self, frames: torch.Tensor, face: torch.Tensor, grid: torch.Tensor) -> dict:
        """Driving frames (N, 3, H, W) -> where each output pixel samples the embedded face, and the output."""
        out, bottleneck = self.pix2pixSampler(frames)
        sampler = torch.tanh(out).permute(0, 2, 3, 1) + grid
        prediction = warp(face, sampler, align_corners=True)
        return {"raw": out, "embedding": bottleneck.flatten(1), "sampler": sampler, "prediction": prediction.clamp(0, 1)}
