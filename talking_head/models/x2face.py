"""X2Face (Wiles, Koepke, Zisserman, ECCV 2018): embed the source face, then let each driving frame pick
where every output pixel samples that embedded face.

There are no keypoints and no relative mode: the driving network maps a driving frame straight to a
sampling grid, so the output copies the driving frame's pose and expression as they are ('absolute').
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.models.base import (
    Animator,
    FrameResult,
    TransferOptions,
    cpu_state_dict,
    flow_to_pixels,
    load_strict,
    module_dicts,
    to_tensor,
    to_uint8,
    with_batch_counters,
)
from talking_head.models.blocks import warp
from talking_head.models.x2face_modules import X2FaceNet, identity_grid


@dataclass
class SourceState:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1]
    embedding: dict  # X2FaceNet.embed output: raw, sampler, confidence, face


@dataclass
class DrivingState:
    embedding: torch.Tensor  # (1, 128) driving vector of the reference frame (X2Face does not use it)


class X2FaceAnimator(Animator):
    def __init__(self, card: ModelCard, net: X2FaceNet, device):
        super().__init__(card, device)
        self.net = net.to(device).eval()
        self._grids: dict[int, torch.Tensor] = {}

    def grid(self, size: int) -> torch.Tensor:
        if size not in self._grids:
            self._grids[size] = identity_grid(size, self.device)
        return self._grids[size]

    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray) -> SourceState:
        x = to_tensor(image, self.device)
        return SourceState(x, self.net.embed(x, self.grid(x.shape[-1])))

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        x = to_tensor(image, self.device)
        _, bottleneck = self.net.pix2pixSampler(x)
        return DrivingState(bottleneck.flatten(1))

    @torch.inference_mode()
    def run(self, source: SourceState, frames: torch.Tensor) -> dict:
        """Batched driving pass on (N, 3, H, W) frames in [0, 1]; intermediates as device tensors."""
        grid = self.grid(frames.shape[-1])
        out = self.net.drive(frames, source.embedding["face"], grid)
        # where each output pixel comes from in the source: the embedding sampler read at the driving sampler
        emb_sampler = source.embedding["sampler"].permute(0, 3, 1, 2)
        sampled = warp(emb_sampler, out["sampler"], align_corners=True, padding_mode="border")
        out["source_sampler"] = sampled.permute(0, 2, 3, 1)
        return out

    @torch.inference_mode()
    def animate(self, source: SourceState, frames: np.ndarray, reference, options: TransferOptions) -> list[FrameResult]:
        options.resolved_mode(self.card)  # validates an explicit mode; X2Face has only 'absolute'
        out = self.run(source, to_tensor(frames, self.device))
        images = to_uint8(out["prediction"])
        size = frames.shape[1:3]
        host = {
            "motion": flow_to_pixels(out["source_sampler"], size, align_corners=True),
            "driving_flow": flow_to_pixels(out["sampler"], size, align_corners=True),
            "embedding": out["embedding"],
        }
        host = {k: v.float().cpu().numpy() for k, v in host.items()}
        face = source.embedding["face"][0].permute(1, 2, 0).float().cpu().numpy()
        confidence = source.embedding["confidence"][0, 0].float().cpu().numpy()
        return [
            FrameResult(
                frame=images[i],
                motion=host["motion"][i],
                extras={
                    "embedded_face": face,
                    "confidence": confidence,
                    "driving_flow": host["driving_flow"][i],
                    "driving_embedding": host["embedding"][i],
                },
            )
            for i in range(images.shape[0])
        ]

    def close(self) -> None:
        self.net.to("cpu")


def build_net(card: ModelCard) -> X2FaceNet:
    opts = card.options
    return X2FaceNet(inner_nc=opts.get("inner_nc", 128), ngf=opts.get("ngf", 64), num_downs=opts.get("num_downs", 8))


def create(card: ModelCard, paths, device) -> X2FaceAnimator:
    net = build_net(card)
    if paths is not None:
        path = paths[0]
        checkpoint = hub.load_checkpoint(path)
        if "state_dict" not in checkpoint and any(str(k).startswith("pix2pix") for k in checkpoint):
            checkpoint = {"state_dict": checkpoint}  # a bare state dict (e.g. re-saved without the wrapper)
        state = module_dicts(checkpoint, ["state_dict"], filename=path.name)["state_dict"]
        load_strict(net, with_batch_counters(net, state), f"{card.name} (UnwrappedFaceWeightedAverage)")
    return X2FaceAnimator(card, net, device)


def published_checkpoints(animator: X2FaceAnimator) -> dict[str, object]:
    """``{filename: checkpoint}`` as train_model.py wrote it under torch 0.2 (no optimizer, no BN counters)."""
    state = {k: v for k, v in cpu_state_dict(animator.net).items() if not k.endswith("num_batches_tracked")}
    return {animator.card.files[0].filename: {"state_dict": state}}
