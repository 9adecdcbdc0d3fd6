"""Desktop live mode: ``python app.py --desktop`` under Xvfb with a real clip as the camera, and the
live session / camera logic it uses (drop frames instead of queueing them, hotkeys)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from talking_head import video
from talking_head.live import WINDOW_TITLE, CameraFeed, DesktopLive, LiveSession
from tests.conftest import ROOT, media


def _start_xvfb():
    """A private Xvfb display; returns (process, ':N')."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    return proc, f":{number}"


def _window_geometry(display: str) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the live window on ``display``, or None while it is not mapped."""
    proc = subprocess.run(["xwininfo", "-display", display, "-name", WINDOW_TITLE], capture_output=True, text=True)
    if proc.returncode != 0 or "IsViewable" not in proc.stdout:
        return None
    values = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        values[key] = value.strip()
    return (int(values["Absolute upper-left X"]), int(values["Absolute upper-left Y"]), int(values["Width"]),
            int(values["Height"]))


def _not_blank(image: np.ndarray) -> bool:
    return float(image.astype(np.float32).std()) > 20.0


def test_desktop_window_shows_the_animated_source(tmp_path):
    clip, face = media("driving/talk_vox.mp4"), media("sources/photo_portrait.png")
    xvfb, display = _start_xvfb()
    shot = tmp_path / "window.png"
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    cmd = [sys.executable, str(ROOT / "app.py"), "--desktop", "--camera", str(clip), "--source", str(face),
           "--max-frames", "60", "--screenshot", str(shot), "--no-virtual-camera"]
    try:
        app = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        on_screen = None
        if shutil.which("xwininfo"):
            deadline = time.monotonic() + 90
            while on_screen is None and app.poll() is None and time.monotonic() < deadline:
                geometry = _window_geometry(display)
                if geometry is not None:
                    time.sleep(0.5)  # let a few animated frames be drawn
                    from PIL import ImageGrab

                    x, y, w, h = geometry
                    on_screen = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))[y:y + h, x:x + w]
                time.sleep(0.2)
        out, _ = app.communicate(timeout=120)
    finally:
        xvfb.kill()
        xvfb.wait()
    assert app.returncode == 0, out[-2000:]
    assert "animated 60 frames" in out
    window = video.load_image(shot)
    height = 360
    assert window.shape[0] > height and window.shape[1] > 2 * height
    animated = window[:height, -height:]
    camera = window[:height, :height]
    assert _not_blank(animated) and _not_blank(camera)
    assert float(np.abs(animated.astype(np.int16) - camera).mean()) > 20  # the source, not the camera picture
    if shutil.which("xwininfo"):
        assert on_screen is not None, "no window appeared on the X display"
        assert _not_blank(on_screen[:height, -height:]), "the window's animated half is blank"


def test_camera_feed_drops_frames_when_the_consumer_is_slow():
    clip = media("driving/expressions_green.mp4")  # 25 fps
    feed = CameraFeed(str(clip), loop=True)
    try:
        assert feed.latest(timeout=10) is not None
        started = time.perf_counter()
        for _ in range(4):
            time.sleep(0.2)  # a model slower than the camera
            assert feed.latest(timeout=2) is not None
        elapsed = time.perf_counter() - started
    finally:
        feed.close()
    # at 25 fps about 5 frames arrive per 0.2 s: all but the newest are skipped, none wait in a queue
    assert feed.skipped >= int(elapsed * 25) - 8


def test_live_session_drops_a_frame_instead_of_waiting():
    from talking_head.registry import load_model

    frames = [f for i, f in zip(range(4), video.VideoReader(media("driving/talk_vox.mp4")))]
    session = LiveSession()
    session.configure(load_model("landmark"), video.load_image(media("sources/photo_einstein.jpg")))
    barrier = threading.Barrier(2)
    waits: list[float] = []

    def worker(offset):
        barrier.wait()
        for frame in frames[offset::2] * 3:
            t = time.perf_counter()
            result = session.step(frame, keypoints=True, mask=True)
            if result is None:
                waits.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert session.processed + session.dropped == 12
    assert session.dropped >= 1 and session.processed >= 1
    assert max(waits) < 0.05  # a dropped frame returns at once
    assert session.last.output.dtype == np.uint8 and _not_blank(session.last.output)


def test_desktop_hotkeys_switch_sources_overlays_and_calibrate():
    from talking_head.engine import AnimateSettings
    from talking_head.registry import load_model

    sources = [media("sources/photo_portrait.png"), media("sources/photo_einstein.jpg")]
    feed = CameraFeed(str(media("driving/talk_vox.mp4")))
    try:
        app = DesktopLive(load_model("landmark"), sources, feed, AnimateSettings(batch_size=1), show_window=False,
                          virtual_camera=False)
        assert app.run(max_frames=2) == 2
        first = app.session.last.output
        assert app.handle_key(ord("n")) and app.index == 1 and "photo_einstein" in app.message
        assert app.handle_key(ord("k")) and app.keypoints
        assert app.handle_key(ord("m")) and app.mask
        assert app.handle_key(ord("c"))
        assert app.run(max_frames=3) == 3
        assert app.session.calibrations == 1
        assert app.session.last.output.shape != first.shape or np.abs(
            app.session.last.output.astype(np.int16) - first).mean() > 20  # another face now
        assert app.handle_key(ord("p")) and app.index == 0
        assert app.handle_key(-1)  # no key
        assert not app.handle_key(ord("q")) and not app.handle_key(27)
    finally:
        feed.close()
