"""Errors a user can act on.

Every error the engine raises for bad input or missing files is a ``TalkingHeadError``: its
``str()`` names the problem and ``hint`` says what to do. The CLI and UI print both and never a
traceback.
"""


class TalkingHeadError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def user_message(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class BadInputError(TalkingHeadError):
    """An input file that cannot be used (not an image, corrupt or empty video, ...)."""


class NoFaceError(BadInputError):
    """No face was found where one is needed."""


class WeightsMissingError(TalkingHeadError):
    """A model's checkpoint is neither in ``weights/`` nor in the Hub cache, and cannot be downloaded."""


class CheckpointError(TalkingHeadError):
    """A checkpoint file exists but is not what the model expects (wrong keys, truncated, unsafe)."""


class UnknownModelError(TalkingHeadError):
    """A model name that is not in the registry."""


class LfsPointerError(CheckpointError):
    """A git-LFS pointer file (a few lines of text) saved where the checkpoint belongs."""


class HtmlPageError(CheckpointError):
    """A web page (a Drive quota or sign-in page) saved where the checkpoint belongs."""


class TruncatedFileError(CheckpointError):
    """A file smaller than the card's: an interrupted download."""


class FileMismatchError(CheckpointError):
    """A complete file that is not the card's (other sha256 or size); the user may keep it (trust)."""


class WrongModelFileError(CheckpointError):
    """A checkpoint of another model card (its keys and shapes match that card)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle that needs arbitrary code to load; refused."""
