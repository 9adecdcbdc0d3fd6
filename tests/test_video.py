"""Video/picture I/O on real files: formats, audio and frame counts kept, atomic writes, memory."""
from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talking_head.errors import BadInputError, TalkingHeadError
from talking_head.video import (
    VideoReader,
    VideoWriter,
    audio_duration,
    ffmpeg_exe,
    load_image,
    probe_streams,
)

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
TALK = MEDIA / "driving" / "talk_vox.mp4"  # 410x412, 25 fps, 6.76 s, AAC
SILENT = MEDIA / "driving" / "expressions_green.mp4"  # 512x512, 25 fps, no audio
PORTRAIT = MEDIA / "sources" / "photo_portrait.png"

pytestmark = pytest.mark.skipif(not TALK.exists(), reason="shared test media not found")


def astronaut() -> np.ndarray:
    from skimage.data import astronaut as load

    return load()


def count_frames(path: Path) -> int:
    """Decoded video frames, counted by ffmpeg itself."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(proc.stderr.rsplit("frame=", 1)[1].split()[0])


# ------------------------------------------------------------------------------------------ pictures


def test_load_image_converts_modes(tmp_path):
    rgb = astronaut()[:200, 100:260]  # a real face, non-square
    gray = Image.fromarray(rgb).convert("L")
    gray.save(tmp_path / "gray.png")
    out = load_image(tmp_path / "gray.png")
    assert out.shape == (200, 160, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], np.asarray(gray)) and np.array_equal(out[..., 0], out[..., 2])

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:50, :, 3] = 0  # transparent top band -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out.shape == (200, 160, 3)
    assert (out[:50] == 255).all() and np.array_equal(out[60:], rgb[60:])

    g16 = np.asarray(gray).astype(np.uint16) * 257
    Image.fromarray(g16).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    assert np.abs(out[..., 1].astype(int) - np.asarray(gray).astype(int)).max() <= 1

    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(tmp_path / "pal.png")
    out = load_image(tmp_path / "pal.png")
    assert out.shape == (200, 160, 3) and np.abs(out.astype(int) - rgb.astype(int)).mean() < 12


def test_load_image_applies_exif_rotation(tmp_path):
    rgb = astronaut()[:120, :200]  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (200, 120, 3)  # displayed upright: portrait
    expected = np.rot90(rgb, k=-1)
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 6


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("empty.png", b"", "empty"),
        ("notes.jpg", b"this is a text file, not a picture\n" * 5, "not a picture"),
        ("cut.jpg", None, "damaged"),
    ],
)
def test_load_image_rejects_bad_files(tmp_path, name, content, words):
    path = tmp_path / name
    if content is None:
        Image.fromarray(astronaut()).save(path, quality=90)
        path.write_bytes(path.read_bytes()[:3000])
    else:
        path.write_bytes(content)
    with pytest.raises(BadInputError) as info:
        load_image(path)
    assert name in str(info.value) and words in str(info.value)
    assert info.value.hint


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(BadInputError, match="does not exist"):
        VideoReader(tmp_path / "nope.mp4")


# ------------------------------------------------------------------------------------------ reading


def test_reader_properties_and_lazy_frames():
    reader = VideoReader(TALK)
    assert reader.size == (410, 412) and reader.fps == pytest.approx(25.0)
    assert reader.has_audio and not reader.is_image
    assert abs(reader.frame_count - 169) <= 2
    first = next(iter(reader))
    assert first.shape == (412, 410, 3) and first.dtype == np.uint8 and first.std() > 10
    assert not VideoReader(SILENT).has_audio


def test_picture_is_a_one_frame_clip():
    reader = VideoReader(PORTRAIT)
    frames = list(reader)
    assert reader.is_image and len(frames) == 1 and reader.frame_count == 1
    assert frames[0].shape[:2] == (reader.height, reader.width)


def test_bad_videos_raise_bad_input(tmp_path):
    data = (MEDIA / "driving" / "talk_480.mp4").read_bytes()  # its index ('moov') is at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    for path, words in [(cut, "damaged or truncated"), (empty, "empty"), (text, "not a video")]:
        with pytest.raises(BadInputError) as info:
            VideoReader(path)
        assert path.name in str(info.value) and words in str(info.value)


def test_reading_a_long_clip_keeps_memory_flat(tmp_path):
    long_clip = tmp_path / "long.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-stream_loop", "3", "-i", str(TALK), "-c", "copy", str(long_clip)],
                   check=True)
    frame_bytes = 410 * 412 * 3
    tracemalloc.start()
    try:
        n = 0
        checksum = 0
        for frame in VideoReader(long_clip):
            n += 1
            checksum += int(frame[200, 200, 0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n >= 4 * 160 and checksum > 0
    # Holding all frames would take n * 0.5 MB (over 300 MB); a lazy reader holds a few frames.
    assert peak < 12 * frame_bytes, f"peak {peak / 1e6:.1f} MB while reading {n} frames"


# ------------------------------------------------------------------------------------------ writing


def test_writer_keeps_frames_and_audio(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoReader(TALK) as reader, VideoWriter(out, reader.fps, audio_from=TALK) as writer:
        for i, frame in enumerate(reader):
            if i == 60:
                break
            writer.write(frame)
    info = probe_streams(out)
    assert info["video"] == "h264" and info["pix_fmt"] == "yuv420p" and info["audio"] == "aac"
    assert count_frames(out) == 60
    assert audio_duration(out) == pytest.approx(60 / 25.0, abs=0.05)
    back = VideoReader(out)
    assert back.fps == pytest.approx(25.0) and back.has_audio
    assert out.stat().st_mode & 0o044  # readable by others like any normal file, not a private temp


def test_writer_without_audio_source_and_silent_clip(tmp_path):
    frame = astronaut()[:256, :256]
    for audio_from in (None, SILENT):
        out = tmp_path / f"out_{audio_from is None}.mp4"
        with VideoWriter(out, 25, audio_from=audio_from) as writer:
            for _ in range(5):
                writer.write(frame)
        assert count_frames(out) == 5 and probe_streams(out)["audio"] is None


def test_writer_max_seconds_stops_taking_frames(tmp_path):
    out = tmp_path / "short.mp4"
    frame = astronaut()[:128, :128]
    with VideoWriter(out, 10, audio_from=TALK, max_seconds=1.0) as writer:
        accepted = [writer.write(frame) for _ in range(25)]
    assert sum(accepted) == 10 and writer.full
    assert count_frames(out) == 10
    assert audio_duration(out) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("size", [(317, 201), (201, 317), (99, 100)])
def test_odd_and_portrait_sizes(tmp_path, size):
    w, h = size
    img = np.ascontiguousarray(np.resize(astronaut(), (h, w, 3)))
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 25) as writer:
        for k in range(4):
            writer.write(np.roll(img, k * 3, axis=1))
    reader = VideoReader(out)
    assert reader.size == (w + w % 2, h + h % 2)
    frames = list(reader)
    assert len(frames) == 4
    # the picture is where it was (padding only on the right/bottom edge)
    assert np.abs(frames[0][:h, :w].astype(int) - img.astype(int)).mean() < 12


def test_failed_write_leaves_no_file_and_keeps_existing(tmp_path):
    frame = astronaut()[:64, :64]
    fresh = tmp_path / "fresh.mp4"
    with pytest.raises(RuntimeError, match="render failed"):
        with VideoWriter(fresh, 25, audio_from=TALK) as writer:
            writer.write(frame)
            writer.write(frame)
            raise RuntimeError("render failed")
    assert not fresh.exists()

    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"previous result")
    with pytest.raises(ValueError):
        with VideoWriter(existing, 25) as writer:
            writer.write(frame)
            writer.write(astronaut()[:32, :32])  # size change: a programming error
    assert existing.read_bytes() == b"previous result"

    with pytest.raises(TalkingHeadError, match="No frames"):
        with VideoWriter(existing, 25):
            pass
    assert existing.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.mp4"]  # no temp files left


def test_successful_write_replaces_existing(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with VideoWriter(out, 25) as writer:
        writer.write(astronaut()[:64, :64])
    assert count_frames(out) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
