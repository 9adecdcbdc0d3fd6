"""Motion-transfer helpers shared by the families and the engine (model-independent math)."""
from __future__ import annotations

import numpy as np


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (float64), as FOMM's adapt_movement_scale uses."""
    from scipy.spatial import ConvexHull

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return float(ConvexHull(pts).volume)


def movement_scale(source_points: np.ndarray, reference_points: np.ndarray) -> float:
    """sqrt(area(hull(source))) / sqrt(area(hull(reference))): scales relative movement to the source's size."""
    return float(np.sqrt(hull_area(source_points)) / np.sqrt(hull_area(reference_points)))


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
