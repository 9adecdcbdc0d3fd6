"""The "landmark" model: no learned weights, MediaPipe face-mesh landmarks and a dense warp.

For each driving frame the 478 face-mesh landmarks are found (a video-mode mesh, tracked across
frames); the driving motion is split into a rigid head motion (a similarity fitted on points that
move with the skull) and an expression displacement (what is left once the driving face is
aligned onto the reference frame's); both are moved onto the source face. The source picture is
then warped piecewise-affinely (``landmark_warp``) to the new landmark layout at its own
resolution, and where the mouth opens wider than in the source its interior is painted from the
driving face instead of stretching the lips.

Modes:
  relative  source landmarks + the driving frame's expression change since the reference frame
            (in the face's own frame) + the head's rigid motion since the reference frame;
  absolute  the driving landmarks, similarity-aligned onto the source face.
``adapt_scale`` scales movements by the ratio of face sizes (otherwise by the ratio of crop sizes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from talking_head.cards import ModelCard
from talking_head.errors import NoFaceError
from talking_head.face import KEYPOINTS_68, FaceMesh, check_rgb, detect_faces
from talking_head.models import landmark_warp as lw
from talking_head.models.base import Animator, FrameResult, TransferOptions

# Defaults of the card's controls (TransferOptions.extra), for calls that leave them out.
DEFAULT_EXTRA = {"expression": 1.0, "head_motion": 1.0, "mouth_synthesis": True, "follow_gaze": True, "smoothing": 0.5}
REFERENCE_SETTLE_STEPS = 6
IRISES = (np.arange(468, 473), np.arange(473, 478))
# Upper / lower eyelid points facing each other, per eye (IRIS_CENTERS order), and the eye corners.
EYELIDS = (
    ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155)),
    ((398, 384, 385, 386, 387, 388, 466), (382, 381, 380, 374, 373, 390, 249)),
)
# Each eye's lid skin below the brow, from corner to corner (lw.EYE_CORNERS order).
EYE_LID_SKIN = ((113, 225, 224, 223, 222, 221, 189), (413, 441, 442, 443, 444, 445, 342))
# Shares of the eye closed at which lid skin starts to cover the eye above the closing lid's edge,
# and at which it covers it fully.
LID_COVER_FROM, LID_COVER_FULL = 0.25, 0.6
# The face mesh never closes its eyelids: on a shut eye it still reports about this share of the
# open eye's lid gap (measured on the blinks of talk_480 and talk_hdtf: 0.24-0.34). Driving gaps
# at or below it close the target's eye; above it the gap is rescaled to reach the open eye at 1.
EYE_SHUT_AT = 0.3
MOUTH_CORNERS = (61, 291)
# The outer lip line, from corner to corner along the lower lip and back along the upper.
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
CORNER_SKIN_REACH = 0.5  # of the mouth width: how far beside each corner the skin follows it


@dataclass
class SourceState:
    image: np.ndarray  # uint8 (H, W, 3)
    landmarks: np.ndarray  # float32 (478, 3) pixels (z in x's pixel scale)
    mesh: lw.WarpMesh
    warper: lw.Warper
    colours: tuple  # Lab mean/std of the face
    mouth_open: float  # area inside the inner lips, px^2
    face_area: float  # rough face area, px^2
    lashes: tuple  # RGB colour of each upper lid's lash line (EYELIDS order)
    irises: lw.IrisLayer


@dataclass
class DrivingState:
    landmarks: np.ndarray  # float32 (478, 3) in pixels of the driving frame
    shape: tuple[int, int]


class LandmarkAnimator(Animator):
    """Landmark-driven piecewise-affine animation (CPU, numpy/OpenCV; ``device`` is unused)."""

    def __init__(self, card: ModelCard, device=None):
        super().__init__(card, device)
        self._static: FaceMesh | None = None
        self._video: FaceMesh | None = None
        self._last_driving: np.ndarray | None = None
        self._filter = LandmarkFilter()

    # ------------------------------------------------------------------ landmarks
    def _static_mesh(self) -> FaceMesh:
        if self._static is None:
            self._static = FaceMesh(static_image_mode=True)
        return self._static

    def _video_mesh(self) -> FaceMesh:
        if self._video is None:
            self._video = FaceMesh(static_image_mode=False)
        return self._video

    def close(self) -> None:
        for mesh in (self._static, self._video):
            if mesh is not None:
                mesh.close()
        self._static = self._video = None

    # ------------------------------------------------------------------ interface
    def prepare_source(self, image: np.ndarray) -> SourceState:
        image = check_rgb(image, "source picture")
        # the mesh alone also fits animal faces; the detector (with its confirmation) does not
        lm = self._static_mesh().landmarks_3d(image) if detect_faces(image) else None
        if lm is None:
            raise NoFaceError(
                "No face was found in the source picture (crop).",
                "Use a photo where the face is clearly visible and facing the camera, or turn auto-crop on.",
            )
        face_pts = lm[: lw.topology()["face"].max() + 1, :2]
        oval = lm[lw.topology()["oval"], :2]
        return SourceState(
            image=image,
            landmarks=lm,
            mesh=lw.build_mesh(lm, image.shape),
            warper=lw.Warper(image.shape),
            colours=lw.colour_stats(image, face_pts),
            mouth_open=lw.mouth_opening(lm),
            face_area=_polygon_area(oval),
            lashes=tuple(lw.lash_colour(image, lm[list(upper)]) for upper, _ in EYELIDS),
            irises=lw.prepare_irises(image, lm),
        )

    def prepare_driving(self, image: np.ndarray) -> DrivingState:
        image = check_rgb(image, "reference driving frame")
        # a new clip (or a new reference): track it afresh, not from where the last clip left its face
        # (video-mode tracking carried over from another clip, of another size, misplaces the face)
        if self._video is not None:
            self._video.reset()
        lm = self._track_reference(image)
        if lm is None:
            raise NoFaceError(
                "No face was found in the reference driving frame.",
                "Choose a reference frame where the face is clearly visible, or use another driving video.",
            )
        self._last_driving = lm
        self._filter.reset()
        return DrivingState(lm, image.shape[:2])

    def animate(self, source: SourceState, frames: np.ndarray, reference: DrivingState | None,
                options: TransferOptions) -> list[FrameResult]:
        mode = options.resolved_mode(self.card)
        extra = {**DEFAULT_EXTRA, **(options.extra or {})}
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        results = []
        for frame in frames:
            frame = check_rgb(frame, "driving frame")
            driving = self._driving_landmarks(frame, reference)
            if driving is not None:
                driving = self._filter(driving, frame.shape[0], float(extra["smoothing"]))
            results.append(self._animate_one(source, frame, driving, reference, mode, options.adapt_scale, extra))
        return results

    def _track_reference(self, image: np.ndarray) -> np.ndarray | None:
        """The reference frame's landmarks as the video-mode mesh sees it once it has settled on it.

        The tracking mesh places a face slightly differently from a fresh detection (about a
        pixel); measuring the reference the same way as the driving frames means an unmoved
        driving face gives an unmoved output.
        """
        mesh = self._video_mesh()
        lm = mesh.landmarks_3d(image)
        for _ in range(REFERENCE_SETTLE_STEPS):
            if lm is None:
                break
            again = mesh.landmarks_3d(image)
            if again is None:
                break
            settled = float(np.abs(again[:, :2] - lm[:, :2]).max()) < 0.05 * max(1.0, image.shape[0] / 256.0)
            lm = again
            if settled:
                break
        return lm if lm is not None else self._static_mesh().landmarks_3d(image)

    # ------------------------------------------------------------------ one frame
    def _driving_landmarks(self, frame: np.ndarray, reference: DrivingState | None) -> np.ndarray | None:
        lm = self._video_mesh().landmarks_3d(frame)
        if lm is not None:
            self._last_driving = lm
            return lm
        if self._last_driving is not None:  # face lost: hold the last pose
            return self._last_driving
        return None if reference is None else reference.landmarks

    def _animate_one(self, src: SourceState, frame, driving, reference, mode, adapt_scale, extra) -> FrameResult:
        h, w = src.image.shape[:2]
        if driving is None:
            target, depth = src.landmarks[:, :2].astype(np.float64), src.landmarks[:, 2]
        else:
            crop_ratio = math.sqrt((h * w) / float(frame.shape[0] * frame.shape[1]))
            target, depth = transfer(src.landmarks, driving, None if reference is None else reference.landmarks,
                                     mode, adapt_scale, crop_ratio, extra)
        mesh = src.mesh
        points = mesh.points.copy()
        points[: len(target)] = target
        head = lw.fit_similarity(src.landmarks[lw.RIGID_POINTS], target[lw.RIGID_POINTS])
        points[mesh.ring] = lw.apply(head, mesh.points[mesh.ring])
        if mode == "relative" and driving is not None:
            # the ring follows the face outline's own motion (jaw, cheeks), not only the skull's: the
            # band between them then moves as the real head does instead of stretching over it
            oval = lw.topology()["oval"]
            follow = mesh.ring_follow[:, None]
            points[mesh.ring] += follow * (target[oval] - lw.apply(head, src.landmarks[oval]))
        still = mesh.ring_still[:, None]
        points[mesh.ring] += still * (mesh.points[mesh.ring] - points[mesh.ring])

        table, area = lw.affine_table(points, mesh.points, mesh.triangles)
        warped = src.warper.backward_map(mesh, points, table, area, lw.draw_order(mesh, depth))
        out = lw.warp(src.image, warped.map)
        lw.draw_irises(out, src.irises, warped.map, target, head)
        _cover_shut_eyes(out, src, target)

        mask = None
        if extra["mouth_synthesis"] and driving is not None:
            weight = lw.synthesis_weight(lw.mouth_opening(target), src.mouth_open, src.face_area)
            if weight > 0:
                stats = (lw.colour_stats(frame, driving[:468]), src.colours)
                mask = lw.synthesise_mouth(out, warped, mesh, target, frame, driving, weight, stats)
        if mask is None:
            mask = np.zeros((h, w), dtype=np.float32)
        motion = warped.motion
        return FrameResult(
            frame=out,
            source_keypoints=target[KEYPOINTS_68].astype(np.float32),
            driving_keypoints=None if driving is None else driving[KEYPOINTS_68, :2].astype(np.float32),
            mask=mask,
            motion=motion,
        )


def _cover_shut_eyes(out: np.ndarray, src: SourceState, target: np.ndarray) -> None:
    """Paint lid skin over each target eye's closing upper lid (in place), per eye, blended in from
    LID_COVER_FROM of the eye closed to LID_COVER_FULL."""
    for eye, (upper, lower) in enumerate(EYELIDS):
        shut = 1.0 - eye_openness(target, eye) / max(eye_openness(src.landmarks, eye), 1e-6)
        amount = float(np.clip((shut - LID_COVER_FROM) / (LID_COVER_FULL - LID_COVER_FROM), 0.0, 1.0))
        if amount > 0.0:
            a, b = lw.EYE_CORNERS[eye]
            lid = target[[a, *EYE_LID_SKIN[eye], b]]
            edge, low = target[[a, *upper, b]], target[[a, *lower, b]]
            lw.cover_eye(out, lid, edge, low, amount, src.lashes[eye])


class LandmarkFilter:
    """One-euro filter over consecutive frames' landmarks: steady when still, quick when moving.

    Works in units of the frame size, per point, assuming 25 frames per second. ``smoothing`` in
    [0, 1] sets the cutoff at rest (0: off, 0.5: 1 Hz, 1: 0.25 Hz); fast motion raises it; a
    jump (scene cut, another face) restarts it. Eyes and lips (and the skin right around them)
    get ``FAST_REGION`` times the cutoff at rest: a blink lasts 3-5 frames and a smile's corners
    move within a few more, where the head and the face outline can be steadied harder.
    """

    BETA = 40.0  # cutoff increase per (frame sizes per second) of speed (at 12 it lagged behind blinks and head motion)
    SPEED_CUTOFF = 2.0  # Hz, for the speed estimate
    FRAME_TIME = 1.0 / 25.0
    JUMP = 0.08  # mean move (frame sizes) from one frame to the next that restarts the filter
    FAST_REGION = 4.0  # cutoff factor on the eyes and lips
    REGION_REACH = 0.35  # of the eye-to-eye distance: how far around eyes and lips the factor fades out

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._boost: np.ndarray | None = None

    @classmethod
    def _alpha(cls, cutoff):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / cls.FRAME_TIME)

    def _start(self, x: np.ndarray) -> None:
        self._value, self._speed = x, np.zeros(len(x))
        self._boost = 1.0 + (self.FAST_REGION - 1.0) * expression_regions(x, self.REGION_REACH)

    def __call__(self, points: np.ndarray, size: float, smoothing: float) -> np.ndarray:
        x = points.astype(np.float64) / float(size)
        if smoothing <= 0.0 or self._value is None or self._value.shape != x.shape:
            self._start(x)
            return points
        step = np.linalg.norm(x[:, :2] - self._value[:, :2], axis=1)
        if step.mean() > self.JUMP:  # a cut or another face: start afresh
            self._start(x)
            return points
        speed = step / self.FRAME_TIME
        self._speed += self._alpha(self.SPEED_CUTOFF) * (speed - self._speed)
        cutoff = 2.0 ** (2.0 - 4.0 * min(float(smoothing), 1.0)) * self._boost + self.BETA * self._speed
        self._value = self._value + self._alpha(cutoff)[:, None] * (x - self._value)
        return (self._value * float(size)).astype(np.float32)


def expression_regions(points: np.ndarray, reach: float) -> np.ndarray:
    """Per landmark, 1 on the eyes (lids, irises) and lips, fading to 0 at ``reach`` eye-to-eye
    distances from them (linearly); points without a face mesh layout get 0."""
    if len(points) != lw.N_LANDMARKS:
        return np.zeros(len(points))
    p = points[:, :2]
    eyes = lw.topology()["eyes"]
    span = max(float(np.linalg.norm(p[list(eyes[0])].mean(axis=0) - p[list(eyes[1])].mean(axis=0))), 1e-9)
    core = p[lw.expression_points()]
    dist = np.sqrt(((p[:, None, :] - core[None]) ** 2).sum(axis=2)).min(axis=1)
    return np.clip(1.0 - dist / (reach * span), 0.0, 1.0)


# ---------------------------------------------------------------------------- motion transfer


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _scale_of(m: np.ndarray) -> float:
    return float(math.sqrt(abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])))


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def transfer(source: np.ndarray, driving: np.ndarray, reference: np.ndarray | None, mode: str,
             adapt_scale: bool, crop_ratio: float, extra: dict) -> tuple[np.ndarray, np.ndarray]:
    """Target landmarks (478, 2) in source pixels and their depths (478,) for one driving frame.

    source/driving/reference: (478, 3) landmarks in their own pictures' pixels. Without a
    reference, relative mode falls back to absolute.
    """
    rigid = lw.RIGID_POINTS
    s2 = source[:, :2].astype(np.float64)
    d2 = driving[:, :2].astype(np.float64)
    expression = float(extra.get("expression", 1.0))
    if mode == "relative" and reference is not None:
        r2 = reference[:, :2].astype(np.float64)
        drv_to_ref = lw.fit_similarity(d2[rigid], r2[rigid])
        ref_to_src = lw.fit_similarity(r2[rigid], s2[rigid])
        ratio = _scale_of(ref_to_src) if adapt_scale else crop_ratio
        turn = ref_to_src[:, :2] / _scale_of(ref_to_src)  # rotation between the two faces
        delta = (lw.apply(drv_to_ref, d2) - r2) @ (ratio * turn).T
        if not extra.get("follow_gaze", True):
            delta = _irises_follow_eyes(delta)
        delta = corner_skin_follows(delta, s2)
        moved = s2 + expression * delta
        head = _head_motion(drv_to_ref, r2[rigid].mean(axis=0), s2[rigid].mean(axis=0), ratio,
                            float(extra.get("head_motion", 1.0)))
        target = lw.apply(head, moved)
        close_eyelids(target, s2, d2, r2, expression)
        depth = source[:, 2] + ratio * (_scale_of(drv_to_ref) * driving[:, 2] - reference[:, 2])
    else:
        fixed = None if adapt_scale else crop_ratio
        drv_to_src = lw.fit_similarity(d2[rigid], s2[rigid], scale=fixed)
        delta = lw.apply(drv_to_src, d2) - s2
        if not extra.get("follow_gaze", True):
            delta = _irises_follow_eyes(delta)
        delta = corner_skin_follows(delta, s2)
        target = s2 + expression * delta
        close_eyelids(target, s2, d2, s2, expression)
        depth = _scale_of(drv_to_src) * driving[:, 2]
    return target, depth.astype(np.float64)


def eye_openness(points: np.ndarray, eye: int) -> float:
    """Mean gap between facing eyelid points over the eye's corner-to-corner width."""
    upper, lower = EYELIDS[eye]
    gap = np.linalg.norm(points[list(upper), :2] - points[list(lower), :2], axis=1).mean()
    a, b = lw.EYE_CORNERS[eye]
    return float(gap / max(np.linalg.norm(points[a, :2] - points[b, :2]), 1e-6))


