"""Finding model files and loading them safely.

Where a file is looked for, in order:
1. ``weights/<filename>`` (or ``$TALKING_HEAD_WEIGHTS/<filename>``): a local file always wins;
2. the Hugging Face Hub cache (``huggingface_hub``'s own cache, any revision pinned on the card);
3. a download from the Hub, when the file is on the Hub and the Hub answers within seconds.

Checkpoints are read with ``torch.load(weights_only=True)`` or safetensors only: never an
arbitrary unpickle.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from talking_head.cards import ModelCard, WeightFile
from talking_head.errors import CheckpointError, WeightsMissingError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROBE_TIMEOUT_S = 3.0

ProgressFn = Callable[[float, str], None]


def weights_dir() -> Path:
    return Path(os.environ.get("TALKING_HEAD_WEIGHTS", PROJECT_ROOT / "weights"))


def local_path(wf: WeightFile) -> Path:
    return weights_dir() / wf.filename


def hub_cache_dir() -> str | None:
    """The Hub cache folder, read at call time (None: huggingface_hub's default)."""
    return os.environ.get("HF_HUB_CACHE") or None


def cached_path(wf: WeightFile) -> Path | None:
    """The file in the Hugging Face cache, or None. Never touches the network."""
    if not wf.on_hub:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo_id=wf.hf_repo,
        filename=wf.hf_path,
        cache_dir=hub_cache_dir(),
        revision=wf.revision,
        repo_type=wf.hf_repo_type,
    )
    return Path(found) if isinstance(found, str) else None


def find_file(wf: WeightFile) -> Path | None:
    """Local file or Hub-cache copy, without any network access."""
    p = local_path(wf)
    if p.is_file():
        return p
    return cached_path(wf)


def weights_present(card: ModelCard) -> bool:
    return all(find_file(wf) is not None for wf in card.files)


def where_to_get(wf: WeightFile) -> str:
    """Where a missing file comes from, in words: the Hub location, or the page to get it and where to put it."""
    if wf.on_hub:
        return f"downloaded on first use from Hugging Face {wf.hf_repo_type} {wf.hf_repo} ({wf.hf_path})"
    return f"get it from {wf.url or 'its authors'} and put it at {local_path(wf)}"


def weights_status(card: ModelCard) -> tuple[str, list[tuple[WeightFile, Path | None]]]:
    """('present' | 'missing' | 'none needed', [(file, local path or None), ...]); no network access."""
    if not card.files:
        return "none needed", []
    found = [(wf, find_file(wf)) for wf in card.files]
    return ("missing" if any(p is None for _, p in found) else "present"), found


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the Hub endpoint accepts a TCP connection within ``timeout`` seconds.

    Runs the DNS lookup and connect in a daemon thread so a hanging resolver cannot block us.
    """
    if _offline_env():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
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


def missing_message(card: ModelCard, wf: WeightFile, reason: str) -> WeightsMissingError:
    where = f"{wf.hf_repo_type} '{wf.hf_repo}', file '{wf.hf_path}'" if wf.on_hub else (wf.url or "its authors' page")
    size = f" ({wf.size_mb:.0f} MB)" if wf.size_mb else ""
    return WeightsMissingError(
        f"Model '{card.name}' needs the file '{wf.filename}'{size}, which is not on this machine ({reason}).",
        f"Download it from {where} and put it at {local_path(wf)}",
    )


def _progress_tqdm(progress: ProgressFn, label: str):
    """A tqdm class that forwards download progress to ``progress(fraction, text)``."""
    from tqdm.auto import tqdm

    class ProgressTqdm(tqdm):
        def update(self, n=1):
            out = super().update(n)
            if self.total:
                progress(min(1.0, self.n / self.total), label)
            return out

    return ProgressTqdm


def _download(wf: WeightFile, progress: ProgressFn | None) -> Path:
    from huggingface_hub import hf_hub_download

    label = f"downloading {wf.filename}"
    if progress:
        progress(0.0, label)
    path = hf_hub_download(
        repo_id=wf.hf_repo,
        filename=wf.hf_path,
        revision=wf.revision,
        repo_type=wf.hf_repo_type,
        cache_dir=hub_cache_dir(),
        endpoint=os.environ.get("HF_ENDPOINT") or None,
        etag_timeout=PROBE_TIMEOUT_S,
        tqdm_class=_progress_tqdm(progress, label) if progress else None,
    )
    if progress:
        progress(1.0, f"downloaded {wf.filename}")
    return Path(path)


_verified: dict[tuple[str, int, float], bool] = {}


def verify_sha256(path: Path, expected: str | None) -> None:
    if not expected:
        return
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    if _verified.get(key):
        return
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != expected.lower():
        raise CheckpointError(
            f"'{path}' is not the expected file: its sha256 is {h.hexdigest()}, expected {expected}.",
            "The file is damaged or a different checkpoint; download it again.",
        )
    _verified[key] = True


def fetch_files(card: ModelCard, allow_download: bool = True, progress: ProgressFn | None = None) -> list[Path]:
    """Paths of all files a card needs; downloads what is missing when the Hub answers.

    Raises WeightsMissingError within seconds when a file is missing and cannot be downloaded.
    """
    paths = []
    online: bool | None = None
    for wf in card.files:
        path = find_file(wf)
        if path is None:
            if not wf.on_hub:
                raise missing_message(card, wf, "it is not published on the Hugging Face Hub")
            if not allow_download:
                raise missing_message(card, wf, "downloads are turned off")
            if online is None:
                online = hub_reachable()
            if not online:
                raise missing_message(card, wf, "the Hugging Face Hub cannot be reached")
            try:
                path = _download(wf, progress)
            except Exception as exc:  # network, auth or 404 from huggingface_hub: all mean "not here"
                raise missing_message(card, wf, f"the download failed: {exc}") from exc
        verify_sha256(path, wf.sha256)
        paths.append(path)
    return paths


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely: safetensors, or torch.load with weights_only=True.

    Raises CheckpointError with a clear message for a truncated file, a pickle that needs
    arbitrary code, or anything that is not a dict of tensors.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist.", "Check the path.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"Checkpoint '{path}' is empty.", "Download the file again.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise CheckpointError(f"'{path}' is not a readable safetensors file: {exc}", "Download the file again.") from exc
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "Weights only load failed" in text or "weights_only" in text:
            raise CheckpointError(
                f"'{path.name}' contains Python objects beyond tensors, and loading it would run "
                "arbitrary code, so it was refused.",
                "Use the published checkpoint file, or convert it to safetensors on a trusted machine.",
            ) from exc
        raise CheckpointError(
            f"'{path.name}' could not be read as a PyTorch checkpoint ({type(exc).__name__}: {text.splitlines()[0] if text else ''}). "
            "It is probably truncated or not a checkpoint.",
            "Download the file again.",
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"'{path.name}' holds a {type(obj).__name__}, not a dict of weights.", "Use the published checkpoint file.")
    return obj
