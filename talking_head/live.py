"""Live animation from a camera: one viewer's session (shared by the studio's Live tab) and the
desktop mode, an OpenCV window with the camera and the animated source side by side.

    python app.py --desktop --source face.jpg            # webcam 0
    python -m talking_head live --camera clip.mp4 --max-frames 50 --screenshot shot.png

Frames are dropped, never queued: the session animates the newest camera frame when it is free,
so latency stays one model step however slow the model is.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talking_head.errors import BadInputError, TalkingHeadError

WINDOW_TITLE = "Talking head live"
STATUS_HEIGHT = 26  # per status line
LIVE_MAX_CROP = 384  # source crop size cap for models that run at the picture's resolution
HOTKEYS = "c calibrate  n/p next/prev source  k keypoints  m mask  q quit"


# ----------------------------------------------------------------------------------------- session

LIVE_TRACK_EVERY = 3  # live: face detection on every 3rd camera frame (10 per second at 30 fps), box held between


class FrameRate:
    """Frames per second from the times frames were shown (exponential average of the intervals)."""

    def __init__(self, smoothing: float = 0.8):
        self.smoothing = smoothing
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            dt = max(1e-6, now - self._last)
            self._interval = dt if self._interval is None else self.smoothing * self._interval + (1 - self.smoothing) * dt
        self._last = now

    @property
    def fps(self) -> float:
        return 0.0 if not self._interval else 1.0 / self._interval


@dataclass
class LiveFrame:
    """What one live step produced: the animated picture and the (cropped) camera view."""

    output: np.ndarray  # animated source, overlays drawn when asked
    camera: np.ndarray  # the driving crop the model saw, overlays drawn when asked
    latency_ms: float


class LiveSession:
    """One viewer's live animation: model + source + calibration + meters.

    ``step`` is safe to call from several threads: a call that arrives while the previous one is
    still running returns None at once (the frame is dropped) instead of waiting.
    """

    def __init__(self):
        self.engine = None
        self.key: tuple | None = None  # what the engine was built for (model, source, options ...)
        self.warnings: list[str] = []
        self.error: str | None = None
        self.calibrations = 0
        self.processed = 0
        self.dropped = 0
        self.latency_ms = 0.0
        self.rate = FrameRate()
        self.last: LiveFrame | None = None
        self._calibrate_next = False
        self._lock = threading.Lock()

    # -- configuration
    def configure(self, model, source: np.ndarray, settings=None, key: tuple | None = None,
                  max_crop: int | None = LIVE_MAX_CROP) -> list[str]:
        """Use ``model`` to animate ``source``; forgets the calibration. Returns face-detection warnings.

        For models that run at the picture's own resolution, the source is scaled down so its face
        crop is at most ``max_crop`` pixels (real time matters more than detail here).
        """
        from talking_head.engine import AnimateSettings, Engine

        with self._lock:
            engine = Engine(model, settings or AnimateSettings(batch_size=1, track_every=LIVE_TRACK_EVERY))
            self.warnings = engine.set_source(source)
            box = engine.source_box
            if max_crop and engine.resolution is None and box is not None and box.size > max_crop * 1.05:
                import cv2

                f = max_crop / box.size
                small = cv2.resize(source, (max(8, round(source.shape[1] * f)), max(8, round(source.shape[0] * f))),
                                   interpolation=cv2.INTER_AREA)
                self.warnings = engine.set_source(small)
            self.engine, self.key = engine, key
            self.calibrations, self.error, self.last = 0, None, None
            self._calibrate_next = False
            return self.warnings

    def set_options(self, options) -> None:
        """Use other transfer options (a model's controls) from the next frame on; the source stays prepared.

        Like ``step``, never waits: while a frame is being animated the change waits for the next call.
        """
        from dataclasses import replace

        if not self._lock.acquire(blocking=False):
            return
        try:
            if self.engine is not None and self.engine.settings.options != options:
                self.engine.settings = replace(self.engine.settings, options=options)
        finally:
            self._lock.release()

    def fail(self, key: tuple | None, message: str) -> None:
        """Configuring for ``key`` failed: keep the message, do not retry until the key changes."""
        with self._lock:
            self.engine, self.key, self.error, self.last = None, key, message, None

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def request_calibration(self) -> None:
        """The next camera frame becomes the neutral reference."""
        self._calibrate_next = True

    # -- frames
    def step(self, frame: np.ndarray, keypoints: bool = False, mask: bool = False) -> LiveFrame | None:
        """Animate one camera frame; None when busy with the previous one (dropped) or not configured."""
        if self.engine is None:
            return None
        if not self._lock.acquire(blocking=False):
            self.dropped += 1
            return None
        try:
            started = time.perf_counter()
            try:
                if self._calibrate_next:
                    self._calibrate_next = False
                    self.engine.calibrate(frame)
                    self.calibrations += 1
                animated = self.engine.animate_live(frame)
            except TalkingHeadError as exc:  # no face yet in the camera, ...
                self.error = exc.user_message()
                return None
            self.error = None
            output, camera = overlay_views(animated, keypoints, mask)
            self.latency_ms = (time.perf_counter() - started) * 1000.0
            self.rate.tick()
            self.processed += 1
            self.last = LiveFrame(output, camera, self.latency_ms)
            return self.last
        finally:
            self._lock.release()

    @property
    def fps(self) -> float:
        return self.rate.fps

    def readout(self, skipped: int | None = None) -> str:
        """fps, model step time, frames, reference; ``skipped``: camera frames dropped so far, when known."""
        if self.engine is None:
            return f"not running: {self.error.replace(chr(10), ' ')}" if self.error else "not started: choose a source picture"
        reference = f"calibrated ({self.calibrations}x)" if self.calibrations else "first frame"
        dropped = self.dropped + (skipped or 0)
        text = (f"{self.fps:.1f} fps | latency {self.latency_ms:.0f} ms | frames {self.processed} | "
                + (f"dropped {dropped} | " if skipped is not None or self.dropped else "")
                + f"reference: {reference}")
        if self.error:
            text += f" | {self.error.splitlines()[0]}"
        return text


def overlay_views(animated, keypoints: bool, mask: bool) -> tuple[np.ndarray, np.ndarray]:
    """(animated output, camera crop) with keypoints / occlusion mask drawn when asked."""
    from talking_head import viz

    result = animated.result
    output = np.asarray(animated.output)
    camera = np.asarray(animated.driving_crop)
    same_frame = output.shape == result.frame.shape  # not pasted back / resized: keypoints line up
    if mask and result.mask is not None:
        heat = viz.mask_to_image(result.mask, (output.shape[1], output.shape[0]))
        output = (0.55 * output + 0.45 * heat).astype(np.uint8)
    if keypoints and same_frame and (result.source_keypoints is not None or result.driving_keypoints is not None):
        output = viz.keypoint_panel(output, result.source_keypoints, result.driving_keypoints, camera.shape[:2])
    if keypoints and result.driving_keypoints is not None:
        camera = viz.draw_keypoints(camera, result.driving_keypoints)
    return output, camera


# ----------------------------------------------------------------------------------------- cameras


class CameraFeed:
    """Frames from a webcam (device index) or a video file played in real time, newest only.

    A background thread reads frames; ``latest`` returns the newest one not yet taken, so a slow
    consumer skips frames instead of falling behind. A file loops when ``loop`` is set.
    """

    def __init__(self, spec: str | int, loop: bool = True):
        self.spec = spec
        self.loop = loop
        self.finished = False
        self.error: str | None = None
        self.fps = 30.0
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._taken = 0
        self.skipped = 0  # frames the consumer never took (it was busy)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._capture = None
        if isinstance(spec, int) or str(spec).isdigit():
            import cv2

            self._capture = cv2.VideoCapture(int(spec))
            if not self._capture.isOpened():
                raise BadInputError(f"Camera {spec} could not be opened.",
                                    "Check that a webcam is connected and free, or pass --camera VIDEO_FILE.")
            self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 30.0) or 30.0
            target = self._read_device
        else:
            from talking_head import video

            self._reader = video.VideoReader(spec)  # BadInputError for a missing/unreadable file
            self.fps = self._reader.fps
            target = self._read_file
        self._thread = threading.Thread(target=self._run, args=(target,), daemon=True, name="camera")
        self._thread.start()

    def _publish(self, frame: np.ndarray) -> None:
        with self._cond:
            self._frame = frame
            self._seq += 1
            self._cond.notify_all()

    def _run(self, target) -> None:
        try:
            target()
        except TalkingHeadError as exc:
            self.error = exc.user_message()
        except (OSError, RuntimeError) as exc:
            self.error = f"camera stopped: {exc}"
        finally:
            with self._cond:
                self.finished = True
                self._cond.notify_all()

    def _read_device(self) -> None:
        import cv2

        while not self._stop.is_set():
            ok, bgr = self._capture.read()
            if not ok:
                self.error = f"camera {self.spec} stopped giving frames"
                return
            self._publish(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def _read_file(self) -> None:
        period = 1.0 / max(1e-3, self.fps)
        while not self._stop.is_set():
            start = time.perf_counter()
            for i, frame in enumerate(self._reader):
                if self._stop.is_set():
                    return
                delay = start + i * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self._publish(frame)
            if not self.loop:
                return

    def latest(self, timeout: float = 1.0) -> np.ndarray | None:
        """The newest frame not returned before; waits up to ``timeout``; None when none came."""
        with self._cond:
            if self._seq == self._taken and not self.finished:
                self._cond.wait_for(lambda: self._seq != self._taken or self.finished, timeout)
            if self._seq == self._taken:
                return None
            if self._taken:  # frames published before the first take (model still loading) do not count
                self.skipped += self._seq - self._taken - 1
            self._taken = self._seq
            return self._frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self._capture is not None:
            self._capture.release()
        else:
            self._reader.close()


# ----------------------------------------------------------------------------------------- desktop


def compose_window(camera: np.ndarray, live: LiveFrame | None, status: str, height: int = 360,
                   inset: bool = False) -> np.ndarray:
    """camera | animated, both ``height`` tall, with a status bar below (uint8 RGB)."""
    import cv2

    from talking_head import viz

    cam = camera
    cam_w = max(1, int(round(cam.shape[1] * height / cam.shape[0])))
    left = cv2.resize(cam, (cam_w, height), interpolation=cv2.INTER_AREA)
    if live is not None:
        out_h, out_w = live.output.shape[:2]  # a whole picture (no crop) keeps its shape
        right = cv2.resize(live.output, (max(1, round(out_w * height / out_h)), height), interpolation=cv2.INTER_AREA)
        if inset:  # the crop the model saw, with its keypoints, in the camera's corner
            side = height // 3
            small = cv2.resize(live.camera, (side, side), interpolation=cv2.INTER_AREA)
            left = left.copy()
            left[height - side:, :side] = small
    else:
        right = viz.placeholder(height, "waiting for a face")
    body = np.concatenate([left, np.zeros((height, 4, 3), np.uint8), right], axis=1)
    lines = status.split("\n")
    bar = np.full((STATUS_HEIGHT * len(lines), body.shape[1], 3), 24, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(bar, line[:140], (8, STATUS_HEIGHT * (i + 1) - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (235, 235, 235), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([body, bar], axis=0))


def _open_virtual_camera(width: int, height: int, fps: float, wanted: bool | None):
    """A pyvirtualcam camera, or None (not installed, no backend, or not wanted)."""
    if wanted is False:
        return None
    try:
        import pyvirtualcam  # type: ignore[import-not-found]
    except ImportError:
        if wanted:
            print("virtual camera: pyvirtualcam is not installed (pip install pyvirtualcam)", file=sys.stderr)
        return None
    try:
        cam = pyvirtualcam.Camera(width=width, height=height, fps=max(1, round(fps)))
    except RuntimeError as exc:  # no v4l2loopback / OBS backend
        print(f"virtual camera: not available ({exc})", file=sys.stderr)
        return None
    print(f"virtual camera: sending to {cam.device}", file=sys.stderr)
    return cam


def _source_list(paths: list[str]) -> list[Path]:
    from talking_head.examples import default_sources
    from talking_head.video import IMAGE_SUFFIXES

    if not paths:
        found = default_sources()
        if not found:
            raise BadInputError("No source picture given and none found in examples/.", "Pass --source FACE.jpg.")
        return found
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    if not out:
        raise BadInputError(f"No pictures found in {', '.join(paths)}.", "Pass --source FACE.jpg.")
    return out


class DesktopLive:
    """The desktop live loop: camera in, window (and virtual camera) out, hotkeys."""

    def __init__(self, model, sources: list[Path], camera: CameraFeed, settings, height: int = 360,
                 show_window: bool = True, virtual_camera: bool | None = None):
        self.model = model
        self.sources = sources
        self.index = 0
        self.camera = camera
        self.settings = settings
        self.height = height
        self.show_window = show_window
        self.virtual_camera = virtual_camera
        self.keypoints = False
        self.mask = False
        self.session = LiveSession()
        self.frame: np.ndarray | None = None  # the last composed window picture
        self.message = ""
        self._vcam = None

    def load_source(self, index: int) -> None:
        from talking_head import video

        self.index = index % len(self.sources)
        path = self.sources[self.index]
        try:
            warnings = self.session.configure(self.model, video.load_image(path), self.settings)
            self.message = f"source {path.name}" + (f" ({warnings[0]})" if warnings else "")
        except TalkingHeadError as exc:
            self.message = f"{path.name}: {exc.message}"
        print(self.message, file=sys.stderr)

    def handle_key(self, key: int) -> bool:
        """Act on a key code from cv2.waitKey; False means quit."""
        if key < 0:
            return True
        ch = chr(key & 0xFF).lower()
        if ch in ("q", "\x1b"):
            return False
        if ch == "c":
            self.session.request_calibration()
        elif ch == "n":
            self.load_source(self.index + 1)
        elif ch == "p":
            self.load_source(self.index - 1)
        elif ch == "k":
            self.keypoints = not self.keypoints
        elif ch == "m":
            self.mask = not self.mask
        return True

    def status(self) -> str:
        overlays = "+".join(n for n, on in (("keypoints", self.keypoints), ("mask", self.mask)) if on) or "none"
        return (f"{self.session.readout(skipped=self.camera.skipped)}\n"
                f"{self.message} | overlays: {overlays} | keys: {HOTKEYS}")

    def run(self, max_frames: int | None = None, screenshot: Path | None = None) -> int:
        """Process frames until quit, the camera ends or ``max_frames`` animated frames; returns that count."""
        import cv2

        start = self.index
        for i in range(len(self.sources)):  # the first source with a usable face
            if self.session.engine is not None:
                break
            self.load_source(start + i)
        if self.session.engine is None:
            raise BadInputError(f"None of the source pictures has a usable face ({self.message}).",
                                "Pass --source with a picture of a face.")
        if self.show_window:
            try:
                cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_AUTOSIZE)
            except cv2.error as exc:
                raise TalkingHeadError(f"Cannot open a window ({exc}).",
                                       "Run on a desktop session (DISPLAY set), or use --headless.") from None
        done = 0
        try:
            while max_frames is None or done < max_frames:
                frame = self.camera.latest(timeout=0.5)
                if frame is None:
                    if self.camera.finished:
                        break
                    if self.show_window and not self.handle_key(cv2.waitKey(1)):
                        break
                    continue
                live = self.session.step(frame, self.keypoints, self.mask)
                if live is not None:
                    done += 1
                    self._send_virtual(live.output)
                self.frame = compose_window(frame, live or self.session.last, self.status(), self.height,
                                            inset=self.keypoints)
                if self.show_window:
                    cv2.imshow(WINDOW_TITLE, cv2.cvtColor(self.frame, cv2.COLOR_RGB2BGR))
                    if not self.handle_key(cv2.waitKey(1)):
                        break
                    if cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) < 1:
                        break
        finally:
            if screenshot is not None and self.frame is not None:
                from talking_head import video

                video.save_image(screenshot, self.frame)
            if self._vcam is not None:
                self._vcam.close()
            if self.show_window:
                cv2.destroyAllWindows()
                cv2.waitKey(1)
        if self.camera.error:
            print(self.camera.error, file=sys.stderr)
        return done

    def _send_virtual(self, output: np.ndarray) -> None:
        if self.virtual_camera is False:
            return
        import cv2

        if self._vcam is None:
            self._vcam = _open_virtual_camera(512, 512, self.camera.fps, self.virtual_camera)
            if self._vcam is None:
                self.virtual_camera = False
                return
        self._vcam.send(np.ascontiguousarray(cv2.resize(output, (512, 512), interpolation=cv2.INTER_AREA)))


def build_parser() -> argparse.ArgumentParser:
    from talking_head.registry import DEFAULT_MODEL

    p = argparse.ArgumentParser(prog="python -m talking_head live",
                                description="Animate a face picture live from a webcam. Keys: " + HOTKEYS)
    p.add_argument("--source", "-s", action="append", default=[],
                   help="face picture or folder of pictures (repeatable; default: examples/)")
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    p.add_argument("--camera", default="0", help="webcam index (default 0) or a video file played as a camera")
    p.add_argument("--no-loop", action="store_true", help="stop at the end of a --camera video file")
    p.add_argument("--absolute", action="store_true", help="copy the camera pose instead of relative motion")
    p.add_argument("--no-crop", action="store_true", help="use whole frames, no face crop")
    p.add_argument("--device", help="cpu, cuda, mps (default: best available)")
    p.add_argument("--height", type=int, default=360, help="window height of each half in pixels")
    vc = p.add_mutually_exclusive_group()
    vc.add_argument("--virtual-camera", dest="virtual_camera", action="store_true", default=None,
                    help="send the animation to a virtual camera (pyvirtualcam; default: when installed)")
    vc.add_argument("--no-virtual-camera", dest="virtual_camera", action="store_false")
    p.add_argument("--headless", action="store_true", help="no window (virtual camera / screenshot only)")
    p.add_argument("--max-frames", type=int, help="stop after this many animated frames")
    p.add_argument("--screenshot", help="save the last window picture to this PNG on exit")
    p.add_argument("--offline", action="store_true", help="never download weights")
    return p


def main(argv: list[str] | None = None) -> int:
    """Desktop live mode; returns an exit status (2 for a user error)."""
    args = build_parser().parse_args(argv)
    try:
        from talking_head.engine import AnimateSettings, transfer_options
        from talking_head.registry import get_card, load_model

        sources = _source_list(args.source)
        camera = CameraFeed(args.camera, loop=not args.no_loop)
        try:
            model = load_model(args.model, device=args.device, allow_download=not args.offline,
                               progress=lambda f, msg: print(f"{msg} {f:.0%}", file=sys.stderr), kind="animator")
            card = get_card(args.model)
            options = transfer_options(card, "absolute" if args.absolute else "relative", True,
                                       card.control_values())
            settings = AnimateSettings(options=options, auto_crop=not args.no_crop, batch_size=1,
                                       track_every=LIVE_TRACK_EVERY)
            app = DesktopLive(model, sources, camera, settings, height=args.height,
                              show_window=not args.headless, virtual_camera=args.virtual_camera)
            frames = app.run(max_frames=args.max_frames, screenshot=Path(args.screenshot) if args.screenshot else None)
        finally:
            camera.close()
    except TalkingHeadError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"animated {frames} frames, {app.session.fps:.1f} fps, latency {app.session.latency_ms:.0f} ms",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
