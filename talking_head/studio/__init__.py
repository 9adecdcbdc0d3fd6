"""The studio web app (Gradio Blocks): Animate, Live, Generate and Models tabs, one module each.

    common.py     what the tabs share (loaded models, card text, UI values -> settings)
    render.py     the render and generate work behind the tabs and the API, no widgets
    animate_tab.py, live_tab.py, generate_tab.py, models_tab.py   one builder per tab

Animate and Live list only animators (models that move a source photo); Generate lists the
generators (MoCoGAN-HD), whose still and clip it hands to Animate/Live; Models lists every card.

    demo = build_app()          # then demo.launch(**launch_kwargs())
    python app.py               # the same, from the command line

Works offline with the ``landmark`` model; every other model is listed with its weights status.
"""
from __future__ import annotations

from talking_head.examples import EXAMPLES_DIR, fallback_source
from talking_head.registry import DEFAULT_MODEL, list_models
from talking_head.studio.common import ModelPool

TITLE = "Talking-head studio"
INTRO = (
    "Animate a face picture with the motion of a driving video or your webcam. "
    "The **landmark** model works offline with no weights; the other models show whether their weights are here."
)
CSS = """
#animate-status, #live-readout textarea { font-family: ui-monospace, monospace; }
"""


def build_app(device: str | None = None, default_model: str = DEFAULT_MODEL):
    """The whole studio as a ``gr.Blocks`` (not launched)."""
    import gradio as gr

    from talking_head.studio.animate_tab import build_animate_tab
    from talking_head.studio.generate_tab import build_generate_tab, wire_handoff
    from talking_head.studio.render import Studio
    from talking_head.studio.live_tab import build_live_tab
    from talking_head.studio.models_tab import build_models_tab

    cards = list_models()
    animators, generators = list_models(kind="animator"), list_models(kind="generator")
    names = [c.name for c in animators]
    if default_model not in names and names:
        default_model = names[0]
    studio = Studio(ModelPool(device))

    with gr.Blocks(title=TITLE, delete_cache=(3600, 6 * 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs() as tabs:
            with gr.Tab("Animate", id="animate", elem_id="tab-animate"):
                animate = build_animate_tab(studio, animators, default_model)
            with gr.Tab("Live", id="live", elem_id="tab-live"):
                live = build_live_tab(studio.pool, animators, default_model)
            if generators:
                with gr.Tab("Generate", id="generate", elem_id="tab-generate"):
                    generated = build_generate_tab(studio, generators)
                wire_handoff(generated, animate, live, tabs)
            with gr.Tab("Models", id="models", elem_id="tab-models"):
                build_models_tab(cards)
    return demo


def launch_kwargs(host: str | None = None, port: int | None = None, share: bool = False) -> dict:
    """Arguments for ``demo.launch``: theme/CSS, the folders example files are served from."""
    import gradio as gr

    allowed = [str(EXAMPLES_DIR)]
    fallback = fallback_source()
    if fallback is not None:
        allowed.append(str(fallback.parent))
    return {
        "server_name": host,
        "server_port": port,
        "share": share,
        "allowed_paths": allowed,
        "theme": gr.themes.Soft(),
        "css": CSS,
        "footer_links": ["api", "settings"],
    }
