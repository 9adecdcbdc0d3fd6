"""LivePortrait (KwaiVGI) as an ``Animator``: implicit 3-D keypoints, stitching and eye/lip retargeting.

Per source (once): appearance volume f_s = F(source), motion M(source) -> pose, x_s, and W's
source-only work. Per batch of driving frames: M(frames) -> keypoint transfer (relative or
absolute, regions, expression-friendly rescale, retargeting, stitching, multiplier) -> W -> G.
The keypoint transfer follows ``LivePortraitPipeline.execute`` for an image source and a video
driving clip (commit 1986663b); see ``tests/fixtures/parity/liveportrait.md``.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head import camera
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, CheckpointError
from talking_head.hub import load_checkpoint
from talking_head.models.base import (
    Animator, FrameResult, TransferOptions, cpu_state_dict, load_strict, module_dicts, to_tensor, volume_flow,
)
from talking_head.models.liveportrait_modules import (
    AppearanceFeatureExtractor,
    KeypointMLP,
    MotionExtractor,
    SPADEDecoder,
    WarpingNetwork,
)

REGIONS = ("all", "exp", "pose", "lip", "eyes")
LIP_KEYPOINTS = (6, 12, 14, 17, 19, 20)
EYE_KEYPOINTS = (11, 13, 15, 16, 18)
DEFAULT_EYE_RATIO = 0.35  # a typical open eye when no landmarks give the source's own ratio
DEFAULT_LIP_RATIO = 0.0  # closed mouth: normalize_lip then does nothing
LIP_NORMALIZE_THRESHOLD = 0.03

# Files in card order -> network names; the stitching file's entries -> MLP names.
BASE_FILES = ("appearance_feature_extractor", "motion_extractor", "warping_module", "spade_generator")
MLP_ENTRIES = {"retarget_shoulder": "stitching", "retarget_mouth": "retarget_lip", "retarget_eye": "retarget_eye"}

_tokens = itertools.count(1)


def absolute_expression_mask(num_kp: int = 21) -> torch.Tensor:
    """(K, 3) bool: the expression entries absolute motion takes from the driving frame."""
    mask = torch.zeros(num_kp, 3, dtype=torch.bool)
    mask[[1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]] = True
    mask[3:5, 1] = True
    mask[5, 2] = True
    mask[8, 2] = True
    mask[9, 1:] = True
    return mask


def keypoint_mask(indices, num_kp: int = 21) -> torch.Tensor:
    mask = torch.zeros(num_kp, 3, dtype=torch.bool)
    mask[list(indices)] = True
    return mask


# ---------------------------------------------------------------- states and settings
@dataclass
class Motion:
    """M's outputs for a batch of images: raw logits, angles in degrees (B, 1), R (B, 3, 3), ..."""

    pitch_logits: torch.Tensor
    yaw_logits: torch.Tensor
    roll_logits: torch.Tensor
    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor  # (B, 3) raw, tz unused
    exp: torch.Tensor  # (B, K, 3)
    scale: torch.Tensor  # (B, 1) raw
    kp: torch.Tensor  # (B, K, 3) canonical
    R: torch.Tensor  # (B, 3, 3) = (Rz Ry Rx)^T

    def keypoints(self) -> torch.Tensor:
        """The image's own transformed keypoints x = scale (kp R + exp) + [tx, ty, 0]."""
        return camera.transform_keypoints(self.kp, self.R, self.exp, self.scale, self.t)

    def rotation(self, offset=(0.0, 0.0, 0.0)) -> torch.Tensor:
        """R, or R of the angles plus (pitch, yaw, roll) offsets in degrees."""
        if not any(offset):
            return self.R
        return camera.rotation_matrix(self.pitch + offset[0], self.yaw + offset[1], self.roll + offset[2])


@dataclass
class SourceState:
    image: np.ndarray
    motion: Motion
    x_s: torch.Tensor  # (1, K, 3)
    f_s: torch.Tensor  # (1, C, D, h, w)
    warp_cache: dict
    ratios: dict = field(default_factory=dict)  # eye_left, eye_right, lip (open ratios)
    token: int = field(default_factory=lambda: next(_tokens))
    multipliers: dict = field(default_factory=dict)


@dataclass
class DrivingState:
    image: np.ndarray
    motion: Motion
    ratios: dict = field(default_factory=dict)
    token: int = field(default_factory=lambda: next(_tokens))


