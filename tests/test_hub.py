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


def test_pinned_revision_is_found_in_the_cache_and_downloaded_by_commit(isolated, tmp_path, monkeypatch):
    _, cache = isolated
    payload = tiny_checkpoint(tmp_path / "payload.pth")
    build_hub_cache(cache, "someone/tiny", "ckpt/tiny.pth", payload)  # a snapshot at COMMIT only
    assert hub.find_file(make_card(revision=COMMIT).files[0]) is not None
    other = "f" * 40
    assert hub.find_file(make_card(revision=other).files[0]) is None  # another pin: not this snapshot
    FakeHub.files = {f"/someone/tiny/resolve/{other}/ckpt/tiny.pth": payload.read_bytes()}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        (path,) = hub.fetch_files(make_card(revision=other))  # asked for by its commit, not 'main'
    finally:
        server.shutdown()
    assert path.read_bytes() == payload.read_bytes()


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
    assert time.perf_counter() - started < 3.0
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


# ----------------------------------------------------------------------------------------- what users end up with

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "examples" / "grace_hopper.jpg"
DRIVING = ROOT / "examples" / "driving_talk.mp4"
LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:1cc4a6bb4aa1b1b1a4b0b1b1a4b0b1b1a4b0b1b1a4b0b1b1a4b0b1b1a4b0b1b1\nsize 750926934\n")
DRIVE_SIGN_IN = (b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Google Drive</title></head>"
                 b"<body><a href=\"https://accounts.google.com/ServiceLogin\">Sign in</a></body></html>")


def bad_file(kind: str, tmp_path: Path) -> bytes:
    if kind == "lfs pointer":
        return LFS_POINTER
    if kind == "html page":
        return DRIVE_SIGN_IN
    return tiny_checkpoint(tmp_path / "whole.pth").read_bytes()[:1000]  # truncated


NAMED_AS = {"lfs pointer": "git-LFS pointer file", "html page": "sign-in page", "truncated": "cut short"}


