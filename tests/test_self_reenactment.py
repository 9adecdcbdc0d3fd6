"""The landmark model follows the driving face: self-reenactment on the shared talking clips.

Each clip is reconstructed from its own first frame (the papers' protocol); the output's MediaPipe
landmarks must be far closer to the real frames' than a no-motion baseline (every frame = the first).
"""
from __future__ import annotations

import pytest

from talking_head.evaluate import evaluate_files
from tests.conftest import media

CLIPS = ["driving/talk_vox.mp4", "driving/talk_480.mp4"]


@pytest.mark.parametrize("clip", CLIPS)
def test_landmark_model_beats_the_no_motion_baseline(clip):
    (scores,) = evaluate_files("landmark", [media(clip)], max_seconds=2.0, quiet=True)
    assert scores.model.frames == scores.baseline.frames >= 50
    assert scores.model.mkr == 0.0  # a face in every output frame
    assert scores.model.akd < 0.5 * scores.baseline.akd, (scores.model.akd, scores.baseline.akd)
    assert scores.model.l1 < scores.baseline.l1
