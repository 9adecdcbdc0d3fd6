"""Thin-Plate Spline Motion Model (TPSMM) as an ``Animator``.

Modes (``TransferOptions.mode``), as in the authors' ``demo.py``:

* ``standard``: the driving frame's keypoints are used as they are (absolute transfer);
* ``relative``: the source keypoints move by the driving keypoints' offset from the reference
  frame, scaled by sqrt(hull area source / hull area reference) unless ``adapt_scale`` is off;
* ``avd``: the AVD network combines the source keypoints' identity with the driving pose.

``TransferOptions.extra["background_motion"]`` (cards with a background predictor) replaces the
identity background transform by the predicted source/driving camera motion, as the authors'
``reconstruction.py`` does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError
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
)
from talking_head.models.blocks import resize_bilinear, resize_grid
from talking_head.models.tpsmm_modules import (
    AVDNetwork,
    BackgroundMotionPredictor,
    DenseMotionNetwork,
    InpaintingNetwork,
    KeypointDetector,
)
from talking_head.motion import area_scale, hull_area, relative_points

REQUIRED = ("kp_detector", "dense_motion_network", "inpainting_network")
OPTIONAL = ("avd_network", "bg_predictor")

# The published config/vox-256.yaml model_params; cards override what differs.
DEFAULT_MODEL_PARAMS = {
    "common_params": {"num_tps": 10, "num_channels": 3, "bg": True, "multi_mask": True},
    "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 3},
    "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25},
    "avd_network_params": {"id_bottle_size": 128, "pose_bottle_size": 128},
}


def model_params(card: ModelCard) -> dict:
    """The card's ``options["model_params"]`` merged over the vox-256 defaults, section by section."""
    given = card.options.get("model_params", {})
    return {section: {**values, **given.get(section, {})} for section, values in DEFAULT_MODEL_PARAMS.items()}


class TPSMMNetworks(nn.Module):
    """All TPSMM networks; attribute names are the checkpoint's top-level keys."""

    def __init__(self, params: dict):
        super().__init__()
        common = params["common_params"]
        if not common.get("multi_mask", True):
            raise ValueError("TPSMM with multi_mask=False is not supported (no published checkpoint uses it).")
        num_tps, channels = common["num_tps"], common["num_channels"]
        self.kp_detector = KeypointDetector(num_tps, channels)
        self.dense_motion_network = DenseMotionNetwork(
            num_tps=num_tps, num_channels=channels, **params["dense_motion_params"]
        )
        self.inpainting_network = InpaintingNetwork(channels, **params["generator_params"])
        self.avd_network: AVDNetwork | None = AVDNetwork(num_tps, **params["avd_network_params"])
        self.bg_predictor: BackgroundMotionPredictor | None = None
        if common.get("bg"):
            self.bg_predictor = BackgroundMotionPredictor(channels)


@dataclass
class SourceState:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1]
    keypoints: torch.Tensor  # (1, K, 2) normalised
    small: torch.Tensor  # (1, 3, h, w) the dense-motion network's anti-aliased input
    gaussians: torch.Tensor  # (1, K, h, w)
    encoded: list  # inpainting encoder features, finest first
    hull_area: float
    keypoints_px: np.ndarray


@dataclass
class DrivingState:
    keypoints: torch.Tensor  # (1, K, 2) normalised
    hull_area: float