def close_eyelids(target: np.ndarray, source: np.ndarray, driving: np.ndarray, reference: np.ndarray,
                  expression: float = 1.0) -> None:
    """Close each target eye (in place) as far as its own driving eye is closed.

    The driving eye's lid gap relative to ``reference``'s (the open eye), t, is remapped so that
    the face mesh's shut eye (t <= EYE_SHUT_AT) shuts the target eye; the upper lid comes down
    onto the lower one. Eyes opening wider than the reference are left to the plain transfer.
    """
    for eye, (upper, lower) in enumerate(EYELIDS):
        t = eye_openness(driving, eye) / max(eye_openness(reference, eye), 1e-6)
        t = 1.0 + expression * (t - 1.0)
        if t >= 1.0:
            continue
        want = max(0.0, (t - EYE_SHUT_AT) / (1.0 - EYE_SHUT_AT)) * eye_openness(source, eye)
        have = eye_openness(target, eye)
        if have <= want or have <= 1e-9:
            continue
        up, lo = list(upper), list(lower)
        move = (1.0 - want / have) * (target[lo] - target[up])
        target[up] += move


def corner_skin_follows(delta: np.ndarray, source: np.ndarray, reach: float = CORNER_SKIN_REACH) -> np.ndarray:
    """Expression displacements with the skin beside each mouth corner moved along with the corner.

    The face mesh moves its cheek points around a mouth corner less than the corner itself, so on a
    smile or a pout the skin triangles at the corner are squashed (or folded under the lips) and the
    mouth reads narrower than its landmarks. Skin points (outside the outer lips) within ``reach``
    mouth widths of a corner take on that corner's displacement, fully at the corner, fading
    linearly to their own at ``reach``.
    """
    weights = _corner_weights(np.ascontiguousarray(source[: lw.N_FACE_MESH, :2], dtype=np.float64).tobytes(), reach)
    out = delta.copy()
    for corner, w in zip(MOUTH_CORNERS, weights):
        out[: lw.N_FACE_MESH] += w[:, None] * (delta[corner] - delta[: lw.N_FACE_MESH])
    return out


