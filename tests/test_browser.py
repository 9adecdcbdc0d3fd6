"""The studio in headless Chromium: page, Animate flow, Live tab with a fake camera playing a real clip.

Set TALKING_HEAD_SCREENSHOTS=1 to also refresh the screenshots in docs/ (made from examples/ only).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, media

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TIMEOUT_MS = 90_000
FPS_PATTERN = re.compile(r"(\d+(?:\.\d+)?) fps")


def make_y4m(clip: Path, out: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    """The first seconds of ``clip`` as a y4m file for Chromium's fake camera (bundled ffmpeg)."""
    from talking_head.video import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-t", str(seconds),
                    "-vf", f"scale=320:320,fps={fps}", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with sync_api.sync_playwright() as p:
        yield p


def launch(playwright, camera: Path):
    """Headless Chromium whose (fake) webcam plays ``camera`` (a y4m file)."""
    return playwright.chromium.launch(executable_path=CHROMIUM,
                                      args=BASE_ARGS + [f"--use-file-for-fake-video-capture={camera}"])


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    camera = make_y4m(media("driving/talk_vox.mp4"), tmp_path_factory.mktemp("camera") / "camera.y4m")
    b = launch(playwright, camera)
    yield b
    b.close()


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#animate-run")
    return page


def readout(page) -> str:
    return page.locator("#live-readout textarea").input_value()


def start_live(page, tab: bool = True) -> None:
    if tab:
        page.get_by_role("tab", name="Live").click()
    page.locator("#live-webcam [title='grant webcam access'] button").click()
    page.locator("#live-webcam button[aria-label='capture photo']").click()  # "Record": starts the stream


def wait_fps(page) -> float:
    page.wait_for_function(
        """() => { const t = document.querySelector('#live-readout textarea');
                   const m = t && t.value.match(/([0-9.]+) fps/); return m && parseFloat(m[1]) > 0; }""")
    return float(FPS_PATTERN.search(readout(page)).group(1))


def test_page_loads_with_every_model_and_its_status(browser, studio_url):
    page = open_page(browser, studio_url)
    for tab in ("Animate", "Live", "Models"):
        assert page.get_by_role("tab", name=tab).is_visible()
    assert "landmark (ready)" in page.locator("#animate-model input").input_value()
    # a model without weights, offline: the page says which file to place where (no download button)
    picker = page.locator("#animate-model input")
    picker.click()
    picker.fill("fomm.vox-adv")
    page.get_by_role("option", name=re.compile(r"^fomm\.vox-adv \(weights missing\)")).click()
    page.wait_for_function("() => document.querySelector('#animate-weights').innerText.includes('cannot be reached')")
    note = page.locator("#animate-weights").inner_text()
    assert "vox-adv-cpk.pth.tar" in note and "weights" in note
    assert not page.locator("#animate-download").is_visible()
    page.get_by_role("tab", name="Models").click()
    table = page.locator("#models-table")
    table.wait_for()
    text = table.inner_text()  # the first rows (the table renders what is in view)
    assert "landmark" in text and "none needed" in text
    assert "fomm.vox-adv" in text and "missing" in text
    cards = page.locator("#tab-models").inner_text()
    from talking_head.registry import list_models

    assert all(f"{card.name}: {card.title}" in cards for card in list_models())
    page.context.close()


def test_animate_shows_previews_and_an_output_video(browser, studio_url):
    page = open_page(browser, studio_url)
    page.locator("#animate-source input[type=file]").set_input_files(str(media("sources/photo_portrait.png")))
    page.locator("#animate-driving input[type=file]").set_input_files(str(media("driving/talk_480.mp4")))
    page.wait_for_selector("#animate-preview-first img")  # previews before the render
    page.locator("#animate-max-seconds input").fill("1")
    page.locator("#animate-max-seconds input").press("Enter")
    page.locator("#animate-run").click()
    page.wait_for_selector("#animate-output video[src]")
    page.wait_for_selector("#animate-side-by-side video[src]")
    assert re.search(r"Done:\*{0,2} 30 frames at 30 fps", page.locator("#animate-status").inner_text().replace("**", ""))
    assert page.locator("#animate-output video").get_attribute("src").endswith(".mp4")
    page.context.close()


