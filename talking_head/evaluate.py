"""Self-reenactment scores: animate each clip's first frame with the clip itself, compare to the clip.

    scores = evaluate_files("fomm.vox", ["a.mp4", "b.mp4"])
    print(format_table(scores, "fomm.vox"))

L1: mean absolute pixel difference in [0, 1] at 256x256 (lower is better).
AKD: mean distance, in pixels at 256x256, between the MediaPipe face-mesh landmarks of the output
and of the real frame (lower is better); frames where the real frame has no detected face are left
out, and MKR (missing keypoint rate) is the share of the rest where the output has none.
The baseline is "no motion": every output frame is the first frame.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

EVAL_SIZE = 256


@dataclass
class Score:
    """Running sums for one method on one clip."""

    l1_sum: float = 0.0
    frames: int = 0
    akd_sum: float = 0.0
    akd_frames: int = 0
    missing: int = 0  # real frame has landmarks, output has none

    def add(self, output: np.ndarray, truth: np.ndarray, out_lm, true_lm) -> None:
        self.l1_sum += l1_distance(output, truth)
        self.frames += 1
        if true_lm is None:
            return
        if out_lm is None:
            self.missing += 1
            return
        self.akd_sum += float(np.linalg.norm(out_lm - true_lm, axis=1).mean())
        self.akd_frames += 1

    @property
    def l1(self) -> float:
        return self.l1_sum / self.frames if self.frames else float("nan")

    @property
    def akd(self) -> float:
        return self.akd_sum / self.akd_frames if self.akd_frames else float("nan")

    @property
    def mkr(self) -> float:
        n = self.akd_frames + self.missing
        return self.missing / n if n else float("nan")


@dataclass
class ClipScores:
    path: Path
    frames: int
    model: Score
    baseline: Score


def to_eval_size(image: np.ndarray) -> np.ndarray:
    if image.shape[0] == EVAL_SIZE and image.shape[1] == EVAL_SIZE:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > EVAL_SIZE else cv2.INTER_LINEAR
    return cv2.resize(image, (EVAL_SIZE, EVAL_SIZE), interpolation=interp)


def l1_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| of two uint8 images, in [0, 1]."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def evaluate_clip(engine, path, max_frames: int | None = None, mesh=None, progress=None) -> ClipScores:
    """Scores of ``engine`` (an engine.Engine, paste_back off) on one clip; source = its first frame."""
    from talking_head import face as facelib
    from talking_head.video import VideoReader

    own_mesh = mesh is None
    mesh = mesh or facelib.FaceMesh(static_image_mode=True)
    try:
        reader = VideoReader(path)

        def frames():
            for i, frame in enumerate(VideoReader(path)):
                if max_frames is not None and i >= max_frames:
                    return
                yield frame

        engine.set_source(reader.first_frame())
        first = to_eval_size(engine.source_crop)
        first_lm = mesh.landmarks(first)
        model, baseline = Score(), Score()
        n = 0
        for animated in engine.animate(frames()):
            truth = to_eval_size(animated.driving_crop)
            output = to_eval_size(animated.result.frame)
            true_lm = mesh.landmarks(truth)
            model.add(output, truth, mesh.landmarks(output), true_lm)
            baseline.add(first, truth, first_lm, true_lm)
            n += 1
            if progress:
                progress(n, reader.frame_count if max_frames is None else min(max_frames, reader.frame_count))
    finally:
        if own_mesh:
            mesh.close()
    return ClipScores(Path(path), n, model, baseline)


def evaluate_files(model_name: str, paths, device=None, max_seconds: float | None = None, auto_crop: bool = True,
                   batch_size: int = 8, allow_download: bool = True, quiet: bool = False,
                   trust: bool | None = None) -> list[ClipScores]:
    """Load ``model_name`` and score it on every clip in ``paths``."""
    from talking_head import face as facelib
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.registry import load_model
    from talking_head.video import VideoReader

    for p in paths:  # fail fast on a bad file, before loading the model
        VideoReader(p)
    model = load_model(model_name, device=device, allow_download=allow_download, trust=trust, kind="animator")
    settings = AnimateSettings(auto_crop=auto_crop, paste_back=False, batch_size=batch_size)
    engine = Engine(model, settings)
    mesh = facelib.FaceMesh(static_image_mode=True)
    scores = []
    try:
        for p in paths:
            max_frames = None
            if max_seconds:
                max_frames = max(1, int(round(max_seconds * VideoReader(p).fps)))
            bar = None if quiet else _bar(Path(p).name)
            try:
                scores.append(evaluate_clip(engine, p, max_frames, mesh, progress=bar.update if bar else None))
            finally:
                if bar:
                    bar.close()
    finally:
        mesh.close()
    return scores


class _bar:
    def __init__(self, name: str):
        from tqdm import tqdm

        self._t = tqdm(desc=name, unit="frame", file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, total: int) -> None:
        if total and self._t.total != total:
            self._t.total = max(total, done)
        self._t.update(done - self._t.n)

    def close(self) -> None:
        self._t.close()


def _f(v: float, pattern: str) -> str:
    return "-" if not np.isfinite(v) else pattern.format(v)


def format_table(scores: list[ClipScores], model_name: str) -> str:
    """A plain-text table: per clip and mean, L1 / AKD / MKR for the model and the no-motion baseline."""
    head = ("clip", "frames", "L1 model", "L1 still", "AKD model", "AKD still", "MKR model")
    rows = []
    for s in scores:
        rows.append((s.path.name, str(s.frames), _f(s.model.l1, "{:.4f}"), _f(s.baseline.l1, "{:.4f}"),
                     _f(s.model.akd, "{:.2f}"), _f(s.baseline.akd, "{:.2f}"), _f(s.model.mkr * 100, "{:.1f}%")))
    if len(scores) > 1:
        def mean(values):
            vals = [v for v in values if np.isfinite(v)]
            return float(np.mean(vals)) if vals else float("nan")

        rows.append(("mean", str(sum(s.frames for s in scores)),
                     _f(mean([s.model.l1 for s in scores]), "{:.4f}"),
                     _f(mean([s.baseline.l1 for s in scores]), "{:.4f}"),
                     _f(mean([s.model.akd for s in scores]), "{:.2f}"),
                     _f(mean([s.baseline.akd for s in scores]), "{:.2f}"),
                     _f(mean([s.model.mkr for s in scores]) * 100, "{:.1f}%")))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"self-reenactment of {model_name} (source = first frame; 'still' = no motion; "
             f"L1 in [0,1], AKD in pixels at {EVAL_SIZE}x{EVAL_SIZE}; lower is better)"]
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(lines)
