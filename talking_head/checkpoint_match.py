"""Which model card a checkpoint file belongs to, by its keys and tensor shapes.

Used only when a file does not fit the card it was given for: each card's file layout is built
from its own networks on torch's ``meta`` device (no memory, no weights) through the family's
``published_checkpoints``, and compared with the file's keys and shapes. Cards of families without
``published_checkpoints``, or whose networks cannot be built on ``meta``, are skipped.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from talking_head.cards import ModelCard
from talking_head.errors import TalkingHeadError, WrongModelFileError

Signature = dict[str, tuple[int, ...]]


def signature(obj, prefix: str = "") -> Signature:
    """{'generator/first.conv.weight': shape, ...} for every tensor in nested dicts (counters left out)."""
    out: Signature = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(signature(value, f"{prefix}{key}/" if isinstance(value, dict) else f"{prefix}{key}"))
    elif hasattr(obj, "shape") and not prefix.endswith("num_batches_tracked"):
        out[prefix.rstrip("/")] = tuple(obj.shape)
    return out


def fits(expected: Signature, actual: Signature) -> bool:
    """Every tensor the card's file holds is in the file, with the same shape (extra entries allowed:
    published files also hold discriminators and optimizer states)."""
    return bool(expected) and all(actual.get(k) == shape for k, shape in expected.items())


_cache: dict[str, tuple[Signature, ...] | None] = {}


def card_signatures(card: ModelCard | str) -> tuple[Signature, ...] | None:
    """One signature per file of ``card`` (a card or a registry name; card file order), or None when it
    cannot be built. Registry cards are built once per process."""
    from talking_head.registry import get_card, list_models

    if isinstance(card, str):
        card = get_card(card)
    registered = any(c is card for c in list_models(card.family))
    if registered and card.name in _cache:
        return _cache[card.name]
    result = _build_signatures(card)
    if registered:
        _cache[card.name] = result
    return result


def _build_signatures(card: ModelCard) -> tuple[Signature, ...] | None:
    import torch

    if not card.files:
        return None
    try:
        module = importlib.import_module(f"talking_head.models.{card.family}")
    except ModuleNotFoundError as err:
        if err.name != f"talking_head.models.{card.family}":
            raise
        return None  # a card of no known family (a test's own card)
    publish = getattr(module, "published_checkpoints", None)
    if publish is None:
        return None
    meta = torch.device("meta")
    try:
        with meta:
            animator = module.create(card, None, meta)
            files = publish(animator)
    except (RuntimeError, NotImplementedError, TypeError, ValueError, AttributeError, TalkingHeadError):
        return None
    if not all(wf.filename in files for wf in card.files):
        return None
    return tuple(signature(files[wf.filename]) for wf in card.files)


def matching_cards(actual: Signature, exclude: str = "") -> list[tuple[ModelCard, int]]:
    """(card, file index) of every card one of whose files the signature fits."""
    from talking_head.registry import list_models

    found = []
    for card in list_models():
        if card.name == exclude:
            continue
        sigs = card_signatures(card)
        for i, expected in enumerate(sigs or ()):
            if fits(expected, actual):
                found.append((card, i))
    return found


def identify(card: ModelCard, index: int, path: Path) -> WrongModelFileError | None:
    """A WrongModelFileError when ``path`` (given as file ``index`` of ``card``) is a checkpoint of another
    card and does not fit its own; None when it fits, cannot be read, or matches no card."""
    from talking_head import hub

    try:
        actual = signature(hub.load_checkpoint(path))
    except TalkingHeadError:
        return None
    own = card_signatures(card)
    if own is not None and index < len(own) and fits(own[index], actual):
        return None
    matches = matching_cards(actual, exclude=card.name)
    if not matches:
        return None
    names = [m.name for m, _ in matches]
    families = {m.family for m, _ in matches}
    if len(names) > 2 and len(families) == 1:
        them = f"the {families.pop()} family (it fits {', '.join(names)})"
    else:
        them = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    other, j = matches[0]
    return WrongModelFileError(
        f"'{path}' is a checkpoint of {them}, not of {card.name}: its keys and shapes match that card.",
        f"Pick {other.name} and put the file at {hub.local_path(other.files[j])}, or get {card.name}'s own "
        f"file: {hub.where_to_get(card.files[index])}.",
    )


def explain(card: ModelCard, paths: list[Path]) -> WrongModelFileError | None:
    """The first of ``paths`` (``card``'s files, in order) that belongs to another card, named; or None."""
    for i, path in enumerate(paths):
        found = identify(card, i, Path(path))
        if found is not None:
            return found
    return None
