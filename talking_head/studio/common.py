"""What the studio's tabs share: loaded models, model-card text, UI values -> settings.

Knows Gradio only where it must (``user_error``). Option logic shared with the CLI and the desktop
live mode lives below the UI: ``engine.transfer_options`` and ``ModelCard.control_values``.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import TalkingHeadError
from talking_head.model_summary import ModelSummary, summarize
from talking_head.models.base import Animator

NATIVE_SIZE = "model native"
OUTPUT_SIZES = (NATIVE_SIZE, "256", "384", "512", "768", "1024")


# ----------------------------------------------------------------------------------------- models


class SharedModel(Animator):
    """A loaded model shared by every session: calls into it take turns (one lock per model).

    Engines hold per-session state; the model itself is shared, and some families keep helpers
    (face-mesh trackers, caches) that are not safe to use from two threads at once.
    """

    def __init__(self, inner: Animator):
        super().__init__(inner.card, inner.device)
        self.inner = inner
        self.lock = threading.RLock()
        self.uses_face_ratios = inner.uses_face_ratios
        self.RATIO_OPTIONS = inner.RATIO_OPTIONS

    def prepare_source(self, image, **kwargs):
        with self.lock:
            return self.inner.prepare_source(image, **kwargs)

    def prepare_driving(self, image, **kwargs):
        with self.lock:
            return self.inner.prepare_driving(image, **kwargs)

    def animate(self, source, frames, reference, options):
        with self.lock:
            return self.inner.animate(source, frames, reference, options)

    def __getattr__(self, name):  # family extras such as edit_pose; the caller takes the lock
        return getattr(self.inner, name)


class ModelPool:
    """Models loaded once per process, by registry name."""

    def __init__(self, device: str | None = None):
        self.device = device
        self._models: dict[str, SharedModel] = {}
        self._lock = threading.Lock()

    def loaded(self, name: str) -> bool:
        return name in self._models

    def get(self, name: str, progress: Callable[[float, str], None] | None = None, allow_download: bool = True,
            kind: str = "animator"):
        """The model behind ``name``, loading (and downloading, when allowed) it on first use.

        Animators come wrapped in a ``SharedModel``; generators (``kind="generator"``) take turns themselves.
        """
        from talking_head.registry import get_card, load_model

        get_card(name, kind)  # UnknownModelError / wrong kind before anything else
        with self._lock:
            if name not in self._models:
                model = load_model(name, device=self.device, allow_download=allow_download, progress=progress)
                self._models[name] = SharedModel(model) if isinstance(model, Animator) else model
            return self._models[name]


# ----------------------------------------------------------------------------------------- cards


def weights_status(card: ModelCard) -> tuple[str, list[str]]:
    """('present' | 'missing' | 'none needed', one Markdown line per weight file: size, what a present file
    is (hash matched, pointer file, ...) or where a missing one comes from)."""
    state, _ = hub.weights_status(card)
    lines = []
    for wf, found, kind, phrase in hub.file_states(card):
        size = f" ({wf.size_mb:,.1f} MB)" if wf.size_mb else ""
        if found is not None:
            lines.append(f"`{wf.filename}`{size}: present ({found}): {phrase}")
        elif wf.downloadable:
            lines.append(f"`{wf.filename}`{size}: missing; {phrase}")
        else:
            lines.append(f"`{wf.filename}`{size}: missing; not downloadable here: get it from {wf.url or 'its authors'} "
                         f"and put it at `{hub.local_path(wf)}`")
    return state, lines


def status_mark(card: ModelCard) -> str:
    return _mark(summarize(card))


def _mark(summary: ModelSummary) -> str:
    if summary.state == "ready" and summary.check:
        return f"ready, {summary.check}"
    return {"ready": "ready", "none needed": "ready", "missing": "weights missing",
            "file problem": "file problem"}[summary.state]


def model_choices(cards: list[ModelCard]) -> list[tuple[str, str]]:
    """Dropdown (label, value) pairs: the name, whether it can run now (and its hash check), size, license
    and where the weights come from."""
    out = []
    for c in cards:
        summary = summarize(c)
        out.append((f"{c.name} ({_mark(summary)}) · {summary.size_words()} · {summary.license} · {summary.source}",
                    c.name))
    return out


def downloadable(card: ModelCard) -> bool:
    """Missing files that can all be downloaded (Hub or HTTPS), so a download can fix it."""
    missing = [wf for wf in card.files if hub.find_file(wf) is None]
    return bool(missing) and all(wf.downloadable for wf in missing)


def card_markdown(card: ModelCard) -> str:
    state, lines = weights_status(card)
    res = f"{card.resolution} px" if card.resolution else "any size (runs at the picture's own resolution)"
    out = [f"### {card.title} (`{card.name}`)", card.description, ""]
    if card.good_at:
        out.append(f"**Good at:** {card.good_at}")
    if card.bad_at:
        out.append(f"**Weak at:** {card.bad_at}")
    out.append(f"**Resolution:** {res} · **modes:** {', '.join(card.modes)}")
    out.append(f"**License:** {card.license}")
    links = [f"[paper]({card.paper})" if card.paper else "", f"[code]({card.code})" if card.code else ""]
    if any(links):
        out.append("**Published:** " + " · ".join(x for x in links if x))
    out.append(f"**Weights:** {state}")
    out.extend(f"- {line}" for line in lines)
    if card.notes:
        out.append("")
        out.append(card.notes)
    return "\n\n".join(out[:3]) + "\n\n" + "  \n".join(out[3:])


def models_table(cards: list[ModelCard]) -> list[list[str]]:
    """Rows for the Models tab: name, weights (with the hash check), size, source, resolution, title, license."""
    rows = []
    for c in cards:
        summary = summarize(c)
        state = summary.state + (f" ({summary.check})" if summary.check else "")
        rows.append([c.name, state, summary.size_words(), summary.source, str(c.resolution or "any"),
                     c.title, summary.license])
    return rows


# ----------------------------------------------------------------------------------------- options


def parse_reference(kind: str, index) -> str | int:
    if kind == "index":
        return int(index or 0)
    return "best" if kind == "best" else "first"


def parse_output_size(value) -> int | None:
    if value in (None, "", NATIVE_SIZE):
        return None
    return int(value)


# ----------------------------------------------------------------------------------------- misc


def user_error(exc: Exception):
    """A gr.Error carrying the message and hint of a TalkingHeadError (no traceback for the user)."""
    import gradio as gr

    if isinstance(exc, TalkingHeadError):
        return gr.Error(exc.user_message().replace("\n", " "), duration=None, print_exception=False)
    return gr.Error(f"{type(exc).__name__}: {exc}", duration=None)


def as_uint8_rgb(image) -> np.ndarray | None:
    if image is None:
        return None
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


def gpu(duration: int = 120) -> Callable:
    """``spaces.GPU`` on Hugging Face ZeroGPU Spaces (when ``spaces`` is importable), else a no-op."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn

    return spaces.GPU(duration=duration)
