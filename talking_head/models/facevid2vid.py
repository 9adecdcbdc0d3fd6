"""face-vid2vid as an ``Animator``: canonical 3-D keypoints, head pose, expression, free view.

Port of zhanglonghao1992/One-Shot_Free-View_Neural_Talking_Head_Synthesis (``demo.py``, commit
9511d25a; see ``tests/fixtures/parity/facevid2vid.md``). Per source (once): canonical keypoints
kp_c = KPDetector(source), its head pose, kp_source = R_s kp_c + t_s + exp_s, the generator's
feature volume and the dense-motion network's source-only work. Per batch of driving frames:
HEEstimator(frames) -> kp_driving = R_d kp_c + t_d + exp_d (with the SOURCE's kp_c, as the demo)
-> ``normalize_kp`` (relative, with the 3-D hull adapt scale) -> warp and SPADE decoder.

Free view: the ``yaw``/``pitch``/``roll`` controls either replace the driving pose ("fixed", the
demo's ``--free_view``) or are added to it ("offset"). Only kp_driving takes them; kp_source and
the reference keep their estimated pose, as in the demo.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head import camera, hub
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models.base import (
    Animator,
    FrameResult,
    TransferOptions,
    cpu_state_dict,
    load_strict,
    module_dicts,
    to_tensor,
    to_uint8,
    volume_flow,
)
from talking_head.models.facevid2vid_modules import HEEstimator, KPDetector, OcclusionAwareSPADEGenerator
from talking_head.motion import relative_points

MODULES = ("generator", "kp_detector", "he_estimator")
POSE_MODES = ("offset", "fixed")

_tokens = itertools.count(1)


# ---------------------------------------------------------------- head pose
@dataclass
class HeadPose:
    """HEEstimator outputs for a batch: bin logits (B, 66), degrees (B,), t (B, 3), exp (B, K, 3).

    ``yaw``/``roll`` are what the published forward calls yaw/roll (from ``fc_roll``/``fc_yaw``).
    """

    yaw_logits: torch.Tensor
    pitch_logits: torch.Tensor
    roll_logits: torch.Tensor
    yaw: torch.Tensor
    pitch: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor

    @property
    def rotation(self) -> torch.Tensor:
        return camera.face_vid2vid_rotation(self.yaw, self.pitch, self.roll)

    def keypoints(self, kp_canonical: torch.Tensor, rotation: torch.Tensor | None = None) -> torch.Tensor:
        """``R kp_c + t + exp`` (B, K, 3), with this pose's own R unless ``rotation`` is given."""
        r = self.rotation if rotation is None else rotation
        return camera.face_vid2vid_keypoints(kp_canonical.expand(r.shape[0], -1, -1), r, self.t, self.exp)


@dataclass(frozen=True)
class PoseSettings:
    """The free-view controls: 'offset' adds (yaw, pitch, roll) degrees to each frame's pose, 'fixed' replaces it."""

    mode: str = "offset"
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    @classmethod
    def from_extra(cls, extra: dict | None) -> "PoseSettings":
        extra = dict(extra or {})
        mode = str(extra.get("pose_mode", "offset"))
        if mode not in POSE_MODES:
            raise BadInputError(f"Unknown head pose mode '{mode}'.", "Choose one of: " + ", ".join(POSE_MODES) + ".")
        return cls(mode, *(float(extra.get(k, 0.0) or 0.0) for k in ("yaw", "pitch", "roll")))

    @property
    def changes_pose(self) -> bool:
        return self.mode == "fixed" or any((self.yaw, self.pitch, self.roll))

    def rotation(self, pose: HeadPose) -> torch.Tensor:
        """R (B, 3, 3) for each frame of ``pose`` with these settings applied."""
        if not self.changes_pose:
            return pose.rotation
        b = pose.yaw.shape[0]
        angles = torch.tensor([self.yaw, self.pitch, self.roll], dtype=pose.yaw.dtype, device=pose.yaw.device)
        angles = angles[:, None].expand(3, b)
        if self.mode == "offset":
            angles = torch.stack([pose.yaw, pose.pitch, pose.roll]) + angles
        return camera.face_vid2vid_rotation(angles[0], angles[1], angles[2])


# ---------------------------------------------------------------- states
@dataclass
class SourceState:
    image: np.ndarray
    kp_canonical: torch.Tensor  # (1, K, 3)
    pose: HeadPose
    kp_source: torch.Tensor  # (1, K, 3)
    feature: torch.Tensor  # (1, C, D, h, w) generator feature volume
    warp_cache: dict
    token: int = field(default_factory=lambda: next(_tokens))
    scales: dict = field(default_factory=dict)  # reference token -> adapt scale


@dataclass
class DrivingState:
    image: np.ndarray
    pose: HeadPose
    token: int = field(default_factory=lambda: next(_tokens))


