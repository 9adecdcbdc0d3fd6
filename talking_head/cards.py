"""Model cards: what a registry name stands for, where its weights come from, what it is good at.

Cards are plain data. Each family lists its cards in ``talking_head/model_cards/<family>.py``
(importing nothing heavy), so listing models never imports torch or a model's code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from talking_head.errors import BadInputError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True)
class WeightFile:
    """One file a model needs.

    ``filename`` is the name looked for in ``weights/`` (a local file always wins). ``hf_repo``/
    ``hf_path`` say where it lives on the Hugging Face Hub (``None``: not on the Hub), pinned to
    ``revision`` (a commit). ``download_url`` is a plain HTTPS file (e.g. a GitHub release asset),
    tried after the Hub. ``url`` is the page a user gets the file from by hand. ``size_bytes`` is the
    exact size (truncation is judged on it; ``size_mb`` follows from it when not given, for display).
    """

    filename: str
    hf_repo: str | None = None
    hf_path: str | None = None
    hf_repo_type: str = "model"
    revision: str | None = None
    sha256: str | None = None
    size_mb: float | None = None
    url: str | None = None
    size_bytes: int | None = None
    download_url: str | None = None

    def __post_init__(self):
        if self.size_mb is None and self.size_bytes:
            object.__setattr__(self, "size_mb", round(self.size_bytes / 1e6, 1))

    @property
    def on_hub(self) -> bool:
        return self.hf_repo is not None

    @property
    def downloadable(self) -> bool:
        """On the Hub or at a plain HTTPS address: the program can fetch it itself."""
        return self.on_hub or self.download_url is not None


@dataclass(frozen=True)
class Control:
    """A family-specific option the UI and CLI expose; its value lands in TransferOptions.extra[name].

    kind: "bool", "float", "int" or "choice".
    """

    name: str
    kind: str
    default: object
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def coerce(self, value, model: str = ""):
        """``value`` (a Python value, or a string such as "true" or "0.5") as this control's kind.

        None gives the default. A value of the wrong kind, out of [minimum, maximum] or not one of
        ``choices`` raises BadInputError saying what is allowed (``model`` names the card in it).
        """
        if value is None:
            return self.default
        try:
            return self._typed(value)
        except (TypeError, ValueError, OverflowError):
            pass
        owner = f" of {model}" if model else ""
        raise BadInputError(f"Bad value '{value}' for control '{self.name}'{owner}.", f"Use {self.allowed()}.")

    def allowed(self) -> str:
        """What values this control takes, in words."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"a{'n integer' if self.kind == 'int' else ' number'} from {lo} to {hi}"

    def _typed(self, value):
        """The typed value; ValueError/TypeError when ``value`` does not fit."""
        if self.kind == "bool":
            return _as_bool(value)
        if self.kind in ("float", "int"):
            number = _as_number(value, integer=self.kind == "int")
            if self.minimum is not None and number < self.minimum:
                raise ValueError(value)
            if self.maximum is not None and number > self.maximum:
                raise ValueError(value)
            return number
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(value)
            return value
        raise ValueError(f"control '{self.name}' has an unknown kind '{self.kind}'")


def _as_bool(value) -> bool:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(value)
    if isinstance(value, float) or not (value == 0 or value == 1):  # bool, numpy bool, 0/1 ints pass
        raise ValueError(value)
    return bool(value)


def _as_number(value, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, str):
        number = int(value.strip()) if integer else float(value)
    else:
        number = float(value)
        if integer:
            if not number.is_integer():
                raise ValueError(value)
            number = int(number)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


@dataclass(frozen=True)
class ModelCard:
    name: str  # "family.tag", or a bare family name for the default tag
    family: str  # module name under talking_head.models
    title: str
    description: str
    good_at: str = ""
    bad_at: str = ""
    resolution: int | None = 256  # square input size; None = runs at the input's own resolution
    license: str = "unknown"
    paper: str = ""
    code: str = ""  # the published implementation this port matches
    files: tuple[WeightFile, ...] = ()
    modes: tuple[str, ...] = ("relative", "absolute")
    default_mode: str = "relative"
    controls: tuple[Control, ...] = ()  # family-specific options -> TransferOptions.extra
    options: dict = field(default_factory=dict)  # family-specific build options (config)
    notes: str = ""
    kind: str = "animator"  # "animator": animates a source photo; "generator": makes faces/clips from seeds

    @property
    def is_animator(self) -> bool:
        return self.kind == "animator"

    @property
    def needs_weights(self) -> bool:
        return bool(self.files)

    def control_values(self, given: dict | None = None) -> dict:
        """Every control's default, updated with ``given`` ({name: value}, each checked by Control.coerce).

        A name that is not one of this card's controls raises BadInputError listing the known ones.
        """
        known = {c.name: c for c in self.controls}
        values = {c.name: c.default for c in self.controls}
        for name, value in (given or {}).items():
            if name not in known:
                raise BadInputError(f"Model '{self.name}' has no control '{name}'.",
                                    "Its controls are: " + (", ".join(sorted(known)) or "none") + ".")
            values[name] = known[name].coerce(value, self.name)
        return values
