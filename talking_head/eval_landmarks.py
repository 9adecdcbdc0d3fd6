"""An independent landmark detector for scoring: dlib's 68-point shape predictor.

No model in this project uses dlib, so scores measured with it do not grade a model by the
detector that drives it (the landmark model follows MediaPipe's face mesh). It is an evaluation
extra (``pip install -r requirements-eval.txt``: ``dlib-bin`` and ``face-recognition-models``,
whose wheel ships ``shape_predictor_68_face_landmarks.dat``).

The predictor was trained on the iBUG 300-W data set, whose license restricts commercial use:
use it to measure, do not ship it in a product.

    with DlibLandmarks() as dlib68:
        pts = dlib68.landmarks(rgb_image)  # float32 (68, 2) pixels, or None
        ratios = face_ratios_68(pts)        # eye / mouth opening and mouth width
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from talking_head.errors import TalkingHeadError

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "Install the evaluation extra: pip install -r requirements-eval.txt (dlib-bin, face-recognition-models)."

# 68-point indices (0-based, iBUG 300-W layout)
RIGHT_EYE = np.arange(36, 42)  # the person's right eye (picture left)
LEFT_EYE = np.arange(42, 48)
INNER_LIPS = np.arange(60, 68)
MOUTH_CORNERS = (48, 54)


class EvalDependencyMissing(TalkingHeadError):
    """The independent detector (dlib) is not installed."""


def predictor_path() -> Path:
    """Where ``face-recognition-models`` keeps the 68-point predictor, found without importing it
    (its ``__init__`` needs ``pkg_resources``, which new setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EvalDependencyMissing("The dlib 68-point predictor (package face-recognition-models) is not installed.",
                                    INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / PREDICTOR_FILE
        if path.is_file():
            return path
    raise EvalDependencyMissing(f"face-recognition-models is installed but has no {PREDICTOR_FILE}.", INSTALL_HINT)


class DlibLandmarks:
    """dlib's HOG face detector + 68-point predictor on RGB pictures (largest face)."""

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise EvalDependencyMissing("dlib is not installed (it scores landmarks independently of MediaPipe).",
                                        INSTALL_HINT) from None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path()))

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """float32 (68, 2) pixel positions of the largest face in ``image`` (uint8 RGB), or None."""
        image = np.ascontiguousarray(image)
        boxes = self._detector(image, 0)
        if len(boxes) == 0:
            boxes = self._detector(image, 1)  # small faces: look again at twice the size
        if len(boxes) == 0:
            return None
        box = max(boxes, key=lambda r: r.width() * r.height())
        shape = self._predictor(image, box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def close(self) -> None:
        pass

    def __enter__(self) -> "DlibLandmarks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _eye_opening(pts: np.ndarray, eye: np.ndarray) -> float:
    p = pts[eye].astype(np.float64)
    width = np.linalg.norm(p[3] - p[0])
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * max(width, 1e-6)))


def face_ratios_68(pts: np.ndarray) -> dict[str, float]:
    """Expression measures of 68 landmarks, each independent of the face's size in the picture:

    eye_right / eye_left / eye: eyelid gap over eye width (per eye, and their mean);
    mouth_open: mean gap between the inner lips over the distance between the eye centres;
    mouth_width: corner-to-corner width over the same distance.
    """
    pts = np.asarray(pts, dtype=np.float64)
    eyes = np.linalg.norm(pts[RIGHT_EYE].mean(axis=0) - pts[LEFT_EYE].mean(axis=0))
    eyes = max(eyes, 1e-6)
    right, left = _eye_opening(pts, RIGHT_EYE), _eye_opening(pts, LEFT_EYE)
    gap = np.mean([np.linalg.norm(pts[61 + i] - pts[67 - i]) for i in range(3)])
    width = np.linalg.norm(pts[MOUTH_CORNERS[0]] - pts[MOUTH_CORNERS[1]])
    return {"eye_right": right, "eye_left": left, "eye": 0.5 * (right + left),
            "mouth_open": float(gap / eyes), "mouth_width": float(width / eyes)}


def correlation_and_gain(output: np.ndarray, driving: np.ndarray) -> tuple[float, float]:
    """Pearson r and least-squares slope of ``output`` on ``driving`` (NaN r when either is constant)."""
    x, y = np.asarray(driving, np.float64), np.asarray(output, np.float64)
    if len(x) < 3:
        return float("nan"), float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    vx, vy = float((dx * dx).sum()), float((dy * dy).sum())
    if vx <= 1e-12:
        return float("nan"), float("nan")
    gain = float((dx * dy).sum() / vx)
    r = float((dx * dy).sum() / np.sqrt(vx * vy)) if vy > 1e-12 else float("nan")
    return r, gain