@pytest.mark.parametrize("kind", list(NAMED_AS))
def test_bad_file_is_named_by_cli_and_app_alike(kind, isolated, tmp_path, capsys, monkeypatch):
    """What users really end up with in weights/, for the real fomm.vox-adv card: one sentence naming
    it, exit status 2 from the CLI, and the same sentence in the app's weights note."""
    from talking_head import cli
    from talking_head.registry import get_card
    from talking_head.studio.animate_tab import _weights_note
    from talking_head.studio.common import user_error

    weights, _ = isolated
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = get_card("fomm.vox-adv")
    (weights / card.files[0].filename).write_bytes(bad_file(kind, tmp_path))
    out = tmp_path / "out.mp4"
    status = cli.main(["animate", "-s", str(SOURCE), "-d", str(DRIVING), "-m", card.name, "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and not out.exists() and "Traceback" not in err
    problem = hub.file_problem(card)
    assert NAMED_AS[kind] in problem.message
    assert f"error: {problem.message}" in err and problem.hint in err
    assert problem.message in _weights_note(card)
    assert problem.message in str(user_error(problem))
    assert "arbitrary code" not in err  # not the old, wrong diagnosis


def test_load_checkpoint_names_pointer_and_page_before_unpickling(tmp_path):
    from talking_head.errors import HtmlPageError, LfsPointerError, UnsafeCheckpointError

    pointer = tmp_path / "vox-adv-cpk.pth.tar"
    pointer.write_bytes(LFS_POINTER)
    with pytest.raises(LfsPointerError, match="750.9 MB file"):
        hub.load_checkpoint(pointer)
    page = tmp_path / "page.pth"
    page.write_bytes(DRIVE_SIGN_IN)
    with pytest.raises(HtmlPageError):
        hub.load_checkpoint(page)
    evil = tmp_path / "evil.pth"
    torch.save({"payload": Exploit()}, evil, pickle_module=pickle)
    with pytest.raises(UnsafeCheckpointError):
        hub.load_checkpoint(evil)


def shapes_only_checkpoint(card_name: str, path: Path, index: int = 0) -> Path:
    """A file with exactly the keys and shapes of ``card_name``'s file (each tensor one stored number,
    expanded), so another card's layout costs a few KB instead of hundreds of MB."""
    from talking_head.checkpoint_match import card_signatures

    nested: dict = {}
    for key, shape in card_signatures(card_name)[index].items():
        *parents, leaf = key.split("/")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = torch.zeros(1).expand(shape) if shape else torch.zeros(())
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(nested, path)
    return path


def test_another_cards_checkpoint_is_named(isolated, capsys, tmp_path, monkeypatch):
    from talking_head import cli
    from talking_head.errors import WrongModelFileError
    from talking_head.registry import get_card, load_model

    weights, _ = isolated
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # FOMM's cartoon variant where the VoxCeleb file belongs: no size or hash pinned, the keys tell
    shapes_only_checkpoint("fomm.mgif", weights / get_card("fomm.vox").files[0].filename)
    with pytest.raises(WrongModelFileError) as err:
        load_model("fomm.vox", device="cpu")
    assert "checkpoint of fomm.mgif, not of fomm.vox" in err.value.message
    assert str(weights / "mgif-cpk.pth.tar") in err.value.hint
    # MRAA's 20-region TED model where the 10-region VoxCeleb file belongs: the sha256 differs, the keys tell
    shapes_only_checkpoint("mraa.ted-youtube384", weights / "vox256.pth")
    status = cli.main(["animate", "-s", str(SOURCE), "-d", str(DRIVING), "-m", "mraa.vox256",
                       "-o", str(tmp_path / "o.mp4"), "-q"])
    stderr = capsys.readouterr().err
    assert status == 2 and "checkpoint of mraa.ted-youtube384, not of mraa.vox256" in stderr


def test_cli_trust_file_keeps_a_differing_file(isolated, capsys, tmp_path, monkeypatch):
    """A complete file whose sha256 is not the card's: refused with the way out named, then kept with
    --trust-file (and remembered for that file)."""
    from talking_head import cli, registry
    from talking_head.models import mraa
    from tests.test_mraa import random_animator, small_card

    weights, _ = isolated
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = small_card("mraa.vox256", sha256="0" * 64)  # a test-only card: narrow networks, a hash no file has
    ((filename, ckpt),) = mraa.published_checkpoints(random_animator(small_card("mraa.vox256"))).items()
    torch.save(ckpt, weights / filename)
    monkeypatch.setattr(registry, "get_card", lambda name, kind=None: card)
    args = ["animate", "-s", str(SOURCE), "-d", str(SOURCE), "-m", "mraa.vox256", "-q"]
    out = tmp_path / "out.mp4"
    assert cli.main(args + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and "--trust-file" in err and not out.exists()
    assert cli.main(args + ["-o", str(out), "--trust-file"]) == 0
    assert out.is_file()
    assert cli.main(args + ["-o", str(tmp_path / "again.mp4")]) == 0  # remembered
    assert hub.file_states(card)[0][2] == "trusted"


def test_sha256_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    from talking_head import file_checks

    path = tiny_checkpoint(tmp_path / "w.pth")
    calls = []
    real = file_checks.sha256_of
    monkeypatch.setattr(file_checks, "sha256_of", lambda p: calls.append(p) or real(p))
    store = tmp_path / "records.json"
    first = file_checks.FileRecords(store).sha256(path)
    file_checks._memory.clear()  # a new process: only the JSON file remains
    assert file_checks.FileRecords(store).sha256(path) == first == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(calls) == 1
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))  # same size, new mtime: hashed again
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert file_checks.FileRecords(store).sha256(path) != first and len(calls) == 2


def test_app_trust_box_keeps_a_differing_file(isolated):
    """The studio's 'Trust my weights files' box: shown for a file whose sha256 differs, and once ticked the
    file loads and the note says it is kept."""
    from talking_head.studio.animate_tab import _mismatch, _weights_note

    weights, _ = isolated
    tiny_checkpoint(weights / "tiny.pth")
    card = make_card(sha256="0" * 64)
    assert _mismatch(card) and "--trust-file" in _weights_note(card)
    assert hub.trust_present_files(card) == [weights / "tiny.pth"]
    assert hub.fetch_files(card) == [weights / "tiny.pth"]
    assert "kept by you" in _weights_note(card)
    hub.trust_present_files(card, trusted=False)
    with pytest.raises(CheckpointError, match="sha256"):
        hub.fetch_files(card)


def test_pointer_file_for_the_optional_landmark_model_is_named(tmp_path):
    from talking_head.errors import LfsPointerError
    from talking_head.face_ratios import Landmarks203

    path = tmp_path / "landmark.onnx"
    path.write_bytes(LFS_POINTER)
    with pytest.raises(LfsPointerError, match="git-LFS pointer"):
        Landmarks203(path)
