"""Dense piecewise-affine warping of a face picture driven by face-mesh landmarks.

The source picture is covered by triangles over its landmarks: MediaPipe's face tessellation,
fans filling the eyes (around the iris centres), a strip filling the mouth between the inner
lips, a band from the face outline to a "head ring" that moves rigidly with the head (hair, ears),
and triangles from the ring to pinned points on the picture border. For a target landmark
layout, every output pixel gets the affine map of the triangle it lies in (triangles are drawn
back to front, skin over eyes and mouth, nearer over farther), which gives a backward map for
``cv2.remap``. ``synthesise_mouth`` paints a mouth interior taken from the driving face where the
target mouth opens wider than the source's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

N_LANDMARKS = 478
N_FACE_MESH = 468  # the face mesh proper, without the 10 iris points
IRIS_CENTERS = (468, 473)  # picture-left eye (with 33/133), picture-right eye (with 362/263)
EYE_CORNERS = ((33, 133), (362, 263))
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Landmarks that move with the skull, not with expressions: forehead, nose bridge, eye corners, temples.
RIGID_POINTS = np.array(
    [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 109, 338, 67, 297]
    + [33, 133, 362, 263, 127, 356, 234, 454, 116, 345, 93, 323],
    dtype=np.int64,
)
LASH_WIDTH = 0.1  # of the eye's width: the lash line drawn over a shut eye
RELAX_STEPS = 40  # smoothing passes over a closing lid's fill
LID_FADE = 0.08  # of the eye's width: how far down a closing lid's fill fades from the picture above into skin
MIN_TRIANGLE_AREA = 0.25  # px^2; smaller target triangles are not drawn (they would draw as lines)

# Drawing order of the triangle groups: lower numbers are drawn first and covered by later ones.
GROUP_BORDER, GROUP_BAND, GROUP_EYES, GROUP_MOUTH, GROUP_FACE = range(5)


def _loop(connections, start: int) -> list[int]:
    """Walk a closed loop of directed or undirected edges from ``start``."""
    nbrs: dict[int, list[int]] = {}
    for a, b in connections:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    loop, prev = [start], None
    while True:
        cur = loop[-1]
        nxt = [n for n in nbrs[cur] if n != prev]
        if not nxt or nxt[0] == start:
            return loop
        prev = cur
        loop.append(nxt[0])


@lru_cache(maxsize=1)
def topology() -> dict:
    """Index lists of the face mesh: triangles, face outline, eye loops (from MediaPipe's connections)."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    edges = {tuple(sorted(e)) for e in fmc.FACEMESH_TESSELATION}
    nbrs: dict[int, set[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, set()).add(b)
        nbrs.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in edges for c in nbrs[a] & nbrs[b]}
    # Every 3-cycle of the edge graph is a face except "separating" triangles, whose three edges
    # then belong to three 3-cycles each.
    count: dict[tuple[int, int], int] = {}
    for t in tris:
        for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])):
            count[e] = count.get(e, 0) + 1
    faces = [t for t in sorted(tris) if not all(count[e] > 2 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))]
    oval = _loop(fmc.FACEMESH_FACE_OVAL, 10)
    eyes = (_loop(fmc.FACEMESH_RIGHT_EYE, 33), _loop(fmc.FACEMESH_LEFT_EYE, 362))
    lips = sorted({i for e in fmc.FACEMESH_LIPS for i in e})
    return {"face": np.array(faces, dtype=np.int32), "oval": np.array(oval), "eyes": eyes, "lips": np.array(lips)}


def expression_points() -> np.ndarray:
    """Landmarks of the eyes (lids and irises) and the lips: what expressions move fastest."""
    topo = topology()
    return np.concatenate([*map(np.asarray, topo["eyes"]), np.arange(468, N_LANDMARKS), topo["lips"]])


def _mouth_strip() -> list[tuple[int, int, int]]:
    up, lo = INNER_LIP_UPPER, INNER_LIP_LOWER
    tris = []
    for i in range(len(up) - 1):
        if up[i] != lo[i]:
            tris.append((up[i], up[i + 1], lo[i]))
        if up[i + 1] != lo[i + 1]:
            tris.append((up[i + 1], lo[i + 1], lo[i]))
    return tris


def _downness(oval_points: np.ndarray) -> np.ndarray:
    """Per outline point, -1 straight above the outline's centre .. 1 straight below it."""
    d = oval_points - oval_points.mean(axis=0)
    return d[:, 1] / np.maximum(np.linalg.norm(d, axis=1), 1e-6)


