"""The studio's render work, without any widget: requests, output folders, cancel flags and
``Studio`` (``render_files``, ``compare_files``, ``preview_frames``, ``edit_pose``, ``generate``), so the
tabs' buttons, the API endpoints and the tests share one code path.
"""
from __future__ import annotations

import inspect
import itertools
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from talking_head.cards import ModelCard
from talking_head.errors import BadInputError
from talking_head.registry import get_card
from talking_head.studio.common import ModelPool, parse_output_size

KEEP_RENDERS = 24  # render folders kept on disk (Gradio copies results into its own cache)
PREVIEW_SIZE = 256

OPTIONS_HELP = """Options for `/animate` and `/compare` (all optional):
`mode` 'relative' | 'absolute' | a family mode (e.g. 'avd'); `adapt_scale` bool; `reference` 'first' | 'best' |
frame index; `auto_crop` bool; `crop_scale` float; `paste_back` bool; `output_size` int; `max_seconds` float;
`side_by_side` bool (default true); `batch_size` int; `precision` 'auto' | 'fp32' | 'bf16' | 'fp16'; `controls` {name: value}
(the model's family controls)."""



# ----------------------------------------------------------------------------------------- requests


@dataclass
class RenderRequest:
    """One render: what every entry point (buttons, API) turns its inputs into."""

    source: Path
    driving: Path
    model: str
    options: dict

    @classmethod
    def from_inputs(cls, source, driving, model: str, options: dict | str | None) -> "RenderRequest":
        import json

        if source in (None, ""):
            raise BadInputError("No source picture was given.", "Upload, paste or snap a face picture.")
        if driving in (None, ""):
            raise BadInputError("No driving clip or picture was given.", "Upload or record a driving clip.")
        if isinstance(options, str):
            try:
                options = json.loads(options) if options.strip() else {}
            except ValueError as exc:
                raise BadInputError(f"The options are not valid JSON ({exc}).", OPTIONS_HELP) from None
        if options is not None and not isinstance(options, dict):
            raise BadInputError("The options must be a JSON object.", OPTIONS_HELP)
        return cls(Path(path_of(source)), Path(path_of(driving)), model or "landmark", dict(options or {}))

    def settings(self, card: ModelCard, with_controls: bool = True):
        from talking_head.engine import AnimateSettings, transfer_options

        o = self.options
        known = {"mode", "adapt_scale", "reference", "auto_crop", "crop_scale", "paste_back", "output_size",
                 "max_seconds", "side_by_side", "controls", "batch_size", "precision"}
        unknown = sorted(set(o) - known)
        if unknown:
            raise BadInputError(f"Unknown option(s): {', '.join(unknown)}.", OPTIONS_HELP)
        extra = card.control_values(o.get("controls") if with_controls else None)
        options = transfer_options(card, o.get("mode") or "relative", bool(o.get("adapt_scale", True)), extra)
        reference = o.get("reference", "first")
        if isinstance(reference, float) or (isinstance(reference, str) and reference.strip().lstrip("-").isdigit()):
            reference = int(reference)
        if not (reference in ("first", "best") or isinstance(reference, int)):
            raise BadInputError(f"Bad reference '{reference}'.", "Use 'first', 'best' or a frame index.")
        crop_scale = o.get("crop_scale")
        if crop_scale is not None and float(crop_scale) <= 0:
            raise BadInputError(f"crop_scale must be positive, got {crop_scale}.", "Use e.g. 2.2.")
        return AnimateSettings(
            options=options,
            reference=reference,
            auto_crop=bool(o.get("auto_crop", True)),
            crop_scale=None if crop_scale is None else float(crop_scale),
            paste_back=bool(o.get("paste_back", False)),
            output_size=parse_output_size(o.get("output_size")),
            batch_size=int(o.get("batch_size", 8)),
            precision=str(o.get("precision") or "auto"),
        )

    @property
    def max_seconds(self) -> float | None:
        value = self.options.get("max_seconds")
        return float(value) if value else None


def path_of(value) -> str:
    """A file path from what Gradio hands over (str, FileData-like dict, or a video dict)."""
    if isinstance(value, dict):
        for key in ("path", "video", "name"):
            if value.get(key):
                return path_of(value[key])
    return str(value)


class OutputFolders:
    """Per-render temp folders; the oldest are removed once more than ``keep`` exist."""

    def __init__(self, keep: int = KEEP_RENDERS):
        self.root = Path(tempfile.mkdtemp(prefix="talking_head_renders_"))
        self.keep = keep
        self._lock = threading.Lock()
        self._made: list[Path] = []

    def new(self) -> Path:
        with self._lock:
            folder = Path(tempfile.mkdtemp(dir=self.root))
            self._made.append(folder)
            while len(self._made) > self.keep:
                shutil.rmtree(self._made.pop(0), ignore_errors=True)
            return folder


