"""The studio's Animate tab: inputs, model picker with its card, options, previews, full render,
model comparison, LivePortrait pose editing; and the ``/animate`` + ``/compare`` API endpoints.

The work itself lives in plain functions (``render_files``, ``compare_files``, ``preview_frames``)
so the API, the buttons and the tests share one code path.
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
from typing import Any, Callable

import gradio as gr
import numpy as np

from talking_head import hub
from talking_head.cards import Control, ModelCard
from talking_head.errors import BadInputError, TalkingHeadError
from talking_head.examples import example_files
from talking_head.registry import get_card
from talking_head.ui_common import (
    NATIVE_SIZE,
    OUTPUT_SIZES,
    ModelPool,
    card_markdown,
    downloadable,
    gpu,
    model_choices,
    parse_output_size,
    user_error,
    weights_status,
)

KEEP_RENDERS = 24  # render folders kept on disk (Gradio copies results into its own cache)
PREVIEW_SIZE = 256

OPTIONS_HELP = """Options for `/animate` and `/compare` (all optional):
`mode` 'relative' | 'absolute' | a family mode (e.g. 'avd'); `adapt_scale` bool; `reference` 'first' | 'best' |
frame index; `auto_crop` bool; `crop_scale` float; `paste_back` bool; `output_size` int; `max_seconds` float;
`side_by_side` bool (default true); `batch_size` int; `controls` {name: value} (the model's family controls)."""


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
        return cls(Path(_path_of(source)), Path(_path_of(driving)), model or "landmark", dict(options or {}))

    def settings(self, card: ModelCard, with_controls: bool = True):
        from talking_head.engine import AnimateSettings, transfer_options

        o = self.options
        known = {"mode", "adapt_scale", "reference", "auto_crop", "crop_scale", "paste_back", "output_size",
                 "max_seconds", "side_by_side", "controls", "batch_size"}
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
        )

    @property
    def max_seconds(self) -> float | None:
        value = self.options.get("max_seconds")
        return float(value) if value else None


def _path_of(value) -> str:
    """A file path from what Gradio hands over (str, FileData-like dict, or a video dict)."""
    if isinstance(value, dict):
        for key in ("path", "video", "name"):
            if value.get(key):
                return _path_of(value[key])
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

        card = get_card(req.model)
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
            card = get_card(name)
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

        card = get_card(req.model)
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

    # -- pose editing (LivePortrait and any family with edit_pose)
    def edit_pose(self, source, model_name: str, values: dict) -> np.ndarray:
        from talking_head import video
        from talking_head.engine import Engine, transfer_options

        card = get_card(model_name)
        model = self.pool.get(model_name, allow_download=False)
        if not hasattr(model.inner, "edit_pose"):
            raise BadInputError(f"Model '{model_name}' cannot re-pose a still photo.",
                                "Pick a LivePortrait model for pose editing.")
        engine = Engine(model, None)
        engine.set_source(video.load_image(_path_of(source)))  # face detection, crop, source-only work
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
        with model.lock:
            result = fn(state, **kwargs)
        frame = getattr(result, "frame", result)
        return np.asarray(frame)


def _fit(image: np.ndarray, size: int = PREVIEW_SIZE) -> np.ndarray:
    """A square crop scaled to ``size`` pixels for the previews."""
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=interp)


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


# ----------------------------------------------------------------------------------------- UI


@dataclass
class ControlWidget:
    family: str
    control: Control
    component: Any


def _control_component(control: Control, visible: bool):

    label = control.label or control.name
    common = {"label": label, "info": control.help or None, "visible": visible}
    if control.kind == "bool":
        return gr.Checkbox(value=bool(control.default), **common)
    if control.kind == "choice":
        return gr.Dropdown(choices=list(control.choices), value=control.default, **common)
    if control.minimum is not None and control.maximum is not None:
        step = control.step or (1 if control.kind == "int" else (control.maximum - control.minimum) / 100)
        return gr.Slider(minimum=control.minimum, maximum=control.maximum, step=step, value=control.default, **common)
    return gr.Number(value=control.default, precision=0 if control.kind == "int" else None, **common)


def _pose_editable(card: ModelCard) -> bool:
    """Pose sliders on the card and weights present (the model itself is checked for edit_pose on use)."""
    names = {c.name for c in card.controls}
    return {"pitch", "yaw", "roll"} <= names and weights_status(card)[0] != "missing"