def head_ring(oval_points: np.ndarray, top: float = 1.6, bottom: float = 1.25) -> np.ndarray:
    """The face outline scaled about its centre, more above (hair) than below (neck)."""
    c = oval_points.mean(axis=0)
    k = top + (bottom - top) * (_downness(oval_points) + 1.0) / 2.0
    return c + (oval_points - c) * k[:, None]


# Down to where the head ring follows the face outline's own motion (see ring_follow).
RING_FOLLOW_FULL, RING_FOLLOW_NONE = 0.0, 0.7


# Below the chin the head ring lies on the neck, which the torso holds: there it keeps up to this
# share of its place in the source instead of moving with the head (see ring_still).
NECK_STILL = 0.5
NECK_FROM, NECK_FULL = 0.3, 0.9  # downness (see _downness) where the neck's share starts and is full


def ring_still(oval_points: np.ndarray) -> np.ndarray:
    """Per head-ring point, the share of its source place it keeps (0: moves wholly with the head)."""
    down = _downness(oval_points)
    return NECK_STILL * np.clip((down - NECK_FROM) / (NECK_FULL - NECK_FROM), 0.0, 1.0)


def ring_follow(oval_points: np.ndarray) -> np.ndarray:
    """Per head-ring point, the share of its outline point's non-rigid motion it takes on: all of it
    around the forehead and cheeks (hair and ears move with them), none below the chin, where the
    neck stays put while the jaw opens."""
    down = _downness(oval_points)
    return np.clip((RING_FOLLOW_NONE - down) / (RING_FOLLOW_NONE - RING_FOLLOW_FULL), 0.0, 1.0)


@dataclass
class WarpMesh:
    """Triangles over a source picture's landmarks plus head-ring and border points."""

    points: np.ndarray  # float64 (P, 2): 478 landmarks, ring, border pins
    ring: slice
    ring_follow: np.ndarray  # float64 (R,): see ring_follow
    ring_still: np.ndarray  # float64 (R,): see ring_still
    border: slice
    triangles: np.ndarray  # int32 (T, 3)
    groups: np.ndarray  # int8 (T,) GROUP_*
    mouth: slice  # triangles filling the mouth opening
    face: slice  # tessellation triangles (drawn sorted by depth)
    shape: tuple[int, int]


def build_mesh(landmarks: np.ndarray, shape: tuple[int, int]) -> WarpMesh:
    """The source mesh for ``landmarks`` (478, 2+) of a picture of ``shape`` (H, W)."""
    from scipy.spatial import Delaunay

    topo = topology()
    h, w = shape[:2]
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    oval = topo["oval"]
    ring = head_ring(lm[oval])
    # Pins on the picture's border, or further out where the ring comes near it, so that the
    # ring (moving with the head) never crosses them.
    margin = 0.25 * float(np.ptp(ring, axis=0).max())
    lo = np.minimum(ring.min(axis=0) - margin, [-0.5, -0.5])
    hi = np.maximum(ring.max(axis=0) + margin, [w - 0.5, h - 0.5])
    xs, ys = np.linspace(lo[0], hi[0], 9), np.linspace(lo[1], hi[1], 9)
    border = np.array(
        [(x, lo[1]) for x in xs] + [(x, hi[1]) for x in xs]
        + [(lo[0], y) for y in ys[1:-1]] + [(hi[0], y) for y in ys[1:-1]]
    )
    n_lm, n_ring = len(lm), len(ring)
    points = np.concatenate([lm, ring, border])
    ring_idx = np.arange(n_lm, n_lm + n_ring)

    outer = np.concatenate([ring, border])
    outer_tris = Delaunay(outer).simplices
    ring_poly = ring.astype(np.float32).reshape(-1, 1, 2)
    keep = [cv2.pointPolygonTest(ring_poly, tuple(map(float, outer[t].mean(axis=0))), False) < 0 for t in outer_tris]
    border_tris = outer_tris[np.array(keep, dtype=bool)] + n_lm

    band = []
    for i in range(len(oval)):
        j = (i + 1) % len(oval)
        band += [(oval[i], oval[j], ring_idx[j]), (oval[i], ring_idx[j], ring_idx[i])]
    eyes = []
    for loop, center in zip(topo["eyes"], IRIS_CENTERS):
        eyes += [(center, loop[i], loop[(i + 1) % len(loop)]) for i in range(len(loop))]
    mouth = _mouth_strip()
    face = topo["face"]

    parts = [
        (border_tris, GROUP_BORDER), (band, GROUP_BAND), (eyes, GROUP_EYES), (mouth, GROUP_MOUTH), (face, GROUP_FACE)
    ]
    triangles = np.concatenate([np.asarray(t, dtype=np.int32).reshape(-1, 3) for t, _ in parts])
    groups = np.concatenate([np.full(len(t), g, dtype=np.int8) for t, g in parts])
    start_mouth = len(border_tris) + len(band) + len(eyes)
    return WarpMesh(
        points=points,
        ring=slice(n_lm, n_lm + n_ring),
        ring_follow=ring_follow(lm[oval]),
        ring_still=ring_still(lm[oval]),
        border=slice(n_lm + n_ring, len(points)),
        triangles=triangles,
        groups=groups,
        mouth=slice(start_mouth, start_mouth + len(mouth)),
        face=slice(start_mouth + len(mouth), len(triangles)),
        shape=(h, w),
    )


