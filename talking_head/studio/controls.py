"""Family control widgets (``card.controls``) for the studio's tabs: one Gradio widget per (family, control).

A widget is visible only while a model of its family is selected; ``values_for`` picks the selected
card's values out of all widgets' values, so a tab can pass every widget as event input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from talking_head.cards import Control, ModelCard


@dataclass
class ControlWidget:
    family: str
    control: Control
    component: Any


def control_component(control: Control, visible: bool):
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


def build_control_widgets(cards: list[ModelCard], selected: ModelCard, only=None) -> list[ControlWidget]:
    """One widget per (family, control name) of ``cards`` (``only``: control names to keep), laid out here."""
    widgets: list[ControlWidget] = []
    seen: set[tuple[str, str]] = set()
    for card in cards:
        for control in card.controls:
            if (card.family, control.name) in seen or (only is not None and control.name not in only):
                continue
            seen.add((card.family, control.name))
            comp = control_component(control, visible=card.family == selected.family and control in selected.controls)
            widgets.append(ControlWidget(card.family, control, comp))
    return widgets


def values_for(card: ModelCard, widgets: list[ControlWidget], values) -> dict:
    """{control name: value} of ``card``'s own controls, from the values of all ``widgets`` (in order)."""
    names = {c.name for c in card.controls}
    return {w.control.name: v for w, v in zip(widgets, values) if w.family == card.family and w.control.name in names}


def visibility_updates(card: ModelCard, widgets: list[ControlWidget]) -> list:
    """gr.update for each widget: shown with its default for ``card``'s family, hidden otherwise."""
    updates = []
    for w in widgets:
        own = next((c for c in card.controls if c.name == w.control.name), None) if w.family == card.family else None
        updates.append(gr.update(visible=own is not None, **({"value": own.default} if own is not None else {})))
    return updates
