"""Parity runner for the Thin-Plate Spline Motion Model (fixture ``tpsmm-vox256.npz``).

Builds our port from the fixture's config, fills each top-level module with the fixture's rule
and runs the three demo.py modes through ``TPSMMAnimator.forward`` (the path ``animate`` uses).
"""
from __future__ import annotations

import numpy as np
import torch

from talking_head.cards import ModelCard
from talking_head.models import tpsmm
from talking_head.models.base import TransferOptions, to_tensor
from talking_head.motion import area_scale
from tests.parity_runners import fill_module

MODULES = ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network", "bg_predictor")


def build(meta: dict) -> tpsmm.TPSMMAnimator:
    card = ModelCard(
        name="tpsmm.parity",
        family="tpsmm",
        title="TPSMM parity",
        description="",
        modes=("standard", "relative", "avd"),
        options={"model_params": meta["config"]["model_params"]},
    )
    animator = tpsmm.create(card, None, torch.device("cpu"))
    for name in MODULES:
        fill_module(getattr(animator.networks, name), meta["seed"])
    animator.networks.eval()
    return animator


def build_animator(fixture: dict) -> tpsmm.TPSMMAnimator:
    """Our port with the fixture's config and fill weights, on the CPU."""
    return build(fixture["meta"])


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@torch.inference_mode()
def run(fixture: dict) -> dict[str, np.ndarray]:
    animator = build(fixture["meta"])
    source = animator.prepare_source(fixture["source"])
    reference = animator.prepare_driving(fixture["driving"][0])
    driving = to_tensor(fixture["driving"], animator.device)

    out = {
        "kp_source.fg_kp": source.keypoints[0].numpy(),
        "bg_params": animator.networks.bg_predictor(source.image, driving).numpy(),
        "relative.movement_scale": np.float64(area_scale(source.hull_area, reference.hull_area)),
        "dense_motion.source_down": _nhwc(source.small)[0],
    }
    for mode in ("standard", "relative", "avd"):
        result = animator.forward(source, driving, reference, TransferOptions(mode=mode))
        out["kp_driving.fg_kp"] = result["kp_driving"].numpy()
        out[f"{mode}.kp_norm.fg_kp"] = result["kp_norm"].numpy()
        out[f"{mode}.prediction"] = _nhwc(result["prediction"])
        out[f"{mode}.deformation"] = result["deformation"].numpy()
        for i, occ in enumerate(result["occlusion_map"]):
            out[f"{mode}.occlusion_map.{i}"] = occ[:, 0].numpy()
    return out
