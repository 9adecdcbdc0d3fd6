"""MRAA (Motion Representations for Articulated Animation): the Animator and checkpoint I/O.

Modes (``TransferOptions.mode`` / ``resolved_mode``):
- ``standard``: the driving frame's regions are used as they are (absolute transfer);
- ``relative``: the source regions move by the driving motion relative to the reference frame
  (shift difference scaled by the square root of the region-hull area ratio, affine
  ``A_d inv(A_ref) A_s``; the covariance stays the driving frame's own, as published);
- ``avd``: animation via disentanglement; a small network combines the driving pose with the
  source's region shapes (needs ``avd_network`` weights in the checkpoint).

Beyond the published code: ``TransferOptions.adapt_scale=False`` turns the relative-mode scale
off (the original always applies it), and ``relative`` without a reference frame uses the source
as reference, which is exactly ``standard``.

The published code is ``snap-research/articulated-animation`` (demo.py, animate.py); the
networks are in ``mraa_modules``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models.base import (
    Animator,
    FrameResult,
    TransferOptions,
    cpu_state_dict,
    flow_to_pixels,
    grid_to_pixels,
    load_strict,
    module_dicts,
    peak_normalised,
    to_tensor,
    to_uint8,
)
from talking_head.models.mraa_modules import AVDNetwork, BGMotionPredictor, Generator, RegionPredictor, Regions
from talking_head.motion import movement_scale, relative_points, relative_transforms

MODES = ("standard", "relative", "avd")


# ---------------------------------------------------------------- building
def build_networks(model_params: dict) -> dict[str, torch.nn.Module]:
    """The inference networks from a published config's ``model_params`` (in eval mode)."""
    k = model_params["num_regions"]
    c = model_params["num_channels"]
    rp = dict(model_params["region_predictor_params"])
    rp.pop("fast_svd", None)  # the optional CUDA batch-SVD package; we always use the CPU SVD it replaces
    nets = {
        "generator": Generator(num_regions=k, num_channels=c, revert_axis_swap=model_params.get("revert_axis_swap", True),
                               **model_params["generator_params"]),
        "region_predictor": RegionPredictor(num_regions=k, num_channels=c, **rp),
        "avd_network": AVDNetwork(num_regions=k, revert_axis_swap=model_params.get("revert_axis_swap", True),
                                  **model_params.get("avd_network_params", {})),
    }
    for net in nets.values():
        net.eval()
    return nets


def build_bg_predictor(model_params: dict) -> BGMotionPredictor:
    """The background-motion network the checkpoints also hold (training only)."""
    return BGMotionPredictor(num_channels=model_params["num_channels"], **model_params["bg_predictor_params"]).eval()


# ---------------------------------------------------------------- region transfer
def relative_regions(source: Regions, driving: Regions, reference: Regions, scale: float) -> Regions:
    """Source regions moved by the driving motion relative to the reference (published ``relative`` mode)."""
    shift = relative_points(driving.shift, reference.shift, source.shift, scale)
    return Regions(shift, driving.covar, relative_transforms(driving.affine, reference.affine, source.affine))


# ---------------------------------------------------------------- animator
@dataclass
class SourceState:
    image: torch.Tensor  # (1, C, S, S) in [0, 1]
    features: list[torch.Tensor]  # generator encoder features, highest resolution first
    flow_input: torch.Tensor  # anti-aliased source for the flow predictor (1, C, h, w)
    regions: Regions  # batch of one, with heatmap
    shift_np: np.ndarray  # (K, 2) float64 copy of the centres, for the movement scale


@dataclass
class DrivingState:
    regions: Regions  # batch of one, with heatmap
    shift_np: np.ndarray


