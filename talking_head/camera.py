"""3-D implicit-keypoint geometry shared by the face-vid2vid family of models (LivePortrait, ...).

Conventions (LivePortrait, ``src/utils/camera.py``; face-vid2vid's differences are listed below):

- a head angle is predicted as logits over 66 bins of 3 degrees; degrees = E[bin] * 3 - offset
  (offset 97.5 for LivePortrait, 99 for face-vid2vid);
- with x = pitch, y = yaw, z = roll, the rotation is ``R = (Rz @ Ry @ Rx)^T``: keypoints are ROW
  vectors multiplied on the right, ``kp @ R``;
- transformed keypoints are ``scale * (kp @ R + exp) + [tx, ty, 0]`` (tz is dropped);
- keypoints live in the warp grid's [-1, 1] cube, (x, y, z) = (width, height, depth).

face-vid2vid (zhanglonghao1992's re-implementation, ``demo.py``) differs explicitly:

- degrees -> radians with 3.14, not pi (``FACE_VID2VID_PI``);
- ``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)`` applied to COLUMN vectors, ``kp_rot = R kp``
  (``face_vid2vid_rotation``);
- ``kp = R kp_c + t + exp``: all three components of t, no scale (``face_vid2vid_keypoints``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from talking_head.precision import float32_math

LIVEPORTRAIT_ANGLE_OFFSET = 97.5
FACE_VID2VID_ANGLE_OFFSET = 99.0
FACE_VID2VID_PI = 3.14  # demo.get_rotation_matrix: deg / 180 * 3.14


def bins_to_degrees(logits: torch.Tensor, offset: float = LIVEPORTRAIT_ANGLE_OFFSET, bin_width: float = 3.0) -> torch.Tensor:
    """Angle-bin logits (B, N) -> degrees (B,): the softmax expectation of the bin index."""
    index = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return torch.sum(torch.softmax(logits, dim=1) * index, dim=1) * bin_width - offset


def _column(angle: torch.Tensor, pi: float = math.pi) -> torch.Tensor:
    """Degrees of any shape (B,), (B, 1) -> radians (B,)."""
    return (angle.reshape(angle.shape[0], -1)[:, 0] / 180) * pi


def axis_rotations(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor, pi: float = math.pi) -> tuple:
    """Degrees (B,) or (B, 1) -> (Rx(pitch), Ry(yaw), Rz(roll)), each (B, 3, 3), column-vector form."""
    x, y, z = _column(pitch, pi), _column(yaw, pi), _column(roll, pi)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rot_x = torch.stack([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], dim=1).view(-1, 3, 3)
    rot_y = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], dim=1).view(-1, 3, 3)
    rot_z = torch.stack([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], dim=1).view(-1, 3, 3)
    return rot_x, rot_y, rot_z


def euler_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees (B,) or (B, 1) -> ``Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (B, 3, 3), column-vector form."""
    rot_x, rot_y, rot_z = axis_rotations(pitch, yaw, roll)
    return rot_z @ rot_y @ rot_x


@float32_math
def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees -> the matrix LivePortrait multiplies row-vector keypoints by: ``(Rz Ry Rx)^T`` (B, 3, 3)."""
    return euler_matrix(pitch, yaw, roll).permute(0, 2, 1)


@float32_math
def transform_keypoints(kp: torch.Tensor, rotation: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Canonical keypoints (B, K, 3) -> posed keypoints ``scale * (kp @ R + exp) + [tx, ty, 0]``.

    scale: (B, 1); t: (B, 3), its z component is ignored.
    """
    out = (kp @ rotation + exp) * scale[:, :, None]
    return torch.cat([out[..., :2] + t[:, None, :2], out[..., 2:]], dim=-1)


@float32_math
def face_vid2vid_rotation(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """face-vid2vid's ``get_rotation_matrix``: degrees -> ``Rx(pitch) @ Ry(yaw) @ Rz(roll)`` (B, 3, 3), with pi = 3.14.

    Column-vector form (the matrix is applied as ``R kp``); note the Euler order is the reverse of
    LivePortrait's, and the argument order is the demo's (yaw, pitch, roll).
    """
    rot_x, rot_y, rot_z = axis_rotations(pitch, yaw, roll, pi=FACE_VID2VID_PI)
    return rot_x @ rot_y @ rot_z


@float32_math
def face_vid2vid_keypoints(kp: torch.Tensor, rotation: torch.Tensor, t: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """face-vid2vid's ``keypoint_transformation``: ``R kp + t + exp`` for canonical kp (B, K, 3).

    rotation (B, 3, 3) column-vector form; t (B, 3), all three components added; exp (B, K, 3).
    """
    return (kp @ rotation.transpose(1, 2) + t[:, None, :]) + exp


def to_pixels(points, size: int) -> np.ndarray:
    """Grid coordinates (..., >=2) in [-1, 1] -> (x, y) pixel positions in a ``size`` square image.

    Uses grid_sample's align_corners=False convention (the one the warp uses): -1 is the outer
    edge of the first pixel, so the first pixel's centre is at 0.
    """
    pts = points.detach().float().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points, np.float32)
    return ((pts[..., :2] + 1.0) * (size / 2.0) - 0.5).astype(np.float32)


def hull_volume(points) -> float:
    """Volume of the convex hull of 3-D points (K, 3) (scipy Qhull, float64); 0 when degenerate."""
    from scipy.spatial import ConvexHull, QhullError

    pts = points.detach().float().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    try:
        return float(ConvexHull(np.asarray(pts, dtype=np.float64).reshape(-1, 3)).volume)
    except (QhullError, ValueError):
        return 0.0


def motion_multiplier(source_points, reference_points) -> float:
    """``sqrt(V(source)) / sqrt(V(reference))`` of 3-D hull volumes (1 when undefined).

    LivePortrait's expression-friendly factor and face-vid2vid's ``normalize_kp`` adapt scale.
    """
    source, reference = hull_volume(source_points), hull_volume(reference_points)
    if source <= 0.0 or reference <= 0.0:
        return 1.0
    return float(np.sqrt(source) / np.sqrt(reference))
