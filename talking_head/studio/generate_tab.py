"""The studio's Generate tab: a face that does not exist, and its motion, from a generator model
(MoCoGAN-HD). Its still and clip go straight to the other tabs as a source or a driving input.

The work lives in ``studio.render.Studio.generate`` (and below it ``talking_head.generate``).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from talking_head.cards import ModelCard
from talking_head.errors import TalkingHeadError
from talking_head.generate import MAX_SEED, GenerateSettings, random_seed
from talking_head.studio.common import card_markdown, gpu, model_choices, user_error, weights_status
from talking_head.studio.render import Studio

DEFAULT_SEED = 7
MAX_UI_FRAMES = 256


def _weights_note(card: ModelCard) -> str:
    state, lines = weights_status(card)
    if state != "missing":
        return f"**{card.name}**: ready."
    return (f"**{card.name}**: weights missing; they are on Google Drive only. Place these files:\n"
            + "\n".join(f"- {line}" for line in lines))


def _status(report: dict) -> str:
    mode = ", ".join(x for x in ("interpolated" if report["interpolation"] else "",
                                 "with noise" if report["noise"] else "no noise") if x)
    return (f"**Done:** {report['frames']} frames at {report['fps']:g} fps in {report['seconds']:.1f} s "
            f"(face seed {report['seed']}, motion seed {report['motion_seed']}, {mode}).")


def _whole(value) -> int | None:
    return None if value in (None, "") else int(value)


def build_generate_tab(studio: Studio, cards: list[ModelCard]) -> dict[str, Any]:
    """Lay out the Generate tab inside the current gr.Tab and wire its events.

    Returns the outputs and hand-over buttons (``wire_handoff`` connects them to the other tabs).
    """
    default = cards[0]
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(choices=model_choices(cards), value=default.name, label="Generator",
                                elem_id="generate-model")
            note = gr.Markdown(_weights_note(default), elem_id="generate-weights")
            with gr.Accordion("Model card", open=False):
                card_md = gr.Markdown(card_markdown(default))
            with gr.Row():
                seed = gr.Number(value=DEFAULT_SEED, precision=0, minimum=0, maximum=MAX_SEED, label="Face seed",
                                 elem_id="generate-seed")
                motion_seed = gr.Number(value=DEFAULT_SEED, precision=0, minimum=0, maximum=MAX_SEED,
                                        label="Motion seed", elem_id="generate-motion-seed")
            frames = gr.Slider(1, MAX_UI_FRAMES, value=32, step=1, label="Frames", elem_id="generate-frames")
            with gr.Row():
                interpolation = gr.Checkbox(value=False, label="Interpolation",
                                            info="midpoint latents between motion steps: smoother, slower")
                noise = gr.Checkbox(value=True, label="Noise", info="StyleGAN2 per-layer noise (fine detail)")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="generate-run")
                cancel = gr.Button("Cancel", variant="stop", elem_id="generate-cancel")
            with gr.Row():
                surprise = gr.Button("Surprise me", size="sm", elem_id="generate-surprise")
                reroll_face = gr.Button("Re-roll face", size="sm", elem_id="generate-reroll-face")
                reroll_motion = gr.Button("Re-roll motion", size="sm", elem_id="generate-reroll-motion")
        with gr.Column(scale=1, min_width=280):
            still = gr.Image(label="Generated face", type="filepath", interactive=False, elem_id="generate-still",
                             height=300)
            with gr.Row():
                still_source = gr.Button("Use as source", size="sm", elem_id="generate-still-source")
                still_driving = gr.Button("Use as driving picture", size="sm", elem_id="generate-still-driving")
        with gr.Column(scale=1, min_width=280):
            clip = gr.Video(label="Generated clip", interactive=False, elem_id="generate-clip", height=300)
            with gr.Row():
                clip_source = gr.Button("Use its face as source", size="sm", elem_id="generate-clip-source")
                clip_driving = gr.Button("Use as driving clip", size="sm", elem_id="generate-clip-driving")
    status = gr.Markdown("", elem_id="generate-status")

    def on_model(name):
        card = next(c for c in cards if c.name == name)
        return _weights_note(card), card_markdown(card)

    model.change(on_model, [model], [note, card_md], api_visibility="private", queue=False)

    @gpu(300)
    def do_generate(name, seed_v, motion_v, frames_v, interp_v, noise_v, request: gr.Request, progress=gr.Progress()):
        flag = studio.cancels.start(getattr(request, "session_hash", None))
        settings = GenerateSettings(frames=int(frames_v or 1), seed=_whole(seed_v), motion_seed=_whole(motion_v),
                                    interpolation=bool(interp_v), noise=bool(noise_v))  # empty seed: random
        try:
            report = studio.generate(name, settings, cancel=flag,
                                     progress=lambda d, t: progress((d, t), desc="generating", unit="frames"))
        except TalkingHeadError as exc:
            raise user_error(exc) from None
        return report["still"], report["clip"], _status(report), report["seed"], report["motion_seed"]

    inputs = [model, seed, motion_seed, frames, interpolation, noise]
    outputs = [still, clip, status, seed, motion_seed]  # the seeds used (a random one when left empty)
    events = [run.click(do_generate, inputs, outputs, api_name="generate", concurrency_limit=2,
                        api_description="Generate a face (PNG) and its clip (MP4) from a face seed and a motion seed.")]
    for button, fn in ((surprise, lambda s, m: (random_seed(), random_seed())),
                       (reroll_face, lambda s, m: (random_seed(), m)),
                       (reroll_motion, lambda s, m: (s, random_seed()))):
        events.append(button.click(fn, [seed, motion_seed], [seed, motion_seed], queue=False,
                                   api_visibility="private").then(do_generate, inputs, outputs,
                                                                  api_visibility="private", concurrency_limit=2))

    def do_cancel(request: gr.Request):
        studio.cancels.flag(getattr(request, "session_hash", None)).set()
        return "Cancelled (nothing was written)."

    cancel.click(do_cancel, None, [status], queue=False, api_visibility="private")
    cancel.click(None, None, None, cancels=events, queue=False)
    return {"still": still, "clip": clip, "still_source": still_source, "still_driving": still_driving,
            "clip_source": clip_source, "clip_driving": clip_driving}


def wire_handoff(generated: dict, animate: dict, live: dict, tabs) -> None:
    """'Use as source' fills the Animate and Live sources; 'use as driving' the Animate driving input.
    Each then shows the Animate tab. A driving picture and a driving clip exclude each other."""

    def as_source(path):
        if not path:
            raise gr.Error("Generate a face first.")
        return path, path, False, gr.Tabs(selected="animate")  # a generated face is aligned: Live uses it whole

    def as_driving_picture(path):
        if not path:
            raise gr.Error("Generate a face first.")
        return path, None, gr.Tabs(selected="animate")

    def as_driving_clip(path):
        if not path:
            raise gr.Error("Generate a clip first.")
        return path, None, gr.Tabs(selected="animate")

    sources = [animate["source"], live["source"], live["crop_source"], tabs]
    for button in (generated["still_source"], generated["clip_source"]):  # a clip's face is its first frame: the still
        button.click(as_source, [generated["still"]], sources, queue=False, api_visibility="private")
    generated["still_driving"].click(as_driving_picture, [generated["still"]],
                                     [animate["driving_image"], animate["driving_clip"], tabs], queue=False,
                                     api_visibility="private")
    generated["clip_driving"].click(as_driving_clip, [generated["clip"]],
                                    [animate["driving_clip"], animate["driving_image"], tabs], queue=False,
                                    api_visibility="private")
