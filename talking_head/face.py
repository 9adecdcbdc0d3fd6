"""Finding, cropping and tracking faces (MediaPipe face detection and face mesh, offline).

    face, warning = detect_face(image)                  # largest face; NoFaceError when none
    box = crop_box_for(face, image.shape)               # square head crop, VoxCeleb-like framing
    crop_img = crop(image, box, 256)                    # pads outside the picture with edge pixels
    full = paste_back(image, animated, box)             # animated crop blended back into the picture

Images are uint8 RGB (H, W, 3); loading (EXIF, modes, bit depth) is ``talking_head.video``'s job.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from talking_head.errors import BadInputError, NoFaceError

# Crop framing: side = CROP_SCALE * detection-box size, centre moved by CROP_OFFSET_Y * box size
# (negative = up). The MediaPipe box spans brows to chin, so this frames head, some hair and neck.
CROP_SCALE = 2.0
CROP_OFFSET_Y = -0.12

MIN_FACE_PX = 24  # smaller faces are refused
SMALL_FACE_PX = 64  # smaller faces get a warning (the result will be blurry)
MIN_DETECTION_SCORE = 0.5

# A readable subset of the 478 face-mesh points, in the order of the classic 68-point layout
# (jaw 17, brows 10, nose 9, eyes 12, mouth 20), plus the two iris centres.
KEYPOINTS_68 = np.array(
    [234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454]
    + [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
    + [168, 197, 5, 4, 75, 97, 2, 326, 305]
    + [33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380]
    + [61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178]
    + [468, 473],
    dtype=np.int64,
)

# Eye and lip points for open ratios; "left"/"right" as seen in the picture.
_EYE_IMAGE_LEFT = {"corners": (33, 133), "pairs": ((160, 144), (159, 145), (158, 153))}
_EYE_IMAGE_RIGHT = {"corners": (362, 263), "pairs": ((385, 380), (386, 374), (387, 373))}
_LIP = {"corners": (78, 308), "pairs": ((81, 178), (13, 14), (311, 402))}


@dataclass
class Face:
    """One detected face: box (x0, y0, x1, y1) in image pixels, detector score, optional mesh."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None  # float32 (478, 2) pixels, iris included

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def center(self) -> tuple[float, float]:
        return float(self.box[0] + self.box[2]) / 2.0, float(self.box[1] + self.box[3]) / 2.0


@dataclass
class CropBox:
    """A square in image pixels (top-left corner and side); it may extend outside the picture."""

    x0: float
    y0: float
    size: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x0 + self.size / 2.0, self.y0 + self.size / 2.0

    def pixel_rect(self) -> tuple[int, int, int]:
        """Integer (x0, y0, side) used by crop and paste_back, so both agree to the pixel."""
        return int(round(self.x0)), int(round(self.y0)), max(1, int(round(self.size)))


