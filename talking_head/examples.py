"""The example pictures and clips shipped in ``examples/``, and a portrait to fall back on.

Plain Python (no UI): the studio and the desktop live mode both use it.
"""
from __future__ import annotations

from pathlib import Path

from talking_head.video import IMAGE_SUFFIXES

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv"})


def example_files(kind: str) -> list[Path]:
    """Pictures ('image') or clips ('video') in examples/ (searched recursively), sorted."""
    if not EXAMPLES_DIR.is_dir():
        return []
    suffixes = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    return sorted(p for p in EXAMPLES_DIR.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def fallback_source() -> Path | None:
    """A public-domain portrait that ships with matplotlib (Grace Hopper), when examples/ has none."""
    try:
        import matplotlib.cbook

        path = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except (ImportError, OSError, ValueError):
        return None
    return path if path.is_file() else None


def default_sources() -> list[Path]:
    """The example pictures, or the fallback portrait when there are none."""
    found = example_files("image")
    if found:
        return found
    fb = fallback_source()
    return [fb] if fb else []