class CancelFlags:
    """One cancel flag per browser session (two users never cancel each other's render)."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def flag(self, session: str | None) -> threading.Event:
        with self._lock:
            return self._flags.setdefault(session or "-", threading.Event())

    def start(self, session: str | None) -> threading.Event:
        flag = self.flag(session)
        flag.clear()
        return flag


# ----------------------------------------------------------------------------------------- work


class Studio:
    """The state the Animate tab shares across sessions: loaded models, output folders, cancel flags."""

    def __init__(self, pool: ModelPool | None = None):
        self.pool = pool or ModelPool()
        self.outputs = OutputFolders()
        self.cancels = CancelFlags()

    # -- full render
    def render_files(self, req: RenderRequest, progress: Callable[[int, int], None] | None = None,
                     cancel: threading.Event | None = None) -> dict:
        """Animate ``req`` into an MP4 (+ side-by-side MP4); returns a report dict with the paths."""
        from talking_head.engine import animate_file

        card = get_card(req.model, kind="animator")
        settings = req.settings(card)
        model = self.pool.get(req.model, allow_download=False)
        folder = self.outputs.new()
        stem = f"{req.source.stem}_{req.driving.stem}_{card.name}".replace("/", "_")
        out = folder / f"{stem}.mp4"
        sbs = folder / f"{stem}_side_by_side.mp4" if req.options.get("side_by_side", True) else None
        report = animate_file(req.source, req.driving, out, model, settings, side_by_side_path=sbs,
                              max_seconds=req.max_seconds, progress=progress,
                              cancel=(cancel.is_set if cancel is not None else None))
        return {
            "output": str(report.path),
            "side_by_side": str(report.side_by_side_path) if report.side_by_side_path else None,
            "model": card.name,
            "frames": report.frames,
            "fps": report.fps,
            "has_audio": report.has_audio,
            "reference_index": report.reference_index,
            "seconds": round(report.seconds, 2),
            "warnings": list(report.warnings),
        }

    # -- compare
    def compare_files(self, req: RenderRequest, models: list[str], progress: Callable[[int, int], None] | None = None,
                      cancel: threading.Event | None = None) -> dict:
        """One MP4: the driving crop, then each model's animation, side by side (same source/driving/options)."""
        from talking_head import video, viz
        from talking_head.engine import Cancelled, Engine

        names = [m for m in dict.fromkeys(models or []) if m]
        if not names:
            raise BadInputError("No models were chosen to compare.", "Tick at least one model.")
        source = video.load_image(req.source)
        engines, warnings = [], []
        for name in names:
            card = get_card(name, kind="animator")
            engine = Engine(self.pool.get(name, allow_download=False), req.settings(card, with_controls=False))
            warnings += [f"{name}: {w}" for w in engine.set_source(source)]
            engines.append(engine)
        reader = video.VideoReader(req.driving)
        total = reader.frame_count
        if req.max_seconds:
            total = min(total, max(1, int(round(req.max_seconds * reader.fps))))

        def frames():
            for i, frame in enumerate(video.VideoReader(req.driving)):
                if i >= total:
                    return
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The comparison was cancelled.", "Nothing was written.")
                yield frame

        reference = _reference_frame(engines[0], engines[0].settings.reference, frames, total)
        folder = self.outputs.new()
        out = folder / f"compare_{req.source.stem}_{req.driving.stem}.mp4"
        gens = [e.animate(it, reference_frame=reference) for e, it in zip(engines, itertools.tee(frames(), len(engines)))]
        done = 0
        started = time.perf_counter()
        with video.VideoWriter(out, reader.fps, audio_from=req.driving if reader.has_audio else None) as writer:
            for outs in zip(*gens):
                panels = [("driving", outs[0].driving_crop)] + [(n, o.output) for n, o in zip(names, outs)]
                writer.write(viz.grid(panels, height=PREVIEW_SIZE))
                done += 1
                if progress:
                    progress(done, total)
        return {"output": str(out), "models": names, "frames": done, "fps": reader.fps,
                "has_audio": reader.has_audio, "seconds": round(time.perf_counter() - started, 2),
                "warnings": warnings}

    # -- previews
    def preview_frames(self, req: RenderRequest) -> dict[str, np.ndarray]:
        """Source and reference frame with keypoints, occlusion mask, first animated frame (uint8 RGB)."""
        from talking_head import video, viz
        from talking_head.engine import Engine

        card = get_card(req.model, kind="animator")
        engine = Engine(self.pool.get(req.model, allow_download=False), req.settings(card))
        engine.set_source(video.load_image(req.source))
        reader = video.VideoReader(req.driving)
        total = reader.frame_count

        def frames():
            return iter(video.VideoReader(req.driving))

        reference = _reference_frame(engine, engine.settings.reference, frames, total)
        first = reader.first_frame()
        if reference is None:
            reference = first
        ref_out, first_out = list(engine.animate([reference, first], reference_frame=reference))
        r = first_out.result
        src = np.asarray(first_out.source_crop)
        src_kp = r.source_keypoints
        if src_kp is not None:
            src_kp = np.asarray(src_kp, np.float32) * np.array(
                [src.shape[1] / r.frame.shape[1], src.shape[0] / r.frame.shape[0]], np.float32)
        size = (PREVIEW_SIZE, PREVIEW_SIZE)
        return {
            "source": _fit(viz.draw_keypoints(src, src_kp)),
            "reference": _fit(viz.draw_keypoints(ref_out.driving_crop, ref_out.result.driving_keypoints)),
            "mask": viz.mask_to_image(r.mask, size) if r.mask is not None else viz.placeholder(size, "no mask"),
            "first": viz.as_rgb(first_out.output) if engine.settings.paste_back else _fit(first_out.output),
            "motion": viz.motion_to_image(r.motion, size) if r.motion is not None else viz.placeholder(size, "no motion field"),
            "extras": viz.extras_gallery(r.extras, size),
        }

    # -- generating (MoCoGAN-HD and any generator family)
    def generate(self, model_name: str, settings, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> dict:
        """A generated still (PNG) and clip (MP4) in a fresh output folder; returns the report dict."""
        from talking_head.generate import check_weights, generate_files

        card = get_card(model_name, kind="generator")
        check_weights(card)
        settings = settings.resolved()
        model = self.pool.get(model_name, allow_download=False, kind="generator")
        folder = self.outputs.new()
        stem = f"{card.name}_face{settings.seed}_motion{settings.motion_seed}".replace("/", "_")
        report = generate_files(model, settings, clip=folder / f"{stem}.mp4", still=folder / f"{stem}.png",
                                progress=progress, cancel=(cancel.is_set if cancel is not None else None))
        return report.as_dict()

    # -- pose editing (any family with edit_pose: LivePortrait, face-vid2vid)
    def edit_pose(self, source, model_name: str, values: dict) -> np.ndarray:
        from talking_head import video
        from talking_head.engine import Engine, transfer_options

        card = get_card(model_name)
        model = self.pool.get(model_name, allow_download=False)
        if not hasattr(model.inner, "edit_pose"):
            raise BadInputError(f"Model '{model_name}' cannot re-pose a still photo.",
                                "Pick a model with head-pose controls (LivePortrait, face-vid2vid) for pose editing.")
        engine = Engine(model, None)
        engine.set_source(video.load_image(path_of(source)))  # face detection, crop, source-only work
        state = engine.source_state
        fn = model.inner.edit_pose
        params = inspect.signature(fn).parameters
        extra = card.control_values({k: v for k, v in values.items() if k in {c.name for c in card.controls}})
        kwargs = {k: v for k, v in extra.items() if k in params}
        for ratio, switch in (("eye_open", "eye_retargeting"), ("lip_open", "lip_retargeting")):
            if ratio in kwargs and not extra.get(switch):
                kwargs[ratio] = None  # retarget eyes/lips only when asked
        if "options" in params:
            kwargs["options"] = transfer_options(card, "relative", True, extra)
        with model.lock, engine.precision_context():
            result = fn(state, **kwargs)
        frame = getattr(result, "frame", result)
        return np.asarray(frame)


def _fit(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """A crop scaled to ``size`` pixels on its long side for the previews (a whole picture keeps its shape)."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) == size:
        return image
    k = size / float(max(h, w))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (max(1, round(w * k)), max(1, round(h * k))), interpolation=interp)


def _reference_frame(engine, reference, frames: Callable, total: int) -> np.ndarray | None:
    """The driving frame to use as reference (None: the first frame)."""
    if reference == "best":
        index = engine.find_best_frame(frames())
    elif isinstance(reference, int):
        index = reference
        if not 0 <= index < max(total, 1):
            raise BadInputError(f"Reference frame {index} is outside the driving clip (it has {total} frames).",
                                f"Choose an index from 0 to {total - 1}.")
    else:
        return None
    for i, frame in enumerate(frames()):
        if i == index:
            return frame
    return None


