"""Live tab rate and latency in headless Chromium with a 30 fps fake camera (a benchmark script, not a test).

    python -m tests.bench_live_tab [--seconds 10] [--stream-every 0.033] [--model landmark]

The page runs the Live tab's own stream wiring (``live_tab.wire_stream`` + ``live_step``) with a
real clip as the camera. Measured:

- output fps: distinct pictures the page shows per second (a MutationObserver on the output
  image's ``src``, timestamps from the page's clock);
- latency: for each shown picture, its display time minus the time the browser sent the camera
  frame it was made from: the picture is the newest step the server had finished by then, and its
  frame the newest stream POST sent before that step started (Gradio keeps only the newest frame). The capture itself
  happens at the send tick, so add up to one camera interval (33 ms at 30 fps) for the camera's
  own age of the frame.
- camera frames sent and steps run (dropped = sent - run).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import gradio as gr
    from playwright.sync_api import sync_playwright

    from talking_head.studio.common import ModelPool
    from talking_head.studio.live_tab import STREAM_EVERY_S, live_step, wire_stream
    from tests.conftest import free_port, media
    from tests.test_browser import BASE_ARGS, CHROMIUM, make_y4m, start_live, wait_fps

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stream-every", type=float, default=STREAM_EVERY_S)
    parser.add_argument("--model", default="landmark")
    args = parser.parse_args(argv)

    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(prefix="live_bench_"))
    camera = make_y4m(media("driving/talk_vox.mp4"), tmp / "camera.y4m", seconds=8.0, fps=30)
    pool, source = ModelPool(), str(media("sources/painting_pearl_earring.jpg"))
    steps: list[tuple[float, float]] = []  # (started, finished) epoch seconds of steps that returned a picture

    calls: list[float] = []

    def step(frame, session):
        started = time.time()
        calls.append(started)
        picture, text, session = live_step(pool, frame, source, args.model, "relative", False, False, session)
        if picture is not None:
            steps.append((started, time.time()))
        return (gr.skip() if picture is None else picture), text, session

    with gr.Blocks() as demo:
        webcam = gr.Image(sources=["webcam"], streaming=True, elem_id="live-webcam")
        output = gr.Image(elem_id="live-output", format="jpeg")
        text = gr.Textbox(elem_id="live-readout")
        state = gr.State()
        wire_stream(webcam, step, [webcam, state], [output, text, state], stream_every=args.stream_every)
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=BASE_ARGS + [f"--use-file-for-fake-video-capture={camera}"])
            page = browser.new_context(permissions=["camera"]).new_page()
            page.set_default_timeout(90_000)
            # stream POSTs timed in the page (Playwright's own events arrive late while Python sleeps)
            page.add_init_script("""(() => { window.__sent = []; const f = window.fetch;
                window.fetch = function (input, init) {
                    const url = typeof input === 'string' ? input : (input && input.url) || '';
                    if (init && init.method === 'POST' && /\\/stream\\/[^/]+$/.test(url))
                        window.__sent.push(performance.timeOrigin + performance.now());
                    return f.apply(this, arguments); }; })()""")
            page.goto(demo.local_url, wait_until="domcontentloaded")
            start_live(page, tab=False)
            wait_fps(page)
            page.evaluate("""() => { window.__shown = []; const seen = new Set();
                const box = document.querySelector('#live-output');
                const note = () => { const img = box.querySelector('img');
                    if (img && img.src && !seen.has(img.src)) { seen.add(img.src);
                        window.__shown.push(performance.timeOrigin + performance.now()); } };
                new MutationObserver(note).observe(box, {subtree: true, childList: true, attributes: true}); }""")
            begin = time.time()
            steps_before = len(steps)
            time.sleep(args.seconds)
            shown = [t / 1000.0 for t in page.evaluate("() => window.__shown")]
            sent = [t / 1000.0 for t in page.evaluate("() => window.__sent")]
            end = time.time()
            browser.close()
    finally:
        demo.close()
    window_steps = [s for s in steps[steps_before:] if s[0] >= begin]
    sent_in = [t for t in sent if begin <= t <= end]
    latencies, waits, runs, deliveries = [], [], [], []
    for shown_at in shown:
        done = [st for st in window_steps if st[1] <= shown_at]
        if not done:
            continue
        started, finished = done[-1]  # the picture shown is the newest one the server had finished
        before = [t for t in sent if t <= started]
        if before:
            latencies.append(shown_at - before[-1])
            waits.append(started - before[-1])
            runs.append(finished - started)
            deliveries.append(shown_at - finished)
    fps = len(shown) / (end - begin)
    lat = np.asarray(latencies) * 1000.0
    print(f"stream_every {args.stream_every:.3f} s, model {args.model}, {end - begin:.1f} s window")
    print(f"output: {len(shown)} distinct pictures shown = {fps:.1f} fps; camera frames sent {len(sent_in)} "
          f"({len(sent_in) / (end - begin):.1f}/s), steps called {len([c for c in calls if c >= begin])}, "
          f"with a picture {len(window_steps)}")
    if lat.size:
        print(f"latency send->shown ms: median {np.median(lat):.0f}, p90 {np.percentile(lat, 90):.0f}, max {lat.max():.0f} "
              f"(+ up to 33 ms camera age at 30 fps); medians: wait {1000 * np.median(waits):.0f}, step "
              f"{1000 * np.median(runs):.0f}, delivery {1000 * np.median(deliveries):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