@dataclass
class DriveSettings:
    """The published pipeline's options, read from ``TransferOptions`` (defaults = the CLI's)."""

    relative: bool = True
    stitching: bool = True
    region: str = "all"
    expression_friendly: bool = True
    multiplier: float = 1.0
    eye_retargeting: bool = False
    lip_retargeting: bool = False
    normalize_lip: bool = False
    lip_normalize_threshold: float = LIP_NORMALIZE_THRESHOLD
    pose_offset: tuple = (0.0, 0.0, 0.0)
    eye_open: float = DEFAULT_EYE_RATIO
    lip_open: float = DEFAULT_LIP_RATIO

    @classmethod
    def from_options(cls, options: TransferOptions, card: ModelCard) -> "DriveSettings":
        extra = dict(options.extra or {})
        mode = options.resolved_mode(card)
        region = str(extra.get("animation_region", "all"))
        if region not in REGIONS:
            raise BadInputError(f"Unknown animation region '{region}'.", "Choose one of: " + ", ".join(REGIONS))
        option = str(extra.get("driving_option", "expression-friendly"))
        if option not in ("expression-friendly", "pose-friendly"):
            raise BadInputError(f"Unknown driving option '{option}'.", "Choose expression-friendly or pose-friendly.")
        return cls(
            relative=mode == "relative",
            stitching=bool(extra.get("stitching", True)),
            region=region,
            expression_friendly=option == "expression-friendly",
            multiplier=float(extra.get("driving_multiplier", 1.0)),
            eye_retargeting=bool(extra.get("eye_retargeting", False)),
            lip_retargeting=bool(extra.get("lip_retargeting", False)),
            normalize_lip=bool(extra.get("normalize_lip", False)),
            pose_offset=tuple(float(extra.get(k, 0.0) or 0.0) for k in ("pitch", "yaw", "roll")),
            eye_open=float(extra.get("eye_open", DEFAULT_EYE_RATIO)),
            lip_open=float(extra.get("lip_open", DEFAULT_LIP_RATIO)),
        )


@dataclass
class Ratios:
    """Retargeting inputs: source eye (L, R) and lip ratios, per-frame driving eye and lip ratios (B,)."""

    source_eye: torch.Tensor  # (2,)
    source_lip: torch.Tensor  # (1,)
    driving_eye: torch.Tensor  # (B,)
    driving_lip: torch.Tensor  # (B,)
    source_lip_value: float = DEFAULT_LIP_RATIO  # the same, on the host (normalize-lip threshold test)