class FaceVid2VidNetworks(nn.Module):
    """The three published networks under their checkpoint names."""

    def __init__(self, params: dict):
        super().__init__()
        common = dict(params["common_params"])
        self.generator = OcclusionAwareSPADEGenerator(**params["generator_params"], **common)
        self.kp_detector = KPDetector(**params["kp_detector_params"], **common)
        self.he_estimator = HEEstimator(**params["he_estimator_params"], **common)


# ---------------------------------------------------------------- the animator
class FaceVid2VidAnimator(Animator):
    """face-vid2vid behind the ``Animator`` interface; networks in eval mode on ``device``."""

    FAST_PATH_DEFAULT = False  # bf16 vs fp32 on the parity fixture: 2.27 grey levels mean (max 16), spread over every network

    def __init__(self, card: ModelCard, device, networks: FaceVid2VidNetworks):
        super().__init__(card, device)
        self.nets = networks.to(device).eval()
        self.input_size = int(card.resolution or 256)

    # -- helpers
    def _images(self, images: np.ndarray) -> torch.Tensor:
        arr = np.asarray(images)
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise BadInputError("face-vid2vid expects uint8 RGB images (H, W, 3).", "Pass decoded RGB frames.")
        x = to_tensor(arr, self.device)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True).clamp_(0, 1)
        return x

    def head_pose(self, images: torch.Tensor) -> HeadPose:
        """HEEstimator on a batch (B, 3, S, S) in [0, 1] -> HeadPose (angles with face-vid2vid's 99-degree offset)."""
        raw = self.nets.he_estimator(images)
        b = images.shape[0]
        angles = {k: camera.bins_to_degrees(raw[k], offset=camera.FACE_VID2VID_ANGLE_OFFSET) for k in ("yaw", "pitch", "roll")}
        return HeadPose(yaw_logits=raw["yaw"], pitch_logits=raw["pitch"], roll_logits=raw["roll"], **angles,
                        t=raw["t"], exp=raw["exp"].reshape(b, -1, 3))

    def adapt_scale(self, source: SourceState, reference: DrivingState | None, kp_reference: torch.Tensor) -> float:
        """sqrt(V(kp_source)) / sqrt(V(kp_reference)) of 3-D hulls, once per (source, reference)."""
        key = None if reference is None else reference.token
        if key not in source.scales:
            source.scales[key] = camera.motion_multiplier(source.kp_source[0], kp_reference[0])
        return source.scales[key]

    # -- Animator interface
    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray) -> SourceState:
        x = self._images(image)
        kp_c = self.nets.kp_detector(x)["value"]
        pose = self.head_pose(x)
        kp_source = pose.keypoints(kp_c)
        feature = self.nets.generator.encode(x)
        cache = self.nets.generator.source_cache(feature, kp_source)
        return SourceState(image=np.asarray(image), kp_canonical=kp_c, pose=pose, kp_source=kp_source,
                           feature=feature, warp_cache=cache)

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        return DrivingState(image=np.asarray(image), pose=self.head_pose(self._images(image)))

    @torch.inference_mode()
    def transfer(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
                 options: TransferOptions, render: bool = True, pose: HeadPose | None = None) -> dict:
        """The per-batch path; returns every stage as tensors (and the adapt scale as a float).

        Keys: ``pose`` (the frames' HeadPose), ``rotation`` (R used for kp_driving), ``kp_driving``,
        ``kp_reference``, ``adapt_scale``, ``kp_norm`` and, when ``render``, ``prediction``,
        ``occlusion_map``, ``deformation``, ``mask``. Without a reference frame, relative motion is
        measured from the source's own pose. ``pose``: the frames' HeadPose from an earlier call.
        """
        relative = options.resolved_mode(self.card) == "relative"
        settings = PoseSettings.from_extra(options.extra)
        pose = pose if pose is not None else self.head_pose(self._images(frames))
        rotation = settings.rotation(pose)
        kp_driving = pose.keypoints(source.kp_canonical, rotation)
        kp_reference = source.kp_source if reference is None else reference.pose.keypoints(source.kp_canonical)
        scale = self.adapt_scale(source, reference, kp_reference) if (relative and options.adapt_scale) else 1.0
        kp_norm = relative_points(kp_driving, kp_reference, source.kp_source, scale) if relative else kp_driving
        out = {"pose": pose, "rotation": rotation, "kp_driving": kp_driving, "kp_reference": kp_reference,
               "adapt_scale": scale, "kp_norm": kp_norm}
        if render:
            out.update(self.render(source, kp_norm))
        return out

    def render(self, source: SourceState, kp_driving: torch.Tensor) -> dict:
        """Generator with the source's cached work: 'prediction' (B, 3, H, W) plus the warp's maps."""
        return self.nets.generator.warp_decode(source.feature, kp_driving, source.kp_source, source.warp_cache)

    @torch.inference_mode()
    def animate(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
                options: TransferOptions) -> list[FrameResult]:
        return self._results(source, self.transfer(source, frames, reference, options))

    @torch.inference_mode()
    def edit_pose(self, source: SourceState, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
                  pose_mode: str = "offset") -> FrameResult:
        """Re-pose a still photo: its own expression and translation with the head turned by the sliders.

        'offset': the source's estimated angles plus (yaw, pitch, roll); 'fixed': exactly these angles.
        """
        settings = PoseSettings.from_extra({"pose_mode": pose_mode, "yaw": yaw, "pitch": pitch, "roll": roll})
        kp = source.pose.keypoints(source.kp_canonical, settings.rotation(source.pose))
        out = {"kp_norm": kp, **self.render(source, kp)}
        return self._results(source, out)[0]

    # -- outputs
    def _results(self, source: SourceState, out: dict) -> list[FrameResult]:
        frames = to_uint8(out["prediction"])
        size = frames.shape[1]
        occlusion = out.get("occlusion_map")
        masks = None if occlusion is None else (1.0 - occlusion[:, 0]).float().cpu().numpy()
        flow, depth = volume_flow(out["deformation"], size)
        regions = out["mask"].sum(dim=2).argmax(dim=1).to(torch.float32).cpu().numpy()
        src_px = camera.to_pixels(source.kp_source[0], size)
        drv_px = camera.to_pixels(out["kp_driving"], self.input_size) if "kp_driving" in out else None
        anim_px = camera.to_pixels(out["kp_norm"], size)
        results = []
        for i in range(frames.shape[0]):
            results.append(FrameResult(
                frame=frames[i], source_keypoints=src_px, driving_keypoints=None if drv_px is None else drv_px[i],
                mask=None if masks is None else masks[i], motion=flow[i],
                extras={"animated_keypoints": anim_px[i], "depth_motion": depth[i], "motion_regions": regions[i]},
            ))
        return results

    def close(self) -> None:
        self.nets.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------- loading
