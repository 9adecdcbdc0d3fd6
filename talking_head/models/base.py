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
    """A loaded model. Subclasses keep their torch modules in eval mode on ``self.device``.

    ``uses_face_ratios``: the model takes eye/lip open ratios (``face.eye_lip_ratios``): the engine
    then passes ``ratios=`` to ``prepare_source`` and, when ``RATIO_OPTIONS`` are on, per-frame
    ``driving_eye_ratio`` (B, 2) and ``driving_lip_ratio`` (B,) in ``TransferOptions.extra``.
    """

    uses_face_ratios: bool = False
    RATIO_OPTIONS: tuple[str, ...] = ()
    # The fast path (``talking_head.precision``, applied by the engine): the torch networks held as
    # attributes run under bf16 (CPU with AMX / AVX-512 BF16) or fp16 (CUDA) autocast, weights in
    # channels-last. FP32_NETWORKS: dotted attribute paths of networks kept in float32 there;
    # FAST_PATH_DEFAULT = False: "auto" keeps this family in float32 (its measured difference is too big).
    FP32_NETWORKS: tuple[str, ...] = ()
    FAST_PATH_DEFAULT: bool = True
    precision: str = "fp32"  # set by ``precision.apply``

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
    """float (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3) numpy (rounded in float32, also for bf16/fp16 input)."""
    return (images.float().clamp(0, 1) * 255.0 + 0.5).to("cpu", dtype=__import__("torch").uint8).permute(0, 2, 3, 1).numpy()


def cpu_state_dict(module) -> dict:
    """A detached CPU copy of ``module.state_dict()`` (what a checkpoint file holds).

    Tensors on the ``meta`` device stay there (shapes only: checkpoint_match builds file layouts so).
    """
    return {k: v.detach() if v.is_meta else v.detach().to("cpu").clone() for k, v in module.state_dict().items()}


def with_batch_counters(module, state_dict: dict) -> dict:
    """``state_dict`` plus the module's own BatchNorm ``num_batches_tracked`` where it has none.

    Checkpoints written before torch 0.4.1 lack these counters; inference does not use them.
    """
    out = dict(state_dict)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = value
    return out


# ---------------------------------------------------------------- previews in pixels
def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def grid_to_pixels(points, size: int | tuple[int, int], align_corners: bool):
    """Normalised (x, y) in [-1, 1] -> pixel coordinates of an (H, W) image, as ``grid_sample`` reads them.

    align_corners=True: -1 and 1 are the centres of the border pixels; False: their outer edges.
    ``points`` (..., 2) is a numpy array or a torch tensor; the result is of the same kind.
    """
    h, w = _size(size)
    x, y = points[..., 0], points[..., 1]
    if align_corners:
        x, y = (x + 1) * 0.5 * (w - 1), (y + 1) * 0.5 * (h - 1)
    else:
        x, y = ((x + 1) * w - 1) * 0.5, ((y + 1) * h - 1) * 0.5
    if isinstance(points, np.ndarray):
        return np.stack([x, y], axis=-1)
    import torch

    return torch.stack([x, y], dim=-1)


def norm_to_pixels(points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Normalised [-1, 1] (x, y), align_corners=True convention -> pixel coordinates."""
    return grid_to_pixels(np.asarray(points, dtype=np.float32), size, align_corners=True)


def flow_to_pixels(grid, size: int | tuple[int, int], align_corners: bool):
    """Sampling grid (B, h, w, 2) in [-1, 1] -> backward flow (B, h, w, 2) in pixels of an (H, W) output.

    For each grid cell: where it samples the source (``grid_to_pixels``) minus where the cell
    itself sits in the output, which is where a bilinear resize of the grid to (H, W) with the
    same ``align_corners`` puts it (cell j of w: j (W - 1) / (w - 1), or (j + 0.5) W / w - 0.5).
    """
    import torch

    h_out, w_out = _size(size)
    _, h, w, _ = grid.shape

    def centres(n: int, n_out: int):
        i = torch.arange(n, dtype=grid.dtype, device=grid.device)
        if align_corners:
            return i * ((n_out - 1) / max(n - 1, 1))
        return (i + 0.5) * (n_out / n) - 0.5

    xs, ys = centres(w, w_out), centres(h, h_out)
    where = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=-1)
    return grid_to_pixels(grid, (h_out, w_out), align_corners) - where


def peak_normalised(maps):
    """Maps (..., H, W), e.g. softmax heatmaps, each divided by its own maximum (for display)."""
    return maps / maps.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def volume_flow(deformation, size: int) -> tuple[np.ndarray, np.ndarray]:
    """3-D deformation (B, D, h, w, 3) of sampling positions -> previews averaged over depth.

    Returns the backward flow in pixels of a ``size`` output (B, h, w, 2) and the depth motion
    (B, h, w) in grid units: where each cell samples the source volume minus where it sits.
    """
    from talking_head.models.blocks import coordinate_grid_3d

    d, h, w = deformation.shape[1:4]
    grid = coordinate_grid_3d(d, h, w, deformation.dtype, deformation.device)
    displacement = (deformation - grid).mean(dim=1)
    flow = (displacement[..., :2] * (size / 2.0)).float().cpu().numpy().astype(np.float32)
    return flow, displacement[..., 2].float().cpu().numpy().astype(np.float32)
