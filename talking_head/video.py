"""Reading pictures and clips, writing H.264 MP4s with the driving clip's audio.

    img = load_image("face.jpg")                 # uint8 RGB, EXIF orientation applied
    with VideoReader("drive.mp4") as clip:        # lazy: one frame in memory at a time
        with VideoWriter("out.mp4", clip.fps, audio_from="drive.mp4") as out:
            for frame in clip:
                out.write(frame)                  # file appears only when the block ends cleanly

Video goes through the ffmpeg binary bundled with imageio-ffmpeg (OpenCV cannot write H.264
here). Every failure to read an input is a ``BadInputError`` that names the file.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from talking_head.errors import BadInputError, TalkingHeadError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif", ".heic"}
DEFAULT_IMAGE_FPS = 25.0
VIDEO_HINT = "Use an MP4/MOV/WebM/AVI clip that plays in a video player, or a picture (JPEG/PNG)."
IMAGE_HINT = "Use a JPEG, PNG, BMP or WebP picture."


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _describe(path: Path) -> str:
    return f"'{path}'"


def _check_file(path: Path, what: str, hint: str) -> None:
    if not path.exists():
        raise BadInputError(f"The {what} {_describe(path)} does not exist.", "Check the path and try again.")
    if path.is_dir():
        raise BadInputError(f"The {what} {_describe(path)} is a folder, not a file.", hint)
    if path.stat().st_size == 0:
        raise BadInputError(f"The {what} {_describe(path)} is empty (0 bytes).", hint)


# ----------------------------------------------------------------------------------------- images


def _pil_to_rgb(im) -> np.ndarray:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, 1) -> uint8 RGB; alpha composited on white."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = arr.max() if arr.size else 0.0
        if im.mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif top > 255.0:
            arr = arr / 257.0 if top <= 65535.0 else arr * (255.0 / top)
        gray = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.array(im, dtype=np.uint8)


def load_image(path) -> np.ndarray:
    """Read a picture as uint8 RGB (H, W, 3): EXIF rotation applied, grey/alpha/16-bit/palette converted."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    _check_file(path, "picture", IMAGE_HINT)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _pil_to_rgb(im)
    except UnidentifiedImageError:
        raise BadInputError(f"{_describe(path)} is not a picture this program can read.", IMAGE_HINT) from None
    except Image.DecompressionBombError:
        raise BadInputError(
            f"{_describe(path)} is too large to open safely.", "Resize the picture below 90 megapixels."
        ) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadInputError(f"{_describe(path)} is damaged or truncated ({err}).", IMAGE_HINT) from None
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise BadInputError(f"{_describe(path)} has no pixels.", IMAGE_HINT)
    return rgb


def save_image(path, image: np.ndarray) -> None:
    """Write uint8 RGB to ``path`` (format from the suffix)."""
    from PIL import Image

    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)


