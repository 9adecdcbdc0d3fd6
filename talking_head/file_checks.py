"""What a weights file on disk really is: the card's checkpoint, or what users end up with instead.

- content: a git-LFS pointer file, or a web page (a Drive quota or sign-in page) saved as the file;
- size: below the card's exact size (an interrupted download), or another size (another file);
- sha256: against the card's, cached by (path, size, mtime) so listings stay fast for multi-GB files.

A complete file whose hash or size differs can be kept with an explicit override ("trust"); the
decision is recorded with the file's hash, so it holds until the file changes. Nothing here knows
where files come from (``hub`` passes the fix, in words, to put in the messages).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from talking_head.cards import WeightFile
from talking_head.errors import FileMismatchError, HtmlPageError, LfsPointerError, TruncatedFileError

LFS_MAGIC = b"version https://git-lfs.github.com/spec/v1"
HEAD_BYTES = 64 * 1024  # enough to classify a Drive or sign-in page
TRUST_ENV = "TALKING_HEAD_TRUST_FILES"
TRUST_HOW = f"--trust-file (CLI), {TRUST_ENV}=1 or the app's 'Trust my weights files' box"


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def lfs_pointer(head: bytes) -> dict | None:
    """{'oid': 'sha256:...', 'size': int} when ``head`` is a git-LFS pointer file, else None."""
    if not head.lstrip().startswith(LFS_MAGIC):
        return None
    info: dict = {}
    for line in head.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oid":
            info["oid"] = value.strip()
        elif key == "size" and value.strip().isdigit():
            info["size"] = int(value)
    return info


def html_page(head: bytes) -> str | None:
    """What kind of web page ``head`` is ('a Google Drive quota-exceeded page', ...), or None."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n").lower()
    if not (text.startswith("<!doctype html") or text.startswith("<html") or "<html" in text[:1024]):
        return None
    if "quota exceeded" in text or "too many users have viewed or downloaded" in text:
        return "a Google Drive quota-exceeded page"
    if "virus scan warning" in text or "scan this file for viruses" in text:
        return "a Google Drive virus-scan warning page (the file itself is behind its Download button)"
    if "accounts.google.com" in text or "sign in" in text or "log in" in text or "login" in text:
        return "a sign-in page"
    if "yandex" in text:
        return "a Yandex Disk web page"
    return "a web page"


def check_content(path: Path, fix: str) -> None:
    """Raise LfsPointerError / HtmlPageError when ``path`` holds a pointer file or a web page."""
    head = read_head(path)
    pointer = lfs_pointer(head)
    if pointer is not None:
        points = f", pointing to a {pointer['size'] / 1e6:.1f} MB file" if "size" in pointer else ""
        raise LfsPointerError(
            f"'{path}' is a git-LFS pointer file ({path.stat().st_size} bytes of text{points}), not the checkpoint: "
            "it was copied from a git clone made without git-lfs.",
            f"Delete it and {fix} (or run `git lfs pull` in that clone and copy the real file).",
        )
    kind = html_page(head)
    if kind is not None:
        raise HtmlPageError(
            f"'{path}' is {kind}, not the checkpoint: the download site sent a web page instead of the file.",
            f"Delete it and {fix}; for Google Drive, download in a browser signed in to Google, or wait a day "
            "when the quota is exceeded.",
        )


@dataclass
class Identity:
    """How a present file compares with its card: 'matched', 'unpinned' (no sha256 on the card),
    'trusted' (differs, kept by the user) or 'differs'; with the file's sha256 when it is known."""

    state: str
    sha256: str | None = None
    detail: str = ""


# ----------------------------------------------------------------------------------------- hash cache

_memory: dict[tuple[str, int, int], dict] = {}
_lock = threading.Lock()