def _has_family_modes(card: ModelCard) -> bool:
    return bool(set(card.modes) - {"relative", "absolute"})


def _first_video(*values) -> str | None:
    for v in values:
        if v:
            return _path_of(v)
    return None


def build_animate_tab(studio: Studio, cards: list[ModelCard], default_model: str) -> None:
    """Lay out the Animate tab inside the current gr.Blocks/gr.Tab context and wire its events."""

    names = [c.name for c in cards]
    default_card = get_card(default_model)
    widgets: list[ControlWidget] = []

    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            source = gr.Image(label="Source face", sources=["upload", "clipboard", "webcam"], type="filepath",
                              elem_id="animate-source", height=300)
            images = example_files("image")
            if images:
                gr.Examples([[str(p)] for p in images], inputs=[source], label="Example faces",
                            api_visibility="private", examples_per_page=8)
        with gr.Column(scale=1, min_width=260):
            with gr.Tab("Driving clip"):
                driving_clip = gr.Video(label="Driving clip (upload or record)", sources=["upload", "webcam"],
                                        elem_id="animate-driving", height=300, include_audio=True)
                clips = example_files("video")
                if clips:
                    gr.Examples([[str(p)] for p in clips], inputs=[driving_clip], label="Example clips",
                                api_visibility="private")
            with gr.Tab("Driving picture"):
                driving_image = gr.Image(label="Driving picture (one frame)", type="filepath",
                                         sources=["upload", "clipboard", "webcam"], elem_id="animate-driving-image",
                                         height=300)
        with gr.Column(scale=1, min_width=300):
            model = gr.Dropdown(choices=model_choices(cards), value=default_model, label="Model",
                                elem_id="animate-model")
            weights_note = gr.Markdown(_weights_note(default_card), elem_id="animate-weights")
            download = gr.Button("Download weights from the Hugging Face Hub", visible=downloadable(default_card),
                                 elem_id="animate-download",
                                 size="sm")
            with gr.Accordion("Model card", open=False):
                card_md = gr.Markdown(card_markdown(default_card))

    with gr.Accordion("Options", open=True):
        with gr.Row():
            motion = gr.Radio(["relative", "absolute"], value="relative", label="Motion",
                              info="relative: move the source as the driving face moves from the reference frame")
            mode = gr.Dropdown(choices=list(default_card.modes), value=default_card.default_mode, label="Model mode",
                               visible=_has_family_modes(default_card))
            adapt = gr.Checkbox(value=True, label="Adapt movement scale",
                                info="scale relative motion to the source face's size")
        with gr.Row():
            reference = gr.Radio(["first", "best", "index"], value="first", label="Reference driving frame",
                                 info="best: the frame whose pose/expression matches the source")
            ref_index = gr.Number(value=0, precision=0, minimum=0, label="Reference index", visible=False)
            max_seconds = gr.Number(value=0, minimum=0, label="Max seconds (0 = whole clip)", elem_id="animate-max-seconds")
        with gr.Row():
            auto_crop = gr.Checkbox(value=True, label="Auto-crop the face")
            crop_scale = gr.Slider(1.2, 4.0, value=2.2, step=0.05, label="Crop scale (x face box)")
            paste_back = gr.Checkbox(value=False, label="Paste back into the full source picture")
            output_size = gr.Dropdown(list(OUTPUT_SIZES), value=NATIVE_SIZE, label="Output size")
        with gr.Group():
            seen: set[tuple[str, str]] = set()
            with gr.Row():
                for card in cards:
                    for control in card.controls:
                        if (card.family, control.name) in seen:
                            continue
                        seen.add((card.family, control.name))
                        comp = _control_component(control, visible=card.family == default_card.family
                                                  and control in default_card.controls)
                        widgets.append(ControlWidget(card.family, control, comp))

    with gr.Accordion("Previews", open=True):
        with gr.Row():
            prev_source = gr.Image(label="Source + keypoints", interactive=False, height=220, format="png")
            prev_reference = gr.Image(label="Reference driving frame + keypoints", interactive=False, height=220)
            prev_mask = gr.Image(label="Occlusion mask", interactive=False, height=220)
            prev_first = gr.Image(label="First animated frame", interactive=False, height=220,
                                  elem_id="animate-preview-first")
        with gr.Row():
            prev_motion = gr.Image(label="Motion field (colour = direction, strength = distance)", interactive=False,
                                   height=220)
            prev_extras = gr.Gallery(label="The model's own maps (heatmaps, occlusion at each resolution, ...)",
                                     columns=4, height=220, interactive=False, elem_id="animate-preview-extras")
        preview_note = gr.Markdown("")

    with gr.Row():
        run = gr.Button("Animate", variant="primary", elem_id="animate-run")
        cancel = gr.Button("Cancel", variant="stop", elem_id="animate-cancel")
    status = gr.Markdown("", elem_id="animate-status")
    with gr.Row():
        out_video = gr.Video(label="Animated (with the driving audio)", elem_id="animate-output", interactive=False,
                             height=400)
        out_sbs = gr.Video(label="Side by side: source | driving | output | keypoints | mask", interactive=False,
                           elem_id="animate-side-by-side", height=400)
    out_files = gr.File(label="Downloads", file_count="multiple", interactive=False, height=120)

    with gr.Accordion("Compare models", open=False):
        gr.Markdown("Render the same source and driving clip with several models, side by side in one video "
                    "(each model with its default family controls).")
        ready = [c.name for c in cards if weights_status(c)[0] != "missing"]
        compare_models = gr.CheckboxGroup(choices=model_choices(cards), value=ready[:1] or names[:1],
                                          label="Models to compare", elem_id="compare-models")
        compare_run = gr.Button("Compare", elem_id="compare-run")
        compare_video = gr.Video(label="Comparison", interactive=False, elem_id="compare-output")

    with gr.Accordion("Edit a still photo's pose (LivePortrait)", open=False,
                      visible=_pose_editable(default_card)) as pose_box:
        gr.Markdown("Re-pose the source photo with the pitch/yaw/roll and eye/lip controls above; "
                    "no driving clip needed.")
        pose_run = gr.Button("Re-pose the photo")
        pose_out = gr.Image(label="Re-posed photo", interactive=False)

    # -- hidden API endpoint: /animate(source file, driving file, model name, options JSON)
    with gr.Column(visible=False):
        api_source = gr.File(label="source picture")
        api_driving = gr.File(label="driving clip or picture")
        api_model = gr.Textbox(label="model name", value=default_model)
        api_options = gr.JSON(label="options", value={})
        api_out = gr.Video(label="animated video")
        api_sbs = gr.Video(label="side-by-side video")
        api_report = gr.JSON(label="report")
        api_models = gr.JSON(label="model names", value=[default_model])
        api_button = gr.Button("api")
        api_compare_button = gr.Button("api compare")

    control_components = [w.component for w in widgets]
    option_inputs = [motion, mode, adapt, reference, ref_index, max_seconds, auto_crop, crop_scale, paste_back,
                     output_size, *control_components]

    def options_from_ui(model_name, values) -> dict:
        (motion_v, mode_v, adapt_v, ref_v, ref_i, max_s, crop_v, scale_v, paste_v, size_v, *ctrl) = values
        card = get_card(model_name)
        mine = {w.control.name: v for w, v in zip(widgets, ctrl) if w.family == card.family
                and any(c.name == w.control.name for c in card.controls)}
        opts = {
            "mode": mode_v if (_has_family_modes(card) and mode_v in card.modes) else motion_v,
            "adapt_scale": bool(adapt_v),
            "reference": int(ref_i or 0) if ref_v == "index" else ref_v,
            "auto_crop": bool(crop_v),
            "crop_scale": float(scale_v),
            "paste_back": bool(paste_v),
            "output_size": parse_output_size(size_v),
            "controls": mine,
        }
        if max_s:
            opts["max_seconds"] = float(max_s)
        return opts

    # -- model picker
    def on_model(model_name):
        card = get_card(model_name)
        online = downloadable(card) and hub.hub_reachable()  # a few seconds at most when offline
        updates = [gr.update(value=_weights_note(card, online=online)), gr.update(visible=online),
                   gr.update(value=card_markdown(card)),
                   gr.update(choices=list(card.modes), value=card.default_mode, visible=_has_family_modes(card)),
                   gr.update(visible=_pose_editable(card))]
        for w in widgets:
            own = next((c for c in card.controls if c.name == w.control.name), None) if w.family == card.family else None
            updates.append(gr.update(visible=own is not None, **({"value": own.default} if own is not None else {})))
        return updates

    model.change(on_model, [model], [weights_note, download, card_md, mode, pose_box, *control_components],
                 api_visibility="private", show_progress="minimal")

    def do_download(model_name, progress=gr.Progress()):
        card = get_card(model_name)
        try:
            hub.fetch_files(card, allow_download=True, progress=lambda f, msg: progress(f, desc=msg))
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        return (gr.update(value=_weights_note(card)), gr.update(visible=False),
                gr.update(value=card_markdown(card)), gr.update(choices=model_choices(cards), value=model_name))

    download.click(do_download, [model], [weights_note, download, card_md, model], api_visibility="private")

    reference.change(lambda r: gr.update(visible=r == "index"), [reference], [ref_index], api_visibility="private",
                     queue=False)

    # -- previews, refreshed whenever an input or option changes (latest change wins)
    def do_preview(*inputs):
        src, clip, picture, model_name, *values = inputs
        drv = _first_video(clip, picture)
        blank = (None, None, None, None, None, None)
        if not src or not drv:
            return (*blank, "Previews appear once a source face and a driving clip or picture are chosen.")
        card = get_card(model_name)
        if weights_status(card)[0] == "missing":
            return (*blank, f"Previews need the weights of {card.name}: " + _weights_note(card))
        try:
            req = RenderRequest.from_inputs(src, drv, model_name, options_from_ui(model_name, values))
            shots = studio.preview_frames(req)
        except TalkingHeadError as exc:
            return (*blank, f"**Preview:** {exc.user_message()}")
        return (shots["source"], shots["reference"], shots["mask"], shots["first"], shots["motion"], shots["extras"],
                "")

    preview_inputs = [source, driving_clip, driving_image, model, *option_inputs]
    gr.on([source.change, driving_clip.change, driving_image.change, model.change]
          + [c.change for c in option_inputs],
          gpu(60)(do_preview), preview_inputs,
          [prev_source, prev_reference, prev_mask, prev_first, prev_motion, prev_extras, preview_note],
          trigger_mode="always_last", api_visibility="private", show_progress="minimal", concurrency_limit=2)

    # a picture and a clip exclude each other: the last one chosen drives
    driving_image.upload(lambda _: None, [driving_image], [driving_clip], api_visibility="private", queue=False)
    driving_clip.upload(lambda _: None, [driving_clip], [driving_image], api_visibility="private", queue=False)

    # -- full render
    def render(req: RenderRequest, request: gr.Request, progress) -> dict:
        flag = studio.cancels.start(getattr(request, "session_hash", None))
        progress(0.0, desc="starting")

        def step(done, total):
            progress((done, max(total, done)), desc="animating", unit="frames")

        try:
            return studio.render_files(req, progress=step, cancel=flag)
        except TalkingHeadError as exc:
            raise user_error(exc) from None

    @gpu(600)
    def do_render(request: gr.Request, progress=gr.Progress(), *inputs):
        src, clip, picture, model_name, *values = inputs
        try:
            req = RenderRequest.from_inputs(src, _first_video(clip, picture), model_name,
                                            options_from_ui(model_name, values))
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        report = render(req, request, progress)
        files = [p for p in (report["output"], report["side_by_side"]) if p]
        return report["output"], report["side_by_side"], files, _report_markdown(report)

    render_event = run.click(do_render, preview_inputs, [out_video, out_sbs, out_files, status],
                             api_visibility="private", concurrency_limit=2)

    def do_cancel(request: gr.Request):
        studio.cancels.flag(getattr(request, "session_hash", None)).set()
        return "Cancelled."

    cancel.click(do_cancel, None, [status], queue=False, api_visibility="private")

    # -- compare
    @gpu(600)
    def do_compare(request: gr.Request, progress=gr.Progress(), *inputs):
        src, clip, picture, model_name, chosen, *values = inputs
        flag = studio.cancels.start(getattr(request, "session_hash", None))
        try:
            req = RenderRequest.from_inputs(src, _first_video(clip, picture), model_name,
                                            options_from_ui(model_name, values))
            report = studio.compare_files(req, list(chosen or []), cancel=flag,
                                          progress=lambda d, t: progress((d, max(t, d)), desc="comparing"))
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        return report["output"], _report_markdown(report)

    compare_event = compare_run.click(do_compare, [source, driving_clip, driving_image, model, compare_models,
                                                   *option_inputs], [compare_video, status],
                                      api_visibility="private", concurrency_limit=2)
    cancel.click(None, None, None, cancels=[render_event, compare_event], queue=False)

    # -- pose editing
    pose_widgets = {w.control.name: w.component for w in widgets if w.family == "liveportrait"}

    @gpu(120)
    def do_pose(*inputs):
        src, model_name, *values = inputs
        if not src:
            raise user_error(BadInputError("No source picture.", "Choose a face picture first."))
        try:
            return studio.edit_pose(src, model_name, dict(zip(pose_widgets, values)))
        except TalkingHeadError as exc:
            raise user_error(exc) from None

    pose_run.click(do_pose, [source, model, *pose_widgets.values()], [pose_out], api_visibility="private")

    # -- API
    @gpu(600)
    def api_animate(src, drv, model_name, options, request: gr.Request, progress=gr.Progress()):
        try:
            req = RenderRequest.from_inputs(src, drv, model_name, options)
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        report = render(req, request, progress)
        public = {k: v for k, v in report.items() if k not in ("output", "side_by_side")}  # server paths
        return report["output"], report["side_by_side"], public

    api_button.click(api_animate, [api_source, api_driving, api_model, api_options], [api_out, api_sbs, api_report],
                     api_name="animate", api_description="Animate a source face picture with a driving clip. "
                     + OPTIONS_HELP, concurrency_limit=2)

    @gpu(600)
    def api_compare(src, drv, models, options, request: gr.Request, progress=gr.Progress()):
        flag = studio.cancels.start(getattr(request, "session_hash", None))
        try:
            if isinstance(models, str):
                models = [m.strip() for m in models.split(",") if m.strip()]
            req = RenderRequest.from_inputs(src, drv, (models or ["landmark"])[0], options)
            report = studio.compare_files(req, list(models or []), cancel=flag,
                                          progress=lambda d, t: progress((d, max(t, d)), desc="comparing"))
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        return report["output"], {k: v for k, v in report.items() if k != "output"}

    api_compare_button.click(api_compare, [api_source, api_driving, api_models, api_options], [api_out, api_report],
                             api_name="compare", api_description="Render several models side by side in one video.",
                             concurrency_limit=2)


