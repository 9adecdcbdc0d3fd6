"""Pictures of what a model did: keypoints, masks, motion fields, side-by-side grids.

Every function takes numpy arrays and returns a new uint8 RGB (H, W, 3) image; inputs are never
modified. Colours are stable: keypoint k has the same colour in every frame.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

LABEL_HEIGHT = 22
PANEL_SIZE = 256
_NA_GRAY = 40


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 RGB copy of a grey, RGB or RGBA image (floats are taken as [0, 1])."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an image, got shape {np.shape(image)}")
    return np.ascontiguousarray(arr).copy()


def keypoint_colors(n: int) -> np.ndarray:
    """(n, 3) uint8 RGB colours spread around the hue circle (index k always gets the same one)."""
    if n <= 0:
        return np.zeros((0, 3), np.uint8)
    golden = 0.61803398875
    hues = ((np.arange(n) * golden) % 1.0 * 179).astype(np.uint8)
    hsv = np.stack([hues, np.full(n, 230, np.uint8), np.full(n, 255, np.uint8)], axis=1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def draw_keypoints(
    image: np.ndarray,
    points: np.ndarray | None,
    colors: np.ndarray | None = None,
    radius: int | None = None,
    labels: bool = False,
    hollow: bool = False,
) -> np.ndarray:
    """Draw (K, 2) pixel (x, y) points on a copy of ``image``; ``labels`` writes each index beside it."""
    out = as_rgb(image)
    if points is None:
        return out
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if colors is None:
        colors = keypoint_colors(len(pts))
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    h, w = out.shape[:2]
    if radius is None:
        radius = max(1, int(round(min(h, w) / (90 if len(pts) > 60 else 50))))
    scale = max(0.3, min(h, w) / 700.0)
    for k, (x, y) in enumerate(pts):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        c = tuple(int(v) for v in colors[k % len(colors)])
        center = (int(round(x)), int(round(y)))
        if hollow:
            cv2.circle(out, center, radius + 1, c, max(1, radius // 2), lineType=cv2.LINE_AA)
        else:
            cv2.circle(out, center, radius + 1, (0, 0, 0), -1, lineType=cv2.LINE_AA)
            cv2.circle(out, center, radius, c, -1, lineType=cv2.LINE_AA)
        if labels:
            cv2.putText(out, str(k), (center[0] + radius + 1, center[1] - radius), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, c, 1, cv2.LINE_AA)
    return out


def _resize(image: np.ndarray, size: int | tuple[int, int] | None, nearest: bool = False) -> np.ndarray:
    if size is None:
        return image
    w, h = (size, size) if isinstance(size, int) else size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR)
    return cv2.resize(image, (int(w), int(h)), interpolation=interp)


def mask_to_image(mask: np.ndarray, size: int | tuple[int, int] | None = None, colormap: int = cv2.COLORMAP_INFERNO,
                  vmax: float | None = 1.0) -> np.ndarray:
    """(H, W) values in [0, vmax] -> colour image (dark = 0, bright = vmax); ``vmax=None``: the map's max."""
    m = np.asarray(mask, dtype=np.float32)
    m = np.squeeze(m)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {np.shape(mask)}")
    top = float(np.nanmax(m)) if vmax is None and m.size else (vmax or 1.0)
    top = top if top > 1e-12 else 1.0
    gray = np.clip(np.nan_to_num(m) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(gray, colormap), cv2.COLOR_BGR2RGB)
    return _resize(rgb, size)