class FileRecords:
    """sha256 and trust decisions per (path, size, mtime), in memory and in a JSON file (``store``).

    The JSON file is optional: when it cannot be written (a read-only folder) the records stay in memory.
    """

    def __init__(self, store: Path | None):
        self.store = store

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return str(path.resolve()), st.st_size, st.st_mtime_ns

    def _disk(self) -> dict:
        if self.store is None or not self.store.is_file():
            return {}
        try:
            data = json.loads(self.store.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, path: Path) -> dict | None:
        key = self._key(path)
        with _lock:
            if key in _memory:
                return _memory[key]
        entry = self._disk().get(key[0])
        if isinstance(entry, dict) and entry.get("size") == key[1] and entry.get("mtime_ns") == key[2]:
            with _lock:
                _memory[key] = entry
            return entry
        return None

    def put(self, path: Path, **fields) -> dict:
        key = self._key(path)
        entry = {**(self.get(path) or {}), **fields, "size": key[1], "mtime_ns": key[2]}
        with _lock:
            _memory[key] = entry
        if self.store is not None:
            data = self._disk()
            data[key[0]] = entry
            tmp = self.store.with_name(self.store.name + ".tmp")
            try:
                self.store.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.replace(tmp, self.store)
            except OSError:
                pass
        return entry

    def cached_sha256(self, path: Path) -> str | None:
        entry = self.get(path)
        return entry.get("sha256") if entry else None

    def sha256(self, path: Path) -> str:
        known = self.cached_sha256(path)
        if known:
            return known
        digest = sha256_of(path)
        self.put(path, sha256=digest)
        return digest

    def trusted(self, path: Path) -> bool:
        entry = self.get(path)
        return bool(entry and entry.get("trusted"))

    def trust(self, path: Path) -> None:
        self.put(path, sha256=self.sha256(path), trusted=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------- identity


def trust_from_env() -> bool:
    return os.environ.get(TRUST_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


def check_identity(path: Path, wf: WeightFile, records: FileRecords, fix: str, trust: bool = False) -> Identity:
    """Compare ``path`` with the card's size and sha256.

    Smaller than the card's size: TruncatedFileError. Another size or sha256: FileMismatchError, unless
    ``trust`` (then recorded) or an earlier trust decision for this very file.
    """
    size = path.stat().st_size
    problem = None
    if wf.size_bytes and size < wf.size_bytes:
        if not (trust or records.trusted(path)):
            raise TruncatedFileError(
                f"'{path}' is cut short: {size:,} of the card's {wf.size_bytes:,} bytes (an interrupted download).",
                f"Delete it and {fix}.",
            )
        problem = f"{size:,} of the card's {wf.size_bytes:,} bytes"
    elif wf.size_bytes and size != wf.size_bytes:
        problem = f"{size:,} bytes, but the card's file is {wf.size_bytes:,} bytes"
    digest = None
    if problem is None and wf.sha256:
        digest = records.sha256(path)
        if digest != wf.sha256.lower():
            problem = f"sha256 {digest}, but the card's is {wf.sha256}"
            if not wf.size_bytes and wf.size_mb and size < 0.99 * wf.size_mb * 1e6:  # only a rounded size known
                problem += f" (and {size / 1e6:.1f} MB where the card's file is {wf.size_mb:.1f} MB: probably cut short)"
    if problem is None:
        return Identity("matched" if wf.sha256 else "unpinned", digest or records.cached_sha256(path))
    if trust:
        records.trust(path)
    if records.trusted(path):
        return Identity("trusted", records.cached_sha256(path), problem)
    raise FileMismatchError(
        f"'{path}' is not the file the card pins: it has {problem}.",
        f"If you trust this copy (for example one from the authors' own folder), keep it with {TRUST_HOW}; "
        f"otherwise delete it and {fix}.",
    )


def describe(path: Path, wf: WeightFile, records: FileRecords) -> tuple[str, str]:
    """(kind, phrase) on a present file for listings. kind: 'matched', 'unpinned' (no sha256 on the card),
    'trusted' (differs, kept by the user) or 'problem'; phrase: 'sha256 matches', 'a git-LFS pointer
    file, not the checkpoint', ... Uses the cached hash of an unchanged file, so listings stay fast.
    """
    head = read_head(path, 4096)
    if lfs_pointer(head) is not None:
        return "problem", "a git-LFS pointer file, not the checkpoint"
    kind = html_page(head)
    if kind is not None:
        return "problem", f"{kind}, not the checkpoint"
    try:
        ident = check_identity(path, wf, records, fix="")
    except TruncatedFileError:
        return "problem", f"truncated ({path.stat().st_size:,} of {wf.size_bytes:,} bytes)"
    except FileMismatchError as err:
        return "problem", "not the card's file: it has " + err.message.split(": it has ", 1)[-1].rstrip(".")
    if ident.state == "matched":
        return "matched", "sha256 matches"
    if ident.state == "trusted":
        return "trusted", f"differs from the card ({ident.detail}), kept by you"
    size = "size matches; " if wf.size_bytes else ""
    return "unpinned", size + "no sha256 on the card" + (f" (sha256 {ident.sha256})" if ident.sha256 else "")
