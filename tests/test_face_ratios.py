"""Eye/lip ratios: MediaPipe on real faces, LivePortrait's landmark.onnx path with a stand-in model, the engine hook.

The real ``landmark.onnx`` cannot be downloaded here, so the ONNX tests write a stand-in with the
same signature (input "input" (1, 3, 224, 224) RGB in [0, 1]; a third output of 203 points in crop
units) whose points are known: the eye and lip ratios it implies are fixed, except the image-left
eye's, which equals the red-channel mean of the crop it is fed. The model file is written with a
few lines of protobuf encoding below (the ``onnx`` package needs a protobuf newer than MediaPipe's).
"""
from __future__ import annotations

import dataclasses
from itertools import islice

import cv2
import numpy as np
import pytest
import torch

from talking_head import face as facelib
from talking_head.engine import AnimateSettings, Engine
from talking_head.face_ratios import (CROP_SIZE, RatioEstimator, crop_matrix, guide_from_mesh, ratios_from_203)
from talking_head.model_cards.liveportrait import LANDMARK_FILE
from talking_head.models.base import TransferOptions
from talking_head.registry import get_card
from talking_head.video import VideoReader
from tests.conftest import media
from tests.test_liveportrait import SMALL_PARAMS

torch.set_num_threads(1)

OPEN, BLINK, MOUTH_OPEN = 0, 66, 46  # frames of driving/expressions_green.mp4 (eyes open / shut, mouth open)
CLIP_FRAMES = (0, 4, MOUTH_OPEN, 62, 64, BLINK, 68, 76)
STAND_IN_EYE_RIGHT, STAND_IN_LIP = 0.2, 0.1


# ---------------------------------------------------------------------------- a tiny ONNX writer

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _msg(field: int, data) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape=None) -> bytes:  # ValueInfoProto of a float tensor
    dims = b"" if shape is None else _msg(2, b"".join(_msg(1, _int(1, d)) for d in shape))
    return _msg(1, name) + _msg(2, _msg(1, _int(1, 1) + dims))


def _node(op: str, inputs, outputs, attributes=()) -> bytes:
    return (b"".join(_msg(1, i) for i in inputs) + b"".join(_msg(2, o) for o in outputs) + _msg(4, op)
            + b"".join(_msg(5, a) for a in attributes))


def _tensor(name: str, arr: np.ndarray) -> bytes:
    kind = {np.dtype(np.float32): 1, np.dtype(np.int64): 7}[arr.dtype]
    return b"".join(_int(1, d) for d in arr.shape) + _int(2, kind) + _msg(8, name) + _msg(9, arr.tobytes())


def onnx_model(nodes, initializers: dict, inputs, outputs) -> bytes:
    """A ModelProto (IR 8, opset 13) as bytes."""
    graph = (b"".join(_msg(1, n) for n in nodes) + _msg(2, "stand_in")
             + b"".join(_msg(5, _tensor(k, v)) for k, v in initializers.items())
             + b"".join(_msg(11, v) for v in inputs) + b"".join(_msg(12, v) for v in outputs))
    return _int(1, 8) + _msg(7, graph) + _msg(8, _msg(1, "") + _int(2, 13))


def stand_in_points() -> tuple[np.ndarray, np.ndarray]:
    """(template, red_direction), both (1, 406) in crop units: points = template + red mean * direction."""
    angles = np.linspace(0, 2 * np.pi, 203, endpoint=False)
    pts = np.stack([0.5 + 0.3 * np.cos(angles), 0.52 + 0.36 * np.sin(angles)], axis=1)
    pts[[0, 12]] = (0.35, 0.45), (0.45, 0.45)  # image-left eye corners; lids 6, 18 start closed
    pts[[6, 18]] = (0.40, 0.45)
    pts[[24, 36]] = (0.55, 0.45), (0.65, 0.45)  # image-right eye: gap 0.02 / width 0.1
    pts[[30, 42]] = (0.60, 0.44), (0.60, 0.46)
    pts[[48, 66]] = (0.40, 0.70), (0.60, 0.70)  # mouth corners; lips: gap 0.02 / width 0.2
    pts[[90, 102]] = (0.50, 0.69), (0.50, 0.71)
    direction = np.zeros((203, 2))
    direction[6, 1], direction[18, 1] = -0.05, 0.05  # lid gap = 0.1 * red mean: ratio = red mean
    return pts.reshape(1, -1).astype(np.float32), direction.reshape(1, -1).astype(np.float32)


