"""First Order Motion Model (FOMM): keypoints + local affine motion, occlusion-aware generator.

Port of ``AliaksandrSiarohin/first-order-model`` (demo.py / animate.normalize_kp). The networks
are in ``fomm_modules``; this module builds them from a card, loads the published checkpoint
and implements the ``Animator`` interface:

- ``relative``: the source moves by the driving frame's motion relative to the reference frame,
  ``kp = (kp_d - kp_ref) * scale + kp_s`` and ``J = J_d inv(J_ref) J_s`` (``scale`` is the ratio of
  keypoint-hull sizes when ``adapt_scale`` is on, else 1);
- ``absolute``: the driving frame's keypoints and jacobians are used as they are.
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
    peak_normalised,
    to_tensor,
    to_uint8,
)
from talking_head.models.fomm_modules import KeypointDetector, OcclusionAwareGenerator
from talking_head.motion import movement_scale, relative_points, relative_transforms

MODULES = ("generator", "kp_detector")


# ---------------------------------------------------------------- keypoint transfer
def transfer_keypoints(
    kp_source: dict,
    kp_driving: dict,
    kp_reference: dict,
    relative: bool,
    relative_jacobian: bool = True,
    scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The keypoints the generator is driven with (``normalize_kp`` of the published demo).

    Absolute: the driving keypoints unchanged. Relative: driving movement since the reference,
    times ``scale``, added to the source keypoints; with ``relative_jacobian`` the jacobians are
    ``J_d inv(J_ref) J_s``, otherwise the driving jacobians are kept.
    """
    out = {"value": kp_driving["value"]}
    if "jacobian" in kp_driving:
        out["jacobian"] = kp_driving["jacobian"]
    if not relative:
        return out
    out["value"] = relative_points(kp_driving["value"], kp_reference["value"], kp_source["value"], scale)
    if relative_jacobian and "jacobian" in kp_driving:
        out["jacobian"] = relative_transforms(kp_driving["jacobian"], kp_reference["jacobian"], kp_source["jacobian"])
    return out


# ---------------------------------------------------------------- animator
@dataclass
class SourceState:
    """Everything about the source that does not depend on the driving frames."""

    keypoints: dict  # value (1, K, 2), jacobian (1, K, 2, 2), heatmap (1, K, h, w)
    features: torch.Tensor  # encoder output that gets warped
    motion_source: torch.Tensor  # the dense-motion net's downsampled source
    value_cpu: np.ndarray  # (K, 2) keypoints on the host, for the hull area
    heatmap_preview: np.ndarray  # (h, w, K), each keypoint's heatmap scaled to max 1
    size: tuple[int, int]  # (H, W) of the source image


@dataclass
class DrivingState:
    """Keypoints of the reference driving frame."""

    keypoints: dict  # value (1, K, 2), jacobian (1, K, 2, 2)
    value_cpu: np.ndarray  # (K, 2)


