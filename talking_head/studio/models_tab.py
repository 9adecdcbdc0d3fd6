"""The studio's Models tab: every model in the registry, its resolution, license and weights status."""
from __future__ import annotations

from talking_head.studio.common import card_markdown, models_table


def build_models_tab(cards) -> None:
    import gradio as gr

    headers = ["name", "weights", "size", "weights come from", "resolution", "title", "license"]
    table = gr.Dataframe(value=models_table(cards), headers=headers, interactive=False, elem_id="models-table",
                         wrap=True, column_widths=["13%", "13%", "8%", "20%", "8%", "24%", "14%"])
    refresh = gr.Button("Refresh weights status", size="sm")
    refresh.click(lambda: models_table(cards), None, [table], api_visibility="private")
    for card in cards:
        with gr.Accordion(f"{card.name}: {card.title}", open=False):
            gr.Markdown(card_markdown(card))