class TPSMMAnimator(Animator):
    # bf16 vs fp32 on the parity fixture (grey levels, mean / max): everything in bf16 3.40 / 124; with the
    # spline geometry in float32 1.95 / 75; plus the keypoint (and background) heads in float32: 0.33 / 23
    FP32_NETWORKS = ("networks.kp_detector.fg_encoder.fc", "networks.bg_predictor.bg_encoder.fc")
    def __init__(self, card: ModelCard, networks: TPSMMNetworks, device):
        super().__init__(card, device)
        self.networks = networks.to(device).eval()

    # ------------------------------------------------------------ source / reference
    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray) -> SourceState:
        nets = self.networks
        x = to_tensor(image, self.device)
        kp = nets.kp_detector(x)
        small = nets.dense_motion_network.downsample(x)
        kp_host = kp[0].float().cpu().numpy()
        return SourceState(
            image=x,
            keypoints=kp,
            small=small,
            gaussians=nets.dense_motion_network.gaussians(kp, small.shape[2], small.shape[3]),
            encoded=nets.inpainting_network.encode(x),
            hull_area=hull_area(kp_host),
            keypoints_px=norm_to_pixels(kp_host, tuple(x.shape[2:])),
        )

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        kp = self.networks.kp_detector(to_tensor(image, self.device))
        return DrivingState(keypoints=kp, hull_area=hull_area(kp[0].float().cpu().numpy()))

    # ------------------------------------------------------------ motion transfer
    def transferred_keypoints(
        self, source: SourceState, kp_driving, reference: DrivingState | None, mode: str, options: TransferOptions
    ):
        """The keypoints the dense motion network takes as driving keypoints, per mode."""
        if mode == "standard":
            return kp_driving
        if mode == "relative":
            if reference is None:
                raise BadInputError(
                    "Relative motion transfer needs a reference driving frame.",
                    "Pass a reference frame, or use the 'standard' mode.",
                )
            scale = area_scale(source.hull_area, reference.hull_area) if options.adapt_scale else 1.0
            return relative_points(kp_driving, reference.keypoints, source.keypoints, scale)
        if mode == "avd":
            if self.networks.avd_network is None:
                raise BadInputError(
                    f"The checkpoint of '{self.card.name}' has no AVD network, so the 'avd' mode is not available.",
                    "Use the 'relative' or 'standard' mode.",
                )
            return self.networks.avd_network(source.keypoints, kp_driving)
        raise BadInputError(
            f"Model '{self.card.name}' has no mode '{mode}'.", "Choose one of: " + ", ".join(self.card.modes)
        )

    def background(self, source: SourceState, driving: torch.Tensor, options: TransferOptions):
        if not options.extra.get("background_motion"):
            return None
        if self.networks.bg_predictor is None:
            raise BadInputError(
                f"'{self.card.name}' has no background motion predictor.", "Turn off 'background motion'."
            )
        return self.networks.bg_predictor(source.image, driving)

    @torch.inference_mode()
    def forward(
        self, source: SourceState, driving: torch.Tensor, reference: DrivingState | None, options: TransferOptions
    ) -> dict:
        """Tensors of one batch: driving (B, 3, H, W) in [0, 1] -> keypoints, motion and prediction.

        Returns ``kp_driving``, ``kp_norm`` (what the dense motion net takes), ``deformation``
        (B, h, w, 2), ``occlusion_map`` (coarse to fine) and ``prediction`` (B, 3, H, W).
        """
        nets = self.networks
        kp_driving = nets.kp_detector(driving)
        kp_norm = self.transferred_keypoints(source, kp_driving, reference, options.resolved_mode(self.card), options)
        bg_param = self.background(source, driving, options)
        motion = nets.dense_motion_network(
            source.small, kp_norm, source.keypoints, source_gaussians=source.gaussians, bg_param=bg_param
        )
        prediction = nets.inpainting_network(source.image, source.encoded, motion["deformation"], motion["occlusion_map"])
        return {"kp_driving": kp_driving, "kp_norm": kp_norm, "prediction": prediction, **motion}

    @torch.inference_mode()
    def animate(
        self, source: SourceState, frames: np.ndarray, reference: DrivingState | None, options: TransferOptions
    ) -> list[FrameResult]:
        size = tuple(source.image.shape[2:])
        if frames.ndim != 4 or frames.shape[1:3] != size:
            raise BadInputError(
                f"Driving frames of shape {frames.shape} do not match the source size {size}.",
                "Pass RGB frames (B, H, W, 3) at the source's resolution.",
            )
        out = self.forward(source, to_tensor(frames, self.device), reference, options)
        return self._results(source, out["prediction"], out["kp_driving"], out["deformation"], out["occlusion_map"])

    def _results(self, source: SourceState, prediction, kp_driving, deformation, occlusion) -> list[FrameResult]:
        h, w = prediction.shape[2:]
        flow = flow_to_pixels(resize_grid(deformation, (h, w), align_corners=True), (h, w), align_corners=True)
        mask = 1 - resize_bilinear(occlusion[-1], (h, w), align_corners=True)[:, 0]
        frames = to_uint8(prediction)
        flow_np = flow.float().cpu().numpy()
        mask_np = mask.float().cpu().numpy()
        occ_np = [o[:, 0].float().cpu().numpy() for o in occlusion]
        kp_np = norm_to_pixels(kp_driving.float().cpu().numpy(), (h, w))
        return [
            FrameResult(
                frame=frames[i],
                source_keypoints=source.keypoints_px,
                driving_keypoints=kp_np[i],
                mask=mask_np[i],
                motion=flow_np[i],
                extras={f"occlusion_{j}": occ[i] for j, occ in enumerate(occ_np)},
            )
            for i in range(frames.shape[0])
        ]

    def close(self) -> None:
        self.networks.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


# ---------------------------------------------------------------- build / load / save
def create(card: ModelCard, paths, device) -> TPSMMAnimator:
    networks = TPSMMNetworks(model_params(card))
    if paths is not None:
        load_networks(networks, paths[0])
    return TPSMMAnimator(card, networks, torch.device(device) if isinstance(device, str) else device)


def load_networks(networks: TPSMMNetworks, path) -> None:
    """Load a published ``*.pth.tar`` strictly; AVD and background predictor only when present."""
    checkpoint = hub.load_checkpoint(path)
    wanted = tuple(name for name in OPTIONAL if getattr(networks, name) is not None)
    dicts = module_dicts(checkpoint, list(REQUIRED), optional=wanted, filename=getattr(path, "name", str(path)))
    for name in REQUIRED + wanted:
        if name in dicts:
            load_strict(getattr(networks, name), dicts[name], f"TPSMM {name}")
        else:
            setattr(networks, name, None)


def published_checkpoints(animator: TPSMMAnimator) -> dict[str, object]:
    """``{filename: checkpoint}`` in the published layout: ``{module name: state_dict, ..., 'epoch'}``."""
    nets = animator.networks
    content: dict[str, object] = {
        name: cpu_state_dict(getattr(nets, name)) for name in REQUIRED + OPTIONAL if getattr(nets, name) is not None
    }
    content["epoch"] = 0
    return {animator.card.files[0].filename: content}