def test_live_tab_streams_animated_frames_per_session(browser, studio_url):
    first = open_page(browser, studio_url)
    start_live(first)
    assert wait_fps(first) > 0
    first.wait_for_selector("#live-output img[src]")
    latency = int(re.search(r"latency (\d+) ms", readout(first)).group(1))
    assert 0 < latency < 2000
    first.locator("#live-calibrate").click()
    first.wait_for_function("() => document.querySelector('#live-readout textarea').value.includes('calibrated (1x)')")
    first.locator("#live-webcam button").filter(has_text="Stop").click()

    second = open_page(browser, studio_url)  # another browser session: its own calibration
    start_live(second)
    assert wait_fps(second) > 0
    assert "reference: first frame" in readout(second)
    assert "calibrated (1x)" in readout(first)
    second.context.close()
    first.context.close()


def test_live_stream_drops_frames_when_the_model_is_slower_than_the_camera(browser):
    """The Live tab's stream wiring, with a camera (50 frames/s) faster than the model: frames
    the model had no time for are dropped, none wait in a queue (nothing runs after Stop)."""
    import gradio as gr

    from talking_head.studio.common import ModelPool
    from talking_head.studio.live_tab import live_step, wire_stream
    from tests.conftest import free_port

    pool, source = ModelPool(), str(media("sources/painting_pearl_earring.jpg"))
    calls: list[float] = []

    def step(frame, session):
        calls.append(time.monotonic())
        picture, text, session = live_step(pool, frame, source, "landmark", "relative", True, True, session)
        return (gr.skip() if picture is None else picture), text, session

    with gr.Blocks() as demo:
        webcam = gr.Image(sources=["webcam"], streaming=True, elem_id="live-webcam")
        output = gr.Image(elem_id="live-output")
        text = gr.Textbox(elem_id="live-readout")
        state = gr.State()
        wire_stream(webcam, step, [webcam, state], [output, text, state], stream_every=0.02)
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        context = browser.new_context(permissions=["camera"])
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sent: list[float] = []
        closed: list[float] = []

        def on_request(request):
            if request.method == "POST" and re.search(r"/stream/[^/]+/close$", request.url):
                closed.append(time.monotonic())
            elif request.method == "POST" and re.search(r"/stream/[^/]+$", request.url):
                sent.append(time.monotonic())

        page.on("request", on_request)
        page.goto(demo.local_url, wait_until="domcontentloaded")
        start_live(page, tab=False)
        wait_fps(page)
        time.sleep(3)
        page.locator("#live-webcam button").filter(has_text="Stop").click()
        time.sleep(2)
        context.close()
    finally:
        demo.close()
    assert closed, "the browser did not close the stream"
    stopped = closed[0]
    sent_while_running = [t for t in sent if t < stopped]
    assert len(sent_while_running) > 1.5 * len(calls), (
        f"the camera sent {len(sent_while_running)} frames, the model ran {len(calls)} times")
    late = [t - stopped for t in calls if t > stopped]
    assert len(late) <= 1, f"{len(late)} frames were still processed after the stream closed: {late}"


@pytest.mark.skipif(not os.environ.get("TALKING_HEAD_SCREENSHOTS"), reason="set TALKING_HEAD_SCREENSHOTS=1 to refresh")
def test_refresh_docs_screenshots(playwright, studio_url, tmp_path):
    """docs/screenshot_{animate,live,models}.png, made from examples/ only (nothing from ../shared)."""
    docs = ROOT / "docs"
    b = launch(playwright, make_y4m(ROOT / "examples" / "driving_talk.mp4", tmp_path / "camera.y4m"))
    try:
        page = open_page(b, studio_url)
        page.locator("#animate-source input[type=file]").set_input_files(str(ROOT / "examples" / "grace_hopper.jpg"))
        page.locator("#animate-driving input[type=file]").set_input_files(str(ROOT / "examples" / "driving_talk.mp4"))
        page.wait_for_selector("#animate-preview-first img")
        page.locator("#animate-run").click()
        page.wait_for_selector("#animate-output video[src]")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(docs / "screenshot_animate.png"), full_page=True)
        start_live(page)
        wait_fps(page)
        page.locator("#live-keypoints input").check()
        page.wait_for_timeout(3000)
        page.screenshot(path=str(docs / "screenshot_live.png"))
        page.locator("#live-webcam button").filter(has_text="Stop").click()
        page.get_by_role("tab", name="Models").click()
        page.locator("#models-table").wait_for()
        page.screenshot(path=str(docs / "screenshot_models.png"))
    finally:
        b.close()
    assert (docs / "screenshot_animate.png").stat().st_size > 10_000
