"""Every bad input gets a clear message through the CLI: exit status 2, no traceback, no output file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talking_head.video import VideoReader

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
FACE = MEDIA / "sources" / "photo_portrait.png"
DOG = MEDIA / "sources" / "no_face_dog.jpg"
DRIVING = MEDIA / "driving" / "talk_vox.mp4"
DRIVING_INDEX_AT_END = MEDIA / "driving" / "talk_480.mp4"

pytestmark = pytest.mark.skipif(not DRIVING.exists(), reason="shared test media not found")


def animate(source, driving, out, *extra, model="landmark") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    args = ["animate", "--source", source, "--driving", driving, "--model", model, "--out", out, "--quiet", *extra]
    return subprocess.run([sys.executable, "-m", "talking_head", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=240)


def assert_user_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines, proc.stderr
    message = proc.stderr.lower()
    for word in words:
        assert word.lower() in message, (word, proc.stderr)


@pytest.fixture
def frame_png(tmp_path) -> Path:
    """One frame of the driving clip as a picture: a one-frame driving input (fast)."""
    path = tmp_path / "frame.png"
    Image.fromarray(VideoReader(DRIVING).first_frame()).save(path)
    return path


def test_no_face_in_source(tmp_path, frame_png):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    proc = animate(DOG, frame_png, out)
    assert_user_error(proc, "face")
    assert out.read_bytes() == b"an earlier result"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png", "out.mp4"]  # no temp files


def test_truncated_video(tmp_path):
    data = DRIVING_INDEX_AT_END.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out.mp4"
    assert_user_error(animate(FACE, cut, out), "cut.mp4", "damaged or truncated")
    assert not out.exists()


@pytest.mark.parametrize("role", ["source", "driving"])
def test_empty_file(tmp_path, frame_png, role):
    empty = tmp_path / ("empty.png" if role == "source" else "empty.mp4")
    empty.write_bytes(b"")
    out = tmp_path / "out.mp4"
    proc = animate(empty, frame_png, out) if role == "source" else animate(FACE, empty, out)
    assert_user_error(proc, empty.name, "empty")
    assert not out.exists()


def test_text_file_as_picture(tmp_path, frame_png):
    text = tmp_path / "face.jpg"
    text.write_text("this is not a picture\n" * 20)
    out = tmp_path / "out.mp4"
    assert_user_error(animate(text, frame_png, out), "face.jpg", "not a picture")
    assert not out.exists()


def test_unknown_model_and_missing_weights(tmp_path, frame_png, monkeypatch):
    out = tmp_path / "out.mp4"
    assert_user_error(animate(FACE, frame_png, out, model="no-such-model"), "no-such-model", "models")
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(weights))
    from talking_head.registry import list_models

    needs_file = next(c for c in list_models() if c.files)
    proc = animate(FACE, frame_png, out, "--offline", model=needs_file.name)
    assert_user_error(proc, needs_file.files[0].filename, str(weights))
    assert not out.exists()


def test_bad_options(tmp_path, frame_png):
    out = tmp_path / "out.mp4"
    assert_user_error(animate(FACE, frame_png, out, "--mode", "sideways"), "sideways", "relative")
    assert_user_error(animate(FACE, frame_png, out, "--set", "nonsense=1"), "nonsense")
    assert_user_error(animate(FACE, frame_png, tmp_path / "out.avi"), ".mp4")
    assert_user_error(animate(FACE, frame_png, out, "--device", "tpu"), "tpu")
    assert_user_error(animate(FACE, DRIVING, out, "--reference", "100000", "--max-seconds", "1"), "reference")
    assert not out.exists()


def make_variants(tmp_path: Path) -> dict[str, Path]:
    """The shared face picture as grey, RGBA, 16-bit grey and EXIF-rotated files."""
    rgb = np.asarray(Image.open(FACE).convert("RGB"))
    paths = {}
    gray = Image.fromarray(rgb).convert("L")
    paths["gray"] = tmp_path / "gray.png"
    gray.save(paths["gray"])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    paths["rgba"] = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    paths["gray16"] = tmp_path / "gray16.png"
    Image.fromarray(np.asarray(gray).astype(np.uint16) * 257).save(paths["gray16"])
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned: displayed after a 90-degree turn
    paths["exif"] = tmp_path / "exif.jpg"
    Image.fromarray(np.rot90(rgb, k=-1).copy()).save(paths["exif"], exif=exif, quality=92)
    return paths


def test_unusual_pictures_are_accepted(tmp_path, frame_png):
    variants = make_variants(tmp_path)
    # EXIF rotation through a real subprocess: stored sideways, the face is not found without it
    out = tmp_path / "exif.mp4"
    proc = animate(variants.pop("exif"), frame_png, out)
    assert proc.returncode == 0, proc.stderr
    assert VideoReader(out).count_frames() == 1
    # the other formats through the same entry point, in this process (saves interpreter start-ups)
    from talking_head.cli import main

    for name, path in variants.items():
        out = tmp_path / f"{name}.mp4"
        code = main(["animate", "-s", str(path), "-d", str(frame_png), "-m", "landmark", "-o", str(out), "-q"])
        assert code == 0, name
        assert VideoReader(out).count_frames() == 1