def _layout_hint(checkpoint: dict, filename: str) -> None:
    """A clear CheckpointError for files in another layout (flat keys, another family's modules)."""
    keys = [str(k) for k in checkpoint]
    if "he_estimator" in checkpoint and all(isinstance(checkpoint.get(m), dict) for m in MODULES):
        return
    if any("." in k for k in keys[:50]):
        prefixes = sorted({k.split(".", 1)[0] for k in keys})[:6]
        raise CheckpointError(
            f"'{filename}' is a flat state dict (keys start with {', '.join(prefixes)}), not face-vid2vid's "
            "checkpoint of generator / kp_detector / he_estimator modules.",
            "Use facevid2vid_00189-model.pth.tar (Hugging Face model repository vinthony/SadTalker); a LivePortrait "
            "or SadTalker safetensors file does not fit.",
        )
    if "generator" in checkpoint and "he_estimator" not in checkpoint:
        raise CheckpointError(
            f"'{filename}' has no head-pose estimator ('he_estimator'); its modules are "
            f"{', '.join(keys[:8])}. It is probably a FOMM, MRAA or TPSMM checkpoint.",
            "Use facevid2vid_00189-model.pth.tar (Hugging Face model repository vinthony/SadTalker).",
        )


def load_networks(networks: FaceVid2VidNetworks, path: Path, what: str) -> None:
    """Load the three modules of a published checkpoint strictly; training entries are ignored."""
    checkpoint = hub.load_checkpoint(path)
    _layout_hint(checkpoint, Path(path).name)
    dicts = module_dicts(checkpoint, list(MODULES), filename=Path(path).name)
    for name in MODULES:
        load_strict(getattr(networks, name), dicts[name], f"the face-vid2vid {name} of '{what}'")


def create(card: ModelCard, paths, device) -> FaceVid2VidAnimator:
    """Build from ``card.options['model_params']``; load ``paths[0]`` (the published ``.pth.tar``) when given."""
    networks = FaceVid2VidNetworks(card.options["model_params"])
    if paths is not None:
        load_networks(networks, Path(paths[0]), card.name)
    device = torch.device(device) if not isinstance(device, torch.device) else device
    return FaceVid2VidAnimator(card, device, networks)


def published_checkpoints(animator: FaceVid2VidAnimator) -> dict[str, object]:
    """``{filename: checkpoint}`` in the published layout: the three module dicts plus ``epoch``."""
    nets = animator.nets
    checkpoint = {name: cpu_state_dict(getattr(nets, name)) for name in MODULES}
    checkpoint["epoch"] = 189
    return {animator.card.files[0].filename: checkpoint}