def stand_in_landmark_model(side: int = CROP_SIZE, points: int = 203) -> bytes:
    template, direction = (a[:, : 2 * points] for a in stand_in_points())
    mean_rgb = _msg(1, "axes") + _int(20, 7) + b"".join(_int(8, a) for a in (0, 2, 3))
    no_keepdims = _msg(1, "keepdims") + _int(3, 0) + _int(20, 2)
    nodes = [
        _node("ReduceMean", ["input"], ["channel_means"], [mean_rgb, no_keepdims]),
        _node("Gather", ["channel_means", "red"], ["red_mean"]),
        _node("Mul", ["red_mean", "direction"], ["shift"]),
        _node("Add", ["template", "shift"], ["points"]),
        _node("Identity", ["template"], ["aux"]),
    ]
    inits = {"template": template, "direction": direction, "red": np.array(0, np.int64)}
    return onnx_model(nodes, inits, [_value_info("input", [1, 3, side, side])],
                      [_value_info("channel_means"), _value_info("aux"), _value_info("points")])


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut())


@pytest.fixture(scope="module")
def clip():
    """Selected frames of a real clip: eyes open, blinking, mouth open."""
    reader = VideoReader(media("driving/expressions_green.mp4"))
    frames = dict(enumerate(islice(iter(reader), max(CLIP_FRAMES) + 1)))
    return [frames[i] for i in CLIP_FRAMES]


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """An empty weights folder and Hub cache for this test."""
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def put_landmark_file(weights, data: bytes):
    path = weights / LANDMARK_FILE.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def still_mesh(image):
    with facelib.FaceMesh(static_image_mode=True) as mesh:
        return mesh.landmarks(image)


# ---------------------------------------------------------------------------- MediaPipe backend

def test_mediapipe_ratios_follow_real_eyes_and_mouth(weights, clip):
    est = RatioEstimator(LANDMARK_FILE)  # the file is not there
    assert est.backend == "mediapipe" and est.warning is None
    open_still, blink_still = est.source(clip[CLIP_FRAMES.index(OPEN)]), est.source(clip[CLIP_FRAMES.index(BLINK)])
    for eye in ("eye_left", "eye_right"):
        assert open_still[eye] > 0.2 and blink_still[eye] < 0.12, (open_still, blink_still)
    tracked = [est.driving(f) for f in clip]
    est.close()
    by_frame = dict(zip(CLIP_FRAMES, tracked))
    assert all(r is not None for r in tracked)
    eye = {i: (r["eye_left"] + r["eye_right"]) / 2 for i, r in by_frame.items()}
    assert eye[OPEN] > 2.5 * eye[BLINK] and eye[BLINK] == min(eye.values()), eye
    assert by_frame[MOUTH_OPEN]["lip"] > 0.15 > 0.05 > by_frame[OPEN]["lip"]
    # the same numbers as face.eye_lip_ratios on the mesh (the MediaPipe path is unchanged)
    assert open_still == facelib.eye_lip_ratios(still_mesh(clip[0]))


def test_mediapipe_backend_returns_none_without_a_face(weights):
    est = RatioEstimator(None)
    blank = np.full((128, 128, 3), 90, np.uint8)
    assert est.source(blank) is None and est.driving(blank) is None
    est.close()
    with pytest.raises(RuntimeError):
        est.source(blank)


# ---------------------------------------------------------------------------- landmark.onnx backend