def motion_to_image(flow: np.ndarray, size: int | tuple[int, int] | None = None,
                    max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 2) flow in pixels -> colour-wheel image: hue = direction, saturation = speed, white = still.

    ``max_magnitude`` sets full saturation (default: the 99th percentile of the field's speed).
    """
    f = np.nan_to_num(np.asarray(flow, dtype=np.float32))
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"expected an (H, W, 2) motion field, got shape {np.shape(flow)}")
    dx, dy = f[..., 0], f[..., 1]
    mag = np.sqrt(dx * dx + dy * dy)
    top = max_magnitude if max_magnitude else float(np.percentile(mag, 99)) if mag.size else 0.0
    top = top if top > 1e-6 else 1.0
    hue = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * 179.0).astype(np.uint8)
    sat = (np.clip(mag / top, 0, 1) * 255.0).astype(np.uint8)
    hsv = np.stack([hue, sat, np.full_like(hue, 255)], axis=-1)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return _resize(rgb, size)


def color_wheel(size: int = 64) -> np.ndarray:
    """A legend for ``motion_to_image``: the colour of each direction at full speed."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    flow = np.stack([xs - c, ys - c], axis=-1)
    img = motion_to_image(flow, max_magnitude=c)
    img[np.hypot(xs - c, ys - c) > c] = 255
    return img


def is_map(array) -> bool:
    """True for arrays ``array_to_image`` can show: 2-D maps and stacks of maps at least 8x8."""
    a = np.asarray(array)
    if a.ndim == 2:
        return min(a.shape) >= 8
    return a.ndim == 3 and sorted(a.shape)[1] >= 8


def array_to_image(array: np.ndarray, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Any preview map -> picture: (H, W, 3) image (uint8, or float in [0, 1]), (H, W, 2) motion,
    (H, W) map, or a stack of maps (K, H, W) / (H, W, K) shown as their maximum over K."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        if a.dtype != np.uint8:
            a = (np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return _resize(as_rgb(a), size)
    if a.ndim == 3 and a.shape[2] == 2:
        return motion_to_image(a, size)
    if a.ndim == 3:
        a = a.max(axis=int(np.argmin(a.shape)))  # the stack axis is the short one
    if a.ndim == 2:
        a = a.astype(np.float32)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        norm = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return mask_to_image(norm, size)
    raise ValueError(f"cannot show an array of shape {a.shape}")


def extras_gallery(extras: dict, size: int | tuple[int, int]) -> list[tuple[np.ndarray, str]]:
    """(picture, name) for each of a model's own preview maps (heatmaps, occlusion pyramid, grids ...)."""
    return [(array_to_image(v, size), name.replace("_", " ")) for name, v in extras.items() if is_map(v)]


def placeholder(size: int | tuple[int, int], text: str = "n/a") -> np.ndarray:
    """A dark panel with centred text, for previews a model does not have."""
    w, h = (size, size) if isinstance(size, int) else size
    out = np.full((h, w, 3), _NA_GRAY, np.uint8)
    scale = max(0.4, min(h, w) / 400.0)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(out, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 1,
                cv2.LINE_AA)
    return out


def _label_strip(text: str, width: int, height: int = LABEL_HEIGHT) -> np.ndarray:
    strip = np.full((height, width, 3), 20, np.uint8)
    scale = height / 38.0
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    base = text
    while tw > width - 4 and len(base) > 1:
        base = base[:-1]
        text = base + ".."
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(strip, text, (max(2, (width - tw) // 2), (height + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (235, 235, 235), 1, cv2.LINE_AA)
    return strip


def grid(panels: Sequence[tuple[str, np.ndarray]], height: int = PANEL_SIZE, columns: int | None = None,
         gap: int = 2) -> np.ndarray:
    """Panels side by side (or in rows of ``columns``), each scaled to ``height`` with its label above."""
    if not panels:
        raise ValueError("grid() needs at least one panel")
    cells = []
    for label, image in panels:
        img = as_rgb(image)
        w = max(1, int(round(img.shape[1] * height / img.shape[0])))
        img = _resize(img, (w, height))
        cells.append(np.concatenate([_label_strip(label, w), img], axis=0) if label is not None else img)
    columns = columns or len(cells)
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
    row_imgs = []
    width = 0
    for row in rows:
        parts = []
        for i, cell in enumerate(row):
            if i:
                parts.append(np.zeros((cell.shape[0], gap, 3), np.uint8))
            parts.append(cell)
        row_img = np.concatenate(parts, axis=1)
        row_imgs.append(row_img)
        width = max(width, row_img.shape[1])
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in row_imgs]
    out = padded[0]
    for r in padded[1:]:
        out = np.concatenate([out, np.zeros((gap, width, 3), np.uint8), r], axis=0)
    return np.ascontiguousarray(out)


def keypoint_panel(frame: np.ndarray, source_keypoints, driving_keypoints=None, driving_size=None) -> np.ndarray:
    """The output frame with source keypoints (filled) and driving keypoints (rings, same colour)."""
    h, w = frame.shape[:2]
    n = max(len(p) for p in (source_keypoints, driving_keypoints) if p is not None) if (
        source_keypoints is not None or driving_keypoints is not None) else 0
    colors = keypoint_colors(n)
    labels = n <= 20
    out = as_rgb(frame)
    if driving_keypoints is not None:
        pts = np.asarray(driving_keypoints, np.float32).reshape(-1, 2)
        if driving_size is not None:
            dh, dw = driving_size
            pts = pts * np.array([w / dw, h / dh], np.float32)
        out = draw_keypoints(out, pts, colors, hollow=True)
    if source_keypoints is not None:
        out = draw_keypoints(out, source_keypoints, colors, labels=labels)
    return out


def side_by_side_frame(animated, height: int = PANEL_SIZE) -> np.ndarray:
    """source | driving | output | keypoints | mask (| motion) grid for one ``engine.AnimatedFrame``."""
    r = animated.result
    frame = r.frame
    size = (frame.shape[1], frame.shape[0])
    if r.source_keypoints is not None or r.driving_keypoints is not None:
        kp = keypoint_panel(frame, r.source_keypoints, r.driving_keypoints, animated.driving_crop.shape[:2])
    else:
        kp = placeholder(size, "no keypoints")
    mask = mask_to_image(r.mask, size) if r.mask is not None else placeholder(size, "no mask")
    panels = [
        ("source", animated.source_crop),
        ("driving", animated.driving_crop),
        ("output", animated.output),
        ("keypoints", kp),
        ("mask", mask),
    ]
    if r.motion is not None:
        panels.append(("motion", motion_to_image(r.motion, size)))
    return grid(panels, height=height)
