"""Generating a face and a clip with a generator model (MoCoGAN-HD): the work behind ``generate`` and the
studio's Generate tab, without any UI.

    model = load_model("mocoganhd.faceforensics256", kind="generator")
    report = generate_files(model, GenerateSettings(frames=32, seed=7), clip="clip.mp4", still="face.png")

Outputs are written atomically: the clip goes through ``video.VideoWriter`` and the still through a
temp file beside its target; both are committed only once both are complete, so an error or a cancel
never leaves a half-written or a lone output behind.
"""
from __future__ import annotations

import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from talking_head.errors import BadInputError, TalkingHeadError, WeightsMissingError

MAX_FRAMES = 2000
MAX_SEED = 2 ** 31 - 1
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class Cancelled(TalkingHeadError):
    """The generation was cancelled; nothing was written."""


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


@dataclass
class GenerateSettings:
    """What to generate. ``seed`` picks the face, ``motion_seed`` the motion (default: ``seed``);
    None draws a fresh random seed. ``frames`` counts output frames (with interpolation too)."""

    frames: int = 32
    seed: int | None = None
    motion_seed: int | None = None
    interpolation: bool = False
    noise: bool = True
    fps: float | None = None  # None: the card's fps (10, as the original)

    def resolved(self) -> "GenerateSettings":
        """A copy with both seeds fixed and every value checked (BadInputError says what is allowed)."""
        if isinstance(self.frames, bool) or not isinstance(self.frames, (int, np.integer)) \
                or not 1 <= self.frames <= MAX_FRAMES:
            raise BadInputError(f"The number of frames must be a whole number from 1 to {MAX_FRAMES}, got {self.frames}.",
                                "Use e.g. --frames 32.")
        if self.fps is not None and not self.fps > 0:
            raise BadInputError(f"The frame rate must be positive, got {self.fps}.", "Use e.g. --fps 10.")
        seed = random_seed() if self.seed is None else _check_seed(self.seed, "seed")
        motion = seed if self.motion_seed is None else _check_seed(self.motion_seed, "motion seed")
        return GenerateSettings(int(self.frames), seed, motion, bool(self.interpolation), bool(self.noise), self.fps)


def _check_seed(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_SEED:
        raise BadInputError(f"The {what} must be a whole number from 0 to {MAX_SEED}, got {value}.", "Use e.g. 7.")
    return int(value)


@dataclass
class GenerateReport:
    clip: Path | None
    still: Path | None
    model: str
    frames: int
    fps: float
    seed: int
    motion_seed: int
    interpolation: bool
    noise: bool
    seconds: float

    def as_dict(self) -> dict:
        return {"clip": str(self.clip) if self.clip else None, "still": str(self.still) if self.still else None,
                "model": self.model, "frames": self.frames, "fps": self.fps, "seed": self.seed,
                "motion_seed": self.motion_seed, "interpolation": self.interpolation, "noise": self.noise,
                "seconds": round(self.seconds, 2)}


def check_weights(card) -> None:
    """WeightsMissingError naming every missing file, where to get it and where to put it (no network)."""
    from talking_head import hub

    state, files = hub.weights_status(card)
    missing = [wf for wf, found in files if found is None]
    if state != "missing" or not missing:
        return
    names = ", ".join(f"'{wf.filename}'" for wf in missing)
    raise WeightsMissingError(
        f"Model '{card.name}' needs {len(missing)} file(s) that are not on this machine: {names}.",
        "\n".join(f"{wf.filename}: {hub.where_to_get(wf)}" for wf in missing))


def check_outputs(clip, still) -> tuple[Path | None, Path | None]:
    """Both output paths checked before any work: suffixes, not the same file, not a folder."""
    clip = Path(clip) if clip else None
    still = Path(still) if still else None
    if clip is None and still is None:
        raise BadInputError("Nothing to write.", "Give --out clip.mp4 and/or --still face.png.")
    if clip is not None and clip.suffix.lower() != ".mp4":
        raise BadInputError(f"The clip '{clip}' must end in .mp4.", "Give a name like clip.mp4.")
    if still is not None and still.suffix.lower() not in STILL_SUFFIXES:
        raise BadInputError(f"The still '{still}' must end in one of {', '.join(STILL_SUFFIXES)}.",
                            "Give a name like face.png.")
    for path in (clip, still):
        if path is not None and path.is_dir():
            raise BadInputError(f"The output '{path}' is a folder.", "Give a file name.")
    return clip, still


class _StillWriter:
    """A picture written to a temp file beside ``path``; ``commit`` renames it there, ``abort`` removes it."""

    def __init__(self, path: Path):
        self.path = path
        self._temp: Path | None = None

    def write(self, image: np.ndarray) -> None:
        from talking_head import video

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        self._temp = Path(name)
        video.save_image(self._temp, image)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self._temp, 0o666 & ~mask)

    def commit(self) -> Path:
        os.replace(self._temp, self.path)
        self._temp = None
        return self.path

    def abort(self) -> None:
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


def generate_files(model, settings: GenerateSettings, clip=None, still=None,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None) -> GenerateReport:
    """Generate one clip (``clip``, an .mp4) and/or its first frame (``still``, a picture).

    ``progress(done, total)`` after every frame; ``cancel()`` returning True stops with ``Cancelled``
    and nothing written.
    """
    from talking_head import video

    s = settings.resolved()
    clip, still = check_outputs(clip, still)
    fps = float(s.fps or model.card.options.get("fps", 10))
    frames_wanted = s.frames if clip is not None else 1
    started = time.perf_counter()
    writer = video.VideoWriter(clip, fps) if clip is not None else None
    picture = _StillWriter(still) if still is not None else None
    done = 0
    try:
        for frame in model.clip(s.seed, s.motion_seed, frames_wanted, s.interpolation, s.noise):
            if cancel is not None and cancel():
                raise Cancelled("The generation was cancelled.", "Nothing was written.")
            if done == 0 and picture is not None:
                picture.write(frame)
            if writer is not None:
                writer.write(frame)
            done += 1
            if progress:
                progress(done, frames_wanted)
        if writer is not None:
            writer.finish()
            writer.commit()
        if picture is not None:
            picture.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        if picture is not None:
            picture.abort()
        raise
    return GenerateReport(clip=clip, still=still, model=model.card.name, frames=done,
                          fps=fps, seed=s.seed, motion_seed=s.motion_seed, interpolation=s.interpolation,
                          noise=s.noise, seconds=time.perf_counter() - started)
