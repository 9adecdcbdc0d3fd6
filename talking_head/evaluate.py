"""Self-reenactment scores: animate each clip's first frame with the clip itself, compare to the clip.

    scores = evaluate_files("fomm.vox", ["a.mp4", "b.mp4"])
    print(format_table(scores, "fomm.vox"))

L1: mean absolute pixel difference in [0, 1] at 256 pixels on the long side (lower is better).
AKD: mean distance, in pixels at that size, between the landmarks of the output and of the real
frame (lower is better), measured by two detectors: MediaPipe's face mesh (478 points; the
landmark model is driven by it, so it grades that model kindly) and dlib's 68-point predictor
(independent of every model here; an evaluation extra, see ``eval_landmarks``). Frames where the
real frame has no detected face are left out, and MKR (missing keypoint rate) is the share of the
rest where the output has none (MediaPipe).
Expression transfer (dlib landmarks): for eye opening, mouth opening and mouth width, the
correlation r and the gain (least-squares slope) of the output's measure against the real frame's
over the clip; 1 and 1 is a perfect copy. The baseline is "no motion": every output frame is the
first frame (its r is undefined and its gain 0).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from talking_head.eval_landmarks import correlation_and_gain, face_ratios_68

EVAL_SIZE = 256
MEASURES = ("eye", "mouth_open", "mouth_width")  # expression measures reported (face_ratios_68 keys)
SERIES = MEASURES + ("eye_right", "eye_left")


@dataclass
class Score:
    """Running sums for one method on one clip."""

    l1_sum: float = 0.0
    frames: int = 0
    akd_sum: float = 0.0
    akd_frames: int = 0
    missing: int = 0  # real frame has landmarks, output has none
    dlib_sum: float = 0.0
    dlib_frames: int = 0
    # per frame where dlib finds both faces: (output measure, real measure) for each of SERIES
    pairs: dict = field(default_factory=lambda: {k: [] for k in SERIES})

    def add(self, output: np.ndarray, truth: np.ndarray, out_lm, true_lm, out_68=None, true_68=None) -> None:
        self.l1_sum += l1_distance(output, truth)
        self.frames += 1
        if out_68 is not None and true_68 is not None:
            self.dlib_sum += float(np.linalg.norm(out_68 - true_68, axis=1).mean())
            self.dlib_frames += 1
            out_r, true_r = face_ratios_68(out_68), face_ratios_68(true_68)
            for k in SERIES:
                self.pairs[k].append((out_r[k], true_r[k]))
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
    def akd_dlib(self) -> float:
        return self.dlib_sum / self.dlib_frames if self.dlib_frames else float("nan")

    @property
    def mkr(self) -> float:
        n = self.akd_frames + self.missing
        return self.missing / n if n else float("nan")

    def transfer(self, measure: str) -> tuple[float, float]:
        """(r, gain) of the output's ``measure`` against the real frames'."""
        if not self.pairs[measure]:
            return float("nan"), float("nan")
        out, true = np.asarray(self.pairs[measure]).T
        return correlation_and_gain(out, true)


@dataclass
class ClipScores:
    path: Path
    frames: int
    model: Score
    baseline: Score


def to_eval_size(image: np.ndarray) -> np.ndarray:
    """``image`` resized to EVAL_SIZE pixels on its long side (shape kept)."""
    h, w = image.shape[:2]
    k = EVAL_SIZE / float(max(h, w))
    size = (max(1, int(round(w * k))), max(1, int(round(h * k))))
    if size == (w, h):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)


def l1_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| of two uint8 images, in [0, 1]."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def evaluate_clip(engine, path, max_frames: int | None = None, mesh=None, progress=None, dlib68=None) -> ClipScores:
    """Scores of ``engine`` (an engine.Engine, paste_back off) on one clip; source = its first frame.

    ``mesh``: a static face mesh to measure with; ``dlib68``: an eval_landmarks.DlibLandmarks
    (made here when None).
    """
    from talking_head import face as facelib
    from talking_head.eval_landmarks import DlibLandmarks
    from talking_head.video import VideoReader

    own_mesh, own_dlib = mesh is None, dlib68 is None
    dlib68 = dlib68 or DlibLandmarks()
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
        first_lm, first_68 = mesh.landmarks(first), dlib68.landmarks(first)
        model, baseline = Score(), Score()
        n = 0
        for animated in engine.animate(frames()):
            truth = to_eval_size(animated.driving_crop)
            output = to_eval_size(animated.result.frame)
            if output.shape != truth.shape:
                output = cv2.resize(output, truth.shape[1::-1], interpolation=cv2.INTER_AREA)
            true_lm, true_68 = mesh.landmarks(truth), dlib68.landmarks(truth)
            model.add(output, truth, mesh.landmarks(output), true_lm, dlib68.landmarks(output), true_68)
            baseline.add(first if first.shape == truth.shape else cv2.resize(first, truth.shape[1::-1]),
                         truth, first_lm, true_lm, first_68, true_68)
            n += 1
            if progress:
                progress(n, reader.frame_count if max_frames is None else min(max_frames, reader.frame_count))
    finally:
        if own_mesh:
            mesh.close()
        if own_dlib:
            dlib68.close()
    return ClipScores(Path(path), n, model, baseline)


def evaluate_files(model_name: str, paths, device=None, max_seconds: float | None = None, auto_crop: bool = True,
                   batch_size: int = 8, allow_download: bool = True, quiet: bool = False,
                   trust: bool | None = None, controls: dict | None = None) -> list[ClipScores]:
    """Load ``model_name`` and score it on every clip in ``paths`` (``controls``: the card's control values)."""
    from talking_head import face as facelib
    from talking_head.engine import AnimateSettings, Engine, transfer_options
    from talking_head.eval_landmarks import DlibLandmarks
    from talking_head.registry import load_model
    from talking_head.video import VideoReader

    for p in paths:  # fail fast on a bad file or a missing evaluation extra, before loading the model
        VideoReader(p)
    dlib68 = DlibLandmarks()
    model = load_model(model_name, device=device, allow_download=allow_download, trust=trust, kind="animator")
    options = transfer_options(model.card, extra=model.card.control_values(controls or {}))
    settings = AnimateSettings(options=options, auto_crop=auto_crop, paste_back=False, batch_size=batch_size)
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
                scores.append(evaluate_clip(engine, p, max_frames, mesh, progress=bar.update if bar else None,
                                            dlib68=dlib68))
            finally:
                if bar:
                    bar.close()
    finally:
        mesh.close()
        dlib68.close()
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


def _mean(values) -> float:
    vals = [v for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def clip_row(s: ClipScores) -> dict[str, float]:
    """One clip's numbers by column name (``*_still``: the no-motion baseline)."""
    row = {"frames": s.frames, "l1": s.model.l1, "l1_still": s.baseline.l1, "akd_mp": s.model.akd,
           "akd_mp_still": s.baseline.akd, "akd_dlib": s.model.akd_dlib, "akd_dlib_still": s.baseline.akd_dlib,
           "mkr": s.model.mkr}
    for m in MEASURES:
        row[f"{m}_r"], row[f"{m}_gain"] = s.model.transfer(m)
        row[f"{m}_gain_still"] = s.baseline.transfer(m)[1]
    return row


def mean_row(scores: list[ClipScores]) -> dict[str, float]:
    """The per-clip numbers averaged over clips (frames: their sum)."""
    rows = [clip_row(s) for s in scores]
    out = {k: _mean([r[k] for r in rows]) for k in rows[0]}
    out["frames"] = sum(s.frames for s in scores)
    return out


def format_table(scores: list[ClipScores], model_name: str) -> str:
    """A plain-text table: per clip and mean, the model beside the no-motion baseline ('still')."""
    head = ("clip", "frames", "L1", "L1 still", "AKD-mp", "AKD-mp still", "AKD-dlib", "AKD-dlib still",
            "eye r", "eye gain", "mouth r", "mouth gain", "width r", "width gain", "MKR")

    def cells(name: str, r: dict) -> tuple[str, ...]:
        out = [name, str(int(r["frames"])), _f(r["l1"], "{:.4f}"), _f(r["l1_still"], "{:.4f}"),
               _f(r["akd_mp"], "{:.2f}"), _f(r["akd_mp_still"], "{:.2f}"),
               _f(r["akd_dlib"], "{:.2f}"), _f(r["akd_dlib_still"], "{:.2f}")]
        for m in MEASURES:
            out += [_f(r[f"{m}_r"], "{:.2f}"), _f(r[f"{m}_gain"], "{:.2f}")]
        out.append(_f(r["mkr"] * 100, "{:.1f}%"))
        return tuple(out)

    rows = [cells(s.path.name, clip_row(s)) for s in scores]
    if len(scores) > 1:
        rows.append(cells("mean", mean_row(scores)))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"self-reenactment of {model_name} (source = first frame; 'still' = no motion: its r is undefined, "
             f"its gain 0; L1 in [0,1], AKD in pixels at {EVAL_SIZE} px; AKD-mp: MediaPipe face mesh, AKD-dlib "
             "and eye/mouth r and gain: dlib 68 points (iBUG 300-W)); lower L1/AKD is better, r and gain best at 1"]
    for r in [head, *rows]:
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(lines)
