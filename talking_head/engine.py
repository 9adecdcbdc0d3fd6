"""The engine: a source face, driving frames in, animated frames out. Knows no UI.

    model = load_model("landmark")
    engine = Engine(model, AnimateSettings(paste_back=True))
    engine.set_source(load_image("face.jpg"))
    for frame in engine.animate(video_frames):
        ...frame.output...

``animate_file`` wraps this for files: lazy reading, H.264 output with the driving clip's fps and
audio, written atomically. The live modes use ``calibrate`` + ``animate_live``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from talking_head import face as facelib
from talking_head import precision as precisionlib
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, TalkingHeadError
from talking_head.face_ratios import RatioEstimator
from talking_head.models.base import Animator, FrameResult, TransferOptions
from talking_head.motion import best_frame_index

LANDMARK_DRIVING_SIZE = 256  # driving crop size for models that run at any resolution
MAX_NATIVE_SIZE = 1024  # cap on the source crop size for such models


class Cancelled(TalkingHeadError):
    """The user cancelled a render; nothing was written."""


@dataclass
class AnimateSettings:
    options: TransferOptions = field(default_factory=TransferOptions)
    reference: str | int = "first"  # "first", "best", or a driving frame index
    auto_crop: bool = True
    crop_source: bool = True  # False: the whole source picture (an aligned face, e.g. generated), driving still cropped
    crop_scale: float | None = None  # None: face.CROP_SCALE
    crop_offset_y: float | None = None  # None: face.CROP_OFFSET_Y
    paste_back: bool = False
    output_size: int | None = None  # resize the animated crop (not the pasted-back picture)
    batch_size: int = 8
    track_every: int = 1  # run face detection on every N-th driving frame (the box is held between; live: 3)
    precision: str = "auto"  # "auto": the fastest path exact enough (talking_head.precision), "fp32", "bf16", "fp16"
    compile: str | None = None  # a torch.compile mode ("default"): faster frames after a one-time compile (long clips, live)

    @property
    def whole_source(self) -> bool:
        """The source is used as a whole picture, not cropped around its face."""
        return not (self.auto_crop and self.crop_source)

    def crop_kwargs(self) -> dict:
        scale = facelib.CROP_SCALE if self.crop_scale is None else self.crop_scale
        offset_y = facelib.CROP_OFFSET_Y if self.crop_offset_y is None else self.crop_offset_y
        return {"scale": scale, "offset": (0.0, offset_y)}


def transfer_options(card: ModelCard, mode: str | None = None, adapt_scale: bool | None = None,
                     extra: dict | None = None) -> TransferOptions:
    """Mode words -> TransferOptions for ``card``, the same for the CLI, the studio and live mode.

    ``mode``: None or 'relative' (the default), 'absolute', or one of the card's own modes.
    'relative'/'absolute' work for every family: absolute means 'standard' on families that have
    no 'absolute' mode (MRAA, TPSMM). ``adapt_scale`` None keeps the default (on). ``extra``: the
    control values (see ``ModelCard.control_values``). A mode the card lacks raises BadInputError
    naming the card's modes.
    """
    options = TransferOptions(extra=dict(extra or {}))
    if adapt_scale is not None:
        options.adapt_scale = bool(adapt_scale)
    if not mode or mode == "relative":
        options.relative = True
        options.mode = "relative" if mode and "relative" in card.modes else None
    elif mode == "absolute":
        options.relative = False
        options.mode = "absolute" if "absolute" in card.modes else None
    else:
        options.relative = mode != "standard"
        options.mode = mode
    options.resolved_mode(card)  # BadInputError naming the card's modes
    return options


@dataclass
class AnimatedFrame:
    output: np.ndarray  # uint8 RGB: the animated crop, or the full picture when paste_back
    result: FrameResult  # model outputs at model resolution
    source_crop: np.ndarray
    driving_crop: np.ndarray
    index: int


@dataclass
class RenderReport:
    path: Path
    frames: int
    fps: float
    seconds: float  # wall-clock render time
    reference_index: int
    has_audio: bool
    warnings: list[str] = field(default_factory=list)
    side_by_side_path: Path | None = None


def full_frame_box(shape) -> facelib.CropBox:
    """The centred square covering the whole picture (used when auto-crop is off)."""
    h, w = shape[:2]
    size = float(max(h, w))
    return facelib.CropBox((w - size) / 2.0, (h - size) / 2.0, size)


def fit_long_side(image: np.ndarray, max_side: int, enlarge: bool = False) -> np.ndarray:
    """``image`` scaled (shape kept) so its long side is at most ``max_side`` (exactly, if ``enlarge``)."""
    h, w = image.shape[:2]
    if max(h, w) == max_side or (max(h, w) < max_side and not enlarge):
        return image
    import cv2

    k = max_side / float(max(h, w))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (max(8, round(w * k)), max(8, round(h * k))), interpolation=interp)


def picture_in_square(square: np.ndarray, shape) -> np.ndarray:
    """The part of a ``full_frame_box`` square (at any resolution) that shows a picture of ``shape``,
    resized to that picture's size capped at MAX_NATIVE_SIZE on the long side."""
    import cv2

    h, w = shape[:2]
    n = square.shape[0]
    k = n / float(max(h, w))
    x0, y0 = round((n - w * k) / 2.0), round((n - h * k) / 2.0)
    inner = square[y0 : max(y0 + 1, n - y0), x0 : max(x0 + 1, n - x0)]
    f = min(1.0, MAX_NATIVE_SIZE / float(max(h, w)))
    size = (max(8, round(w * f)), max(8, round(h * f)))
    interp = cv2.INTER_AREA if size[0] < inner.shape[1] else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(inner, size, interpolation=interp))