def is_still_image(path) -> bool:
    """True when ``path`` is a single-frame picture (an animated GIF/WebP counts as a video)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1) <= 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


# ----------------------------------------------------------------------------------------- reading


class VideoReader:
    """A driving clip read lazily, frame by frame, as uint8 RGB (H, W, 3).

    A still picture is a one-frame clip. ``frame_count`` is an estimate from the container
    (duration x fps); ``count_frames()`` decodes the clip to count exactly.
    Iterating twice reads the file twice. Raises BadInputError for empty or unreadable files.
    """

    def __init__(self, path):
        self.path = Path(path)
        _check_file(self.path, "driving clip", VIDEO_HINT)
        self._image: np.ndarray | None = None
        self._gens: list = []
        self.frames_read = 0
        self.warning: str | None = None  # set when decoding stopped early on damaged data
        if is_still_image(self.path):
            self._image = load_image(self.path)
            self.fps = DEFAULT_IMAGE_FPS
            self.size = (self._image.shape[1], self._image.shape[0])
            self.duration = 1.0 / self.fps
            self.has_audio = False
            self.codec = "image"
            return
        meta = self._probe()
        self.fps = float(meta.get("fps") or DEFAULT_IMAGE_FPS)
        if not np.isfinite(self.fps) or self.fps <= 0 or self.fps > 1000:
            self.fps = DEFAULT_IMAGE_FPS
        self.size = tuple(int(v) for v in meta["size"])  # (width, height), after rotation
        self.duration = float(meta.get("duration") or 0.0)
        self.has_audio = bool(meta.get("audio_codec"))
        self.codec = str(meta.get("codec", ""))

    # -- properties
    @property
    def is_image(self) -> bool:
        return self._image is not None

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def frame_count(self) -> int:
        """Estimated number of frames (exact for pictures)."""
        if self._image is not None:
            return 1
        return max(1, int(round(self.duration * self.fps)))

    def count_frames(self) -> int:
        """Exact number of frames (decodes the whole clip once, without keeping frames)."""
        if self._image is not None:
            return 1
        import imageio_ffmpeg

        try:
            return int(imageio_ffmpeg.count_frames_and_secs(str(self.path))[0])
        except (OSError, RuntimeError, ValueError) as err:
            raise BadInputError(f"Could not count the frames of {_describe(self.path)} ({err}).", VIDEO_HINT) from None

    # -- reading
    def _open(self):
        import imageio_ffmpeg

        gen = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
        try:
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as err:
            gen.close()
            last = str(err).strip().splitlines()[-1:] or [""]
            raise BadInputError(
                f"{_describe(self.path)} is not a video this program can read: it may be damaged or truncated "
                f"(ffmpeg: {last[0].strip()}).",
                VIDEO_HINT,
            ) from None
        if not meta.get("size") or not meta.get("codec"):
            gen.close()
            raise BadInputError(f"{_describe(self.path)} has no video track.", VIDEO_HINT)
        return gen, meta

    def _probe(self) -> dict:
        gen, meta = self._open()
        gen.close()
        return meta

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._image is not None:
            self.frames_read = 1
            yield self._image.copy()
            return
        gen, meta = self._open()
        self._gens.append(gen)
        w, h = (int(v) for v in meta["size"])
        n = 0
        try:
            for raw in gen:
                frame = np.frombuffer(raw, dtype=np.uint8)
                if frame.size != w * h * 3:
                    break
                n += 1
                self.frames_read = n
                yield frame.reshape(h, w, 3).copy()
        except (OSError, RuntimeError) as err:
            self.warning = f"decoding stopped after {n} frames ({str(err).strip().splitlines()[-1:]})"
            if n == 0:
                raise BadInputError(f"{_describe(self.path)} could not be decoded ({err}).", VIDEO_HINT) from None
        finally:
            gen.close()
            if gen in self._gens:
                self._gens.remove(gen)
        if n == 0:
            raise BadInputError(f"{_describe(self.path)} contains no video frames.", VIDEO_HINT)
        if self.warning is None and n < 0.9 * self.frame_count - 1:
            self.warning = f"the clip ended after {n} of about {self.frame_count} frames; it may be truncated"

    def first_frame(self) -> np.ndarray:
        for frame in self:
            return frame.copy()
        raise BadInputError(f"{_describe(self.path)} contains no video frames.", VIDEO_HINT)

    def close(self) -> None:
        """Stop any decoder still running (iterators left half-way)."""
        for gen in list(self._gens):
            gen.close()
        self._gens.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.fps:g} fps, "
            f"~{self.frame_count} frames, audio={self.has_audio})"
        )


def has_audio(path) -> bool:
    """True when ``path`` is a media file with an audio track."""
    return audio_duration(path) is not None


_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def _run_ffmpeg(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True, text=True, timeout=timeout
    )


def audio_duration(path) -> float | None:
    """Seconds of the first audio track (decoded), or None when there is none."""
    proc = _run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-f", "null", "-"])
    if proc.returncode != 0:
        return None
    times = _TIME.findall(proc.stderr)
    if not times:
        return None
    hh, mm, ss = times[-1]
    return int(hh) * 3600 + int(mm) * 60 + float(ss)


def probe_streams(path) -> dict:
    """What ffmpeg reports for a file: {'video': codec or None, 'pix_fmt', 'size', 'audio': codec or None}."""
    proc = _run_ffmpeg(["-i", str(path)])
    info: dict = {"video": None, "pix_fmt": None, "size": None, "audio": None}
    for line in proc.stderr.splitlines():
        line = line.strip()
        if line.startswith("Stream #") and "Video:" in line and info["video"] is None:
            spec = line.split("Video:", 1)[1].strip()
            info["video"] = spec.split()[0].strip(",")
            fmt = re.search(r"\b(yuv\w+|rgb\w+|gray\w*|nv12)\b", spec)
            info["pix_fmt"] = fmt.group(1) if fmt else None
            size = re.search(r"\b(\d{2,5})x(\d{2,5})\b", spec)
            info["size"] = (int(size.group(1)), int(size.group(2))) if size else None
        elif line.startswith("Stream #") and "Audio:" in line and info["audio"] is None:
            info["audio"] = line.split("Audio:", 1)[1].strip().split()[0].strip(",")
    return info


# ----------------------------------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class VideoWriter:
    """Write uint8 RGB frames to an H.264 MP4 (yuv420p), atomically, optionally with audio.

    Frames go to a hidden temp file beside ``path``; ``close()`` muxes the first audio track of
    ``audio_from`` (trimmed to the video's length) and renames the result onto ``path``. On an
    error, ``abort()`` (or leaving a ``with`` block by an exception) removes the temp files and
    leaves any existing ``path`` untouched. Odd sizes are padded to even (black edge).
    ``max_seconds``: frames past that time are refused (``write`` returns False).
    """

    def __init__(self, path, fps: float, audio_from=None, max_seconds: float | None = None, crf: int = 18,
                 preset: str = "veryfast"):
        self.path = Path(path)
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.audio_from = Path(audio_from) if audio_from else None
        self.max_frames = None if max_seconds is None else max(1, int(round(max_seconds * self.fps)))
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the frames given
        self._proc: subprocess.Popen | None = None
        self._log = None
        self._temps: list[Path] = []
        self._ready: Path | None = None  # finished temp file, waiting for commit()
        self._done = False
        if self.path.exists() and self.path.is_dir():
            raise TalkingHeadError(
                f"The output {_describe(self.path)} is a folder.", "Give a file name ending in .mp4.")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # -- temp files beside the target, so the final rename is atomic on the same filesystem
    def _temp(self, tag: str) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".{tag}.mp4", dir=self.path.parent)
        os.close(fd)
        p = Path(name)
        self._temps.append(p)
        return p

    def _fps_arg(self) -> str:
        return str(Fraction(self.fps).limit_denominator(1001))

    def _start(self, width: int, height: int) -> None:
        self.size = (width, height)
        self._video_tmp = self._temp("video")
        self._log = tempfile.TemporaryFile()
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", self._fps_arg(), "-i", "-",
            "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
            "-f", "mp4", str(self._video_tmp),
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)

    def _ffmpeg_log(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace").strip()[-800:]

    def write(self, frame: np.ndarray) -> bool:
        """Append one uint8 RGB frame; False (frame ignored) once ``max_seconds`` is reached."""
        if self._done:
            raise RuntimeError("VideoWriter is closed")
        if self.max_frames is not None and self.frames_written >= self.max_frames:
            return False
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
        frame = frame[..., :3]
        if frame.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames, got {frame.dtype}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif (w, h) != self.size:
            raise ValueError(f"frame size {w}x{h} differs from the first frame's {self.size[0]}x{self.size[1]}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError):
            self.abort()
            raise TalkingHeadError(
                f"Writing the video {_describe(self.path)} failed: {self._ffmpeg_log() or 'ffmpeg stopped'}.",
                "Check there is free disk space and that the folder is writable.",
            ) from None
        self.frames_written += 1
        return True

    @property
    def full(self) -> bool:
        return self.max_frames is not None and self.frames_written >= self.max_frames

    def _mux_audio(self, video: Path) -> Path:
        """Video + the first audio track of ``audio_from`` trimmed to the video length; no audio -> video."""
        if self.audio_from is None or not has_audio(self.audio_from):
            return video
        out = self._temp("mux")
        seconds = self.frames_written / self.fps
        proc = _run_ffmpeg([
            "-loglevel", "error", "-y", "-i", str(video), "-i", str(self.audio_from),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k",
            "-t", f"{seconds:.6f}", "-movflags", "+faststart", "-f", "mp4", str(out),
        ])
        if proc.returncode != 0:
            raise TalkingHeadError(
                f"Adding the audio of {_describe(self.audio_from)} failed: {proc.stderr.strip()[-400:]}",
                "Try again without audio (the picture is fine), or re-encode the driving clip.",
            )
        return out

    def finish(self) -> None:
        """Finish encoding and add audio into a temp file beside ``path``; ``commit()`` moves it there.

        Two outputs that belong together (video + side-by-side) are finished first and committed
        after, so an error in either leaves neither.
        """
        if self._done or self._ready is not None:
            return
        try:
            if self._proc is None or self.frames_written == 0:
                raise TalkingHeadError(
                    f"No frames were written to {_describe(self.path)}.", "The driving clip gave no usable frames."
                )
            self._proc.stdin.close()
            code = self._proc.wait()
            if code != 0:
                raise TalkingHeadError(
                    f"Encoding {_describe(self.path)} failed: {self._ffmpeg_log() or f'ffmpeg exit {code}'}.",
                    "Check there is free disk space and that the folder is writable.",
                )
            self._ready = self._mux_audio(self._video_tmp)
            os.chmod(self._ready, 0o666 & ~_umask())
        except BaseException:
            self.abort()
            raise

    def commit(self) -> Path:
        """Move the finished file onto ``path`` (atomic rename); returns ``path``."""
        if self._done:
            return self.path
        self.finish()
        try:
            os.replace(self._ready, self.path)
            self._temps.remove(self._ready)
        except BaseException:
            self.abort()
            raise
        self._cleanup()
        self._done = True
        return self.path

    def close(self) -> Path:
        """Finish encoding, add audio, and move the result onto ``path``; returns ``path``."""
        self.finish()
        return self.commit()

    def abort(self) -> None:
        """Stop encoding and delete temp files; an existing file at ``path`` stays as it was."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        self._cleanup()
        self._done = True

    def _cleanup(self) -> None:
        for p in self._temps:
            p.unlink(missing_ok=True)
        self._temps.clear()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        if not getattr(self, "_done", True):
            self.abort()


def write_video(path, frames, fps: float, audio_from=None) -> Path:
    """Write an iterable of uint8 RGB frames to ``path`` (see VideoWriter)."""
    with VideoWriter(path, fps, audio_from=audio_from) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
