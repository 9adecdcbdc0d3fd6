"""Finding model files and loading them safely.

Where a file is looked for, in order:
1. ``weights/<filename>`` (or ``$TALKING_HEAD_WEIGHTS/<filename>``): a local file always wins;
2. the Hugging Face Hub cache (``huggingface_hub``'s own cache, any revision pinned on the card);
3. a download from the Hub (pinned revision), when the file is on the Hub and the Hub answers within seconds;
4. a plain HTTPS download (``download_url``, e.g. a GitHub release asset) into ``weights/``, resumable,
   through a ``.part`` file that is renamed only once checked.

Every file found or downloaded is checked before use (``file_checks``): a git-LFS pointer or a web page
saved in its place, a truncated file, and a size or sha256 other than the card's are each named as
such; a file that differs can be kept with an explicit override (``trust``). Checkpoints are read with
``torch.load(weights_only=True)`` or safetensors only: never an arbitrary unpickle.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from talking_head import downloads, file_checks
from talking_head.cards import ModelCard, WeightFile
from talking_head.errors import (
    CheckpointError,
    FileMismatchError,
    HtmlPageError,
    LfsPointerError,
    TruncatedFileError,
    UnsafeCheckpointError,
    WeightsMissingError,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROBE_TIMEOUT_S = downloads.PROBE_TIMEOUT_S

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


def records() -> file_checks.FileRecords:
    """sha256 and trust records of weight files, kept next to the weights folder's files."""
    return file_checks.FileRecords(weights_dir() / ".talking-head-files.json")


def _hub_words(wf: WeightFile) -> str:
    pin = f" at commit {wf.revision[:12]}" if wf.revision else ""
    return f"Hugging Face {wf.hf_repo_type} {wf.hf_repo} ({wf.hf_path}{pin})"


def where_to_get(wf: WeightFile) -> str:
    """Where a missing file comes from, in words: the Hub, an HTTPS address, or the page to get it by hand."""
    if wf.on_hub and wf.download_url:
        return f"downloaded on first use from {_hub_words(wf)}, else from {wf.download_url}"
    if wf.on_hub:
        return f"downloaded on first use from {_hub_words(wf)}"
    if wf.download_url:
        by_hand = f" (or by hand from {wf.url})" if wf.url else ""
        return f"downloaded on first use from {wf.download_url} into {local_path(wf)}{by_hand}"
    return f"get it from {wf.url or 'its authors'} and put it at {local_path(wf)}"


def source_words(wf: WeightFile) -> str:
    """Where a file comes from, in a few words (for listings): 'Hub space owner/name', 'github.com release', ..."""
    parts = []
    if wf.on_hub:
        parts.append(f"Hub {wf.hf_repo_type} {wf.hf_repo}" + (f"@{wf.revision[:7]}" if wf.revision else ""))
    if wf.download_url:
        url = urlparse(wf.download_url)
        parts.append("GitHub release" if url.hostname == "github.com" and "/releases/download/" in url.path
                     else f"{url.hostname} (HTTPS)")
    if not parts:
        parts.append(f"by hand from {urlparse(wf.url).hostname if wf.url else 'its authors'}")
    return ", then ".join(parts)


def fix_words(wf: WeightFile) -> str:
    """How to get a good copy again, as the end of a sentence ('Delete it and ...')."""
    if wf.downloadable:
        return f"run again to download it ({where_to_get(wf)})"
    return f"get it again from {wf.url or 'its authors'} and put it at {local_path(wf)}"


