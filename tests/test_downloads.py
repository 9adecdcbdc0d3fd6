"""Downloads that survive the real world, against a local HTTPS server on 127.0.0.1 (never the internet):
progress, resume after a cut connection, a .part that is never taken for the file, sha256 refused and
kept with the user's override, web pages and pointer files named as such, offline within 3 s.

The server uses a self-signed certificate made here (``openssl``); the client is pointed at it with
SSL_CERT_FILE. Test-only cards carry the small payload's size and hash.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from talking_head import downloads, file_checks, hub
from talking_head.cards import ModelCard, WeightFile
from talking_head.errors import FileMismatchError, HtmlPageError, TruncatedFileError, WeightsMissingError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

NAME = "tiny-cpk.pth.tar"
DRIVE_QUOTA_PAGE = (b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>"
                    b"Too many users have viewed or downloaded this file recently.</body></html>")


def payload_bytes() -> bytes:
    """A real (small) checkpoint: a few hundred KB, so a cut lands in the middle of it."""
    buf = io.BytesIO()
    torch.manual_seed(0)
    torch.save({"generator": {"w": torch.randn(256, 256)}, "kp_detector": {"b": torch.randn(64)}, "epoch": 1}, buf)
    return buf.getvalue()


PAYLOAD = payload_bytes()
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class ReleaseServer(http.server.BaseHTTPRequestHandler):
    """GitHub-release-like file server: 200 / 206 for ``Range: bytes=N-`` / 416 past the end; can cut
    the body off after ``cut_at`` bytes for the next ``cuts`` requests."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        state = self.server.state
        state["requests"].append((self.path, self.headers.get("Range")))
        body = state["files"].get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        rest = body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(rest)))
        self.send_header("Content-Type", state.get("type", "application/octet-stream"))
        self.end_headers()
        if state["cuts"] > 0:
            state["cuts"] -= 1
            self.wfile.write(rest[: state["cut_at"]])
            self.wfile.flush()
            self.close_connection = True  # the connection drops mid-file
            return
        self.wfile.write(rest)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def server(certificate, monkeypatch):
    cert, key = certificate
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ReleaseServer)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.state = {"files": {f"/checkpoints/{NAME}": PAYLOAD}, "requests": [], "cuts": 0, "cut_at": 0}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    httpd.url = f"https://127.0.0.1:{httpd.server_port}/checkpoints/{NAME}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(folder))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TALKING_HEAD_OFFLINE", raising=False)
    monkeypatch.delenv(file_checks.TRUST_ENV, raising=False)
    return folder


def release_card(url: str, **wf) -> ModelCard:
    """A test-only card for the small payload: its exact size and sha256, served at ``url``."""
    fields = {"filename": NAME, "download_url": url, "url": "https://example.org/by-hand",
              "size_bytes": len(PAYLOAD), "sha256": PAYLOAD_SHA, **wf}
    return ModelCard(name="test.release", family="test", title="tiny", description="test card",
                     files=(WeightFile(**fields),))


def test_https_download_with_progress(server, weights):
    seen = []
    (path,) = hub.fetch_files(release_card(server.url), progress=lambda f, text: seen.append((f, text)))
    assert path == weights / NAME and path.read_bytes() == PAYLOAD
    assert not downloads.part_path(path).exists()
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert "sha256 matches" in seen[-1][1]
    # found again with the server gone: no network needed
    server.shutdown()
    assert hub.fetch_files(release_card("https://127.0.0.1:9/gone")) == [path]


def test_first_download_of_an_unpinned_file_shows_its_sha256(server, weights):
    seen = []
    hub.fetch_files(release_card(server.url, sha256=None), progress=lambda f, text: seen.append(text))
    assert PAYLOAD_SHA in seen[-1] and "pins none" in seen[-1]
    _, _, kind, phrase = hub.file_states(release_card(server.url, sha256=None))[0]
    assert kind == "unpinned" and PAYLOAD_SHA in phrase  # the listing shows it too (from the hash cache)


