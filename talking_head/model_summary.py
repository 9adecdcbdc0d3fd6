"""One line's worth about a model for pickers and listings: size, license, where from, present, hash.

The CLI's ``models`` and the studio's model picker both use ``summarize`` (no network access; a
present file's sha256 comes from the hash cache when the file is unchanged).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from talking_head import hub
from talking_head.cards import ModelCard, WeightFile


@dataclass
class ModelSummary:
    name: str
    size_mb: float | None  # all files together; None when a size is unknown
    license: str  # a few words (license_tag)
    source: str  # where the weights come from, in a few words
    state: str  # 'none needed', 'ready', 'missing' or 'file problem'
    check: str  # hash result of the present files, in a few words ('' when none present)
    files: list[tuple[WeightFile, Path | None, str, str]] = field(default_factory=list)  # hub.file_states

    @property
    def runnable(self) -> bool:
        return self.state in ("ready", "none needed")

    def size_words(self) -> str:
        if self.state == "none needed":
            return "no download"
        return f"{self.size_mb:,.0f} MB" if self.size_mb else "size unknown"

    def line(self) -> str:
        """'751 MB · non-commercial · from Hub space abhishek/...@331ab4c · missing'."""
        state = self.state + (f" ({self.check})" if self.check else "")
        return " · ".join([self.size_words(), self.license, f"from {self.source}", state])


def license_tag(text: str) -> str:
    """A card's license in a few words: 'MIT', 'non-commercial', 'no license stated', ..."""
    low = text.lower()
    if "non-commercial" in low or "cc by-nc" in low:
        return "non-commercial"
    if "no license" in low:
        return "no license stated"
    if "no rights" in low or "informational purposes" in low:
        return "no rights granted"
    if "apache" in low and "mit" not in low:
        return "Apache-2.0"
    if re.search(r"\bmit\b", low):
        return "MIT"
    first = text.split(". ")[0]
    return first if len(first) <= 40 else first[:39] + "…"


_CHECK_WORDS = {"matched": "sha256 ok", "unpinned": "no sha256 pinned", "trusted": "differs, kept by you"}


def summarize(card: ModelCard) -> ModelSummary:
    files = hub.file_states(card)
    sizes = [wf.size_mb for wf in card.files]
    size = sum(sizes) if sizes and all(sizes) else None
    sources = list(dict.fromkeys(hub.source_words(wf) for wf in card.files))
    kinds = [kind for _, _, kind, _ in files]
    if not card.files:
        state = "none needed"
    elif "problem" in kinds:
        state = "file problem"
    elif "missing" in kinds:
        state = "missing"
    else:
        state = "ready"
    problems = [phrase for _, _, kind, phrase in files if kind == "problem"]
    present = [kind for kind in kinds if kind != "missing"]
    if problems:
        check = problems[0]
    elif present:
        check = ", ".join(dict.fromkeys(_CHECK_WORDS[k] for k in present))
    else:
        check = ""
    return ModelSummary(card.name, size, license_tag(card.license), "; ".join(sources) or "nothing to download",
                        state, check, files)
