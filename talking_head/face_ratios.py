"""Eye and lip open ratios for LivePortrait's retargeting: from its own landmark model when present.

    estimator = RatioEstimator(card.options.get("landmark_file"))
    estimator.backend                 # "landmark.onnx" or "mediapipe"
    estimator.source(crop)            # {"eye_left", "eye_right", "lip"}, or None when no face is found
    for frame in clip:
        estimator.driving(frame)      # tracks the face across calls; reset() before the next clip
    estimator.close()

Backends, chosen once when the estimator is made:

- ``landmark.onnx`` (LivePortrait's 203-point model, MIT; Hub model ``KwaiVGI/LivePortrait``, file
  ``liveportrait/landmark.onnx``), used when ``hub.find_file`` finds it in ``weights/`` or the Hub
  cache; it is never downloaded here. As in LivePortrait's landmark runner, a 224x224 crop is cut
  around the face, turned upright, and fed as RGB in [0, 1]; the model's third output holds the 203
  points in crop units. LivePortrait places that crop with its own face detector's points; here
  MediaPipe's mesh (its 68-point subset) places it, and on driving clips the previous frame's 203
  points stand in when the mesh loses the face, as LivePortrait tracks.
  Ratios are LivePortrait's: eye = gap between points 6 and 18 / width between corners 0 and 12
  (24, 30, 36, 42 for the other eye); lip = gap between points 90 and 102 / width between the
  mouth corners 48 and 66.
- MediaPipe (always available): ``face.eye_lip_ratios`` on the 478-point mesh. An approximation:
  the eye ratio averages three lid gaps over the eye-corner width, and the lip ratio measures the
  inner lips over the inner mouth corners, so its values are close to, not equal to, LivePortrait's
  (the lip ratio should read somewhat larger, the inner mouth being narrower than the outer corners
  LivePortrait divides by; the difference has not been measured against the real model).

Both name eyes as seen in the picture ("eye_left" is the eye on the picture's left), which is
LivePortrait's order too.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from talking_head import face as facelib
from talking_head import file_checks
from talking_head import hub
from talking_head.cards import WeightFile
from talking_head.errors import CheckpointError

CROP_SIZE = 224  # landmark.onnx input side
CROP_SCALE = 1.5  # crop side = this * the guide points' extent
CROP_SHIFT_UP = 0.1  # crop centre moved up (towards the brows) by this * crop side
NUM_POINTS = 203
POINTS_OUTPUT = 2  # index of the model output that holds the points

# Guide points: MediaPipe's 68-point subset (face.KEYPOINTS_68 order), eye corners and mouth corners.
_EYE_68 = ((36, 39), (42, 45))
_MOUTH_68 = (48, 54)
# The same from the 203 points (LivePortrait's layout).
_EYE_203 = ((0, 6, 12, 18), (24, 30, 36, 42))
_MOUTH_203 = (48, 66)
# LivePortrait's ratio points: (gap a, gap b, width a, width b).
_RATIO_203 = {"eye_left": (6, 18, 0, 12), "eye_right": (30, 42, 24, 36), "lip": (90, 102, 48, 66)}


# ---------------------------------------------------------------------------- geometry


def guide_from_mesh(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, eyes' midpoint, mouth centre) from a 478-point MediaPipe mesh, for ``crop_matrix``."""
    pts = np.asarray(landmarks, np.float64)[facelib.KEYPOINTS_68[:68], :2]
    eyes = np.mean([pts[list(e)].mean(axis=0) for e in _EYE_68], axis=0)
    return pts, eyes, pts[list(_MOUTH_68)].mean(axis=0)


