"""The published implementations' demo loops, imported from checkouts the user points at (``bench --reference DIR``).

Nothing of the published code is part of this project: ``DIR`` holds the user's own checkouts
(``DIR/first-order-model``, ``DIR/articulated-animation``, ``DIR/Thin-Plate-Spline-Motion-Model``,
or ``DIR`` itself is one of them). Each loop is the repository's own ``demo.make_animation`` on
the CPU, with the published networks built from the repository's ``config/vox-256.yaml`` and
loaded with our port's weights (the state-dict layouts are the same), so both sides compute the
same thing. Families without a published loop here are skipped.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Published:
    folder: str  # the repository's usual checkout name
    marker: str  # a file only that repository has
    config: str = "config/vox-256.yaml"


PUBLISHED = {
    "fomm": Published("first-order-model", "modules/keypoint_detector.py"),
    "mraa": Published("articulated-animation", "modules/region_predictor.py", "config/vox256.yaml"),
    "tpsmm": Published("Thin-Plate-Spline-Motion-Model", "modules/inpainting_network.py"),
}
_SHARED_NAMES = ("demo", "animate", "modules", "sync_batchnorm", "frames_dataset", "logger", "augmentation")


def checkout_for(root: Path, family: str) -> Path | None:
    """The family's checkout under ``root`` (or ``root`` itself), None when absent."""
    spec = PUBLISHED.get(family)
    if spec is None:
        return None
    for folder in (Path(root) / spec.folder, Path(root)):
        if (folder / "demo.py").is_file() and (folder / spec.marker).is_file():
            return folder
    return None


# imported at the top of the demos / their dataset modules, never called by the animation loops (except
# torchvision.models.resnet18 in TPSMM, which gets the port's own ResNet18: same layers, same keys)
UNUSED_IMPORTS = ("ffmpeg", "sklearn", "sklearn.model_selection", "torchvision", "face_alignment", "torch_batch_svd")


class _StandIn(types.ModuleType):
    """A module the published loop imports but never calls; using anything from it says so."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"{self.__name__}.{name} is not installed (the bench only runs the animation loop)")

        return unavailable


def _resnet18(pretrained: bool = False, **kwargs):
    """``torchvision.models.resnet18`` where torchvision is absent: the port's ResNet18, same layers and keys."""
    from talking_head.models.resnet import ResNet18

    if pretrained:
        raise RuntimeError("the bench's resnet18 stand-in has no ImageNet weights (the loop never asks for them)")
    return ResNet18(3, kwargs.get("num_classes", 1000))


@contextlib.contextmanager
def imported_from(folder: Path):
    """Import a checkout's top-level modules (demo, modules.*) and forget them afterwards.

    Packages in ``UNUSED_IMPORTS`` that are not installed get stand-ins for the time of the import.
    """
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _SHARED_NAMES}
    for k in saved:
        del sys.modules[k]
    missing = [n for n in UNUSED_IMPORTS if n.split(".")[0] not in sys.modules and importlib.util.find_spec(n.split(".")[0]) is None]
    stand_ins = {}
    for name in missing:
        stand_ins[name] = sys.modules[name] = _StandIn(name)
    if "torchvision" in stand_ins:  # TPSMM builds its keypoint detector from torchvision's resnet18
        stand_ins["torchvision"].models = types.SimpleNamespace(resnet18=_resnet18)
    import skimage.draw

    old_api = not hasattr(skimage.draw, "circle")  # the loggers import skimage.draw.circle (removed in skimage 0.19)
    if old_api:
        skimage.draw.circle = _StandIn("skimage.draw").circle
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        if old_api:
            del skimage.draw.circle
        sys.path.remove(str(folder))
        for k in [k for k in sys.modules if k.split(".")[0] in _SHARED_NAMES]:
            del sys.modules[k]
        sys.modules.update(saved)
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _load(net, state: dict) -> None:
    net.load_state_dict(state, strict=False)
    net.eval()


def _config(folder: Path, spec: Published) -> dict:
    import yaml

    with open(folder / spec.config) as f:
        return yaml.safe_load(f)["model_params"]


def published_loop(family: str, root: Path, model, source: np.ndarray, frames: list[np.ndarray]) -> Callable[[], object] | None:
    """A no-argument function running the published demo loop over ``frames``; None when not checked out.

    ``model`` is our animator of that family (its weights are copied into the published networks).
    """
    folder = checkout_for(root, family)
    if folder is None:
        return None
    import torch

    spec = PUBLISHED[family]
    src = source.astype(np.float32) / 255.0  # the demos feed skimage-resized float images in [0, 1]
    driving = [f.astype(np.float32) / 255.0 for f in frames]
    params = _config(folder, spec)
    common = params.get("common_params", {})
    with imported_from(folder):
        demo = importlib.import_module("demo")
        if family == "fomm":
            from modules.generator import OcclusionAwareGenerator
            from modules.keypoint_detector import KPDetector

            gen = OcclusionAwareGenerator(**params["generator_params"], **common)
            kp = KPDetector(**params["kp_detector_params"], **common)
            _load(gen, model.generator.state_dict())
            _load(kp, model.kp_detector.state_dict())
            return lambda: demo.make_animation(src, driving, gen, kp, relative=True, adapt_movement_scale=True, cpu=True)
        if family == "mraa":
            from modules.avd_network import AVDNetwork
            from modules.generator import Generator
            from modules.region_predictor import RegionPredictor

            k, c = params["num_regions"], params["num_channels"]
            rev = params.get("revert_axis_swap", True)
            gen = Generator(num_regions=k, num_channels=c, revert_axis_swap=rev, **params["generator_params"])
            reg = RegionPredictor(num_regions=k, num_channels=c, **{**params["region_predictor_params"], "fast_svd": False})
            avd = AVDNetwork(num_regions=k, revert_axis_swap=rev, **params["avd_network_params"])
            _load(gen, model.generator.state_dict())
            _load(reg, model.region_predictor.state_dict())
            _load(avd, model.avd_network.state_dict())
            return lambda: demo.make_animation(src, driving, gen, reg, avd, animation_mode="relative", cpu=True)
        if family == "tpsmm":
            from modules.avd_network import AVDNetwork
            from modules.dense_motion import DenseMotionNetwork
            from modules.inpainting_network import InpaintingNetwork
            from modules.keypoint_detector import KPDetector

            nets = model.networks
            inpaint = InpaintingNetwork(**params["generator_params"], **common)
            kp = KPDetector(**common)
            dense = DenseMotionNetwork(**params["dense_motion_params"], **common)
            avd = AVDNetwork(num_tps=common["num_tps"], **params["avd_network_params"])
            for theirs, ours in ((inpaint, nets.inpainting_network), (kp, nets.kp_detector),
                                 (dense, nets.dense_motion_network), (avd, nets.avd_network)):
                _load(theirs, ours.state_dict())
            return lambda: demo.make_animation(src, driving, inpaint, kp, dense, avd, torch.device("cpu"), mode="relative")
    return None
