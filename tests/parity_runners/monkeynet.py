"""Monkey-Net parity: our port, filled like the fixture, through the Animator's batched forward."""
from __future__ import annotations

import numpy as np
import torch

from talking_head.registry import get_card
from tests.parity_runners import fill_module

# fixture mode -> our normalisation switches
MODES = {"demo": ("relative", False), "all_options": ("relative", True), "absolute": ("absolute", False)}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def build(fixture: dict):
    from talking_head.models import monkeynet

    meta = fixture["meta"]
    card = get_card(f"monkeynet.{meta['config']}")
    assert card.options["model_params"]["generator_params"] == meta["model_params"]["generator_params"]
    assert card.options["model_params"]["kp_detector_params"] == meta["model_params"]["kp_detector_params"]
    animator = monkeynet.create(card, None, torch.device("cpu"))
    fill_module(animator.generator, meta["seed"])
    fill_module(animator.kp_detector, meta["seed"])
    return animator


build_animator = build  # our port with the fixture's config and fill weights, on the CPU


def run(fixture: dict) -> dict:
    from talking_head.models.base import to_tensor
    from talking_head.models.monkeynet import normalization_for

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    animator = build(fixture)
    source = animator.prepare_source(fixture["source"])
    reference = animator.prepare_driving(fixture["driving"][0])
    frames = to_tensor(fixture["driving"], animator.device)

    out = {
        "kp_source_mean": _np(source.kp["mean"][0]),
        "kp_source_var": _np(source.kp["var"][0]),
    }
    for name, (mode, adapt) in MODES.items():
        res = animator.run(source, frames, reference, normalization_for(mode, adapt))
        out["kp_driving_mean"] = _np(res["kp_driving"]["mean"])
        out["kp_driving_var"] = _np(res["kp_driving"]["var"])
        out[f"{name}_kp_norm_mean"] = _np(res["kp_norm"]["mean"])
        out[f"{name}_kp_norm_var"] = _np(res["kp_norm"]["var"])
        prediction = _np(res["prediction"].permute(0, 2, 3, 1))
        out[f"{name}_prediction"] = prediction
        out[f"{name}_prediction_frame2"] = prediction[2]
        if name == "demo":
            out["demo_deformed"] = _np(res["deformed"].permute(0, 2, 3, 1))
            out["demo_dense_motion_logits"] = _np(res["dense_logits"])
            out["demo_deformation"] = _np(res["deformation"])
    return out