def _weights_note(card: ModelCard, online: bool | None = None) -> str:
    """What the user must do to run ``card``: nothing, download it, or place a file in weights/.

    ``online``: whether the Hub answered (None: not probed, assume a download is possible).
    """
    state, lines = weights_status(card)
    if state != "missing":
        return f"**{card.name}**: ready ({'no weights needed' if state == 'none needed' else 'weights present'})."
    missing = [wf for wf in card.files if hub.find_file(wf) is None]
    if downloadable(card):
        if online is None or online:
            size = sum(wf.size_mb or 0 for wf in missing)
            return (f"**{card.name}**: weights missing; they can be downloaded from the Hugging Face Hub"
                    + (f" ({size:.0f} MB)" if size else "") + " with the button below.")
        return (f"**{card.name}**: weights missing and the Hugging Face Hub cannot be reached. Place these files:\n"
                + "\n".join(f"- `{wf.filename}` (Hub: `{wf.hf_repo}` / `{wf.hf_path}`) at `{hub.local_path(wf)}`"
                            for wf in missing))
    return (f"**{card.name}**: weights missing; they are not on the Hub. Place these files:\n"
            + "\n".join(f"- `{wf.filename}` from {wf.url or 'its authors'} at `{hub.local_path(wf)}`"
                        for wf in missing))


def _report_markdown(report: dict) -> str:
    parts = [f"**Done:** {report['frames']} frames at {report['fps']:g} fps in {report['seconds']:.1f} s",
             "with the driving audio" if report.get("has_audio") else "no audio in the driving clip"]
    if "reference_index" in report:
        parts.append(f"reference frame {report['reference_index']}")
    text = ", ".join(parts) + "."
    for w in report.get("warnings") or []:
        text += f"\n\n⚠ {w}"
    return text
