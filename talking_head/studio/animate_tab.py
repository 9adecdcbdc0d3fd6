"""The studio's Animate tab: inputs, model picker with its card, options, previews, full render,
model comparison, still-photo pose editing; and the ``/animate`` + ``/compare`` API endpoints.

The work itself lives in ``studio.render`` so the API, the buttons and the tests share one code path.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, FileMismatchError, TalkingHeadError
from talking_head.model_summary import summarize
from talking_head.examples import example_files
from talking_head.registry import get_card
from talking_head.studio.common import (
    NATIVE_SIZE,
    OUTPUT_SIZES,
    card_markdown,
    downloadable,
    gpu,
    model_choices,
    parse_output_size,
    user_error,
    weights_status,
)
from talking_head.studio.controls import ControlWidget, build_control_widgets, values_for, visibility_updates
from talking_head.studio.render import OPTIONS_HELP, RenderRequest, Studio, path_of


# ----------------------------------------------------------------------------------------- UI


def _pose_editable(card: ModelCard) -> bool:
    """Pose sliders on the card and weights present (the model itself is checked for edit_pose on use)."""
    names = {c.name for c in card.controls}
    return {"pitch", "yaw", "roll"} <= names and weights_status(card)[0] != "missing"


def _has_family_modes(card: ModelCard) -> bool:
    return bool(set(card.modes) - {"relative", "absolute"})


def _first_video(*values) -> str | None:
    for v in values:
        if v:
            return path_of(v)
    return None


def build_animate_tab(studio: Studio, cards: list[ModelCard], default_model: str) -> dict[str, Any]:
    """Lay out the Animate tab inside the current gr.Blocks/gr.Tab context and wire its events.

    Returns the inputs other tabs may fill: ``source``, ``driving_clip``, ``driving_image``.
    """

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
            download = gr.Button("Download weights", visible=downloadable(default_card),
                                 elem_id="animate-download",
                                 size="sm")
            trust = gr.Checkbox(label="Trust my weights files (keep them although they differ from the card)",
                                value=False, visible=_mismatch(default_card), elem_id="animate-trust")
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
            with gr.Row():
                widgets.extend(build_control_widgets(cards, default_card))

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

    with gr.Accordion("Edit a still photo's pose (models with head-pose controls)", open=False,
                      visible=_pose_editable(default_card)) as pose_box:
        gr.Markdown("Re-pose the source photo with the model's pitch/yaw/roll controls above (and LivePortrait's "
                    "eye/lip controls); no driving clip needed.")
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
        mine = values_for(card, widgets, ctrl)
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
        online = downloadable(card) and hub.sources_reachable(card)  # a few seconds at most when offline
        updates = [gr.update(value=_weights_note(card, online=online)), gr.update(visible=online),
                   gr.update(visible=_mismatch(card), value=False),
                   gr.update(value=card_markdown(card)),
                   gr.update(choices=list(card.modes), value=card.default_mode, visible=_has_family_modes(card)),
                   gr.update(visible=_pose_editable(card))]
        return updates + visibility_updates(card, widgets)

    model.change(on_model, [model], [weights_note, download, trust, card_md, mode, pose_box, *control_components],
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

    def do_trust(model_name, trusted):
        card = get_card(model_name)
        hub.trust_present_files(card, trusted=bool(trusted))
        return (gr.update(value=_weights_note(card)), gr.update(value=card_markdown(card)),
                gr.update(choices=model_choices(cards), value=model_name))

    trust.input(do_trust, [model, trust], [weights_note, card_md, model], api_visibility="private")

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
    @gpu(120)
    def do_pose(*inputs):
        src, model_name, *values = inputs
        if not src:
            raise user_error(BadInputError("No source picture.", "Choose a face picture first."))
        try:
            return studio.edit_pose(src, model_name, values_for(get_card(model_name), widgets, values))
        except TalkingHeadError as exc:
            raise user_error(exc) from None

    pose_run.click(do_pose, [source, model, *control_components], [pose_out], api_visibility="private")

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
    return {"source": source, "driving_clip": driving_clip, "driving_image": driving_image}


def _mismatch(card: ModelCard) -> bool:
    """A present file differs from the card (size or sha256) or was trusted: the trust box applies."""
    if isinstance(hub.file_problem(card), FileMismatchError):
        return True
    return any(kind == "trusted" for _, _, kind, _ in hub.file_states(card))


def _weights_note(card: ModelCard, online: bool | None = None) -> str:
    """What the user must do to run ``card``: nothing, fix a file, download it, or place a file in weights/.

    ``online``: whether the download sources answered (None: not probed, assume a download is possible).
    A present file that is not the card's gets the same sentence the CLI prints (hub.file_problem).
    """
    summary = summarize(card)
    problem = hub.file_problem(card)
    if problem is not None:
        return f"**{card.name}**: {problem.message} {problem.hint}"
    state, lines = weights_status(card)
    if state != "missing":
        if state == "none needed":
            return f"**{card.name}**: ready (no weights needed)."
        return (f"**{card.name}**: ready (weights present, {summary.check}; {summary.size_words()}, "
                f"{summary.license}).\n" + "\n".join(f"- {line}" for line in lines))
    missing = [wf for wf in card.files if hub.find_file(wf) is None]
    size = sum(wf.size_mb or 0 for wf in missing)
    size_words = f" ({size:,.0f} MB)" if size else ""
    if downloadable(card):
        if online is None or online:
            return (f"**{card.name}**: weights missing{size_words}; license: {summary.license}. They can be "
                    f"downloaded from {summary.source} with the button below.")
        return (f"**{card.name}**: weights missing and their source ({summary.source}) cannot be reached. "
                "Place these files:\n"
                + "\n".join(f"- `{wf.filename}` ({hub.where_to_get(wf)}) at `{hub.local_path(wf)}`" for wf in missing))
    return (f"**{card.name}**: weights missing{size_words}; license: {summary.license}. They cannot be downloaded "
            "by this program. Place these files:\n"
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
