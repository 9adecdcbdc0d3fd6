"""Motion-transfer helpers shared by the families and the engine (model-independent math)."""
from __future__ import annotations

import numpy as np

from talking_head.precision import float32_math


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (N, 2), in float64, as the published demos compute it.

    0 when the hull has no area: fewer than three points, all on one line, or non-finite values.
    """
    from scipy.spatial import ConvexHull, QhullError

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return 0.0
    try:
        return float(ConvexHull(pts).volume)
    except QhullError:  # (nearly) collinear points
        return 0.0


def area_scale(source_area: float, reference_area: float) -> float:
    """sqrt(source_area) / sqrt(reference_area); 1 when either area is 0 (the published code would fail)."""
    if source_area <= 0.0 or reference_area <= 0.0:
        return 1.0
    return float(np.sqrt(source_area) / np.sqrt(reference_area))


def movement_scale(source_points: np.ndarray, reference_points: np.ndarray) -> float:
    """How much to scale relative movement to the source's size: the ratio of hull sizes (``area_scale``)."""
    return area_scale(hull_area(source_points), hull_area(reference_points))


def relative_points(driving, reference, source, scale: float = 1.0):
    """Source points moved by the driving points' offset from the reference, times ``scale``.

    ``(driving - reference) * scale + source``; arrays or tensors that broadcast (e.g. (B, K, 2)
    driving against (1, K, 2) reference and source).
    """
    return (driving - reference) * scale + source


@float32_math
def relative_transforms(driving, reference, source):
    """Source 2x2 transforms changed as the driving ones changed since the reference.

    ``driving @ inv(reference) @ source`` on torch tensors (..., 2, 2) that broadcast.
    """
    return driving @ reference.inverse() @ source


def best_frame_index(source_signature: np.ndarray, signatures: list[np.ndarray | None]) -> int:
    """Index of the driving frame whose pose/expression signature is closest to the source's.

    Frames without a face (None) are never chosen; 0 when no frame has one.
    """
    best, best_dist = 0, np.inf
    for i, sig in enumerate(signatures):
        if sig is None:
            continue
        dist = float(np.sum((np.asarray(sig) - source_signature) ** 2))
        if dist < best_dist:
            best, best_dist = i, dist
    return best
