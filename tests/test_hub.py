"""Finding and loading weights: local files, a Hub cache built here, a local stand-in for the Hub,
offline failure within seconds, and safe loading of bad files."""
from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import threading
import time
from pathlib import Path

import pytest
import torch

from talking_head import hub
from talking_head.cards import ModelCard, WeightFile
from talking_head.errors import CheckpointError, WeightsMissingError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_card(**wf_kwargs) -> ModelCard:
    wf = WeightFile(**{"filename": "tiny.pth", "hf_repo": "someone/tiny", "hf_path": "ckpt/tiny.pth", **wf_kwargs})
    return ModelCard(name="test.tiny", family="test", title="tiny", description="test card", files=(wf,))


def tiny_checkpoint(path: Path) -> Path:
    torch.save({"net": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3}, path)
    return path


def build_hub_cache(cache: Path, repo: str, filename: str, payload: Path, repo_type: str = "model") -> Path:
    """The huggingface_hub cache layout: <type>s--owner--name/{refs/main, snapshots/<commit>/<file>}."""
    folder = cache / f"{repo_type}s--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    target = folder / "snapshots" / COMMIT / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(payload.read_bytes())
    return target


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(weights))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return weights, cache


def test_finds_file_in_hub_cache(isolated, tmp_path):
    _, cache = isolated
    payload = tiny_checkpoint(tmp_path / "payload.pth")
    expected = build_hub_cache(cache, "someone/tiny", "ckpt/tiny.pth", payload)
    card = make_card()
    assert hub.weights_present(card)
    assert hub.fetch_files(card, allow_download=False) == [expected]
    ckpt = hub.load_checkpoint(expected)
    assert ckpt["epoch"] == 3 and torch.equal(ckpt["net"]["w"], torch.arange(6.0).reshape(2, 3))


def test_space_repo_cache_layout(isolated, tmp_path):
    _, cache = isolated
    payload = tiny_checkpoint(tmp_path / "payload.pth")
    expected = build_hub_cache(cache, "someone/tiny", "ckpt/tiny.pth", payload, repo_type="space")
    assert hub.fetch_files(make_card(hf_repo_type="space"), allow_download=False) == [expected]
    assert not hub.weights_present(make_card(hf_repo_type="model"))


def test_local_file_wins_over_cache(isolated, tmp_path):
    weights, cache = isolated
    payload = tiny_checkpoint(tmp_path / "payload.pth")
    build_hub_cache(cache, "someone/tiny", "ckpt/tiny.pth", payload)
    local = tiny_checkpoint(weights / "tiny.pth")
    assert hub.fetch_files(make_card()) == [local]


def test_offline_fails_fast_with_instructions(isolated, monkeypatch):
    weights, _ = isolated
    # A closed port on this machine: nothing answers, as when the Hub cannot be reached.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError) as err:
        hub.fetch_files(make_card())
    assert time.perf_counter() - started < 10
    text = err.value.user_message()
    assert "tiny.pth" in text and "someone/tiny" in text and str(weights) in text and "cannot be reached" in text


def test_hf_hub_offline_env_is_respected(isolated, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError):
        hub.fetch_files(make_card())
    assert time.perf_counter() - started < 1


def test_off_hub_file_names_its_url(isolated):
    card = make_card(hf_repo=None, hf_path=None, url="https://example.org/tiny")
    with pytest.raises(WeightsMissingError) as err:
        hub.fetch_files(card)
    assert "https://example.org/tiny" in err.value.user_message()


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers huggingface_hub's HEAD/GET on /<repo>/resolve/<revision>/<file> like the Hub does."""

    files: dict[str, bytes] = {}

    def _send_headers(self, body: bytes) -> bool:
        if self.path not in self.files:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return True

    def do_HEAD(self):
        self._send_headers(self.files.get(self.path, b""))

    def do_GET(self):
        body = self.files.get(self.path, b"")
        if self._send_headers(body):
            self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_downloads_from_hub_into_cache_with_progress(isolated, tmp_path, monkeypatch):
    _, cache = isolated
    payload = tiny_checkpoint(tmp_path / "payload.pth").read_bytes()
    FakeHub.files = {"/someone/tiny/resolve/main/ckpt/tiny.pth": payload}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        seen = []
        card = make_card(sha256=hashlib.sha256(payload).hexdigest())
        (path,) = hub.fetch_files(card, progress=lambda f, text: seen.append(f))
    finally:
        server.shutdown()
    assert path.read_bytes() == payload
    assert Path(cache) in path.resolve().parents or str(cache) in str(path)
    assert seen and seen[-1] == 1.0
    # Now cached: found again with no server at all.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert hub.fetch_files(card, allow_download=False) == [path]


def test_sha256_mismatch_is_reported(isolated):
    weights, _ = isolated
    tiny_checkpoint(weights / "tiny.pth")
    with pytest.raises(CheckpointError) as err:
        hub.fetch_files(make_card(sha256="0" * 64))
    assert "sha256" in str(err.value)


def test_truncated_checkpoint(tmp_path):
    good = tiny_checkpoint(tmp_path / "good.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        hub.load_checkpoint(bad)
    assert "truncated" in str(err.value)


def test_empty_checkpoint(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        hub.load_checkpoint(empty)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_pickle_with_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"net": {"w": torch.zeros(1)}, "payload": Exploit()}, evil, pickle_module=pickle)
    with pytest.raises(CheckpointError) as err:
        hub.load_checkpoint(evil)
    assert "arbitrary code" in str(err.value)


def test_safetensors_loads(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(2, 2)}, str(path))
    assert torch.equal(hub.load_checkpoint(path)["w"], torch.ones(2, 2))
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        hub.load_checkpoint(path)
