"""The studio's Live tab: a streaming webcam drives the chosen source picture in real time.

Each browser session keeps its own ``live.LiveSession`` in a ``gr.State`` (its own calibration).
Frames are dropped, not queued: Gradio replaces a stream's pending input with the newest frame,
and a session that is still busy skips the frame, so latency stays one model step.
"""
from __future__ import annotations

import gradio as gr

from talking_head import video
from talking_head.cards import ModelCard
from talking_head.errors import TalkingHeadError
from talking_head.examples import default_sources
from talking_head.live import LIVE_TRACK_EVERY, LiveSession
from talking_head.registry import get_card
from talking_head.studio.common import ModelPool, gpu, model_choices
from talking_head.studio.controls import build_control_widgets, values_for, visibility_updates

# how often the browser sends a webcam frame, measured in Chromium on 2 cores (tests/bench_live_tab.py, landmark):
# 0.08 s 12.5 fps (the cap) at 49 ms median; 0.05 s 17.3 fps at 71 ms (p90 89); 0.04 s 16.9-17.6 fps at 70 ms
# (p90 103); 1/30 s 16.1 fps: sending more often only adds events the 2 cores must turn away
STREAM_EVERY_S = 0.05
LIVE_SESSIONS = 4  # webcam streams served at once (each holds one worker while it runs)


def live_step(pool: ModelPool, frame, source_path, model_name: str, motion: str, keypoints: bool, mask: bool,
              session: LiveSession | None, controls: dict | None = None, crop_source: bool = True):
    """One webcam frame -> (animated picture or None to keep the last one, readout text, session).

    ``controls``: the model's own control values ({name: value}, e.g. yaw/pitch/roll); a change
    applies from this frame on without re-preparing the source. ``crop_source`` False: the whole
    source picture is the face (an aligned face such as a generated one); camera frames are still tracked.
    """
    from talking_head import viz
    from talking_head.engine import AnimateSettings, transfer_options

    session = session if isinstance(session, LiveSession) else LiveSession()
    if frame is None:
        return None, session.readout(), session
    if not source_path:
        return None, "choose a source picture", session
    key = (model_name, str(source_path), motion, bool(crop_source))
    if session.key != key:
        try:
            card = get_card(model_name, kind="animator")
            model = pool.get(model_name, allow_download=False)
            options = transfer_options(card, motion, True, card.control_values(controls))
            settings = AnimateSettings(options=options, batch_size=1, track_every=LIVE_TRACK_EVERY,
                                       crop_source=bool(crop_source))
            session.configure(model, video.load_image(source_path), settings, key=key)
        except TalkingHeadError as exc:
            session.fail(key, exc.user_message())
            return None, session.readout(), session
    elif session.ready:
        try:
            card = get_card(model_name)
            session.set_options(transfer_options(card, motion, True, card.control_values(controls)))
        except TalkingHeadError as exc:
            return None, exc.user_message(), session
    shown = session.step(frame, keypoints=bool(keypoints), mask=bool(mask))
    if shown is None:
        return None, session.readout(), session
    picture = shown.output
    if keypoints:
        picture = viz.grid([("camera", shown.camera), ("animated", shown.output)], height=shown.output.shape[0])
    return picture, session.readout(), session


def wire_stream(webcam, fn, inputs, outputs, stream_every: float = STREAM_EVERY_S):
    """Stream ``webcam`` frames into ``fn`` so that frames are dropped, never queued.

    While ``fn`` runs, Gradio keeps only the newest frame the browser sent for this stream (each
    new one replaces the last), so the next call always gets the freshest frame. trigger_mode must
    be "multiple": with "always_last" the browser defers every frame after the first until the
    stream ends, and the stream stalls. Each open stream holds one of LIVE_SESSIONS workers.
    """
    return webcam.stream(fn, inputs, outputs, stream_every=stream_every, concurrency_limit=LIVE_SESSIONS,
                         trigger_mode="multiple", show_progress="hidden", api_visibility="private")


def build_live_tab(pool: ModelPool, cards: list[ModelCard], default_model: str) -> dict:
    """Lay out the Live tab inside the current gr.Blocks/gr.Tab context and wire its events.

    Returns the inputs other tabs may fill: ``source``.
    """

    sources = [str(p) for p in default_sources()]
    session = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            source = gr.Image(label="Source face", value=sources[0] if sources else None, type="filepath",
                              sources=["upload", "clipboard", "webcam"], elem_id="live-source", height=260)
            if len(sources) > 1:
                gr.Examples([[s] for s in sources], inputs=[source], label="Example faces", api_visibility="private")
            model = gr.Dropdown(choices=model_choices(cards), value=default_model, label="Model", elem_id="live-model")
            motion = gr.Radio(["relative", "absolute"], value="relative", label="Motion")
            with gr.Row():
                keypoints = gr.Checkbox(value=False, label="Keypoints", elem_id="live-keypoints")
                mask = gr.Checkbox(value=False, label="Occlusion mask", elem_id="live-mask")
            crop_source = gr.Checkbox(value=True, label="Crop the source face", elem_id="live-crop-source",
                                      info="off: the whole picture is the face (an aligned or generated face)")
            calibrate = gr.Button("Calibrate: this face is neutral", elem_id="live-calibrate")
            with gr.Accordion("Model controls (head pose, ...)", open=False):
                widgets = build_control_widgets(cards, get_card(default_model))
        with gr.Column(scale=1, min_width=300):
            webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, type="numpy", elem_id="live-webcam",
                              height=360)
        with gr.Column(scale=1, min_width=300):
            output = gr.Image(label="Animated", interactive=False, format="jpeg", elem_id="live-output", height=360)
            readout = gr.Textbox(label="Live", value="not started", interactive=False, elem_id="live-readout")

    control_components = [w.component for w in widgets]

    @gpu(60)
    def step(frame, source_path, model_name, motion_v, kp, msk, crop_v, state, *values):
        controls = values_for(get_card(model_name), widgets, values)
        picture, text, state = live_step(pool, frame, source_path, model_name, motion_v, kp, msk, state, controls,
                                         crop_source=crop_v)
        return (gr.skip() if picture is None else picture), text, state

    wire_stream(webcam, step, [webcam, source, model, motion, keypoints, mask, crop_source, session,
                               *control_components],
                [output, readout, session])
    model.change(lambda name: visibility_updates(get_card(name), widgets), [model], control_components,
                 api_visibility="private", show_progress="hidden")

    def do_calibrate(state):
        if not isinstance(state, LiveSession) or not state.ready:
            return "start the webcam first"
        state.request_calibration()
        return state.readout() + " | calibrating on the next frame"

    calibrate.click(do_calibrate, [session], [readout], queue=False, api_visibility="private")
    return {"source": source, "crop_source": crop_source}