def test_crop_matrix_matches_liveportraits_framing():
    """Upright crop: eyes-to-mouth axis vertical, extent x 1.5 fills the side, centre 0.1 side up."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(100, 300, (68, 2))
    eyes, mouth = np.array([180.0, 150.0]), np.array([210.0, 250.0])  # tilted face
    m = crop_matrix(pts, eyes, mouth)
    to_crop = lambda p: np.asarray(p) @ m[:, :2].T + m[:, 2]  # noqa: E731
    axis = to_crop(mouth) - to_crop(eyes)
    assert abs(axis[0]) < 1e-9 and axis[1] > 0
    local = to_crop(pts)
    extent = (local.max(axis=0) - local.min(axis=0)).max()
    assert extent == pytest.approx(CROP_SIZE / 1.5)
    middle = (local.max(axis=0) + local.min(axis=0)) / 2
    assert middle == pytest.approx([CROP_SIZE / 2, CROP_SIZE / 2 + 0.1 * CROP_SIZE])


def test_ratio_indices_are_liveportraits():
    template, _ = stand_in_points()
    r = ratios_from_203(template.reshape(203, 2))
    assert r["eye_left"] == pytest.approx(0.0, abs=1e-9)
    assert r["eye_right"] == pytest.approx(STAND_IN_EYE_RIGHT, rel=1e-4)
    assert r["lip"] == pytest.approx(STAND_IN_LIP, rel=1e-4)


def test_onnx_backend_chosen_and_run_end_to_end(weights, astronaut):
    assert RatioEstimator(LANDMARK_FILE).backend == "mediapipe"
    put_landmark_file(weights, stand_in_landmark_model())
    est = RatioEstimator(LANDMARK_FILE)
    assert est.backend == "landmark.onnx" and est.warning is None
    ratios = est.source(astronaut)
    assert set(ratios) == {"eye_left", "eye_right", "lip"}
    assert ratios["eye_right"] == pytest.approx(STAND_IN_EYE_RIGHT, rel=1e-3)
    assert ratios["lip"] == pytest.approx(STAND_IN_LIP, rel=1e-3)
    # the model saw the upright 224 crop as RGB in [0, 1]: its left-eye ratio is that crop's red mean
    crop = cv2.warpAffine(astronaut, crop_matrix(*guide_from_mesh(still_mesh(astronaut))).astype(np.float32),
                          (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR).astype(np.float64) / 255.0
    red, blue = crop[..., 0].mean(), crop[..., 2].mean()
    assert abs(red - blue) > 0.05  # the check below tells RGB from BGR
    assert ratios["eye_left"] == pytest.approx(red, abs=2e-3)
    # the 203 points come back in picture pixels, on the face
    pts = est.landmarks_203(astronaut)
    face, _ = facelib.detect_face(astronaut)
    x0, y0, x1, y1 = face.box
    cx, cy = pts.mean(axis=0)
    assert pts.shape == (203, 2) and x0 < cx < x1 and y0 < cy < y1
    est.close()


def test_onnx_crop_follows_head_roll(weights, astronaut):
    """The crop is turned upright, so the stand-in's level eye line lands on the tilted face's eye line."""
    put_landmark_file(weights, stand_in_landmark_model())
    est = RatioEstimator(LANDMARK_FILE)
    h, w = astronaut.shape[:2]
    angles = []
    for tilt in (0.0, 25.0):
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), tilt, 1.0)
        img = cv2.warpAffine(astronaut, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)
        pts, mesh = est.landmarks_203(img), still_mesh(img)
        eye_line = np.degrees(np.arctan2(*(pts[36] - pts[0])[::-1]))
        mesh_line = np.degrees(np.arctan2(*(mesh[263] - mesh[33])[::-1]))
        assert eye_line == pytest.approx(mesh_line, abs=6.0)
        angles.append(eye_line)
    assert abs(angles[1] - angles[0]) == pytest.approx(25.0, abs=4.0)
    est.close()


def test_onnx_driving_tracks_and_holds_through_a_lost_face(weights, clip):
    put_landmark_file(weights, stand_in_landmark_model())
    est = RatioEstimator(LANDMARK_FILE)
    blank = np.full_like(clip[0], 90)
    assert est.driving(blank) is None  # nothing seen yet
    tracked = [est.driving(f) for f in clip]
    assert all(r["eye_right"] == pytest.approx(STAND_IN_EYE_RIGHT, rel=1e-3) for r in tracked)
    assert len({round(r["eye_left"], 6) for r in tracked}) > 1  # a fresh crop per frame
    assert est.driving(blank) is not None  # mesh lost: the previous 203 points place the crop
    est.reset()
    assert est.driving(blank) is None
    est.close()


def test_landmark_file_is_also_found_in_the_hub_cache(weights):
    """hub.find_file's second place: huggingface_hub's cache layout (never a download)."""
    repo = weights.parent / "hub" / "models--KwaiVGI--LivePortrait"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    target = repo / "snapshots" / "0123abcd" / LANDMARK_FILE.hf_path
    target.parent.mkdir(parents=True)
    target.write_bytes(stand_in_landmark_model())
    assert RatioEstimator(LANDMARK_FILE).backend == "landmark.onnx"


@pytest.mark.parametrize("data, words", [
    (b"not an onnx model at all", "could not be read"),
    (stand_in_landmark_model(side=64), "not LivePortrait's landmark model"),
    (stand_in_landmark_model(points=68), "gives 136 values"),
])
def test_a_bad_landmark_file_falls_back_to_mediapipe_with_a_warning(weights, astronaut, data, words):
    put_landmark_file(weights, data)
    est = RatioEstimator(LANDMARK_FILE)
    assert est.backend == "mediapipe" and words in est.warning and "landmark.onnx" in est.warning
    assert est.source(astronaut)["eye_left"] > 0.15
    est.close()


# ---------------------------------------------------------------------------- the engine

@pytest.fixture(scope="module")
def small_liveportrait():
    from talking_head.models.liveportrait import create

    card = dataclasses.replace(get_card("liveportrait.human"), resolution=64,
                               options={"model_params": SMALL_PARAMS, "landmark_file": LANDMARK_FILE})
    torch.manual_seed(0)
    return create(card, None, torch.device("cpu"))


def _engine_run(model, astronaut, clip):
    """(engine, options the model got per batch) for the clip with eye retargeting on."""
    seen = []
    real_animate = model.animate

    def recording_animate(source, frames, reference, options):
        seen.append(options)
        return real_animate(source, frames, reference, options)

    settings = AnimateSettings(options=TransferOptions(extra={"eye_retargeting": True}), batch_size=4)
    engine = Engine(model, settings)
    model.animate = recording_animate
    try:
        assert engine.set_source(astronaut) == []
        outputs = list(engine.animate(clip))
    finally:
        del model.animate
    assert len(outputs) == len(clip) and outputs[0].output.shape == (128, 128, 3)
    return engine, seen


def test_engine_passes_per_frame_driving_ratios(weights, small_liveportrait, astronaut, clip):
    engine, seen = _engine_run(small_liveportrait, astronaut, clip)
    assert engine.ratio_backend == "mediapipe"
    assert engine.source_state.ratios == facelib.eye_lip_ratios(engine.source_landmarks)
    assert [o.extra["driving_eye_ratio"].shape for o in seen] == [(4, 2), (4, 2)]
    eyes = np.concatenate([o.extra["driving_eye_ratio"] for o in seen]).mean(axis=1)
    lips = np.concatenate([o.extra["driving_lip_ratio"] for o in seen])
    assert eyes[CLIP_FRAMES.index(OPEN)] > 2.5 * eyes[CLIP_FRAMES.index(BLINK)], eyes
    assert lips[CLIP_FRAMES.index(MOUTH_OPEN)] > 0.1 > lips[CLIP_FRAMES.index(OPEN)], lips
    # same numbers as the estimator on the engine's own driving crops
    est = RatioEstimator(None)
    engine.start_clip()
    crops = [engine.driving_crop(f) for f in clip]
    expected = np.array([[r["eye_left"], r["eye_right"]] for r in map(est.driving, crops)], np.float32)
    est.close()
    np.testing.assert_allclose(np.concatenate([o.extra["driving_eye_ratio"] for o in seen]), expected, rtol=1e-6)


def test_engine_uses_the_landmark_model_when_present(weights, small_liveportrait, astronaut, clip):
    put_landmark_file(weights, stand_in_landmark_model())
    engine, seen = _engine_run(small_liveportrait, astronaut, clip)
    assert engine.ratio_backend == "landmark.onnx"
    assert engine.source_state.ratios["lip"] == pytest.approx(STAND_IN_LIP, rel=1e-3)
    right_eye = np.concatenate([o.extra["driving_eye_ratio"][:, 1] for o in seen])
    np.testing.assert_allclose(right_eye, STAND_IN_EYE_RIGHT, rtol=1e-3)
    np.testing.assert_allclose(np.concatenate([o.extra["driving_lip_ratio"] for o in seen]), STAND_IN_LIP, rtol=1e-3)