def guide_from_203(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, eyes' midpoint, mouth centre) from 203 landmark.onnx points, for ``crop_matrix``."""
    pts = np.asarray(points, np.float64)
    eyes = np.mean([pts[list(e)].mean(axis=0) for e in _EYE_203], axis=0)
    return pts, eyes, pts[list(_MOUTH_203)].mean(axis=0)


def crop_matrix(points: np.ndarray, eyes: np.ndarray, mouth: np.ndarray, size: int = CROP_SIZE,
                scale: float = CROP_SCALE, shift_up: float = CROP_SHIFT_UP) -> np.ndarray:
    """2x3 affine map from picture pixels to an upright ``size`` square crop around ``points``.

    "Down" is the direction from the eyes' midpoint to the mouth centre (this cancels head roll).
    In that frame the crop is the points' bounding square times ``scale``, moved up by
    ``shift_up`` of its side.
    """
    down = np.asarray(mouth, np.float64) - np.asarray(eyes, np.float64)
    length = float(np.linalg.norm(down))
    down = down / length if length > 1e-3 else np.array([0.0, 1.0])
    right = np.array([down[1], -down[0]])
    rot = np.stack([right, down])  # rows: crop x and y axes in picture coordinates
    mean = points.mean(axis=0)
    local = (points - mean) @ rot.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    side = max(float((hi - lo).max()) * scale, 1e-3)
    centre = mean + ((lo + hi) / 2.0) @ rot - down * shift_up * side
    linear = (size / side) * rot
    return np.hstack([linear, (size / 2.0 - linear @ centre)[:, None]])


def to_picture(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop coordinates -> picture coordinates for the 2x3 picture->crop ``matrix``."""
    linear, shift = matrix[:, :2], matrix[:, 2]
    return (np.asarray(points, np.float64) - shift) @ np.linalg.inv(linear).T


def ratios_from_203(points: np.ndarray) -> dict:
    """LivePortrait's eye and lip ratios from its 203 points (gap / width, see the module doc)."""
    pts = np.asarray(points, np.float64)
    out = {}
    for name, (a, b, c, d) in _RATIO_203.items():
        out[name] = float(np.linalg.norm(pts[a] - pts[b]) / (np.linalg.norm(pts[c] - pts[d]) + 1e-6))
    return out


# ---------------------------------------------------------------------------- landmark.onnx


class Landmarks203:
    """LivePortrait's 203-point landmark model (``landmark.onnx``) run with onnxruntime.

    Raises CheckpointError when the file is not an ONNX model with that model's input and outputs
    (checked with one run on a blank crop, as the original warms its runner up).
    """

    HINT = "Use liveportrait/landmark.onnx from the Hugging Face model KwaiVGI/LivePortrait."

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        self.path = Path(path)
        wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in ort.get_available_providers()] or None
        # a pointer file or a web page saved in its place is named as such
        file_checks.check_content(self.path, "get liveportrait/landmark.onnx from the Hugging Face model KwaiVGI/LivePortrait")
        try:
            self._session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own error types for unreadable models
            raise CheckpointError(
                f"'{self.path.name}' could not be read as an ONNX model ({_first_line(exc)}).", self.HINT
            ) from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        expected = (1, 3, CROP_SIZE, CROP_SIZE)
        if (len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape[1:], expected[1:]))
                or len(outputs) <= POINTS_OUTPUT):
            raise CheckpointError(
                f"'{self.path.name}' is not LivePortrait's landmark model: it takes "
                f"{[(i.name, i.shape) for i in inputs]} and gives {len(outputs)} outputs (expected one "
                f"{expected} image and at least {POINTS_OUTPUT + 1} outputs).",
                self.HINT,
            )
        self._input = inputs[0].name
        self._points(np.zeros(expected, np.float32))

    def _points(self, batch: np.ndarray) -> np.ndarray:
        """(203, 2) points in crop pixels for one (1, 3, 224, 224) float batch."""
        try:
            raw = np.asarray(self._session.run(None, {self._input: batch})[POINTS_OUTPUT])
        except Exception as exc:  # onnxruntime's own error types (shape or type mismatch inside the model)
            raise CheckpointError(f"'{self.path.name}' failed to run ({_first_line(exc)}).", self.HINT) from exc
        if raw.size != NUM_POINTS * 2:
            raise CheckpointError(
                f"'{self.path.name}' is not LivePortrait's landmark model: it gives {raw.size} values where "
                f"that model gives {NUM_POINTS} points ({NUM_POINTS * 2} values).",
                self.HINT,
            )
        return raw.reshape(NUM_POINTS, 2).astype(np.float64) * CROP_SIZE

    def __call__(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """float64 (203, 2): the points in picture pixels, from the crop that ``matrix`` cuts."""
        crop = cv2.warpAffine(image, matrix.astype(np.float32), (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
        batch = np.ascontiguousarray((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        return to_picture(self._points(batch), matrix)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@lru_cache(maxsize=2)
def _shared_runner(path: str, stamp: tuple) -> Landmarks203:
    """One session per file (``stamp``: size and mtime), shared by every estimator; onnxruntime runs are thread-safe."""
    return Landmarks203(path)


# ---------------------------------------------------------------------------- the estimator


class RatioEstimator:
    """Eye/lip open ratios of source pictures and driving frames, from one of the two backends.

    ``landmark_file``: where LivePortrait's landmark model would be (the card's
    ``options["landmark_file"]``); None, or the file not on this machine, means MediaPipe.
    ``warning`` says why a present file was not used (unreadable, wrong model), else None.
    """

    def __init__(self, landmark_file: WeightFile | None = None):
        self.backend = "mediapipe"
        self.warning: str | None = None
        self._runner: Landmarks203 | None = None
        path = hub.find_file(landmark_file) if landmark_file is not None else None
        if path is not None:
            try:
                st = Path(path).stat()
                self._runner = _shared_runner(str(path), (st.st_size, st.st_mtime_ns))
                self.backend = "landmark.onnx"
            except CheckpointError as err:
                self.warning = f"{err.message} Eye and lip ratios come from MediaPipe landmarks instead."
        self._video_mesh: facelib.FaceMesh | None = None
        self._last_points: np.ndarray | None = None  # previous driving frame's 203 points
        self._closed = False

    def source(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> dict | None:
        """Ratios of one still picture; ``landmarks``: its MediaPipe mesh when already found."""
        image = facelib.check_rgb(image, "source picture")
        self._check_open()
        landmarks = self._still_mesh(image) if landmarks is None else landmarks
        if landmarks is None:
            return None
        if self._runner is None:
            return facelib.eye_lip_ratios(landmarks)
        return ratios_from_203(self._runner(image, crop_matrix(*guide_from_mesh(landmarks))))

    def driving(self, image: np.ndarray) -> dict | None:
        """Ratios of the next frame of a driving clip (None while no face has been seen)."""
        image = facelib.check_rgb(image, "driving frame")
        self._check_open()
        if self._video_mesh is None:
            self._video_mesh = facelib.FaceMesh(static_image_mode=False)
        landmarks = self._video_mesh.landmarks(image)
        if self._runner is None:
            return None if landmarks is None else facelib.eye_lip_ratios(landmarks)
        if landmarks is not None:
            guide = guide_from_mesh(landmarks)
        elif self._last_points is not None:
            guide = guide_from_203(self._last_points)
        else:
            return None
        self._last_points = self._runner(image, crop_matrix(*guide))
        return ratios_from_203(self._last_points)

    def landmarks_203(self, image: np.ndarray) -> np.ndarray | None:
        """The 203 landmark.onnx points of a still picture, in its pixels (None: MediaPipe backend or no face)."""
        image = facelib.check_rgb(image)
        landmarks = None if self._runner is None else self._still_mesh(image)
        return None if landmarks is None else self._runner(image, crop_matrix(*guide_from_mesh(landmarks)))

    def _still_mesh(self, image: np.ndarray) -> np.ndarray | None:
        self._check_open()
        return facelib.still_landmarks(image)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RatioEstimator is closed")

    def reset(self) -> None:
        """Forget the driving clip's face track (call before the next clip)."""
        if self._video_mesh is not None:
            self._video_mesh.close()
            self._video_mesh = None
        self._last_points = None

    def close(self) -> None:
        """Free the face mesh; the estimator cannot be used afterwards (the ONNX session stays shared)."""
        self.reset()
        self._runner = None
        self._closed = True
