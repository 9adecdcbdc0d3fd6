"""The interface every model family implements, and helpers for loading checkpoints strictly.

Flow, driven by ``talking_head.engine``:

    src = model.prepare_source(source_rgb)          # once per source: all source-only work cached
    ref = model.prepare_driving(reference_rgb)      # once per clip: the reference driving frame
    for batch in frames:                            # uint8 (B, S, S, 3) at card.resolution
        results = model.animate(src, batch, ref, options)   # list[FrameResult]

Images are uint8 RGB, channels-last, at ``card.resolution`` (square) or, when the card's
resolution is None, at any size (the engine passes crops at their own size).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talking_head.cards import ModelCard
from talking_head.errors import CheckpointError


@dataclass
class TransferOptions:
    """How driving motion is transferred to the source; shared by all families.

    relative: move the source by the driving frame's motion relative to the reference frame
              (False: copy the driving pose/keypoints as they are, "absolute").
    adapt_scale: scale relative movement by the ratio of keypoint-hull areas (FOMM demo).
    mode: a family-specific mode name from ``card.modes`` (e.g. MRAA/TPSMM 'standard',
          'relative', 'avd'); None means: derived from ``relative``.
    extra: family-specific options (LivePortrait stitching, multipliers, region, pose edits...).
    """

    relative: bool = True
    adapt_scale: bool = True
    mode: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_mode(self, card: ModelCard) -> str:
        if self.mode:
            if self.mode not in card.modes:
                from talking_head.errors import BadInputError

                raise BadInputError(
                    f"Model '{card.name}' has no mode '{self.mode}'.", "Choose one of: " + ", ".join(card.modes)
                )
            return self.mode
        if self.relative:
            return "relative" if "relative" in card.modes else card.default_mode
        return "absolute" if "absolute" in card.modes else ("standard" if "standard" in card.modes else card.default_mode)


@dataclass
class FrameResult:
    """One animated frame and what the UI previews for it.

    frame: uint8 (H, W, 3), the animated source at model resolution.
    source_keypoints / driving_keypoints: float32 (K, 2) in pixels (x, y) of the output frame /
        of the driving frame as passed in; None for models without keypoints.
    mask: float32 (H, W) in [0, 1], 1 where the output was synthesised rather than moved
        (occlusion / inpainting); any resolution, the viewer resizes.
    motion: float32 (h, w, 2) backward flow in pixels of the output frame: for each output
        pixel, where in the source it was sampled minus where it is; None if the model has none.
    extras: family-specific previews (heatmaps, occlusion pyramids, regions ...), name -> array.
    """

    frame: np.ndarray
    source_keypoints: np.ndarray | None = None
    driving_keypoints: np.ndarray | None = None
    mask: np.ndarray | None = None
    motion: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class Animator(ABC):
    """A loaded model. Subclasses keep their torch modules in eval mode on ``self.device``."""

    def __init__(self, card: ModelCard, device):
        self.card = card
        self.device = device

    @abstractmethod
    def prepare_source(self, image: np.ndarray) -> Any:
        """All source-only work (keypoints, encoder features), cached in the returned state."""

    @abstractmethod
    def prepare_driving(self, image: np.ndarray) -> Any:
        """Motion of the reference driving frame (used by relative transfer)."""

    @abstractmethod
    def animate(self, source: Any, frames: np.ndarray, reference: Any, options: TransferOptions) -> list[FrameResult]:
        """Animate a batch of driving frames, uint8 (B, H, W, 3); returns one result per frame."""

    def close(self) -> None:
        """Release device memory held by the model (optional)."""


def load_strict(module, state_dict: dict, what: str) -> None:
    """``module.load_state_dict(state_dict, strict=True)`` with a clear error naming the keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} keys with wrong shapes (e.g. {'; '.join(wrong[:3])})")
        raise CheckpointError(
            f"The checkpoint does not fit {what}: " + ", ".join(parts) + ".",
            "The file is probably a different model or configuration; use the file named on the model card.",
        )
    module.load_state_dict(state_dict, strict=True)


def module_dicts(checkpoint: dict, names: list[str], optional: tuple[str, ...] = (), filename: str = "checkpoint") -> dict:
    """Pick the per-module state dicts from a ``{name: state_dict, 'epoch': ..., 'optimizer...': ...}`` file."""
    out = {}
    for name in names:
        if name not in checkpoint or not isinstance(checkpoint[name], dict):
            raise CheckpointError(
                f"'{filename}' has no '{name}' weights (top-level keys: {', '.join(map(str, list(checkpoint)[:10]))}).",
                "The file is probably a different model; use the file named on the model card.",
            )
        out[name] = checkpoint[name]
    for name in optional:
        if isinstance(checkpoint.get(name), dict):
            out[name] = checkpoint[name]
    return out


def to_tensor(images: np.ndarray, device):
    """uint8 (B, H, W, 3) or (H, W, 3) -> float32 (B, 3, H, W) in [0, 1] on device."""
    import torch

    arr = images if images.ndim == 4 else images[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def to_uint8(images) -> np.ndarray:
    """float (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3) numpy."""
    return (images.clamp(0, 1) * 255.0 + 0.5).to("cpu", dtype=__import__("torch").uint8).permute(0, 2, 3, 1).numpy()


def norm_to_pixels(points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Normalised [-1, 1] (x, y), align_corners=True convention -> pixel coordinates."""
    h, w = (size, size) if isinstance(size, int) else size
    pts = np.asarray(points, dtype=np.float32)
    return np.stack([(pts[..., 0] + 1) * 0.5 * (w - 1), (pts[..., 1] + 1) * 0.5 * (h - 1)], axis=-1)