def affine_table(target: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle affine maps target -> source as float32 (T + 1, 6) rows (a, b, c, d, e, f):
    sx = a*x + b*y + c, sy = d*x + e*y + f. The extra last row is the identity (uncovered pixels).

    Also returns the target triangles' absolute areas. Degenerate target triangles get a shift.
    """
    t = target[triangles].astype(np.float64)  # (T, 3, 2)
    s = source[triangles].astype(np.float64)
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    f1, f2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # L = [f1 f2] @ inv([e1 e2]),  inv([e1 e2]) = [[e2y, -e2x], [-e1y, e1x]] / det
    a = (f1[:, 0] * e2[:, 1] - f2[:, 0] * e1[:, 1]) * inv
    b = (-f1[:, 0] * e2[:, 0] + f2[:, 0] * e1[:, 0]) * inv
    d = (f1[:, 1] * e2[:, 1] - f2[:, 1] * e1[:, 1]) * inv
    e = (-f1[:, 1] * e2[:, 0] + f2[:, 1] * e1[:, 0]) * inv
    a = np.where(ok, a, 1.0)
    e = np.where(ok, e, 1.0)
    shift = s.mean(axis=1) - t.mean(axis=1)
    c = np.where(ok, s[:, 0, 0] - a * t[:, 0, 0] - b * t[:, 0, 1], shift[:, 0])
    f = np.where(ok, s[:, 0, 1] - d * t[:, 0, 0] - e * t[:, 0, 1], shift[:, 1])
    table = np.empty((len(triangles) + 1, 6), dtype=np.float32)
    table[:-1] = np.stack([a, b, c, d, e, f], axis=1)
    table[-1] = (1, 0, 0, 0, 1, 0)
    return table, 0.5 * np.abs(det)


def draw_order(mesh: WarpMesh, depth: np.ndarray | None) -> np.ndarray:
    """Triangle indices in drawing order: by group, face triangles far to near when depth is given."""
    order = np.argsort(mesh.groups, kind="stable")
    if depth is not None:
        face = np.arange(mesh.face.start, mesh.face.stop)
        z = depth[mesh.triangles[face]].mean(axis=1)
        order = np.concatenate([order[: mesh.face.start], face[np.argsort(-z, kind="stable")]])
    return order


def rasterise(corners: np.ndarray, order, shape: tuple[int, int], background: int) -> np.ndarray:
    """int32 (H, W) index of the last-drawn triangle covering each pixel (``background`` where none).

    corners: int32 (T, 3, 2) triangle corners in raster pixels with 4 fractional bits.
    """
    ids = np.full(shape, background, dtype=np.int32)
    fill = cv2.fillConvexPoly
    for t in order:
        fill(ids, corners[t], t, cv2.LINE_8, 4)
    return ids


def _evaluate(ids: np.ndarray, table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Apply each pixel's affine map to its coordinates (x, y): float32 (H, W, 2) source positions."""
    a, b, c, d, e, f = (col.take(ids) for col in np.ascontiguousarray(table.T))
    a *= x
    b *= y
    a += b
    a += c
    d *= x
    e *= y
    d += e
    d += f
    return cv2.merge([a, d])


@dataclass
class MapResult:
    """A backward map: ``map`` float32 (H, W, 2) source x, y per output pixel, ``motion`` the same
    minus the pixel's own position; and the triangle ids of the exactly computed face region,
    whose top-left corner in the picture is ``origin``."""

    map: np.ndarray
    motion: np.ndarray
    ids: np.ndarray
    origin: tuple[int, int]

    def mouth_pixels(self, mesh: "WarpMesh", x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """float32 mask of the window [y0:y1, x0:x1] where the mouth-filling triangles were drawn."""
        ox, oy = self.origin
        out = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        hh, ww = self.ids.shape
        ax0, ay0, ax1, ay1 = max(x0 - ox, 0), max(y0 - oy, 0), min(x1 - ox, ww), min(y1 - oy, hh)
        if ax1 > ax0 and ay1 > ay0:
            win = self.ids[ay0:ay1, ax0:ax1]
            sub = (win >= mesh.mouth.start) & (win < mesh.mouth.stop)
            out[ay0 + oy - y0 : ay1 + oy - y0, ax0 + ox - x0 : ax1 + ox - x0] = sub
        return out


class Warper:
    """Backward maps for pictures of one size.

    Near the face (the landmarks' box) the piecewise-affine map is evaluated at every pixel; the
    rest of the picture holds only large, gently deformed triangles, so there it is evaluated on
    a grid about ``coarse_size`` pixels across (at most ``max_step`` pixels apart) and upsampled
    bilinearly.
    """

    def __init__(self, shape: tuple[int, int], coarse_size: int = 128, max_step: float = 4.0):
        h, w = shape[:2]
        self.shape = (h, w)
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        self.x, self.y = x, y
        self.grid = cv2.merge([x, y])  # (H, W, 2) identity map
        k = min(max(h, w) / float(coarse_size), max_step)
        self.coarse = k >= 3.0  # below that the two passes cost more than one exact pass
        if self.coarse:
            self.cshape = (max(2, int(round(h / k))), max(2, int(round(w / k))))
            self.sy, self.sx = h / self.cshape[0], w / self.cshape[1]  # full pixels per coarse pixel
            cy, cx = np.mgrid[0 : self.cshape[0], 0 : self.cshape[1]].astype(np.float32)
            # coarse pixel centres in full-picture pixels (cv2.resize's half-pixel convention)
            self.cx = (cx + 0.5) * np.float32(self.sx) - 0.5
            self.cy = (cy + 0.5) * np.float32(self.sy) - 0.5
            self.cgrid = cv2.merge([self.cx, self.cy])

    def backward_map(self, mesh: "WarpMesh", target: np.ndarray, table: np.ndarray, area: np.ndarray,
                     order: np.ndarray) -> MapResult:
        h, w = self.shape
        background = len(mesh.triangles)  # the identity row of the table
        drawn = order[(area > MIN_TRIANGLE_AREA)[order]]
        tri = target[mesh.triangles]  # (T, 3, 2)
        lo, hi = tri.min(axis=1), tri.max(axis=1)
        if not self.coarse:
            corners = np.round(tri * 16.0).astype(np.int32)
            ids = rasterise(corners, drawn.tolist(), (h, w), background)
            backward = _evaluate(ids, table, self.x, self.y)
            return MapResult(backward, backward - self.grid, ids, (0, 0))

        face_pts = target[:N_LANDMARKS]
        margin = 2.0 * max(self.sx, self.sy) + 2.0
        bx0, by0 = np.floor(face_pts.min(axis=0) - margin).astype(int)
        bx1, by1 = np.ceil(face_pts.max(axis=0) + margin).astype(int)
        bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, w), min(by1, h)

        # coarse pass: skip triangles well inside the exact box (they are overwritten there). The
        # displacement, not the map, is upsampled: it is smooth up to the picture's edges.
        inner = (lo[:, 0] > bx0 + margin) & (lo[:, 1] > by0 + margin)
        inner &= (hi[:, 0] < bx1 - margin) & (hi[:, 1] < by1 - margin)
        scale = np.array([1.0 / self.sx, 1.0 / self.sy])
        corners = np.round(((tri + 0.5) * scale - 0.5) * 16.0).astype(np.int32)
        ids_c = rasterise(corners, drawn[~inner[drawn]].tolist(), self.cshape, background)
        coarse = _evaluate(ids_c, table, self.cx, self.cy) - self.cgrid
        motion = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        ids = np.full((1, 1), background, dtype=np.int32)
        if bx1 > bx0 and by1 > by0:  # exact pass over the face box
            touches = (hi[:, 0] >= bx0) & (hi[:, 1] >= by0) & (lo[:, 0] < bx1) & (lo[:, 1] < by1)
            corners = np.round((tri - np.array([bx0, by0])) * 16.0).astype(np.int32)
            ids = rasterise(corners, drawn[touches[drawn]].tolist(), (by1 - by0, bx1 - bx0), background)
            exact = _evaluate(ids, table, self.x[by0:by1, bx0:bx1], self.y[by0:by1, bx0:bx1])
            motion[by0:by1, bx0:bx1] = exact - self.grid[by0:by1, bx0:bx1]
        return MapResult(motion + self.grid, motion, ids, (bx0, by0))


def warp(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Sample ``image`` at the float32 (H, W, 2) backward map (bilinear, edges repeated)."""
    return cv2.remap(image, backward, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# ---------------------------------------------------------------------------- irises


@dataclass
class IrisLayer:
    """A source picture's eyes made ready for irises that move on their own (``draw_irises``).

    A warp alone cannot move an iris inside its eye: the eye's triangles fan out from the iris
    centre, so a centre moved toward a corner squashes the iris on that side and stretches its edge
    across the white on the other, and the iris reads as moving about half as far as it did.
    """

    background: np.ndarray  # uint8 (H, W, 3): the source with each iris painted out of its eye opening
    texture: np.ndarray  # uint8 (H, W, 3): the source with each iris disk completed where the lids hid it
    centres: np.ndarray  # float64 (2, 2): iris centres (IRIS_CENTERS order)
    radii: np.ndarray  # float64 (2,)
    loops: tuple  # float64 (16, 2) per eye: its opening's outline (topology()["eyes"])


# Gaze moves (iris centre against its eye, in iris radii) from which the iris is redrawn whole, and over how much
# more it fades in fully.
IRIS_MOVE_FROM, IRIS_MOVE_SPAN = 0.15, 0.35


def _eye_box(points: np.ndarray, pad: float, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0 = np.floor(points.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + pad).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def _polygon_mask(poly: np.ndarray, origin, shape) -> np.ndarray:
    """uint8 (0/255) antialiased fill of ``poly`` in a window of ``shape`` whose corner is ``origin``."""
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round((poly - np.asarray(origin)) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask


def _disk(centre: np.ndarray, radius: float, origin, shape) -> np.ndarray:
    """float32 coverage of a disk (one pixel of soft edge) in a window of ``shape`` at ``origin``."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dist = np.hypot(xs + origin[0] - centre[0], ys + origin[1] - centre[1])
    return np.clip(radius + 0.5 - dist, 0.0, 1.0)


def prepare_irises(image: np.ndarray, landmarks: np.ndarray) -> IrisLayer:
    """The ``IrisLayer`` of a source picture and its (478, 2+) landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    background, texture = image.copy(), image.copy()
    centres = lm[list(IRIS_CENTERS)]
    radii = np.array([np.linalg.norm(lm[c + 1 : c + 5] - lm[c], axis=1).mean() for c in IRIS_CENTERS])
    for loop, centre, radius in zip(topology()["eyes"], centres, radii):
        poly = lm[list(loop)]
        x0, y0, x1, y1 = _eye_box(np.concatenate([poly, centre[None] - radius, centre[None] + radius]), 3.0, image.shape)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        size = (y1 - y0, x1 - x0)
        opening = _polygon_mask(poly, (x0, y0), size) > 127
        disk = _disk(centre, radius + 1.0, (x0, y0), size) > 0.5  # the dark rim around the iris too
        hole = (opening & disk).astype(np.uint8) * 255
        roi = np.ascontiguousarray(image[y0:y1, x0:x1])
        if hole.any():
            # the white of the eye where the iris was: its colour beside the iris, away from the lids
            # (an inpaint from the hole's edge would pull the lashes above and below into it)
            hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
            inner = cv2.erode(opening.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            white = inner & (hole == 0)
            if white.sum() >= 4:
                fill = np.median(roi[white], axis=0)
                soft = cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None]
                background[y0:y1, x0:x1] = np.clip(roi + soft * (fill - roi) + 0.5, 0, 255).astype(np.uint8)
            else:
                background[y0:y1, x0:x1] = cv2.inpaint(roi, hole, max(2.0, 0.5 * radius), cv2.INPAINT_TELEA)
        seen = opening & disk
        colour = np.median(roi[seen], axis=0) if seen.any() else roi[size[0] // 2, size[1] // 2]
        texture[y0:y1, x0:x1][disk & ~opening] = colour
    loops = tuple(lm[list(loop)] for loop in topology()["eyes"])
    return IrisLayer(background=background, texture=texture, centres=centres, radii=radii, loops=loops)


def draw_irises(frame: np.ndarray, layer: IrisLayer, backward: np.ndarray, target: np.ndarray,
                head: np.ndarray) -> None:
    """Redraw each target eye opening of ``frame`` (in place): the warped eye with its iris painted
    out (``backward``: the frame's backward map), and over it the source iris moved as a whole to the
    target iris centre, turned and scaled with the head (``head``: source -> target similarity)."""
    lin = head[:, :2]
    scale = math.sqrt(abs(float(np.linalg.det(lin))))
    inv = np.linalg.inv(lin) if scale > 1e-9 else np.eye(2)
    for k, loop in enumerate(topology()["eyes"]):
        poly = target[list(loop), :2]
        x0, y0, x1, y1 = _eye_box(poly, 2.0, frame.shape)
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        size = (y1 - y0, x1 - x0)
        centre = target[IRIS_CENTERS[k], :2]
        radius = layer.radii[k] * scale
        # the iris's move inside its eye (gaze); small ones the warp itself shows well enough
        gaze = (centre - poly.mean(axis=0)) - lin @ (layer.centres[k] - layer.loops[k].mean(axis=0))
        amount = float(np.clip((np.linalg.norm(gaze) / max(radius, 1e-6) - IRIS_MOVE_FROM) / IRIS_MOVE_SPAN, 0.0, 1.0))
        if amount <= 0.0:
            continue
        opening = _polygon_mask(poly, (x0, y0), size)
        if not opening.any():
            continue
        eye = cv2.remap(layer.background, backward[y0:y1, x0:x1], None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # window pixel q -> source: centre_s + inv @ (q + origin - centre_t)
        shift = layer.centres[k] + inv @ (np.array([x0, y0], dtype=np.float64) - centre)
        m = np.concatenate([inv, shift[:, None]], axis=1)
        iris = cv2.warpAffine(layer.texture, m, (size[1], size[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        a = _disk(centre, radius, (x0, y0), size)[..., None]
        eye = eye.astype(np.float32) + a * (iris.astype(np.float32) - eye)
        alpha = (opening.astype(np.float32) * np.float32(amount / 255.0))[..., None]
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi + alpha * (eye - roi) + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- eyelids


def cover_eye(frame: np.ndarray, lid: np.ndarray, upper: np.ndarray, lower: np.ndarray, amount: float,
              lash) -> None:
    """Paint a closing eye's upper lid (in place) with lid skin: the region between the lid skin
    above the eye (``lid``: points from corner to corner) and the upper lid's edge where it has
    come down to (``upper``, same direction) is filled with skin, a line of ``lash`` colour (RGB)
    is drawn along that edge, and both are blended in by ``amount`` in [0, 1]. Below the edge the
    eye stays as the warp left it; on a shut eye the edge lies on the lower lid (``lower``).

    A warp alone stretches the open eye's lashes and crease into a dark almond that still reads as
    an open eye; a closing lid is smooth skin down to one lash line. The skin is the colour just
    below the lower lid; at the patch's top it starts from the picture's own colours there (lid
    skin or brow) and fades into that skin, so the patch has no outline of its own (a flat patch of
    the cheek's colour read as a second, wider eye).
    """
    if amount <= 0.0:
        return
    h, w = frame.shape[:2]
    poly = np.concatenate([lid[:, :2], upper[::-1, :2]])
    width = float(np.ptp(poly[:, 0]))
    pad = int(math.ceil(0.25 * width)) + 3
    x0, y0 = np.floor(np.minimum(poly.min(axis=0), lower[:, :2].min(axis=0))).astype(int) - pad
    x1, y1 = np.ceil(np.maximum(poly.max(axis=0), lower[:, :2].max(axis=0))).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4 or width < 2:
        return
    roi = np.ascontiguousarray(frame[y0:y1, x0:x1])
    mask = np.zeros(roi.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    below = np.round(lower[1:-1, :2] + [0.0, 0.12 * width] - [x0, y0]).astype(np.int64)
    below[:, 0] = np.clip(below[:, 0], 0, roi.shape[1] - 1)
    below[:, 1] = np.clip(below[:, 1], 0, roi.shape[0] - 1)
    skin = np.median(roi[below[:, 1], below[:, 0]].astype(np.float32), axis=0)
    filled = _fill_from_border(roi, mask > 127, skin, max(2, int(round(0.06 * width))), max(2.0, LID_FADE * width),
                               max(1.0, 0.08 * width))
    line = _lash_line(roi.shape[:2], upper[:, :2] - [x0, y0], max(1.0, LASH_WIDTH * width))
    line = cv2.GaussianBlur(line, (0, 0), max(0.5, 0.02 * width))[..., None]
    filled += 0.85 * line * (np.asarray(lash, np.float32) - filled)
    alpha = cv2.GaussianBlur(np.maximum(mask, (line[..., 0] * 255).astype(np.uint8)).astype(np.float32) / 255.0,
                             (0, 0), max(0.6, 0.04 * width))
    alpha = (np.float32(amount) * alpha)[..., None]
    frame[y0:y1, x0:x1] = np.clip(roi + alpha * (filled - roi) + 0.5, 0, 255).astype(np.uint8)


def _fill_from_border(roi: np.ndarray, inside: np.ndarray, skin: np.ndarray, band: int, fade: float,
                      blur: float) -> np.ndarray:
    """float32 copy of ``roi`` with the ``inside`` pixels filled column by column: at each column's
    first inside pixel the mean colour of the ``band`` pixels above it (smoothed across columns by
    ``blur``, a Gaussian's sigma), fading into ``skin`` (RGB) over ``fade`` pixels downward, then
    relaxed over RELAX_STEPS passes toward the picture around the patch and the skin below it."""
    out = roi.astype(np.float32)
    cols = np.nonzero(inside.any(axis=0))[0]
    if len(cols) == 0:
        return out
    top = inside[:, cols].argmax(axis=0)
    start = np.maximum(top - band, 0)
    sums = np.concatenate([np.zeros((1, len(cols), out.shape[2]), np.float32), np.cumsum(out[:, cols], axis=0)])
    count = (top - start)[:, None].astype(np.float32)
    border = np.where(count > 0, (sums[top, np.arange(len(cols))] - sums[start, np.arange(len(cols))])
                      / np.maximum(count, 1.0), out[top, cols])
    border = cv2.GaussianBlur(border[None], (0, 0), sigmaX=blur, sigmaY=1e-3, borderType=cv2.BORDER_REPLICATE)[0]
    ys, xs = np.nonzero(inside)
    k = np.searchsorted(cols, xs)
    t = np.clip((ys - top[k]) / fade, 0.0, 1.0)[:, None].astype(np.float32)
    t = t * t * (3.0 - 2.0 * t)  # smoothstep
    skin = np.asarray(skin, np.float32)
    out[ys, xs] = border[k] + t * (skin - border[k])
    # relax it into a membrane (each inside pixel the mean of its neighbours) whose edge is the
    # picture above and beside the patch and the skin colour below it: no seam at the top, and
    # nothing of what lies under the lid's edge (the eye, the lower lid's lashes) bleeds in
    bottom = inside.shape[0] - 1 - inside[::-1, cols].argmax(axis=0)
    work = out.copy()
    under = np.arange(inside.shape[0])[:, None] > bottom[None]
    sub = work[:, cols]
    sub[under] = skin
    work[:, cols] = sub
    fixed, free = work.copy(), np.repeat(inside[..., None], out.shape[2], axis=2)
    for _ in range(RELAX_STEPS):
        work = cv2.blur(work, (3, 3), borderType=cv2.BORDER_REPLICATE)
        np.copyto(work, fixed, where=~free)
    out[ys, xs] = work[ys, xs]
    return out


def _lash_line(shape: tuple[int, int], points: np.ndarray, thick: float) -> np.ndarray:
    """float32 coverage (0..1) of a line ``thick`` pixels wide (fractional widths too) along ``points``."""
    centre = np.full(shape, 255, dtype=np.uint8)
    cv2.polylines(centre, [np.round(points * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, 4)
    dist = cv2.distanceTransform(centre, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(0.5 * thick + 0.5 - dist, 0.0, 1.0).astype(np.float32)


def lash_colour(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The colour of an upper lid's lash line: the darker half of ``image`` at ``points`` (N, 2)."""
    h, w = image.shape[:2]
    p = np.round(points[:, :2]).astype(np.int64)
    samples = image[np.clip(p[:, 1], 0, h - 1), np.clip(p[:, 0], 0, w - 1)].astype(np.float32)
    dark = samples[np.argsort(samples.sum(axis=1))[: max(1, len(samples) // 2)]]
    return dark.mean(axis=0)


# ---------------------------------------------------------------------------- mouth


def mouth_opening(points: np.ndarray) -> float:
    """Area inside the inner lips (0 when closed or when the lips cross)."""
    poly = inner_mouth(points)
    x, y = poly[:, 0], poly[:, 1]
    signed = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))  # > 0: upper lip above lower
    return float(max(signed, 0.0))


def fit_similarity(src: np.ndarray, dst: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst as a 2x3 matrix.

    ``scale`` fixes the scale instead of fitting it.
    """
    src = np.asarray(src, dtype=np.float64)[:, :2]
    dst = np.asarray(dst, dtype=np.float64)[:, :2]
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    dot = float((a * b).sum())  # scale * cos * |a|^2
    cross = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum())  # scale * sin * |a|^2
    norm = max(float((a**2).sum()), 1e-12)
    sc, sn = dot / norm, cross / norm
    if scale is not None:
        k = scale / max(math.hypot(sc, sn), 1e-12)
        sc, sn = sc * k, sn * k
    m = np.array([[sc, -sn, 0.0], [sn, sc, 0.0]])
    m[:, 2] = md - m[:, :2] @ ms
    return m


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares affine map src -> dst as a 2x3 matrix (normal equations, 3x3)."""
    src = np.asarray(src, dtype=np.float64)[:, :2]
    dst = np.asarray(dst, dtype=np.float64)[:, :2]
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    cov = a.T @ a
    det = cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[1, 0]
    if abs(det) < 1e-12:
        return fit_similarity(src, dst)
    inv = np.array([[cov[1, 1], -cov[0, 1]], [-cov[1, 0], cov[0, 0]]]) / det
    lin = (b.T @ a) @ inv
    return np.concatenate([lin, (md - lin @ ms)[:, None]], axis=1)


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[:, :2] @ m[:, :2].T + m[:, 2]


def inner_mouth(points: np.ndarray) -> np.ndarray:
    """The inner-lip polygon (20 points) of a landmark array."""
    return np.asarray(points)[list(INNER_LIP_UPPER) + list(INNER_LIP_LOWER[-2:0:-1]), :2]


def colour_stats(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the Lab colours of ``image`` at ``points`` (the face's own colours)."""
    h, w = image.shape[:2]
    p = np.round(points[:, :2]).astype(np.int64)
    p[:, 0] = np.clip(p[:, 0], 0, w - 1)
    p[:, 1] = np.clip(p[:, 1], 0, h - 1)
    samples = image[p[:, 1], p[:, 0]].reshape(-1, 1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(samples, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    return lab.mean(axis=0), lab.std(axis=0) + 1e-3


def match_colours(patch: np.ndarray, from_stats, to_stats) -> np.ndarray:
    """Reinhard colour transfer of a uint8 RGB patch between two faces' Lab statistics."""
    lab = cv2.cvtColor(patch.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    (m0, s0), (m1, s1) = from_stats, to_stats
    gain = s1 / s0
    gain[0] = np.clip(gain[0], 0.5, 2.0)
    gain[1:] = np.clip(gain[1:], 0.0, 2.0)  # a grey source makes grey teeth
    lab = (lab - m0) * gain + m1
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def synthesis_weight(target_open: float, source_open: float, face_area: float) -> float:
    """How much of the mouth interior to synthesise: 0 while the target opening is about the
    source's (its own interior warps well), 1 once it is clearly wider or the source is closed."""
    if target_open < 2e-3 * face_area:
        return 0.0
    ratio = target_open / max(source_open, 1e-6)
    return float(np.clip((ratio - 1.2) / 0.6, 0.0, 1.0))


def synthesise_mouth(
    frame: np.ndarray,
    warped: MapResult,
    mesh: WarpMesh,
    target: np.ndarray,
    driving: np.ndarray,
    driving_points: np.ndarray,
    weight: float,
    stats: tuple,
) -> np.ndarray | None:
    """Paint the mouth opening of ``frame`` (in place) with the driving face's mouth interior.

    The interior is mapped by one affine fit of the driving inner lips onto the target's,
    colour-matched to the source face (``stats`` = (driving, source) Lab statistics), and
    feathered into the warped source. Returns the float32 (H, W) blend mask, or None.
    """
    h, w = frame.shape[:2]
    poly = inner_mouth(target)
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    hard = warped.mouth_pixels(mesh, x0, y0, x1, y1)
    if not hard.any():
        return None
    src_pts = poly - np.array([x0, y0], dtype=np.float64)
    dst_pts = inner_mouth(driving_points)
    # A full affine matches the driving opening's height; when the driving mouth is nearly closed
    # that fit is ill-posed, so lean on a similarity instead.
    drv_width = max(float(np.ptp(dst_pts[:, 0])), 1e-6)
    openness = np.clip(mouth_opening(driving_points) / drv_width**2 / 0.08, 0.0, 1.0)
    affine = openness * fit_affine(src_pts, dst_pts) + (1.0 - openness) * fit_similarity(src_pts, dst_pts)
    interior = cv2.warpAffine(driving, affine, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
    interior = match_colours(interior, *stats)
    width = float(np.ptp(poly[:, 0]))
    # full strength inside the opening, softened only over the last pixel or so at the lips: a
    # wider fade shows the stretched lips inside the opening, which then looks smaller than it is
    soft = cv2.GaussianBlur(hard, (0, 0), max(0.7, 0.02 * width))
    alpha = (np.clip(2.0 * soft, 0.0, 1.0) * hard * np.float32(weight))[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi + alpha * (interior.astype(np.float32) - roi) + 0.5, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.float32)
    mask[y0:y1, x0:x1] = alpha[..., 0]
    return mask