def _first_column(value, batch: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        return np.full(batch, float(arr), np.float32)
    arr = arr.reshape(arr.shape[0], -1)[:, 0] if arr.ndim > 1 else arr
    if arr.shape[0] != batch:
        raise BadInputError(f"Got {arr.shape[0]} driving ratios for {batch} frames.", "Pass one ratio per driving frame.")
    return arr


def resolve_ratios(source: SourceState, extra: dict, settings: DriveSettings, batch: int, device) -> Ratios:
    """Ratios from ``extra`` (engine hook), else the source state's, else the sliders / defaults.

    The original feeds only the driving LEFT-eye ratio to R_eye; a (B, 2) driving array uses column 0.
    """
    eye = extra.get("source_eye_ratio")
    if eye is None:
        eye = (source.ratios.get("eye_left", DEFAULT_EYE_RATIO), source.ratios.get("eye_right", DEFAULT_EYE_RATIO))
    eye = np.asarray(eye, np.float32).reshape(-1)
    eye = np.repeat(eye, 2) if eye.size == 1 else eye[:2]
    lip = extra.get("source_lip_ratio", source.ratios.get("lip", DEFAULT_LIP_RATIO))
    lip = np.asarray(lip, np.float32).reshape(-1)[:1]
    d_eye = extra.get("driving_eye_ratio")
    d_lip = extra.get("driving_lip_ratio")
    d_eye = _first_column(settings.eye_open if d_eye is None else d_eye, batch)
    d_lip = _first_column(settings.lip_open if d_lip is None else d_lip, batch)
    arrays = np.concatenate([eye, lip, d_eye, d_lip]).astype(np.float32)
    t = torch.from_numpy(arrays).to(device)  # one upload
    return Ratios(t[:2], t[2:3], t[3 : 3 + batch], t[3 + batch :], source_lip_value=float(lip[0]))


# ---------------------------------------------------------------- networks
class LivePortraitNetworks(nn.Module):
    """The seven published networks under their own names."""

    def __init__(self, params: dict):
        super().__init__()
        mlp = params["stitching_retargeting_module_params"]
        self.appearance_feature_extractor = AppearanceFeatureExtractor(**params["appearance_feature_extractor_params"])
        self.motion_extractor = MotionExtractor(**params["motion_extractor_params"])
        self.warping_module = WarpingNetwork(**params["warping_module_params"])
        self.spade_generator = SPADEDecoder(**params["spade_generator_params"])
        self.stitching = KeypointMLP(**mlp["stitching"])
        self.retarget_lip = KeypointMLP(**mlp["lip"])
        self.retarget_eye = KeypointMLP(**mlp["eye"])


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def stitch(nets: LivePortraitNetworks, x_s: torch.Tensor, x_d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """S([x_s, x_d]) -> (delta (B, 3K + 2), stitched x_d): per-keypoint shift plus a shared (tx, ty)."""
    b, k = x_d.shape[:2]
    delta = nets.stitching(torch.cat([_flat(x_s.expand(b, -1, -1)), _flat(x_d)], dim=1))
    moved = x_d + delta[:, : 3 * k].reshape(b, k, 3)
    shift = delta[:, 3 * k : 3 * k + 2].reshape(b, 1, 2)
    return delta, torch.cat([moved[..., :2] + shift, moved[..., 2:]], dim=-1)


def retarget(mlp: nn.Module, x_s: torch.Tensor, ratio_input: torch.Tensor) -> torch.Tensor:
    """R([x_s, ratios]) -> keypoint delta (B, K, 3)."""
    b, k = ratio_input.shape[0], x_s.shape[1]
    return mlp(torch.cat([_flat(x_s.expand(b, -1, -1)), ratio_input], dim=1)).reshape(b, k, 3)


def _relative_motion(src: Motion, ref: Motion, drv: Motion, region: str, offset) -> tuple:
    """(R, exp, scale, t) of relative motion for an image source and a driving clip."""
    r_s = src.rotation(offset)
    rotation = (drv.R @ ref.R.permute(0, 2, 1)) @ r_s if region in ("all", "pose") else r_s
    moved = src.exp + (drv.exp - ref.exp)
    b = drv.exp.shape[0]
    if region in ("all", "exp"):
        exp = moved
    elif region in ("lip", "eyes"):
        mask = keypoint_mask(LIP_KEYPOINTS if region == "lip" else EYE_KEYPOINTS).to(moved.device)
        exp = torch.where(mask, moved, src.exp)
    else:
        exp = src.exp.expand(b, -1, -1)
    scale = src.scale * (drv.scale / ref.scale) if region == "all" else src.scale.expand(b, -1)
    t = src.t + (drv.t - ref.t) if region in ("all", "pose") else src.t.expand(b, -1)
    return rotation, exp, scale, t


def _absolute_motion(src: Motion, drv: Motion, region: str, offset) -> tuple:
    """(R, exp, scale, t) of absolute motion: driving pose, selected driving expression entries."""
    b = drv.exp.shape[0]
    rotation = drv.rotation(offset) if region in ("all", "pose") else src.rotation(offset).expand(b, -1, -1)
    if region in ("all", "exp"):
        mask = absolute_expression_mask(src.exp.shape[1])
    elif region in ("lip", "eyes"):
        mask = keypoint_mask(LIP_KEYPOINTS if region == "lip" else EYE_KEYPOINTS, src.exp.shape[1])
    else:
        mask = torch.zeros(src.exp.shape[1], 3, dtype=torch.bool)
    exp = torch.where(mask.to(drv.exp.device), drv.exp, src.exp)
    t = drv.t if region in ("all", "pose") else src.t.expand(b, -1)
    return rotation, exp, src.scale.expand(b, -1), t


def transfer_keypoints(nets: LivePortraitNetworks, source: SourceState, reference: Motion, driving: Motion,
                       settings: DriveSettings, ratios: Ratios, reference_key=None) -> dict[str, torch.Tensor]:
    """Driving keypoints x_d for each frame, with every intermediate of the published pipeline.

    Order: motion transfer -> expression-friendly rescale -> retargeting -> stitching ->
    normalize-lip delta -> multiplier. Keys follow ``tests/fixtures/parity/liveportrait.md``.
    ``reference_key`` names the reference so its expression-friendly factor is computed once.
    """
    src, x_s = source.motion, source.x_s
    b = driving.exp.shape[0]
    out: dict[str, torch.Tensor] = {}

    def raw(drv: Motion, offset) -> tuple:
        if settings.relative:
            parts = _relative_motion(src, reference, drv, settings.region, offset)
        else:
            parts = _absolute_motion(src, drv, settings.region, offset)
        rotation, exp, scale, t = parts
        t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)  # tz := 0
        return rotation, exp, scale, t, camera.transform_keypoints(src.kp, rotation, exp, scale, t)

    out["R_new"], out["delta_new"], out["scale_new"], out["t_new"], x_d = raw(driving, settings.pose_offset)
    out["x_d_raw"] = x_d
    if settings.relative and settings.expression_friendly:
        x_d_0 = raw(reference, (0.0, 0.0, 0.0))[-1]  # without pose offsets, so the rescale keeps them
        key = (reference_key, settings.region)
        multiplier = source.multipliers.get(key) if reference_key is not None else None
        if multiplier is None:  # one small host round trip per (source, reference, region)
            multiplier = camera.motion_multiplier(x_s[0], x_d_0[0])
            if reference_key is not None:
                source.multipliers[key] = multiplier
        out["x_d_0_new"], out["motion_multiplier"] = x_d_0, torch.tensor(multiplier, dtype=torch.float64)
        x_d = (x_d - x_d_0) * multiplier + x_s

    retargeting = settings.eye_retargeting or settings.lip_retargeting
    lip0 = None
    if retargeting:  # relative: the driving motion is replaced by the deltas, as in the original
        x_d = x_s.expand(b, -1, -1) if settings.relative else x_d
        if settings.eye_retargeting:
            eye_in = torch.cat([ratios.source_eye.expand(b, 2), ratios.driving_eye[:, None]], dim=1)
            out["eye_ratio_input"], out["eye_delta"] = eye_in, retarget(nets.retarget_eye, x_s, eye_in)
            x_d = x_d + out["eye_delta"]
        if settings.lip_retargeting:
            lip_in = torch.cat([ratios.source_lip.expand(b, 1), ratios.driving_lip[:, None]], dim=1)
            out["lip_ratio_input"], out["lip_delta"] = lip_in, retarget(nets.retarget_lip, x_s, lip_in)
            x_d = x_d + out["lip_delta"]
    elif settings.normalize_lip and settings.relative and ratios.source_lip_value >= settings.lip_normalize_threshold:
        lip_in = torch.cat([ratios.source_lip, ratios.source_lip.new_zeros(1)])[None]
        lip0 = retarget(nets.retarget_lip, x_s, lip_in)
        out["lip_ratio_input_before_animation"], out["lip_delta_before_animation"] = lip_in, lip0
    out["x_d_pre_stitch"] = x_d

    if settings.stitching:
        out["stitch_delta"], x_d = stitch(nets, x_s, x_d)
        out["x_d_stitched"] = x_d
    if lip0 is not None:
        x_d = x_d + lip0
    out["x_d"] = x_s + (x_d - x_s) * settings.multiplier
    return out


# ---------------------------------------------------------------- the animator
class LivePortraitAnimator(Animator):
    """LivePortrait on ``device``. ``half``: True runs the networks under fp16 autocast on CUDA (keypoint
    math stays float32, as in the original); "bf16" uses bfloat16 autocast on any device."""

    uses_face_ratios = True
    RATIO_OPTIONS = ("eye_retargeting", "lip_retargeting")
    FAST_PATH_DEFAULT = False  # bf16 vs fp32 on the parity fixture: 2.36 grey levels mean (max 23), spread over every network

    def __init__(self, card: ModelCard, device, networks: LivePortraitNetworks, half: bool | str = False):
        super().__init__(card, device)
        self.nets = networks.to(device).eval()
        self.input_size = int(card.resolution or 256)
        self.half = half

    # -- helpers
    def _autocast(self):
        """fp16 (or bf16) autocast on CUDA when ``half``; bf16 on other devices only when asked for by name."""
        if self.half and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16 if self.half == "bf16" else torch.float16)
        if self.half == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _images(self, images: np.ndarray) -> torch.Tensor:
        arr = np.asarray(images)
        if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise BadInputError("LivePortrait expects uint8 RGB images (H, W, 3).", "Pass decoded RGB frames.")
        x = to_tensor(arr, self.device).clamp_(0, 1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def extract_motion(self, images: torch.Tensor) -> Motion:
        """M on a batch (B, 3, S, S) in [0, 1] -> Motion (angles in degrees, R, reshaped kp/exp)."""
        with self._autocast():
            raw = self.nets.motion_extractor(images)
        raw = {k: v.float() for k, v in raw.items()}
        b = images.shape[0]
        angles = {k: camera.bins_to_degrees(raw[k])[:, None] for k in ("pitch", "yaw", "roll")}
        return Motion(
            pitch_logits=raw["pitch"], yaw_logits=raw["yaw"], roll_logits=raw["roll"], **angles,
            t=raw["t"], exp=raw["exp"].reshape(b, -1, 3), scale=raw["scale"], kp=raw["kp"].reshape(b, -1, 3),
            R=camera.rotation_matrix(angles["pitch"], angles["yaw"], angles["roll"]),
        )

    def warp_decode(self, source: SourceState, x_d: torch.Tensor) -> dict[str, torch.Tensor]:
        """W(f_s, x_s, x_d) -> G: image (B, 3, 2S, 2S) plus W's deformation, occlusion, masks and output."""
        with self._autocast():
            warped = self.nets.warping_module(source.f_s, kp_driving=x_d, kp_source=source.x_s, cache=source.warp_cache)
            image = self.nets.spade_generator(warped["out"])
        out = {k: v.float() for k, v in warped.items() if v is not None}
        out["image"] = image.float()
        return out

    # -- Animator interface
    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray, ratios: dict | None = None) -> SourceState:
        """F and M on the source, x_s, and W's source-only work. ``ratios``: {eye_left, eye_right, lip}."""
        x = self._images(image)
        motion = self.extract_motion(x)
        x_s = motion.keypoints()
        with self._autocast():
            f_s = self.nets.appearance_feature_extractor(x).float()
            cache = self.nets.warping_module.source_cache(f_s, x_s)
        return SourceState(image=np.asarray(image), motion=motion, x_s=x_s, f_s=f_s, warp_cache=cache, ratios=dict(ratios or {}))

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray, ratios: dict | None = None) -> DrivingState:
        return DrivingState(image=np.asarray(image), motion=self.extract_motion(self._images(image)), ratios=dict(ratios or {}))

    @torch.inference_mode()
    def drive(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
              options: TransferOptions, render: bool = True, motion: Motion | None = None) -> dict[str, torch.Tensor]:
        """The whole per-batch path on the device; returns tensors (keypoint intermediates, image, warp outputs).

        Without a reference frame, relative motion is measured from the source's own pose and expression.
        ``motion``: the frames' Motion from an earlier call (e.g. re-rendering with other controls).
        """
        settings = DriveSettings.from_options(options, self.card)
        driving = motion if motion is not None else self.extract_motion(self._images(frames))
        batch = driving.exp.shape[0]
        ref, key = (reference.motion, reference.token) if reference is not None else (source.motion, "source")
        ratios = resolve_ratios(source, dict(options.extra or {}), settings, batch, self.device)
        out: dict = transfer_keypoints(self.nets, source, ref, driving, settings, ratios, reference_key=key)
        out["driving_motion"] = driving
        out["x_drv"] = driving.keypoints()
        if render:
            out.update(self.warp_decode(source, out["x_d"]))
        return out

    @torch.inference_mode()
    def animate(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
                options: TransferOptions) -> list[FrameResult]:
        out = self.drive(source, frames, reference, options)
        return self._results(source, out)

    @torch.inference_mode()
    def edit_pose(self, source: SourceState, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0,
                  eye_open: float | None = None, lip_open: float | None = None, stitching: bool = True) -> FrameResult:
        """Re-pose a still photo: source angles + offsets (degrees), optional eye/lip open targets.

        As the original's image retargeting, except that tz is dropped like everywhere else (so zero
        offsets reproduce x_s).
        """
        src = source.motion
        rotation = src.rotation((float(pitch), float(yaw), float(roll)))
        t = torch.cat([src.t[:, :2], torch.zeros_like(src.t[:, 2:])], dim=1)
        x_d = camera.transform_keypoints(src.kp, rotation, src.exp, src.scale, t)
        settings = DriveSettings(eye_open=DEFAULT_EYE_RATIO if eye_open is None else float(eye_open),
                                 lip_open=DEFAULT_LIP_RATIO if lip_open is None else float(lip_open))
        ratios = resolve_ratios(source, {}, settings, 1, self.device)
        if eye_open is not None:
            x_d = x_d + retarget(self.nets.retarget_eye, source.x_s, torch.cat([ratios.source_eye, ratios.driving_eye])[None])
        if lip_open is not None:
            x_d = x_d + retarget(self.nets.retarget_lip, source.x_s, torch.cat([ratios.source_lip, ratios.driving_lip])[None])
        if stitching:
            x_d = stitch(self.nets, source.x_s, x_d)[1]
        out = {"x_d": x_d}
        out.update(self.warp_decode(source, x_d))
        return self._results(source, out)[0]

    # -- outputs
    def _results(self, source: SourceState, out: dict) -> list[FrameResult]:
        image = out["image"]
        size = image.shape[-1]
        frames = (image.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # truncation, as the original
        mask = (1.0 - out["occlusion_map"][:, 0]).cpu().numpy() if "occlusion_map" in out else None
        flow, depth = volume_flow(out["deformation"], size)  # averaged over depth
        regions = out["mask"].sum(dim=2).argmax(dim=1).to(torch.float32).cpu().numpy() if "mask" in out else None
        src_px = camera.to_pixels(source.x_s[0], size)
        drv_px = camera.to_pixels(out["x_drv"], self.input_size) if "x_drv" in out else None
        anim_px = camera.to_pixels(out["x_d"], size)
        results = []
        for i in range(frames.shape[0]):
            extras = {"animated_keypoints": anim_px[i], "depth_motion": depth[i].astype(np.float32)}
            if regions is not None:
                extras["motion_regions"] = regions[i]
            results.append(FrameResult(
                frame=frames[i], source_keypoints=src_px, driving_keypoints=None if drv_px is None else drv_px[i],
                mask=None if mask is None else mask[i].astype(np.float32), motion=flow[i].astype(np.float32), extras=extras,
            ))
        return results

    def close(self) -> None:
        self.nets.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------- loading
def _strip_ddp(state_dict: dict) -> dict:
    return {k.replace("module.", ""): v for k, v in state_dict.items()}


def load_networks(networks: LivePortraitNetworks, paths: list[Path]) -> None:
    """Load the card's five files (four bare state dicts, then the stitching/retargeting file) strictly."""
    if len(paths) != len(BASE_FILES) + 1:
        raise CheckpointError(f"LivePortrait needs {len(BASE_FILES) + 1} files, got {len(paths)}.", "Use the files on the model card.")
    for name, path in zip(BASE_FILES, paths):
        state = load_checkpoint(path)
        load_strict(getattr(networks, name), state, f"LivePortrait {name} ('{Path(path).name}')")
    path = Path(paths[-1])
    entries = module_dicts(load_checkpoint(path), list(MLP_ENTRIES), filename=path.name)
    for entry, name in MLP_ENTRIES.items():
        load_strict(getattr(networks, name), _strip_ddp(entries[entry]), f"LivePortrait {name} ('{path.name}' entry '{entry}')")


def create(card: ModelCard, paths, device, half: bool | str | None = None) -> LivePortraitAnimator:
    """Build from ``card.options['model_params']``; load ``paths`` (card file order) when given."""
    networks = LivePortraitNetworks(card.options["model_params"])
    if paths is not None:
        load_networks(networks, [Path(p) for p in paths])
    device = torch.device(device) if not isinstance(device, torch.device) else device
    return LivePortraitAnimator(card, device, networks, half=card.options.get("half", False) if half is None else half)


def published_checkpoints(animator: LivePortraitAnimator) -> dict[str, object]:
    """{card filename: object to torch.save} in the published layout (bare dicts; ``module.`` MLP keys)."""
    nets = animator.nets
    files = [wf.filename for wf in animator.card.files]
    out: dict[str, object] = {name: cpu_state_dict(getattr(nets, key)) for name, key in zip(files, BASE_FILES)}
    out[files[-1]] = {entry: {f"module.{k}": v for k, v in cpu_state_dict(getattr(nets, name)).items()}
                      for entry, name in MLP_ENTRIES.items()}
    return out