def check_rgb(image, what: str = "image") -> np.ndarray:
    """The image as a contiguous uint8 (H, W, 3) array, or BadInputError."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 2:
        raise BadInputError(
            f"The {what} must be an RGB picture (uint8, height x width x 3); got {arr.dtype} {arr.shape}.",
            "Load pictures with talking_head.video.load_image, which converts any format to RGB.",
        )
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------- MediaPipe graphs

_MP_LOCK = threading.Lock()  # MediaPipe graphs are not safe to call from two threads at once


@lru_cache(maxsize=2)
def _detector(model_selection: int):
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(
        model_selection=model_selection, min_detection_confidence=MIN_DETECTION_SCORE
    )


def _run_detector(image: np.ndarray, model_selection: int) -> list[Face]:
    h, w = image.shape[:2]
    detector = _detector(model_selection)
    with _MP_LOCK:
        result = detector.process(image)
    faces = []
    for det in result.detections or []:
        rb = det.location_data.relative_bounding_box
        box = np.array(
            [rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h], dtype=np.float32
        )
        if box[2] - box[0] > 1 and box[3] - box[1] > 1:
            faces.append(Face(box, float(det.score[0])))
    return faces


def detect_faces(image: np.ndarray) -> list[Face]:
    """All faces (boxes and scores, no mesh), largest first; [] when none.

    Tries the full-range detector, then the short-range one (faces filling the frame), then the
    short-range one on a padded picture. Short-range finds must be confirmed by the full-range
    detector on a crop framed around them: the short-range model alone also fires on animal faces.
    """
    image = check_rgb(image)
    faces = _run_detector(image, 1)
    if not faces:
        faces = [f for f in _run_detector(image, 0) if _confirmed(image, f)]
    if not faces:
        h, w = image.shape[:2]
        pad = int(0.3 * max(h, w))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        faces = [f for f in _run_detector(padded, 0) if _confirmed(padded, f)]
        for f in faces:
            f.box -= np.float32(pad)
    return sorted(faces, key=lambda f: -f.size)


def _confirmed(image: np.ndarray, face: Face) -> bool:
    """Whether the full-range detector also sees a face in a 256-pixel crop framed around ``face``."""
    patch = crop(image, crop_box_for(face, image.shape, scale=2.0, offset=(0.0, 0.0)), 256)
    return bool(_run_detector(patch, 1))


def detect_face(image: np.ndarray, role: str = "source") -> tuple[Face, str | None]:
    """The largest face, with its 478-point mesh when the mesh model finds it, and a warning or None.

    Raises NoFaceError when there is no face or it is too small to animate.
    """
    image = check_rgb(image, f"{role} picture")
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError(
            f"No face was found in the {role} picture.",
            "Use a picture where one face is clearly visible, facing the camera and not too small, "
            "or turn off auto-crop to use the whole picture as it is.",
        )
    face = faces[0]
    if face.size < MIN_FACE_PX:
        raise NoFaceError(
            f"The face in the {role} picture is too small ({face.size:.0f} pixels; at least {MIN_FACE_PX} needed).",
            "Use a larger or higher-resolution picture of the face, or crop the picture around the face.",
        )
    warnings = []
    if len(faces) > 1:
        warnings.append(f"Found {len(faces)} faces in the {role} picture; using the largest one.")
    if face.size < SMALL_FACE_PX:
        warnings.append(
            f"The face in the {role} picture is small ({face.size:.0f} pixels); the result will be blurry."
        )
    face.landmarks = _mesh_around(image, face)
    return face, (" ".join(warnings) or None)


def _mesh_around(image: np.ndarray, face: Face, max_side: int = 640) -> np.ndarray | None:
    """Face-mesh landmarks of ``face``, found on a crop around it (robust for small faces)."""
    box = crop_box_for(face, image.shape, scale=2.2, offset=(0.0, 0.0))
    x0, y0, side = box.pixel_rect()
    out = min(side, max_side)
    pts = still_landmarks(crop(image, box, out))
    if pts is None:
        return None
    return (pts * np.float32(side / out) + np.float32([x0, y0])).astype(np.float32)


# ---------------------------------------------------------------------------- crops


def crop_box_for(face: Face, image_shape, scale: float = CROP_SCALE, offset=(0.0, CROP_OFFSET_Y)) -> CropBox:
    """Square crop around ``face``: side = scale * face size, centre moved by offset * face size.

    The box is not clipped to the picture (``image_shape`` is accepted for the engine's calls);
    ``crop`` repeats edge pixels where it sticks out.
    """
    cx, cy = face.center
    size = face.size
    cx += float(offset[0]) * size
    cy += float(offset[1]) * size
    side = max(2.0, float(scale) * size)
    return CropBox(cx - side / 2.0, cy - side / 2.0, side)


def crop(image: np.ndarray, box: CropBox, out_size: int | None = None) -> np.ndarray:
    """The square ``box`` of ``image`` (edge pixels repeated outside), resized to out_size (None: native)."""
    h, w = image.shape[:2]
    x0, y0, side = box.pixel_rect()
    ix0, iy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    ix1, iy1 = max(min(x0 + side, w), ix0 + 1), max(min(y0 + side, h), iy0 + 1)
    pads = (iy0 - y0, y0 + side - iy1, ix0 - x0, x0 + side - ix1)  # top, bottom, left, right
    if pads == (0, 0, 0, 0):
        patch = image[y0 : y0 + side, x0 : x0 + side]
    elif min(pads) >= 0:
        patch = cv2.copyMakeBorder(image[iy0:iy1, ix0:ix1], *pads, cv2.BORDER_REPLICATE)
    else:  # the box lies entirely beside the picture
        ys = np.clip(np.arange(y0, y0 + side), 0, h - 1)
        xs = np.clip(np.arange(x0, x0 + side), 0, w - 1)
        patch = image[ys[:, None], xs[None, :]]
    if out_size is not None and int(out_size) != side:
        interp = cv2.INTER_AREA if out_size < side else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (int(out_size), int(out_size)), interpolation=interp)
    return np.ascontiguousarray(patch)


def feather_mask(size: int, feather: float) -> np.ndarray:
    """float32 (size, size): 1 in the middle, smoothly down to 0 over ``feather * size`` at the edges."""
    ramp = max(1.0, float(feather) * size)
    d = np.arange(size, dtype=np.float32)
    edge = np.minimum(d + 0.5, size - d - 0.5) / ramp
    t = np.clip(edge, 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)
    return np.minimum(t[:, None], t[None, :])


def paste_back(image: np.ndarray, animated: np.ndarray, box: CropBox, feather: float = 0.1) -> np.ndarray:
    """``image`` with ``animated`` resized into ``box`` and blended in with feathered edges.

    Pixels outside the box are unchanged; parts of the box outside the picture are dropped.
    """
    h, w = image.shape[:2]
    x0, y0, side = box.pixel_rect()
    out = image.copy()
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    ah, aw = animated.shape[:2]
    interp = cv2.INTER_AREA if side < max(ah, aw) else cv2.INTER_LINEAR
    patch = animated if (ah, aw) == (side, side) else cv2.resize(animated, (side, side), interpolation=interp)
    sl = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
    alpha = np.ascontiguousarray(feather_mask(side, feather)[sl])
    region = out[iy0:iy1, ix0:ix1]
    inside = np.ascontiguousarray(patch[sl])
    out[iy0:iy1, ix0:ix1] = cv2.blendLinear(inside, np.ascontiguousarray(region), alpha, 1.0 - alpha)
    return out


# ---------------------------------------------------------------------------- tracking


class FaceTracker:
    """Crop boxes for a driving clip that follow the face without jitter.

    Each ``update`` detects the face (every ``detect_every`` frames), keeps the face nearest the
    previous one, and smooths the box centre and size with an adaptive moving average: small
    changes (detector noise) move the box by ``1 - smoothing`` of the way, large ones (real head
    motion) almost fully. When the face is lost the last box is held; before any face is seen the
    centred full-frame square is returned.
    """

    JUMP = 0.25  # a change of this fraction of the box size is followed immediately

    def __init__(self, scale: float = CROP_SCALE, offset=(0.0, CROP_OFFSET_Y), smoothing: float = 0.8,
                 detect_every: int = 1):
        self.scale = float(scale)
        self.offset = (float(offset[0]), float(offset[1]))
        self.smoothing = float(np.clip(smoothing, 0.0, 0.99))
        self.detect_every = max(1, int(detect_every))
        self._state: np.ndarray | None = None  # cx, cy, size
        self._frames = 0
        self.lost = 0  # frames since the face was last seen

    def reset(self) -> None:
        self._state = None
        self._frames = 0
        self.lost = 0

    def update(self, frame: np.ndarray) -> CropBox:
        frame = check_rgb(frame, "driving frame")
        if self._state is None or self._frames % self.detect_every == 0:
            self._observe(frame)
        self._frames += 1
        if self._state is None:
            h, w = frame.shape[:2]
            side = float(max(h, w))
            return CropBox((w - side) / 2.0, (h - side) / 2.0, side)
        cx, cy, side = (float(v) for v in self._state)
        return CropBox(cx - side / 2.0, cy - side / 2.0, side)

    def _observe(self, frame: np.ndarray) -> None:
        faces = [f for f in detect_faces(frame) if f.size >= MIN_FACE_PX]
        if not faces:
            self.lost += 1
            return
        self.lost = 0
        if self._state is not None:
            cx, cy = self._state[:2]
            face = min(faces, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2)
        else:
            face = faces[0]
        box = crop_box_for(face, frame.shape, self.scale, self.offset)
        target = np.array([box.x0 + box.size / 2.0, box.y0 + box.size / 2.0, box.size], dtype=np.float64)
        if self._state is None:
            self._state = target
            return
        change = np.abs(target - self._state).max() / self._state[2]
        follow = min(1.0, change / self.JUMP) ** 2
        alpha = (1.0 - self.smoothing) + self.smoothing * follow
        self._state = self._state + alpha * (target - self._state)


# ---------------------------------------------------------------------------- face mesh


class FaceMesh:
    """A reusable MediaPipe face mesh (478 points with irises).

    ``static_image_mode=False`` tracks across consecutive video frames (faster, steadier);
    True treats every image on its own.
    """

    def __init__(self, static_image_mode: bool = True):
        import mediapipe as mp

        self.static_image_mode = bool(static_image_mode)
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self.static_image_mode,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._lock = threading.Lock()

    def landmarks_3d(self, image: np.ndarray) -> np.ndarray | None:
        """float32 (478, 3): x, y in pixels; z (depth, smaller = nearer) in the same pixel scale as x."""
        image = check_rgb(image)
        if self._mesh is None:
            raise RuntimeError("FaceMesh is closed")
        h, w = image.shape[:2]
        with self._lock:
            result = self._mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32)
        pts *= np.float32([w, h, w])
        return pts

    def reset(self) -> None:
        """Forget the face being tracked: the next picture is searched afresh (a new clip)."""
        if self._mesh is None:
            raise RuntimeError("FaceMesh is closed")
        with self._lock:
            self._mesh.reset()

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """float32 (478, 2) pixel coordinates, or None when no face is found."""
        pts = self.landmarks_3d(image)
        return None if pts is None else np.ascontiguousarray(pts[:, :2])

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------- measures


def still_landmarks(image: np.ndarray) -> np.ndarray | None:
    """Face-mesh landmarks (478, 2) of one still picture with a FaceMesh made for it; None: no face."""
    mesh = FaceMesh(static_image_mode=True)
    try:
        return mesh.landmarks(image)
    finally:
        mesh.close()


def pose_expression_signature(landmarks: np.ndarray) -> np.ndarray:
    """Salient landmarks with translation and scale removed (rotation kept, it is pose), flattened.

    Squared distances between signatures compare head pose and expression across faces and crops.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[KEYPOINTS_68, :2]
    pts = pts - pts.mean(axis=0)
    scale = np.sqrt((pts**2).sum(axis=1).mean())
    return (pts / max(scale, 1e-9)).astype(np.float32).ravel()


def _open_ratio(pts: np.ndarray, spec: dict) -> float:
    a, b = spec["corners"]
    width = np.linalg.norm(pts[a] - pts[b])
    gaps = [np.linalg.norm(pts[u] - pts[d]) for u, d in spec["pairs"]]
    return float(np.mean(gaps) / max(width, 1e-9))


def eye_lip_ratios(landmarks: np.ndarray) -> dict:
    """Open ratios (lid gap / eye width, inner-lip gap / mouth width); eyes named as seen in the picture.

    Open eyes are about 0.25-0.35, closed ones below 0.1; a closed mouth is near 0.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return {
        "eye_left": _open_ratio(pts, _EYE_IMAGE_LEFT),
        "eye_right": _open_ratio(pts, _EYE_IMAGE_RIGHT),
        "lip": _open_ratio(pts, _LIP),
    }
