"""Parity runner for MRAA (fixture ``mraa-vox256.npz``, documented in ``mraa.md``)."""
from __future__ import annotations

import numpy as np
import torch

from talking_head.models.base import to_tensor
from talking_head.models.mraa import MRAAAnimator, build_bg_predictor, build_networks
from talking_head.motion import movement_scale
from talking_head.registry import get_card
from tests.parity_runners import checkpoint_keys, fill_module

MODES = ("standard", "relative", "avd")


def _check_layout(meta: dict, name: str, module: torch.nn.Module) -> None:
    """Our state_dict keys and shapes must equal the published checkpoint's (listed in meta)."""
    published = checkpoint_keys(meta, name)
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert set(ours) == set(published), f"{name}: key sets differ: {sorted(set(ours) ^ set(published))[:5]}"
    wrong = [k for k, shape in ours.items() if published[k] and isinstance(published[k][0], int) and shape != published[k]]
    assert not wrong, f"{name}: shapes differ for {wrong[:5]}"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _regions(prefix: str, regions, squeeze: bool) -> dict:
    pick = (lambda t: _np(t[0])) if squeeze else _np
    return {f"{prefix}.shift": pick(regions.shift), f"{prefix}.covar": pick(regions.covar), f"{prefix}.affine": pick(regions.affine)}


def _filled(fixture: dict):
    meta = fixture["meta"]
    params = meta["config"]["model_params"]
    seed = int(meta["seed"])
    nets = build_networks(params)
    bg = build_bg_predictor(params)
    for name, module in [*nets.items(), ("bg_predictor", bg)]:
        _check_layout(meta, name, module)
        fill_module(module, seed)
    return MRAAAnimator(get_card("mraa.vox256"), torch.device("cpu"), nets, has_avd=True), bg


def build_animator(fixture: dict) -> MRAAAnimator:
    """Our port with the fixture's config and fill weights, on the CPU."""
    return _filled(fixture)[0]


def run(fixture: dict) -> dict:
    animator, bg = _filled(fixture)
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        src = animator.prepare_source(fixture["source"])
        ref = animator.prepare_driving(fixture["driving"][0])
        x = to_tensor(fixture["driving"], animator.device)
        driving = animator.region_predictor(x)

        out.update(_regions("region_source", src.regions, squeeze=True))
        out["region_source.heatmap"] = _np(src.regions.heatmap[0].permute(1, 2, 0))
        out["region_source.down"] = _np(animator.region_predictor.downsample(src.image)[0].permute(1, 2, 0))
        out.update(_regions("region_driving", driving, squeeze=False))
        out["bg_params"] = _np(bg(src.image.expand(x.shape[0], -1, -1, -1), x))
        out["relative.movement_scale"] = np.float64(movement_scale(src.shift_np, ref.shift_np))
        out["pixelwise_flow.source_down"] = _np(src.flow_input[0].permute(1, 2, 0))

        for mode in MODES:
            target = animator.transfer(src, driving, ref, mode)
            result = animator.generator(src.image, src.features, src.flow_input, target, src.regions.expand(x.shape[0]))
            out.update(_regions(f"{mode}.region_norm", target, squeeze=False))
            out[f"{mode}.deformation"] = _np(result.motion.deformation)
            out[f"{mode}.occlusion_map"] = _np(result.motion.occlusion[:, 0])
            out[f"{mode}.prediction"] = _np(result.prediction.permute(0, 2, 3, 1))
            if mode == "relative":
                out["relative.mask"] = _np(result.motion.mask.permute(0, 2, 3, 1))
    return out
