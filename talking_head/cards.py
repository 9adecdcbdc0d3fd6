"""Model cards: what a registry name stands for, where its weights come from, what it is good at.

Cards are plain data. Each family lists its cards in ``talking_head/model_cards/<family>.py``
(importing nothing heavy), so listing models never imports torch or a model's code.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WeightFile:
    """One file a model needs.

    ``filename`` is the name looked for in ``weights/`` (a local file always wins). ``hf_repo``/
    ``hf_path`` say where it lives on the Hugging Face Hub (``None``: not on the Hub, the user must
    place it by hand from ``url``).
    """

    filename: str
    hf_repo: str | None = None
    hf_path: str | None = None
    hf_repo_type: str = "model"
    revision: str | None = None
    sha256: str | None = None
    size_mb: float | None = None
    url: str | None = None

    @property
    def on_hub(self) -> bool:
        return self.hf_repo is not None


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

    @property
    def needs_weights(self) -> bool:
        return bool(self.files)
