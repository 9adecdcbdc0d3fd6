"""Shared test helpers: real test media, and the studio app launched once per session."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "media"
APP_START_TIMEOUT_S = 180


def media(relative: str) -> Path:
    """A file from ../shared/media (see its README); skips the test when the folder is absent."""
    path = MEDIA / relative
    if not path.is_file():
        pytest.skip(f"test media {path} is not available")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(tmp: Path) -> dict:
    """Environment for a launched app: offline, no analytics, its own Gradio cache."""
    env = dict(os.environ)
    env.update({
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp / "gradio"),
        "TALKING_HEAD_WEIGHTS": str(tmp / "weights"),  # no weights: only `landmark` runs, the rest is "missing"
        "HF_HUB_CACHE": str(tmp / "hub"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
    })
    return env


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def studio_url(tmp_path_factory) -> str:
    """``python app.py`` launched on a free localhost port for the whole session; yields its URL."""
    tmp = tmp_path_factory.mktemp("studio")
    port = free_port()
    log = tmp / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=app_env(tmp), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, log, APP_START_TIMEOUT_S)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def stand_in_weights(tmp_path_factory) -> Path:
    """A weights folder with one checkpoint per ported family, in the published layout, holding the
    models' own freshly initialised weights (no published checkpoint can be downloaded here)."""
    from tests.test_models_end_to_end import MODELS, write_checkpoints

    folder = tmp_path_factory.mktemp("stand-in-weights")
    for name in MODELS:
        write_checkpoints(name, folder)
    return folder
