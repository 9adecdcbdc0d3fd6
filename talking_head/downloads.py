"""Plain HTTPS downloads (e.g. GitHub release assets): streamed, resumable, never half-written.

The bytes go to ``<dest>.part``; an interrupted transfer is resumed with a Range request (in the same
call, and in a later run from the ``.part`` left behind). The caller checks the ``.part`` and only
then renames it to its final name, so a partial file is never where the next run would take it for
a good one. Certificates: the system's (certifi's) bundle, or ``$SSL_CERT_FILE`` when set.
"""
from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 30.0
ATTEMPTS = 4

ProgressFn = Callable[[float, str], None]


class DownloadError(Exception):
    """A transfer that failed for a reason worth telling (HTTP status, repeated cuts)."""


class _CutShort(DownloadError):
    """The server closed the body before its announced length: resume."""


def offline() -> bool:
    """``HF_HUB_OFFLINE`` or ``TALKING_HEAD_OFFLINE`` set: no network access at all."""
    return any(os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TALKING_HEAD_OFFLINE"))


def host_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the URL's host accepts a TCP connection within ``timeout`` seconds.

    The DNS lookup and connect run in a daemon thread so a hanging resolver cannot block us.
    """
    if offline():
        return False
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile:
        import certifi

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, progress: ProgressFn | None = None, label: str = "",
             attempts: int = ATTEMPTS) -> Path:
    """Stream ``url`` into ``<dest>.part`` (resuming what is there) and return that path.

    Raises DownloadError for an HTTP error or when every attempt was cut off; the ``.part`` stays for
    the next try.
    """
    import httpx

    part = part_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    label = label or f"downloading {dest.name}"
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=PROBE_TIMEOUT_S)
    last_error: Exception | None = None
    with httpx.Client(verify=ssl_context(), timeout=timeout, follow_redirects=True) as client:
        for _ in range(attempts):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with client.stream("GET", url, headers=headers) as resp:
                    if resp.status_code == 416 and have:  # nothing left to fetch: the .part is whole ...
                        total = resp.headers.get("content-range", "").rsplit("/", 1)[-1]
                        if not total.isdigit() or int(total) == have:
                            return part
                        part.unlink()  # ... unless the server's file has another size: start again
                        continue
                    if resp.status_code not in (200, 206):
                        raise DownloadError(f"the server answered HTTP {resp.status_code} for {url}")
                    if resp.status_code == 206 and _range_start(resp.headers.get("content-range")) == have:
                        mode, done = "ab", have
                    else:  # the server ignored the range: start again
                        mode, done = "wb", 0
                    total = _total(resp, done)
                    with open(part, mode) as f:
                        for chunk in resp.iter_bytes():  # as it arrives (a chunk size would buffer, and lose, a cut tail)
                            f.write(chunk)
                            done += len(chunk)
                            if progress and total:
                                progress(min(1.0, done / total), label)
                    if total and done < total:
                        raise _CutShort(f"the transfer stopped at {done:,} of {total:,} bytes")
                    return part
            except (httpx.TransportError, _CutShort) as exc:
                last_error = exc  # cut connection: resume from what arrived
    raise DownloadError(f"the connection was cut {attempts} times ({type(last_error).__name__}: {last_error}); "
                        f"{part.stat().st_size if part.exists() else 0:,} bytes are kept in {part} for the next try")


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a ``bytes START-END/TOTAL`` header."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    start = content_range[6:].split("-", 1)[0]
    return int(start) if start.isdigit() else None


def _total(resp, done: int) -> int | None:
    if resp.status_code == 206:
        total = resp.headers.get("content-range", "").rsplit("/", 1)[-1]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("content-length")
    return int(length) + done if length and length.isdigit() else None