class Engine:
    """Holds one source (cropped and prepared once) and animates driving frames with it."""

    def __init__(self, model: Animator, settings: AnimateSettings | None = None):
        self.model = model
        self.settings = settings or AnimateSettings()
        self.precision = precisionlib.apply(model, self.settings.precision)  # what "auto" picked
        precisionlib.compile_networks(model, self.settings.compile)
        self.source_image: np.ndarray | None = None
        self.source_box: facelib.CropBox | None = None
        self.source_crop: np.ndarray | None = None
        self.source_landmarks: np.ndarray | None = None
        self._source_state = None
        self._reference_state = None
        self._tracker: facelib.FaceTracker | None = None
        self._ratios: RatioEstimator | None = None  # made on first use, for models that use eye/lip ratios
        self._last_ratios: dict | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def resolution(self) -> int | None:
        return self.model.card.resolution

    def _source_size(self, box: facelib.CropBox) -> int:
        if self.resolution:
            return self.resolution
        return int(min(MAX_NATIVE_SIZE, max(64, round(box.size))))

    def _driving_size(self) -> int:
        return self.resolution or LANDMARK_DRIVING_SIZE

    # ------------------------------------------------------------------ source
    def set_source(self, image: np.ndarray) -> list[str]:
        """Detect and crop the face, run all source-only model work. Returns warnings for the user."""
        image = _check_image(image, "source picture")
        warnings: list[str] = []
        if not self.settings.whole_source:
            face, warning = facelib.detect_face(image, role="source")
            if warning:
                warnings.append(warning)
            box = facelib.crop_box_for(face, image.shape, **self.settings.crop_kwargs())
            crop = facelib.crop(image, box, self._source_size(box))
        else:  # the whole picture: its own shape for models that run at any size, else a square
            box = full_frame_box(image.shape)
            crop = fit_long_side(image, MAX_NATIVE_SIZE) if not self.resolution else facelib.crop(image, box, self.resolution)
        self.source_landmarks = None
        if self.model.uses_face_ratios:
            self.source_landmarks = facelib.still_landmarks(crop)
            estimator = self._ratio_estimator()
            ratios = None if self.source_landmarks is None else estimator.source(crop, landmarks=self.source_landmarks)
            if estimator.warning:
                warnings.append(estimator.warning)
            with self.precision_context():
                self._source_state = self.model.prepare_source(crop, ratios=ratios)
        else:
            with self.precision_context():
                self._source_state = self.model.prepare_source(crop)
        self.source_image, self.source_box, self.source_crop = image, box, crop
        self._reference_state = None
        return warnings

    @property
    def source_state(self):
        """The model's prepared source (for model-specific calls such as LivePortrait's ``edit_pose``)."""
        self._require_source()
        return self._source_state

    def precision_context(self):
        """The model's calls run under this engine's precision (the model may be shared by engines); also for
        model-specific calls on ``source_state``, whose tensors were made under it."""
        return precisionlib.context(self.model, self.precision)

    def _require_source(self):
        if self._source_state is None:
            raise BadInputError("No source picture is set.", "Choose a source face picture first.")

    # ------------------------------------------------------------------ driving
    def start_clip(self) -> None:
        """Forget the previous clip's face track (call before a new driving clip)."""
        self._tracker = None
        self._reference_state = None
        self._last_ratios = None
        if self._ratios is not None:
            self._ratios.reset()

    def driving_crop(self, frame: np.ndarray) -> np.ndarray:
        frame = _check_image(frame, "driving frame")
        if self.settings.auto_crop:
            if self._tracker is None:
                self._tracker = facelib.FaceTracker(**self.settings.crop_kwargs(), detect_every=self.settings.track_every)
            box = self._tracker.update(frame)
            return facelib.crop(frame, box, self._driving_size())
        if not self.resolution:  # the whole frame, its own shape
            return np.ascontiguousarray(fit_long_side(frame, LANDMARK_DRIVING_SIZE, enlarge=True))
        return facelib.crop(frame, full_frame_box(frame.shape), self._driving_size())

    def set_reference(self, frame: np.ndarray) -> None:
        """Use this driving frame as the reference ("neutral") frame for relative motion.

        The frame is cropped with a fresh tracker of its own, so it does not disturb the clip's track.
        """
        tracker, self._tracker = self._tracker, None
        crop = self.driving_crop(frame)
        self._tracker = tracker
        with self.precision_context():
            self._reference_state = self.model.prepare_driving(crop)

    def find_best_frame(self, frames: Iterable[np.ndarray], progress: Callable[[int], None] | None = None) -> int:
        """Index of the driving frame whose face pose/expression best matches the source's."""
        self._require_source()
        mesh = facelib.FaceMesh(static_image_mode=False)
        try:
            if self.source_landmarks is None:
                self.source_landmarks = facelib.still_landmarks(self.source_crop)
            if self.source_landmarks is None:
                return 0
            target = facelib.pose_expression_signature(self.source_landmarks)
            signatures = []
            for i, frame in enumerate(frames):
                lm = mesh.landmarks(frame)
                signatures.append(None if lm is None else facelib.pose_expression_signature(lm))
                if progress:
                    progress(i + 1)
        finally:
            mesh.close()
        return best_frame_index(target, signatures)

    # ------------------------------------------------------------------ animation
    def _finish(self, result: FrameResult, driving_crop: np.ndarray, index: int) -> AnimatedFrame:
        import cv2

        s = self.settings
        whole = s.whole_source and self.source_image is not None
        if whole and self.resolution:  # a square around the picture: show the picture's part only
            output = picture_in_square(result.frame, self.source_image.shape)
        else:
            output = result.frame
        if s.paste_back and self.source_image is not None:
            if whole:  # the output is the whole picture: back at the picture's own size
                h, w = self.source_image.shape[:2]
                if output.shape[:2] != (h, w):
                    output = cv2.resize(output, (w, h), interpolation=cv2.INTER_LINEAR)
            else:
                output = facelib.paste_back(self.source_image, result.frame, self.source_box)
        elif s.output_size and max(output.shape[:2]) != s.output_size:
            k = s.output_size / float(max(output.shape[:2]))
            size = (max(1, round(output.shape[1] * k)), max(1, round(output.shape[0] * k)))
            output = cv2.resize(output, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        return AnimatedFrame(output, result, self.source_crop, driving_crop, index)

    def _options_for(self, crops: list[np.ndarray]) -> TransferOptions:
        """The settings' options, plus per-frame driving eye/lip ratios when the model uses them."""
        options = self.settings.options
        if not (self.model.uses_face_ratios and any(options.extra.get(k) for k in self.model.RATIO_OPTIONS)):
            return options
        estimator = self._ratio_estimator()
        eyes, lips = [], []
        for crop in crops:
            ratios = estimator.driving(crop)
            if ratios is not None:
                self._last_ratios = ratios
            if self._last_ratios is None:
                return options  # no face seen yet: the model falls back to its sliders
            eyes.append((self._last_ratios["eye_left"], self._last_ratios["eye_right"]))
            lips.append(self._last_ratios["lip"])
        extra = dict(options.extra, driving_eye_ratio=np.asarray(eyes, np.float32), driving_lip_ratio=np.asarray(lips, np.float32))
        return replace(options, extra=extra)

    def _ratio_estimator(self) -> RatioEstimator:
        """Eye/lip ratios from the card's optional landmark model when present, else MediaPipe."""
        if self._ratios is None:
            self._ratios = RatioEstimator(self.model.card.options.get("landmark_file"))
        return self._ratios

    @property
    def ratio_backend(self) -> str | None:
        """Which landmarks give eye/lip ratios ("landmark.onnx" or "mediapipe"); None before first use."""
        return None if self._ratios is None else self._ratios.backend

    def _animate_batch(self, crops: list[np.ndarray], start: int) -> list[AnimatedFrame]:
        batch = np.stack(crops)
        options = self._options_for(crops)
        with self.precision_context():
            results = self.model.animate(self._source_state, batch, self._reference_state, options)
        return [self._finish(r, c, start + i) for i, (r, c) in enumerate(zip(results, crops))]

    def animate(
        self,
        frames: Iterable[np.ndarray],
        reference_frame: np.ndarray | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[AnimatedFrame]:
        """Animate driving frames in order, in batches; yields one AnimatedFrame per frame.

        Relative motion is measured against ``reference_frame`` (default: the first frame). Each
        output depends only on its own frame and the reference, so animating with the best frame as
        reference is the same as FOMM's demo animating forward and backward from it.
        """
        self._require_source()
        self.start_clip()
        if reference_frame is not None:
            self.set_reference(reference_frame)
        pending: list[np.ndarray] = []
        index = 0
        for frame in frames:
            crop = self.driving_crop(frame)
            if self._reference_state is None:
                with self.precision_context():
                    self._reference_state = self.model.prepare_driving(crop)
            pending.append(crop)
            if len(pending) >= max(1, self.settings.batch_size):
                for out in self._animate_batch(pending, index):
                    yield out
                index += len(pending)
                pending = []
                if progress:
                    progress(index)
        if pending:
            for out in self._animate_batch(pending, index):
                yield out
            index += len(pending)
            if progress:
                progress(index)
        if index == 0:
            raise BadInputError("The driving input has no frames.", "Use a video or picture with at least one frame.")

    def preview(self, driving_frame: np.ndarray, reference_frame: np.ndarray | None = None) -> AnimatedFrame:
        """Animate a single driving frame (relative to ``reference_frame``, default itself)."""
        return next(iter(self.animate([driving_frame], reference_frame=reference_frame)))

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the face-landmark helpers this engine made (the model stays loaded)."""
        if self._ratios is not None:
            self._ratios.close()
            self._ratios = None

    # ------------------------------------------------------------------ live
    def calibrate(self, frame: np.ndarray) -> None:
        """Live mode: this webcam frame is the neutral reference."""
        self._require_source()
        self.start_clip()
        self.set_reference(frame)

    @property
    def calibrated(self) -> bool:
        return self._reference_state is not None

    def animate_live(self, frame: np.ndarray) -> AnimatedFrame:
        """Live mode: one webcam frame in, one animated frame out (first frame calibrates if needed)."""
        self._require_source()
        crop = self.driving_crop(frame)
        if self._reference_state is None:
            with self.precision_context():
                self._reference_state = self.model.prepare_driving(crop)
        return self._animate_batch([crop], 0)[0]


def _check_image(image, what: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) < 8:
        raise BadInputError(
            f"The {what} is not a usable RGB picture (got shape {arr.shape}, type {arr.dtype}).",
            "Use a normal photo or video file (JPEG, PNG, MP4 ...).",
        )
    return arr


def animate_file(
    source_path,
    driving_path,
    out_path,
    model: Animator,
    settings: AnimateSettings | None = None,
    side_by_side_path=None,
    max_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> RenderReport:
    """Animate a source picture file with a driving video/picture file into an MP4.

    Reads the driving clip lazily (memory does not grow with its length) and writes H.264 with the
    clip's fps and audio. Outputs are written atomically: on any error or cancel, nothing is left
    at ``out_path`` (an existing file there stays as it was).
    """
    from talking_head import video, viz

    settings = settings or AnimateSettings()
    started = time.perf_counter()
    source = video.load_image(source_path)
    with Engine(model, settings) as engine:
        warnings = engine.set_source(source)

        reader = video.VideoReader(driving_path)
        max_frames = max(1, int(round(max_seconds * reader.fps))) if max_seconds else None
        total = reader.frame_count if max_frames is None else min(reader.frame_count, max_frames)  # for progress only

        def frames():
            for i, frame in enumerate(video.VideoReader(driving_path)):
                if max_frames is not None and i >= max_frames:
                    return
                if cancel and cancel():
                    raise Cancelled("The render was cancelled.", "Nothing was written.")
                yield frame

        reference_index = 0
        if settings.reference == "best":
            reference_index = engine.find_best_frame(frames())
        elif isinstance(settings.reference, int) or (isinstance(settings.reference, str) and settings.reference.isdigit()):
            reference_index = int(settings.reference)
        reference = None
        if reference_index:
            seen = 0
            for seen, frame in enumerate(video.VideoReader(driving_path), start=1):
                if seen - 1 == reference_index:
                    reference = frame
                    break
            if reference is None:
                raise BadInputError(
                    f"Reference frame {reference_index} is outside the driving clip (it has {seen} frames).",
                    f"Choose an index from 0 to {max(seen - 1, 0)}.",
                )

        audio_from = driving_path if reader.has_audio else None
        done = 0
        writers = [video.VideoWriter(out_path, reader.fps, audio_from=audio_from, max_seconds=max_seconds)]
        if side_by_side_path:
            writers.append(video.VideoWriter(side_by_side_path, reader.fps, audio_from=audio_from, max_seconds=max_seconds))
        try:
            for animated in engine.animate(frames(), reference_frame=reference):
                writers[0].write(animated.output)
                if side_by_side_path:
                    writers[1].write(viz.side_by_side_frame(animated))
                done += 1
                if progress:
                    progress(done, max(total, done))
            for w in writers:  # encode everything first: an error here leaves no output at all
                w.finish()
        except BaseException:
            for w in writers:
                w.abort()
            raise
        for w in writers:
            w.commit()
    return RenderReport(
        path=Path(out_path),
        frames=done,
        fps=reader.fps,
        seconds=time.perf_counter() - started,
        reference_index=reference_index,
        has_audio=audio_from is not None,
        warnings=warnings,
        side_by_side_path=Path(side_by_side_path) if side_by_side_path else None,
    )
