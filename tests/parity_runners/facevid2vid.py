"""Parity runner for face-vid2vid (``facevid2vid-*.npz``): our port through the Animator's own path.

Each mode of the fixture runs through ``FaceVid2VidAnimator.transfer`` with ``TransferOptions``
built from the mode's published demo flags (``--relative --adapt_scale``, ``--free_view --yaw ..``
as the "fixed" pose controls, and the defaults for absolute), so the option parsing is checked too.
Driving frame 0 is the reference frame, as in the demo without ``find_best_frame``.
"""
from __future__ import annotations

import numpy as np
import torch

from talking_head.models.base import TransferOptions
from tests.parity_runners import filled_networks_animator


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _options(mode: dict) -> TransferOptions:
    extra = {}
    if mode["free_view"]:
        extra = {"pose_mode": "fixed", **{k: mode[k] for k in ("yaw", "pitch", "roll")}}
    return TransferOptions(relative=mode["relative"], adapt_scale=mode["adapt_movement_scale"], extra=extra)


def _pose_arrays(prefix: str, pose) -> dict:
    return {
        f"{prefix}_logits": _np(torch.stack([pose.yaw_logits, pose.pitch_logits, pose.roll_logits], dim=1)),
        f"{prefix}_angles": _np(torch.stack([pose.yaw, pose.pitch, pose.roll], dim=1)),
        f"{prefix}_t": _np(pose.t),
        f"{prefix}_exp": _np(pose.exp),
    }


def build_animator(fixture: dict):
    """Our port with fill weights, on the CPU."""
    return filled_networks_animator("facevid2vid", "facevid2vid.vox", fixture["meta"]["seed"])


def run(fixture: dict) -> dict:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    meta = fixture["meta"]
    animator = build_animator(fixture)
    source, driving = fixture["source"], fixture["driving"]
    src = animator.prepare_source(source)
    ref = animator.prepare_driving(driving[0])
    nets, x = animator.nets, animator._images(source)
    with torch.inference_mode():
        probes = {"probe_kp_down": _np(nets.kp_detector.down(x)[0]), "probe_he_stem": _np(nets.he_estimator.stem(x)[0, :8]),
                  "he_source_pooled": _np(nets.he_estimator.pooled(x)[0])}

    produced = {
        "kp_canonical": _np(src.kp_canonical[0]), "rot_source": _np(src.pose.rotation[0]), "kp_source": _np(src.kp_source[0]),
        **{k: v[0] for k, v in _pose_arrays("he_source", src.pose).items()}, **probes,
    }
    pose = None  # the driving frames' head pose, estimated by the first mode and reused
    for name, mode in meta["modes"].items():
        out = animator.transfer(src, driving, ref, _options(mode), pose=pose)
        if pose is None:
            pose = out["pose"]
            produced.update(_pose_arrays("he_driving", pose))
            produced["rot_driving"] = _np(pose.rotation)
            produced["kp_driving_initial"] = _np(out["kp_reference"][0])
        if name == "relative":
            produced["adapt_scale"] = np.float32(out["adapt_scale"])
            produced["relative_mask_depthmean"] = _np(out["mask"][-1].mean(dim=1))
        if name == "free_view":
            produced["rot_free_view"] = _np(out["rotation"][0])
            produced["free_view_kp_driving"] = _np(out["kp_driving"])
        prediction = _np(out["prediction"].permute(0, 2, 3, 1))
        produced[f"{name}_kp_norm"] = _np(out["kp_norm"])
        produced[f"{name}_occlusion"] = _np(out["occlusion_map"][:, 0])
        if name == "absolute":
            produced["absolute_prediction_frame2"] = prediction[2]
        else:
            produced[f"{name}_prediction"] = prediction
            produced[f"{name}_deformation"] = _np(out["deformation"])
    return produced
