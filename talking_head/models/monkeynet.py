"""Monkey-Net (Siarohin et al., CVPR 2019): keypoints with covariances drive a dense motion field.

Modes: 'relative' moves the source keypoints by the driving keypoints' displacement from the
reference frame (the demo's ``move_location``); with ``adapt_scale`` it also scales that
displacement by the keypoint-hull size ratio and adapts the covariances (``movement_mult`` +
``adapt_variance``). 'absolute' uses the driving keypoints as they are.
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
    norm_to_pixels,
    to_tensor,
    to_uint8,
    with_batch_counters,
)
from talking_head.models.monkeynet_modules import KPDetector, MotionTransferGenerator, symmetric_positive
from talking_head.motion import movement_scale, relative_points, relative_transforms

MODULES = ("generator", "kp_detector")


@dataclass
class SourceState:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1]
    skips: list  # appearance encoder outputs
    kp: dict  # mean (1, K, 2), var (1, K, 2, 2), heatmap (1, K, h, w)
    mean_np: np.ndarray  # (K, 2) keypoint means on the host (hull area)


@dataclass
class DrivingState:
    kp: dict  # mean (1, K, 2), var (1, K, 2, 2)
    mean_np: np.ndarray


@dataclass(frozen=True)
class Normalization:
    """Published ``normalize_kp`` switches."""

    move_location: bool = False
    movement_mult: bool = False
    adapt_variance: bool = False


def normalization_for(mode: str, adapt_scale: bool) -> Normalization:
    if mode == "relative":
        return Normalization(move_location=True, movement_mult=adapt_scale, adapt_variance=adapt_scale)
    return Normalization()


def normalize_kp(kp_driving: dict, source: SourceState, reference: DrivingState | None, norm: Normalization) -> dict:
    """Keypoints fed to the generator (published transfer.normalize_kp, reference frame = ``reference``)."""
    mean, var = kp_driving["mean"], kp_driving["var"]
    if reference is None:  # no reference: relative to the source itself, i.e. absolute
        return {"mean": mean, "var": var}
    if norm.move_location:
        scale = movement_scale(source.mean_np, reference.mean_np) if norm.movement_mult else 1.0
        mean = relative_points(mean, reference.kp["mean"], source.kp["mean"], scale)
    if norm.adapt_variance:
        var = symmetric_positive(relative_transforms(var, reference.kp["var"], source.kp["var"]))
    return {"mean": mean, "var": var}


class MonkeyNetAnimator(Animator):
    def __init__(self, card: ModelCard, generator: MotionTransferGenerator, kp_detector: KPDetector, device):
        super().__init__(card, device)
        self.generator = generator.to(device).eval()
        self.kp_detector = kp_detector.to(device).eval()

    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray) -> SourceState:
        x = to_tensor(image, self.device)
        kp = self.kp_detector(x)
        return SourceState(x, self.generator.encode_source(x), kp, kp["mean"][0].float().cpu().numpy())

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        kp = self.kp_detector(to_tensor(image, self.device))
        return DrivingState({"mean": kp["mean"], "var": kp["var"]}, kp["mean"][0].float().cpu().numpy())

    @torch.inference_mode()
    def run(self, source: SourceState, frames: torch.Tensor, reference: DrivingState | None, norm: Normalization) -> dict:
        """Batched forward on (N, 3, H, W) frames in [0, 1]; every intermediate, as tensors on the device."""
        kp_driving = self.kp_detector(frames)
        kp_norm = normalize_kp(kp_driving, source, reference, norm)
        out = self.generator(source.image, source.skips, kp_norm, source.kp)
        out.update(kp_driving=kp_driving, kp_norm=kp_norm)
        return out

    @torch.inference_mode()
    def animate(self, source: SourceState, frames: np.ndarray, reference, options: TransferOptions) -> list[FrameResult]:
        mode = options.resolved_mode(self.card)
        norm = normalization_for(mode, options.adapt_scale)
        out = self.run(source, to_tensor(frames, self.device), reference, norm)
        return self._results(source, out)

    def _results(self, source: SourceState, out: dict) -> list[FrameResult]:
        size = source.image.shape[2:]
        images = to_uint8(out["prediction"])
        host = {
            "kp_norm": out["kp_norm"]["mean"],
            "kp_driving": out["kp_driving"]["mean"],
            "heatmaps": out["kp_driving"]["heatmap"],
            "motion": flow_to_pixels(out["deformation"], tuple(size), align_corners=True),
            "deformed": out["deformed"].permute(0, 2, 3, 1),
        }
        if out["dense_mask"] is not None:
            host["masks"] = out["dense_mask"]
        host = {k: v.float().cpu().numpy() for k, v in host.items()}
        kp_source = norm_to_pixels(source.mean_np, tuple(size))
        results = []
        for i in range(images.shape[0]):
            extras = {
                "heatmaps": host["heatmaps"][i],
                "deformed_source": host["deformed"][i],
                "kp_source": kp_source,
            }
            mask = None
            if "masks" in host:
                extras["motion_masks"] = host["masks"][i]
                mask = host["masks"][i][0]  # background channel: where the model keeps the source still
            results.append(
                FrameResult(
                    frame=images[i],
                    source_keypoints=norm_to_pixels(host["kp_norm"][i], tuple(size)),
                    driving_keypoints=norm_to_pixels(host["kp_driving"][i], tuple(size)),
                    mask=mask,
                    motion=host["motion"][i],
                    extras=extras,
                )
            )
        return results

    def close(self) -> None:
        self.generator.to("cpu")
        self.kp_detector.to("cpu")


def build_modules(card: ModelCard) -> tuple[MotionTransferGenerator, KPDetector]:
    params = card.options["model_params"]
    common = params["common_params"]
    generator = MotionTransferGenerator(**params["generator_params"], **common)
    kp_detector = KPDetector(**params["kp_detector_params"], **common)
    return generator, kp_detector


def create(card: ModelCard, paths, device) -> MonkeyNetAnimator:
    generator, kp_detector = build_modules(card)
    if paths is not None:
        path = paths[0]
        dicts = module_dicts(hub.load_checkpoint(path), list(MODULES), filename=path.name)
        load_strict(generator, with_batch_counters(generator, dicts["generator"]), f"{card.name} generator")
        load_strict(kp_detector, with_batch_counters(kp_detector, dicts["kp_detector"]), f"{card.name} kp_detector")
    return MonkeyNetAnimator(card, generator, kp_detector, device)


def published_checkpoints(animator: MonkeyNetAnimator) -> dict[str, object]:
    """``{filename: checkpoint}`` in the published layout (logger.save_cpk; no discriminator/optimizers here)."""
    return {
        animator.card.files[0].filename: {
            "generator": cpu_state_dict(animator.generator),
            "kp_detector": cpu_state_dict(animator.kp_detector),
            "epoch": 0,
            "it": 0,
        }
    }
