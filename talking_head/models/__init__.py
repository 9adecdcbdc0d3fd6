"""One module per model family, each exposing ``create(card, paths, device) -> Animator``.

Imported lazily by the registry: nothing here is imported until a model is loaded.
"""