@lru_cache(maxsize=4)
def _corner_weights(face_bytes: bytes, reach: float) -> tuple[np.ndarray, ...]:
    """Per mouth corner, each face-mesh point's weight in ``corner_skin_follows`` (one source face's)."""
    face = np.frombuffer(face_bytes, dtype=np.float64).reshape(-1, 2)
    width = float(np.linalg.norm(face[MOUTH_CORNERS[0]] - face[MOUTH_CORNERS[1]]))
    poly = face[list(OUTER_LIPS)].astype(np.float32).reshape(-1, 1, 2)
    weights = []
    for corner in MOUTH_CORNERS:
        w = np.zeros(len(face))
        if width > 1e-6:
            dist = np.linalg.norm(face - face[corner], axis=1) / (reach * width)
            for i in np.nonzero(dist < 1.0)[0]:
                if i != corner and cv2.pointPolygonTest(poly, (float(face[i, 0]), float(face[i, 1])), False) < 0:
                    w[i] = 1.0 - dist[i]
        weights.append(w)
    return tuple(weights)


def _irises_follow_eyes(delta: np.ndarray) -> np.ndarray:
    """Iris displacements replaced by their eye outline's mean displacement (gaze kept)."""
    delta = delta.copy()
    for iris, loop in zip(IRISES, lw.topology()["eyes"]):
        delta[iris] = delta[list(loop)].mean(axis=0)
    return delta


