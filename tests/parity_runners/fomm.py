"""FOMM parity runner: our port, filled with the fixture's weights, through the Animator code path."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from talking_head.models import fomm
from talking_head.models.base import TransferOptions, to_tensor
from talking_head.registry import get_card
from tests.parity_runners import fill_module


def _hwc(t: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) -> (..., H, W, C) float32 numpy."""
    return t.movedim(-3, -1).float().cpu().numpy()


def build_animator(fixture: dict) -> fomm.FommAnimator:
    """Our port with the fixture's config and fill weights, on the CPU."""
    meta = fixture["meta"]
    card = dataclasses.replace(get_card("fomm.vox"), options=meta["config"]["model_params"])
    model = fomm.create(card, None, torch.device("cpu"))
    fill_module(model.generator, meta["seed"])
    fill_module(model.kp_detector, meta["seed"])
    return model


def run(fixture: dict) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    meta = fixture["meta"]
    animator = build_animator(fixture)

    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        source = animator.prepare_source(fixture["source"])
        reference = animator.prepare_driving(fixture["driving"][0])
        frames = to_tensor(fixture["driving"], animator.device)
        kp_s = source.keypoints
        out["kp_source.value"] = kp_s["value"][0].numpy()
        out["kp_source.jacobian"] = kp_s["jacobian"][0].numpy()
        out["kp_source.heatmap"] = _hwc(kp_s["heatmap"][0])
        out["kp_source.down"] = _hwc(animator.kp_detector.shrink(to_tensor(fixture["source"], "cpu"))[0])
        out["dense_motion.source_down"] = _hwc(source.motion_source[0])

        for mode in meta["modes"]:
            flags = meta["modes"][mode]["normalize_kp"]
            options = TransferOptions(
                mode=mode,
                adapt_scale=flags["adapt_movement_scale"],
                extra={"relative_jacobian": flags["use_relative_jacobian"]},
            )
            res = animator.transfer(source, frames, reference, options)
            if mode == "relative":
                out["kp_driving.value"] = res["kp_driving"]["value"].numpy()
                out["kp_driving.jacobian"] = res["kp_driving"]["jacobian"].numpy()
                out["relative.movement_scale"] = np.float64(res["movement_scale"])
                out["relative.sparse_deformed"] = _hwc(res["sparse_deformed"])
            out[f"{mode}.kp_norm.value"] = res["kp_norm"]["value"].numpy()
            out[f"{mode}.kp_norm.jacobian"] = res["kp_norm"]["jacobian"].numpy()
            out[f"{mode}.mask"] = _hwc(res["mask"])
            out[f"{mode}.deformation"] = res["deformation"].numpy()
            out[f"{mode}.occlusion_map"] = res["occlusion_map"][:, 0].numpy()
            out[f"{mode}.prediction"] = _hwc(res["prediction"])
    return out
