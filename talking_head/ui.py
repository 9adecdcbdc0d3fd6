"""The studio web app (Gradio Blocks): Animate, Live and Models tabs.

    demo = build_app()          # then demo.launch(**launch_kwargs())
    python app.py               # the same, from the command line

Works offline with the ``landmark`` model; every other model is listed with its weights status.
"""
from __future__ import annotations

from talking_head.examples import EXAMPLES_DIR, fallback_source
from talking_head.registry import DEFAULT_MODEL, list_models
from talking_head.ui_common import ModelPool, card_markdown, models_table

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

    from talking_head.ui_animate import Studio, build_animate_tab
    from talking_head.ui_live import build_live_tab

    cards = list_models()
    names = [c.name for c in cards]
    if default_model not in names and names:
        default_model = names[0]
    studio = Studio(ModelPool(device))

    with gr.Blocks(title=TITLE, delete_cache=(3600, 6 * 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs():
            with gr.Tab("Animate", id="animate", elem_id="tab-animate"):
                build_animate_tab(studio, cards, default_model)
            with gr.Tab("Live", id="live", elem_id="tab-live"):
                build_live_tab(studio.pool, cards, default_model)
            with gr.Tab("Models", id="models", elem_id="tab-models"):
                build_models_tab(cards)
    return demo


def build_models_tab(cards) -> None:
    import gradio as gr

    headers = ["name", "weights", "resolution", "title", "license"]
    table = gr.Dataframe(value=models_table(cards), headers=headers, interactive=False, elem_id="models-table",
                         wrap=True, column_widths=["16%", "11%", "9%", "30%", "34%"])
    refresh = gr.Button("Refresh weights status", size="sm")
    refresh.click(lambda: models_table(cards), None, [table], api_visibility="private")
    for card in cards:
        with gr.Accordion(f"{card.name}: {card.title}", open=False):
            gr.Markdown(card_markdown(card))


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
