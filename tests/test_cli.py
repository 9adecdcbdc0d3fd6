"""The command line, run as a user runs it (a subprocess), on real faces and clips."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talking_head.registry import list_models
from talking_head.video import VideoReader, audio_duration, probe_streams

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
SOURCE = MEDIA / "sources" / "photo_portrait.png"
DRIVING = MEDIA / "driving" / "talk_vox.mp4"  # 25 fps, with audio
EXAMPLE_DRIVING = ROOT / "examples" / "driving_talk.mp4"

pytestmark = pytest.mark.skipif(not DRIVING.exists(), reason="shared test media not found")


def run_cli(*args, cwd=None, timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "talking_head", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


def count_frames(path: Path) -> int:
    return VideoReader(path).count_frames()


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("animate", "models", "evaluate", "live"):
        assert command in proc.stdout
    assert run_cli().returncode == 2  # no command: usage, not success
    if (ROOT / "talking_head" / "live.py").exists():
        live = run_cli("live", "--help")  # handed to live.py's own parser
        assert live.returncode == 0 and "live" in live.stdout and "--source" in live.stdout, live.stderr


def test_models_lists_every_card(tmp_path):
    env_weights = tmp_path / "weights"
    env_weights.mkdir()
    proc = subprocess.run([sys.executable, "-m", "talking_head", "models"], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), TALKING_HEAD_WEIGHTS=str(env_weights),
                                   HF_HUB_OFFLINE="1"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    cards = list_models()
    assert cards
    for card in cards:
        assert card.name in out and card.family in out
        assert card.license in out
        for wf in card.files:
            assert wf.filename in out
            assert (wf.hf_repo in out) if wf.on_hub else (wf.url or "the authors") in out
    names = run_cli("models", "--names").stdout.split()
    assert names == [c.name for c in cards]


def test_animate_end_to_end_keeps_audio_and_frames(tmp_path):
    out = tmp_path / "out.mp4"
    grid = tmp_path / "grid.mp4"
    proc = run_cli("animate", "--source", SOURCE, "--driving", DRIVING, "--model", "landmark", "--out", out,
                   "--max-seconds", 2, "--side-by-side", grid)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "wrote" in proc.stdout and "audio" in proc.stdout
    assert count_frames(out) == 50  # 2 s at the clip's 25 fps
    assert audio_duration(out) == pytest.approx(2.0, abs=0.06)
    info = probe_streams(out)
    assert info["video"] == "h264" and info["pix_fmt"] == "yuv420p"

    # the face moves: consecutive output frames differ, and the output is not a still picture
    frames = [f.astype(np.float32) for f in VideoReader(out)]
    diffs = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert max(diffs) > 0.5 and np.abs(frames[0] - frames[-1]).mean() > 0.5

    # the grid has the same frames and audio, and several panels side by side
    assert count_frames(grid) == 50
    assert VideoReader(grid).width >= 4 * VideoReader(grid).height // 2
    assert audio_duration(grid) == pytest.approx(2.0, abs=0.06)


def test_animate_best_frame_and_example_clip(tmp_path):
    out = tmp_path / "best.mp4"
    proc = run_cli("animate", "-s", ROOT / "examples" / "grace_hopper.jpg", "-d", EXAMPLE_DRIVING, "-m", "landmark",
                   "-o", out, "--best-frame", "--paste-back", "--quiet", "--max-seconds", 1.2)
    assert proc.returncode == 0, proc.stderr
    assert count_frames(out) == 30
    reference = int(proc.stdout.rsplit("reference frame", 1)[1].split(")")[0])
    assert 0 <= reference < 30
    # paste-back: the output is the whole source picture, not the face crop
    src_h, src_w = 600, 512
    reader = VideoReader(out)
    assert (reader.height, reader.width) == (src_h, src_w)


def test_evaluate_prints_model_and_baseline(tmp_path):
    pytest.importorskip("dlib", reason="the evaluation extra (requirements-eval.txt) is not installed")
    proc = run_cli("evaluate", "--model", "landmark", "--max-seconds", 0.6, "--quiet", EXAMPLE_DRIVING)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    header = next(line for line in lines if line.startswith("clip"))
    assert "AKD-mp" in header and "AKD-dlib" in header and "eye r" in header and "width gain" in header
    row = next(line for line in lines if line.startswith("driving_talk.mp4"))
    cells = row.split()
    frames, l1_model, l1_still, akd_model, akd_still, dlib_model, dlib_still = int(cells[1]), *map(float, cells[2:8])
    assert frames == 15
    assert 0 <= l1_model < 0.5 and 0 < l1_still < 0.5
    assert 0 <= akd_model < 50 and 0 < akd_still < 50
    assert 0 <= dlib_model < 50 and 0 < dlib_still < 50


def test_evaluate_without_the_evaluation_extra_says_what_to_install(monkeypatch, capsys):
    from talking_head.cli import main

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib-bin were not installed
    assert main(["evaluate", "--model", "landmark", "--quiet", str(EXAMPLE_DRIVING)]) == 2
    err = capsys.readouterr().err
    assert "dlib is not installed" in err and "requirements-eval.txt" in err