def weights_status(card: ModelCard) -> tuple[str, list[tuple[WeightFile, Path | None]]]:
    """('present' | 'missing' | 'none needed', [(file, local path or None), ...]); no network access."""
    if not card.files:
        return "none needed", []
    found = [(wf, find_file(wf)) for wf in card.files]
    return ("missing" if any(p is None for _, p in found) else "present"), found


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the Hub endpoint accepts a TCP connection within ``timeout`` seconds."""
    return downloads.host_reachable(hub_endpoint(), timeout)


def missing_message(card: ModelCard, wf: WeightFile, reason: str) -> WeightsMissingError:
    where = f"{wf.hf_repo_type} '{wf.hf_repo}', file '{wf.hf_path}'" if wf.on_hub else (wf.url or "its authors' page")
    size = f" ({wf.size_mb:,.0f} MB)" if wf.size_mb and wf.size_mb >= 10 else (f" ({wf.size_mb:.1f} MB)" if wf.size_mb else "")
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


def _download_hub(wf: WeightFile, progress: ProgressFn | None) -> Path:
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
    return Path(path)


def _download_https(wf: WeightFile, progress: ProgressFn | None, trust: bool,
                    recs: file_checks.FileRecords) -> tuple[Path, file_checks.Identity]:
    """``download_url`` -> ``weights/<filename>``, through a ``.part`` renamed only once it passed the checks."""
    dest = local_path(wf)
    label = f"downloading {wf.filename}"
    if progress:
        progress(0.0, label)
    part = downloads.download(wf.download_url, dest, progress, label)
    by_hand = f"download it by hand from {wf.url or wf.download_url} and put it at {dest}"
    try:
        file_checks.check_content(part, by_hand)
        ident = file_checks.check_identity(part, wf, recs, by_hand, trust)
    except (LfsPointerError, HtmlPageError, TruncatedFileError) as err:
        part.unlink()  # useless bytes: the next run starts afresh
        raise type(err)(f"The download from {wf.download_url} is " + err.message.split("' is ", 1)[-1],
                        err.hint.replace("Delete it and ", "Try again later, or ")) from None
    # a FileMismatchError leaves the whole .part in place: --trust-file then takes it without a new download
    digest = recs.sha256(part)
    os.replace(part, dest)
    recs.put(dest, sha256=digest, trusted=ident.state == "trusted")
    return dest, file_checks.Identity(ident.state, digest, ident.detail)


def check_file(wf: WeightFile, path: Path, trust: bool = False, recs: file_checks.FileRecords | None = None,
               card: ModelCard | None = None) -> file_checks.Identity:
    """Raise the named error when ``path`` is not the card's file (see file_checks); its Identity otherwise.

    With ``card``: a file whose size or hash differs that is really another card's checkpoint names that card.
    """
    recs = recs or records()
    file_checks.check_content(path, fix_words(wf))
    try:
        return file_checks.check_identity(path, wf, recs, fix_words(wf), trust)
    except (TruncatedFileError, FileMismatchError) as err:
        if card is None or wf not in card.files:
            raise
        from talking_head.checkpoint_match import identify

        better = identify(card, card.files.index(wf), path)
        if better is None:
            raise
        raise better from err


def downloaded_message(wf: WeightFile, ident: file_checks.Identity) -> str:
    if ident.state == "matched":
        return f"downloaded {wf.filename} (sha256 matches the card)"
    if ident.state == "trusted":
        return f"downloaded {wf.filename}: it differs from the card ({ident.detail}); kept because you trust it"
    return (f"downloaded {wf.filename}: sha256 {ident.sha256} (the card pins none; compare it with the one "
            "your source publishes)")


def _up(url: str, memo: dict[str, bool]) -> bool:
    """Whether ``url``'s host answers, probed once per host and port (``memo``)."""
    where = urlparse(url).netloc or url
    if where not in memo:
        memo[where] = downloads.host_reachable(url)
    return memo[where]


