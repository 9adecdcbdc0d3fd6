from talking_head.cards import ModelCard, WeightFile  # noqa: F401

CARDS: list[ModelCard] = []
