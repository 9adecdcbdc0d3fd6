"""Talking-head studio.

    python app.py                      # the web app on http://127.0.0.1:7860
    python app.py --port 8000 --share  # another port / a public Gradio link
    python app.py --desktop [live options]   # desktop live mode (see `python app.py --desktop --help`)

On Hugging Face Spaces this file is the entry point (``app_file: app.py``): it runs on CPU, and
on ZeroGPU the heavy functions are wrapped in ``spaces.GPU``. Weights download lazily to the Hub
cache the first time a model is used.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--desktop" in argv:
        argv.remove("--desktop")
        from talking_head import live

        return live.main(argv)

    parser = argparse.ArgumentParser(description="Talking-head studio (web app). Use --desktop for the desktop live mode.")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 on Spaces)")
    parser.add_argument("--port", type=int, default=None, help="port (default 7860 or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--model", default=None, help="model selected when the page opens")
    args = parser.parse_args(argv)

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from talking_head.registry import DEFAULT_MODEL
    from talking_head.studio import build_app, launch_kwargs

    demo = build_app(device=args.device, default_model=args.model or DEFAULT_MODEL)
    demo.queue(default_concurrency_limit=2)
    demo.launch(**launch_kwargs(args.host, args.port, args.share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