def _head_motion(drv_to_ref: np.ndarray, ref_center: np.ndarray, src_center: np.ndarray, ratio: float,
                 amount: float) -> np.ndarray:
    """The head's rigid motion reference -> driving, replayed about the source face's centre.

    Rotation and scale are kept, translation is scaled by ``ratio``; ``amount`` scales the motion.
    """
    fwd = drv_to_ref[:, :2]
    lin = np.array([[fwd[1, 1], -fwd[0, 1]], [-fwd[1, 0], fwd[0, 0]]]) / (_scale_of(drv_to_ref) ** 2)  # inverse
    shift = lin @ (ref_center - drv_to_ref[:, 2]) - ref_center  # where the reference centre goes
    scale = _scale_of(drv_to_ref) ** -1
    angle = math.atan2(lin[1, 0], lin[0, 0])
    m = np.empty((2, 3))
    m[:, :2] = (scale**amount) * _rotation(amount * angle)
    m[:, 2] = src_center + amount * ratio * shift - m[:, :2] @ src_center
    return m


def create(card: ModelCard, paths, device) -> LandmarkAnimator:
    """The landmark model has no weight files; ``paths`` is ignored."""
    return LandmarkAnimator(card, device)


def published_checkpoints(animator: LandmarkAnimator) -> dict[str, object]:
    """No files: the model is MediaPipe's face mesh (shipped with mediapipe) plus geometry."""
    return {}
