"""Per-family card lists. Each module defines ``CARDS: list[ModelCard]`` and imports nothing heavy."""

FAMILIES = ("landmark", "x2face", "monkeynet", "fomm", "mraa", "tpsmm", "liveportrait", "facevid2vid", "mocoganhd")
