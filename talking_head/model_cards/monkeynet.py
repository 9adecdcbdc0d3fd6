from talking_head.cards import Control, ModelCard, WeightFile  # noqa: F401

CARDS: list[ModelCard] = []
