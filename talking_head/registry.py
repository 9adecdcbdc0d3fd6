"""The model registry: names -> cards, and ``load_model`` that hides where weights come from.

    >>> list_models()                 # every card, importing no model code
    >>> load_model("fomm.vox-adv")    # finds/downloads weights, builds the model on the best device
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from talking_head import hub
from talking_head.cards import ModelCard
from talking_head.errors import BadInputError, CheckpointError, UnknownModelError
from talking_head.model_cards import FAMILIES

DEFAULT_MODEL = "landmark"


@lru_cache(maxsize=1)
def _all_cards() -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"talking_head.model_cards.{family}")
        for card in module.CARDS:
            if card.name in cards:
                raise RuntimeError(f"duplicate model name {card.name}")
            cards[card.name] = card
    return cards


def list_models(family: str | None = None, kind: str | None = None) -> list[ModelCard]:
    """Every card (of ``family`` / of ``kind``: "animator" or "generator"), in registry order."""
    return [c for c in _all_cards().values()
            if (family is None or c.family == family) and (kind is None or c.kind == kind)]


def get_card(name: str, kind: str | None = None) -> ModelCard:
    """The card behind ``name``; with ``kind``, a BadInputError when the model is of the other kind."""
    cards = _all_cards()
    if name in cards:
        card = cards[name]
        if kind is not None and card.kind != kind:
            raise _wrong_kind(card, kind)
        return card
    raise UnknownModelError(
        f"There is no model named '{name}'.",
        "Known models: " + ", ".join(sorted(cards)) + ". Run `python -m talking_head models` to list them.",
    )


def _wrong_kind(card: ModelCard, wanted: str) -> BadInputError:
    if card.kind == "generator":
        return BadInputError(
            f"Model '{card.name}' generates faces and clips from a seed; it does not animate a photo.",
            f"Use `python -m talking_head generate --model {card.name}` or the studio's Generate tab, and use "
            "its still or clip as the source or driving input of an animator such as landmark.")
    others = ", ".join(c.name for c in list_models(kind=wanted)) or "none"
    return BadInputError(f"Model '{card.name}' is not a {wanted} (it is of kind '{card.kind}').",
                         f"Models that are: {others}.")


def weights_present(name: str) -> bool:
    return hub.weights_present(get_card(name))


def load_model(name: str = DEFAULT_MODEL, device=None, pretrained: bool = True, allow_download: bool = True, progress=None,
               trust: bool | None = None, kind: str | None = None):
    """Build the model behind ``name`` on ``device`` (auto: CUDA, MPS, CPU).

    ``pretrained=False`` builds the architecture without loading any file (for tests and parity).
    ``trust`` keeps weight files whose size or sha256 differs from the card's (default:
    ``$TALKING_HEAD_TRUST_FILES``). A file that does not fit but matches another card names that card.
    ``kind``: refuse a model of the other kind ("animator" for the engine, "generator" for generate).
    """
    from talking_head.device import pick_device

    card = get_card(name, kind)
    paths = None
    if pretrained and card.files:
        paths = hub.fetch_files(card, allow_download=allow_download, progress=progress, trust=trust)
    module = importlib.import_module(f"talking_head.models.{card.family}")
    try:
        return module.create(card, paths, pick_device(device))
    except CheckpointError as err:
        if paths is None or type(err) is not CheckpointError:  # the named kinds already say what the file is
            raise
        from talking_head.checkpoint_match import explain

        better = explain(card, paths)
        if better is None:
            raise
        raise better from err