class MRAAAnimator(Animator):
    # bf16 vs fp32 on the parity fixture (grey levels, mean / max): every network in bf16 1.38 / 68; the
    # region predictor (whose SVD-based regions steer the warp) and the flow predictor's mask and occlusion
    # heads (logits of a softmax / sigmoid) in float32: 0.45 / 16 (geometry is float32 throughout)
    FP32_NETWORKS = ("region_predictor", "generator.pixelwise_flow_predictor.mask",
                     "generator.pixelwise_flow_predictor.occlusion")
    """MRAA on ``device``: region predictor + dense-motion generator (+ AVD network when loaded)."""

    def __init__(self, card: ModelCard, device, networks: dict, has_avd: bool):
        super().__init__(card, device)
        self.region_predictor = networks["region_predictor"].to(device).eval()
        self.generator = networks["generator"].to(device).eval()
        self.avd_network = networks["avd_network"].to(device).eval()
        self.has_avd = has_avd
        self.resolution = card.resolution

    def _check(self, images: np.ndarray, what: str) -> None:
        if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
            raise BadInputError(f"{what} must be uint8 RGB images (..., H, W, 3), got {images.dtype} {images.shape}.")
        size = self.resolution
        if size is not None and images.shape[-3:-1] != (size, size):
            raise BadInputError(
                f"{what} is {images.shape[-2]}x{images.shape[-3]}, but model '{self.card.name}' needs {size}x{size}.",
                "Resize or crop the frames to the model resolution first.",
            )

    @torch.inference_mode()
    def prepare_source(self, image: np.ndarray) -> SourceState:
        self._check(image, "The source image")
        x = to_tensor(image, self.device)
        regions = self.region_predictor(x)
        return SourceState(
            image=x,
            features=self.generator.encode(x),
            flow_input=self.generator.pixelwise_flow_predictor.downsample(x),
            regions=regions,
            shift_np=regions.shift[0].cpu().double().numpy(),
        )

    @torch.inference_mode()
    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        self._check(image, "The reference frame")
        regions = self.region_predictor(to_tensor(image, self.device))
        return DrivingState(regions, regions.shift[0].cpu().double().numpy())

    def transfer(self, source: SourceState, driving: Regions, reference: DrivingState | None,
                 mode: str, adapt_scale: bool = True) -> Regions:
        """Driving regions -> the regions the generator moves the source to, per mode."""
        src = source.regions.expand(driving.shift.shape[0])
        if mode == "standard":
            return Regions(driving.shift, driving.covar, driving.affine)
        if mode == "relative":
            if reference is None:  # the source as reference: the same as standard, scale 1
                return Regions(driving.shift, driving.covar, driving.affine)
            scale = movement_scale(source.shift_np, reference.shift_np) if adapt_scale else 1.0
            return relative_regions(src, driving, reference.regions.expand(driving.shift.shape[0]), scale)
        if mode == "avd":
            if not self.has_avd:
                raise BadInputError(
                    f"Model '{self.card.name}' was loaded without AVD network weights, so mode 'avd' is not available.",
                    "Use mode 'relative' or 'standard', or a checkpoint that contains 'avd_network'.",
                )
            return self.avd_network(src, driving)
        raise BadInputError(f"Model '{self.card.name}' has no mode '{mode}'.", "Choose one of: " + ", ".join(MODES))

    @torch.inference_mode()
    def animate(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
                options: TransferOptions) -> list[FrameResult]:
        self._check(frames, "The driving frames")
        mode = options.resolved_mode(self.card)
        x = to_tensor(frames, self.device)
        driving = self.region_predictor(x)
        target = self.transfer(source, driving, reference, mode, options.adapt_scale)
        out = self.generator(source.image, source.features, source.flow_input, target,
                             source.regions.expand(x.shape[0]))
        size = x.shape[-1]
        frames_u8 = to_uint8(out.prediction)
        src_kp = grid_to_pixels(source.regions.shift[0], size, align_corners=False).float().cpu().numpy()
        drv_kp = grid_to_pixels(driving.shift, size, align_corners=False).float().cpu().numpy()
        mask = (1 - out.motion.occlusion[:, 0]).float().cpu().numpy()
        motion = flow_to_pixels(out.motion.deformation, size, align_corners=False).float().cpu().numpy()
        drv_heat = peak_normalised(driving.heatmap).float().cpu().numpy()
        src_heat = peak_normalised(source.regions.heatmap[0]).float().cpu().numpy()
        region_masks = out.motion.mask.float().cpu().numpy()
        return [
            FrameResult(
                frame=frames_u8[i],
                source_keypoints=src_kp,
                driving_keypoints=drv_kp[i],
                mask=mask[i],
                motion=motion[i],
                extras={
                    "source_heatmaps": src_heat,
                    "driving_heatmaps": drv_heat[i],
                    "region_masks": region_masks[i],
                },
            )
            for i in range(len(frames_u8))
        ]

    def close(self) -> None:
        for name in ("region_predictor", "generator", "avd_network"):
            getattr(self, name).to("cpu")


# ---------------------------------------------------------------- checkpoints
def create(card: ModelCard, paths, device) -> MRAAAnimator:
    """Build from ``card.options['model_params']``; load the published ``.pth`` when ``paths`` is given."""
    params = card.options["model_params"]
    nets = build_networks(params)
    has_avd = paths is None
    if paths is not None:
        path = paths[0]
        ckpt = hub.load_checkpoint(path)
        dicts = module_dicts(ckpt, ["generator", "region_predictor"], optional=("avd_network",), filename=path.name)
        load_strict(nets["generator"], dicts["generator"], f"the MRAA generator of '{card.name}'")
        load_strict(nets["region_predictor"], dicts["region_predictor"], f"the MRAA region predictor of '{card.name}'")
        if "avd_network" in dicts:
            load_strict(nets["avd_network"], dicts["avd_network"], f"the MRAA AVD network of '{card.name}'")
            has_avd = True
    return MRAAAnimator(card, device, nets, has_avd)


def published_checkpoints(animator: MRAAAnimator) -> dict[str, object]:
    """The animator's weights in the published file layout (``train_avd.py`` / ``Logger.save_cpk``).

    The background predictor is saved by the original code but never used for animation; we do not
    keep it, so its entry holds a freshly initialised network of the right shape. The Adam
    optimiser states of the published files are left out (loading ignores them).
    """
    if not isinstance(animator, MRAAAnimator):
        raise CheckpointError("published_checkpoints needs an MRAA animator.", "")
    params = animator.card.options["model_params"]
    ckpt: dict[str, object] = {
        "generator": cpu_state_dict(animator.generator),
        "region_predictor": cpu_state_dict(animator.region_predictor),
        "bg_predictor": cpu_state_dict(build_bg_predictor(params)),
    }
    if animator.has_avd:
        ckpt["avd_network"] = cpu_state_dict(animator.avd_network)
    ckpt["epoch_avd"] = 0
    return {animator.card.files[0].filename: ckpt}
