"""Parity runner for LivePortrait (``liveportrait-*.npz``): our port through the Animator's own path.

Every mode of the fixture runs through ``LivePortraitAnimator.drive`` with ``TransferOptions``
built from the mode's published options, so the option parsing is checked too. Retargeting
ratios are the meta's nominal values (the stored ``*_ratio_input`` arrays are compared, not fed).
"""
from __future__ import annotations

import re

import numpy as np
import torch

from talking_head.models.base import TransferOptions
from tests.parity_runners import filled_networks_animator

FULL_MODES = ("rel", "rel_nostitch", "abs", "retarget")
KEYPOINT_KEYS = ("R_new", "delta_new", "scale_new", "t_new", "x_d_raw", "motion_multiplier", "x_d_0_new",
                 "x_d_pre_stitch", "stitch_delta", "x_d_stitched", "x_d", "eye_ratio_input", "lip_ratio_input",
                 "eye_delta", "lip_delta", "lip_delta_before_animation")

# name pattern -> tolerance group of meta["tolerances"] (used when per_array does not list a name)
KINDS = (
    (r"(^rel_out$|^f_s_sub4$)", "float16_storage"),
    (r"_(pitch|yaw|roll)$", "angles_deg"),
    (r"_logits$", "me_logits"),
    (r"(^R_|_R_new$)", "rotation"),
    (r"_motion_multiplier$", "motion_multiplier"),
    (r"(_stitch_delta|_eye_delta|_lip_delta.*)$", "mlp_deltas"),
    (r"^f_s_", "f_s"),
    (r"_occlusion$", "occlusion"),
    (r"_deformation_", "deformation"),
    (r"_motion_mask", "motion_mask"),
    (r"_warped_feature", "warped_feature"),
    (r"_out_", "image"),
)


def tolerance(meta: dict, name: str) -> float:
    """Per-array tolerance when listed, else the recommended value of the array's group."""
    tol = meta["tolerances"]
    if name in tol.get("per_array", {}):
        return float(tol["per_array"][name])
    kind = next((k for pattern, k in KINDS if re.search(pattern, name)), "keypoints_exp_t_scale")
    value = tol[kind]["recommended_max_abs"]
    return float(value[name] if isinstance(value, dict) else value)


def _options(mode: dict) -> TransferOptions:
    o = mode["options"]
    extra = {
        "stitching": o["flag_stitching"], "animation_region": o["animation_region"], "driving_option": o["driving_option"],
        "driving_multiplier": o["driving_multiplier"], "normalize_lip": o["flag_normalize_lip"],
        "eye_retargeting": o["flag_eye_retargeting"], "lip_retargeting": o["flag_lip_retargeting"],
    }
    ratios = mode.get("ratio_inputs", {})
    if "driving_per_frame" in ratios:
        extra["source_eye_ratio"] = [ratios["source"]["eye_l"], ratios["source"]["eye_r"]]
        extra["source_lip_ratio"] = ratios["source"]["lip"]
        extra["driving_eye_ratio"] = np.array([[f["eye_l"], f["eye_r"]] for f in ratios["driving_per_frame"]], np.float32)
        extra["driving_lip_ratio"] = np.array([f["lip"] for f in ratios["driving_per_frame"]], np.float32)
    if "source_lip" in ratios:
        extra["source_lip_ratio"] = ratios["source_lip"]
    return TransferOptions(relative=o["flag_relative_motion"], extra=extra)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _motion_arrays(prefix: str, motion) -> dict:
    out = {f"{prefix}_{a}_logits": _np(getattr(motion, f"{a}_logits")) for a in ("pitch", "yaw", "roll")}
    out.update({f"{prefix}_{a}": _np(getattr(motion, a)) for a in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")})
    return out


def _render_arrays(prefix: str, out: dict) -> dict:
    deformation, image = out["deformation"].double(), out["image"]
    res = {
        f"{prefix}_occlusion": _np(out["occlusion_map"][:, 0]),
        f"{prefix}_deformation_slices": _np(out["deformation"][:, [0, 8, 15]]),
        f"{prefix}_deformation_mean": _np(deformation.mean(dim=(1, 2, 3))),
        f"{prefix}_deformation_std": _np(deformation.std(dim=(1, 2, 3), unbiased=False)),
        f"{prefix}_out_sub4": _np(image[:, :, ::4, ::4].permute(0, 2, 3, 1)),
        f"{prefix}_out_mean": _np(image.double().mean(dim=(2, 3))),
        f"{prefix}_out_std": _np(image.double().std(dim=(2, 3), unbiased=False)),
    }
    if prefix == "rel":
        warped = out["out"]
        res["rel_out"] = _np(image.permute(0, 2, 3, 1))
        res["rel_warped_feature_slice"] = _np(warped[:, ::32])
        res["rel_warped_feature_mean_c"] = _np(warped.mean(dim=(2, 3)))
        res["rel_motion_mask_sub"] = _np(out["mask"][:, :, 8, ::4, ::4])
    return res


def build_animator(fixture: dict):
    """Our port with the fixture's fill weights, on the CPU."""
    return filled_networks_animator("liveportrait", "liveportrait.human", fixture["meta"]["seed"])  # each MLP too


def run(fixture: dict) -> dict:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    meta = fixture["meta"]
    animator = build_animator(fixture)
    source, driving = fixture["source"], fixture["driving"]
    src = animator.prepare_source(source)
    ref = animator.prepare_driving(driving[0])

    f_s = src.f_s[0].double()
    produced = {
        **_motion_arrays("m_src", src.motion), "R_src": _np(src.motion.R), "x_s": _np(src.x_s),
        "f_s_slice_d7": _np(src.f_s[0, :, 7]), "f_s_sub4": _np(src.f_s[0, :, :, ::4, ::4]),
        "f_s_mean_cd": _np(f_s.mean(dim=(2, 3))), "f_s_std_cd": _np(f_s.std(dim=(2, 3), unbiased=False)),
        "f_s_mean": _np(f_s.mean()), "f_s_std": _np(f_s.std(unbiased=False)),
    }
    motion = None  # the driving frames' motion, extracted by the first mode and reused
    for name, mode in meta["modes"].items():
        out = animator.drive(src, driving, ref, _options(mode), render=name in FULL_MODES, motion=motion)
        if motion is None:
            motion = out["driving_motion"]
            produced.update(_motion_arrays("m_drv", motion))
            produced.update({"R_drv": _np(motion.R), "x_drv": _np(out["x_drv"])})
        for key in KEYPOINT_KEYS:
            if key in out:
                produced[f"{name}_{key}"] = _np(out[key])
        if "lip_ratio_input_before_animation" in out:
            produced[f"{name}_lip_ratio_input"] = _np(out["lip_ratio_input_before_animation"])
        if name in FULL_MODES:
            produced.update(_render_arrays(name, out))
    return produced