def test_resume_after_a_cut_connection(server, weights):
    server.state.update(cuts=1, cut_at=len(PAYLOAD) // 3)
    (path,) = hub.fetch_files(release_card(server.url))
    assert path.read_bytes() == PAYLOAD
    ranges = [r for _, r in server.state["requests"]]
    assert ranges == [None, f"bytes={len(PAYLOAD) // 3}-"]  # the second request asks only for the rest


def test_a_partial_download_is_never_taken_for_the_file(server, weights):
    card = release_card(server.url)
    server.state.update(cuts=downloads.ATTEMPTS, cut_at=10_000)  # every attempt of this run is cut
    with pytest.raises(WeightsMissingError) as err:
        hub.fetch_files(card)
    assert "cut" in err.value.message
    part = downloads.part_path(weights / NAME)
    assert not (weights / NAME).exists() and part.stat().st_size == downloads.ATTEMPTS * 10_000
    assert hub.find_file(card.files[0]) is None and hub.weights_status(card)[0] == "missing"
    # the next run resumes from what arrived
    (path,) = hub.fetch_files(card)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.state["requests"][-1][1] == f"bytes={downloads.ATTEMPTS * 10_000}-"


def test_hash_mismatch_is_refused_and_the_override_keeps_the_file(server, weights):
    card = release_card(server.url, sha256="0" * 64)
    with pytest.raises(FileMismatchError) as err:
        hub.fetch_files(card)
    assert PAYLOAD_SHA in err.value.message and "--trust-file" in err.value.hint
    assert not (weights / NAME).exists()  # not where the next run would take it
    assert downloads.part_path(weights / NAME).stat().st_size == len(PAYLOAD)  # kept whole, for the override
    with pytest.raises(FileMismatchError):  # a rerun without the override still refuses it
        hub.fetch_files(card)
    before = len(server.state["requests"])
    (path,) = hub.fetch_files(card, trust=True)
    assert path.read_bytes() == PAYLOAD
    assert server.state["requests"][before:] == [(f"/checkpoints/{NAME}", f"bytes={len(PAYLOAD)}-")]  # no new download
    # the decision is remembered for this very file, and the listing says so
    assert hub.fetch_files(card) == [path]
    assert hub.file_states(card)[0][2] == "trusted"


def test_a_web_page_instead_of_the_file_is_named(server, weights):
    server.state["files"][f"/checkpoints/{NAME}"] = DRIVE_QUOTA_PAGE
    server.state["type"] = "text/html"
    with pytest.raises(HtmlPageError) as err:
        hub.fetch_files(release_card(server.url, size_bytes=None, sha256=None))
    assert err.value.message.startswith(f"The download from {server.url} is a Google Drive quota-exceeded page")
    assert "https://example.org/by-hand" in err.value.hint
    assert not (weights / NAME).exists() and not downloads.part_path(weights / NAME).exists()


def test_a_stale_part_of_another_size_is_started_again(server, weights):
    part = downloads.part_path(weights / NAME)
    part.write_bytes(b"x" * (len(PAYLOAD) + 10))  # left by a run against a file that has since changed
    (path,) = hub.fetch_files(release_card(server.url))
    assert path.read_bytes() == PAYLOAD
    assert [r for _, r in server.state["requests"]] == [f"bytes={len(PAYLOAD) + 10}-", None]


def test_hub_first_then_https(server, weights, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the Hub does not answer
    card = release_card(server.url, hf_repo="someone/tiny", hf_path=NAME)
    (path,) = hub.fetch_files(card)
    assert path.read_bytes() == PAYLOAD


def test_offline_is_answered_within_3_seconds(weights, monkeypatch):
    card = release_card("https://127.0.0.1:9/checkpoints/" + NAME)  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError) as err:
        hub.fetch_files(card)
    assert time.perf_counter() - started < 3.0
    assert "cannot be reached" in err.value.message and str(weights / NAME) in err.value.hint
    # a host that never answers (dropped packets) is given up after the 3 s probe
    card = release_card("https://10.255.255.1/checkpoints/" + NAME)
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError):
        hub.fetch_files(card)
    assert time.perf_counter() - started < 3.5
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError):
        hub.fetch_files(card)
    assert time.perf_counter() - started < 0.5


def test_truncated_file_in_weights_is_named(weights, server):
    (weights / NAME).write_bytes(PAYLOAD[:1000])
    with pytest.raises(TruncatedFileError) as err:
        hub.fetch_files(release_card(server.url))
    assert f"1,000 of the card's {len(PAYLOAD):,} bytes" in err.value.message
    assert server.state["requests"] == []  # a present file is judged, never silently replaced