def _obtain(card: ModelCard, wf: WeightFile, allow_download: bool, progress: ProgressFn | None, trust: bool,
            recs: file_checks.FileRecords, reachable: dict[str, bool]) -> Path:
    """Download a missing file: from the Hub first, then from its HTTPS address; a clear error within seconds."""
    if not wf.downloadable:
        raise missing_message(card, wf, "it is not published where this program can download it")
    if not allow_download:
        raise missing_message(card, wf, "downloads are turned off")

    reasons = []
    if wf.on_hub:
        if _up(hub_endpoint(), reachable):
            try:
                path = _download_hub(wf, progress)
            except Exception as exc:  # network, auth or 404 from huggingface_hub: all mean "not here"
                reasons.append(f"the Hub download failed: {exc}")
            else:
                ident = check_file(wf, path, trust, recs, card)
                if progress:
                    progress(1.0, downloaded_message(wf, file_checks.Identity(ident.state, recs.sha256(path), ident.detail)))
                return path
        else:
            reasons.append("the Hugging Face Hub cannot be reached")
    if wf.download_url:
        host = urlparse(wf.download_url).hostname
        if _up(wf.download_url, reachable):
            try:
                path, ident = _download_https(wf, progress, trust, recs)
            except downloads.DownloadError as exc:
                reasons.append(f"the download from {host} failed: {exc}")
            else:
                if progress:
                    progress(1.0, downloaded_message(wf, ident))
                return path
        else:
            reasons.append(f"{host} cannot be reached")
    raise missing_message(card, wf, "; ".join(reasons))


def sources_reachable(card: ModelCard) -> bool:
    """Whether each missing file of ``card`` has a download source that answers (seconds at most offline)."""
    memo: dict[str, bool] = {}
    missing = [wf for wf in card.files if find_file(wf) is None]
    return bool(missing) and all(
        (wf.on_hub and _up(hub_endpoint(), memo)) or (wf.download_url is not None and _up(wf.download_url, memo))
        for wf in missing
    )


def file_problem(card: ModelCard) -> CheckpointError | None:
    """The error loading ``card`` would raise for a present file (pointer, web page, truncated, another
    card's or a differing file), or None; the app shows its sentence as the CLI does."""
    recs = records()
    for wf in card.files:
        path = find_file(wf)
        if path is None:
            continue
        try:
            check_file(wf, path, file_checks.trust_from_env(), recs, card)
        except CheckpointError as err:
            return err
    return None


def trust_present_files(card: ModelCard, trusted: bool = True) -> list[Path]:
    """Record (or withdraw) the user's trust in the present files of ``card``; the paths it applies to."""
    recs = records()
    done = []
    for wf in card.files:
        path = find_file(wf)
        if path is not None:
            if trusted:
                recs.trust(path)
            else:
                recs.put(path, trusted=False)
            done.append(path)
    return done


def fetch_files(card: ModelCard, allow_download: bool = True, progress: ProgressFn | None = None,
                trust: bool | None = None) -> list[Path]:
    """Paths of all files a card needs, each checked; downloads what is missing when its source answers.

    Raises WeightsMissingError within seconds when a file is missing and cannot be downloaded, and a
    CheckpointError subclass naming what a present file really is when it is not the card's file.
    ``trust`` (default: ``$TALKING_HEAD_TRUST_FILES``) keeps a file whose size or sha256 differs.
    """
    trust = file_checks.trust_from_env() if trust is None else trust
    recs = records()
    reachable: dict[str, bool] = {}
    paths = []
    for wf in card.files:
        path = find_file(wf)
        if path is None:
            path = _obtain(card, wf, allow_download, progress, trust, recs, reachable)
        else:
            check_file(wf, path, trust, recs, card)
        paths.append(path)
    return paths


def file_states(card: ModelCard) -> list[tuple[WeightFile, Path | None, str, str]]:
    """[(file, path or None, kind, phrase)]: kind 'missing' (phrase: where it comes from) or, for a present
    file, file_checks.describe's kind ('matched', 'unpinned', 'trusted', 'problem') and phrase."""
    recs = records()
    out = []
    for wf in card.files:
        path = find_file(wf)
        if path is None:
            out.append((wf, None, "missing", where_to_get(wf)))
        else:
            out.append((wf, path, *file_checks.describe(path, wf, recs)))
    return out


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
    file_checks.check_content(path, "download the file again")
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
            raise UnsafeCheckpointError(
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