def _heatmap_preview(heatmap: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) softmax heatmaps -> (B, h, w, K), each map divided by its maximum."""
    return peak_normalised(heatmap).permute(0, 2, 3, 1)


class FommAnimator(Animator):
    """FOMM behind the ``Animator`` interface; modules stay in eval mode on ``device``."""

    def __init__(self, card: ModelCard, kp_detector: KeypointDetector, generator: OcclusionAwareGenerator, device):
        super().__init__(card, device)
        self.kp_detector = kp_detector.to(device).eval()
        self.generator = generator.to(device).eval()

    # -- source / reference
    def prepare_source(self, image: np.ndarray) -> SourceState:
        with torch.inference_mode():
            x = to_tensor(image, self.device)
            kp = self.kp_detector(x)
            dense = self.generator.dense_motion_network
            return SourceState(
                keypoints=kp,
                features=self.generator.encode_bottom(x),
                motion_source=dense.shrink(x),
                value_cpu=kp["value"][0].float().cpu().numpy(),
                heatmap_preview=_heatmap_preview(kp["heatmap"])[0].float().cpu().numpy(),
                size=(x.shape[2], x.shape[3]),
            )

    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        with torch.inference_mode():
            kp = self.kp_detector(to_tensor(image, self.device))
            kp = {k: v for k, v in kp.items() if k != "heatmap"}
            return DrivingState(keypoints=kp, value_cpu=kp["value"][0].float().cpu().numpy())

    # -- the batch
    def transfer(
        self, source: SourceState, frames: torch.Tensor, reference: DrivingState | None, options: TransferOptions
    ) -> dict[str, object]:
        """Driving frames (B, 3, H, W) in [0, 1] -> tensors of every stage, on the device.

        Keys: ``kp_driving``, ``kp_norm`` (keypoint dicts), ``movement_scale`` (float),
        ``sparse_deformed``, ``mask``, ``deformation``, ``occlusion_map``, ``prediction``.
        Without a reference frame, relative transfer measures movement from the source itself.
        """
        mode = options.resolved_mode(self.card)
        relative = mode == "relative"
        kp_driving = self.kp_detector(frames)
        if reference is None:
            ref_kp, ref_value = source.keypoints, source.value_cpu
        else:
            ref_kp, ref_value = reference.keypoints, reference.value_cpu
        scale = movement_scale(source.value_cpu, ref_value) if (relative and options.adapt_scale) else 1.0
        relative_jacobian = bool(options.extra.get("relative_jacobian", True))
        kp_norm = transfer_keypoints(source.keypoints, kp_driving, ref_kp, relative, relative_jacobian, scale)
        kp_source = {k: v for k, v in source.keypoints.items() if k != "heatmap"}
        motion = self.generator.dense_motion_network(source.motion_source, kp_norm, kp_source)
        occlusion = motion.get("occlusion_map")
        prediction = self.generator.decode(source.features, motion["deformation"], occlusion)
        return {
            "kp_driving": kp_driving,
            "kp_norm": kp_norm,
            "movement_scale": scale,
            **motion,
            "prediction": prediction,
        }

    def animate(
        self, source: SourceState, frames: np.ndarray, reference: DrivingState | None, options: TransferOptions
    ) -> list[FrameResult]:
        with torch.inference_mode():
            out = self.transfer(source, to_tensor(frames, self.device), reference, options)
            images = to_uint8(out["prediction"])
            h, w = images.shape[1:3]
            flow = flow_to_pixels(out["deformation"], (h, w), align_corners=True).float().cpu().numpy()
            occlusion = out.get("occlusion_map")
            masks = None if occlusion is None else (1.0 - occlusion[:, 0]).float().cpu().numpy()
            motion_masks = out["mask"].permute(0, 2, 3, 1).float().cpu().numpy()
            driving_heatmaps = _heatmap_preview(out["kp_driving"]["heatmap"]).float().cpu().numpy()
            driving_value = out["kp_driving"]["value"].float().cpu().numpy()
            moved_value = out["kp_norm"]["value"].float().cpu().numpy()
        source_px = norm_to_pixels(source.value_cpu, (h, w))
        results = []
        for i in range(images.shape[0]):
            results.append(
                FrameResult(
                    frame=images[i],
                    source_keypoints=source_px,
                    driving_keypoints=norm_to_pixels(driving_value[i], (h, w)),
                    mask=None if masks is None else masks[i],
                    motion=flow[i],
                    extras={
                        "transferred_keypoints": norm_to_pixels(moved_value[i], (h, w)),
                        "source_heatmaps": source.heatmap_preview,
                        "driving_heatmaps": driving_heatmaps[i],
                        "motion_masks": motion_masks[i],
                    },
                )
            )
        return results


# ---------------------------------------------------------------- building and loading
def build_modules(options: dict) -> tuple[KeypointDetector, OcclusionAwareGenerator]:
    """The two networks from a published ``model_params`` config (common/kp_detector/generator)."""
    common = dict(options["common_params"])
    kp_detector = KeypointDetector(**options["kp_detector_params"], **common)
    generator = OcclusionAwareGenerator(**options["generator_params"], **common)
    return kp_detector, generator


def create(card: ModelCard, paths, device) -> FommAnimator:
    """Build the model of ``card``; load ``paths[0]`` (a published ``*-cpk.pth.tar``) when given."""
    kp_detector, generator = build_modules(card.options)
    if paths is not None:
        filename = card.files[0].filename if card.files else str(paths[0])
        checkpoint = hub.load_checkpoint(paths[0])
        dicts = module_dicts(checkpoint, list(MODULES), filename=filename)
        load_strict(generator, dicts["generator"], f"the FOMM generator of '{card.name}'")
        load_strict(kp_detector, dicts["kp_detector"], f"the FOMM keypoint detector of '{card.name}'")
    return FommAnimator(card, kp_detector, generator, device)


def published_checkpoints(animator: FommAnimator) -> dict[str, object]:
    """``{filename: checkpoint}`` in the published layout (unwrapped module state dicts + epoch)."""

    checkpoint = {
        "generator": cpu_state_dict(animator.generator),
        "kp_detector": cpu_state_dict(animator.kp_detector),
        "epoch": 0,
    }
    return {animator.card.files[0].filename: checkpoint}
