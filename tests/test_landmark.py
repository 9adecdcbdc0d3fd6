"""The offline "landmark" model on real faces: identity, following the driving face, mouth synthesis."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from talking_head import face
from talking_head.errors import NoFaceError
from talking_head.models import landmark_warp as lw
from talking_head.models.base import FrameResult, TransferOptions
from talking_head.registry import get_card, list_models, load_model

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def _media(*parts) -> Path:
    path = MEDIA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test media not available: {path}")
    return path


def _frames(path: Path, indices) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    wanted, out, i = set(indices), {}, 0
    while i <= max(indices):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = np.ascontiguousarray(frame[:, :, ::-1])
        i += 1
    cap.release()
    return [out[i] for i in indices]


def _head_crop(image: np.ndarray, size: int | None = 256) -> np.ndarray:
    found, _ = face.detect_face(image)
    return face.crop(image, face.crop_box_for(found, image.shape), size)


def _driving_crops(name: str, indices, size: int = 256) -> list[np.ndarray]:
    frames = _frames(_media("driving", name), indices)
    box = face.crop_box_for(face.detect_face(frames[0], role="driving")[0], frames[0].shape)
    return [face.crop(f, box, size) for f in frames]  # one fixed box: crop motion is head motion


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.fixture(scope="module")
def model():
    m = load_model("landmark")
    yield m
    m.close()


@pytest.fixture(scope="module")
def astronaut_crop():
    return _head_crop(skimage.data.astronaut())


@pytest.fixture(scope="module")
def talk():
    return _driving_crops("talk_vox.mp4", [0, 30, 60, 90, 120, 150])


def test_card_and_registry(model):
    card = get_card("landmark")
    assert card in list_models() and card.family == "landmark"
    assert card.resolution is None and card.files == () and not card.needs_weights
    assert "MIT" in card.license and "Apache-2.0" in card.license
    assert set(card.modes) == {"relative", "absolute"}
    names = {c.name for c in card.controls}
    assert names == {"expression", "head_motion", "mouth_synthesis", "follow_gaze", "smoothing"}
    from talking_head.models import landmark

    assert {c.name: c.default for c in card.controls} == landmark.DEFAULT_EXTRA
    assert landmark.published_checkpoints(model) == {}


def test_topology_is_a_valid_mesh():
    topo = lw.topology()
    assert topo["face"].shape == (852, 3)  # MediaPipe's tessellation: 468 points, holes at eyes and mouth
    assert len(topo["oval"]) == 36 and [len(e) for e in topo["eyes"]] == [16, 16]
    # the strip we put into the mouth hole closes it exactly: every inner-lip edge is used once
    edges = {}
    for t in topo["face"]:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2])):
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
    lips = list(lw.INNER_LIP_UPPER) + list(lw.INNER_LIP_LOWER[::-1])
    for a, b in zip(lips[:-1], lips[1:]):
        if a != b:
            assert edges[(min(a, b), max(a, b))] == 1  # a hole boundary edge of the tessellation


def test_reference_as_driving_gives_the_source(model, astronaut_crop, talk):
    src = model.prepare_source(astronaut_crop)
    ref = model.prepare_driving(talk[0])
    for options in (TransferOptions(), TransferOptions(adapt_scale=False)):
        results = model.animate(src, np.stack([talk[0]] * 3), ref, options)
        for r in results:
            assert isinstance(r, FrameResult) and r.frame.shape == astronaut_crop.shape
            assert _mad(r.frame, astronaut_crop) < 0.5
            assert np.abs(r.motion).max() < 0.5
            assert r.mask.max() == 0.0


def test_absolute_with_the_source_as_driving_gives_the_source(model, astronaut_crop):
    src = model.prepare_source(astronaut_crop)
    model.prepare_driving(astronaut_crop)  # a new clip starts (absolute mode then ignores the reference)
    (r,) = model.animate(src, astronaut_crop[None], None, TransferOptions(relative=False))
    assert _mad(r.frame, astronaut_crop) < 3.0
    assert np.abs(r.motion).max() < 3.0


def test_output_follows_the_driving_landmarks(model, astronaut_crop, talk):
    """AKD-style: the output's own landmarks are where the transfer put them, not where the source's were."""
    src = model.prepare_source(astronaut_crop)
    ref = model.prepare_driving(talk[0])
    for options, ratio in ((TransferOptions(), 0.25), (TransferOptions(relative=False), 0.6)):
        results = model.animate(src, np.stack(talk[1:]), ref, options)
        with face.FaceMesh(static_image_mode=True) as mesh:
            unmoved = mesh.landmarks(astronaut_crop)[face.KEYPOINTS_68]
            moved_err, unmoved_err = [], []
            for r in results:
                assert r.source_keypoints.shape == (70, 2) and r.driving_keypoints.shape == (70, 2)
                target = r.source_keypoints
                found = mesh.landmarks(r.frame)[face.KEYPOINTS_68]
                moved_err.append(np.linalg.norm(found - target, axis=1).mean())
                unmoved_err.append(np.linalg.norm(unmoved - target, axis=1).mean())
        assert np.mean(unmoved_err) > 3.0  # the driving face really moved
        assert np.mean(moved_err) < ratio * np.mean(unmoved_err)


def test_controls_scale_the_motion(model, astronaut_crop, talk):
    src = model.prepare_source(astronaut_crop)
    ref = model.prepare_driving(talk[0])
    still = TransferOptions(extra={"expression": 0.0, "head_motion": 0.0})
    (r,) = model.animate(src, talk[3][None], ref, still)
    assert _mad(r.frame, astronaut_crop) < 0.5
    full = model.animate(src, talk[3][None], ref, TransferOptions())[0]
    half = model.animate(src, talk[3][None], ref, TransferOptions(extra={"expression": 0.5, "head_motion": 0.5}))[0]
    moved = np.abs(full.motion).mean()
    assert moved > 0.5
    assert 0.3 * moved < np.abs(half.motion).mean() < 0.7 * moved


def test_open_mouth_is_synthesised(model):
    source = _head_crop(cv2.imread(str(_media("sources", "painting_sargent.jpg")))[:, :, ::-1].copy())
    neutral, smile = _driving_crops("expressions_green.mp4", [0, 35])
    src = model.prepare_source(source)
    ref = model.prepare_driving(neutral)
    rest, grin = model.animate(src, np.stack([neutral, smile]), ref, TransferOptions())
    assert rest.mask.max() == 0.0
    assert grin.mask.shape == source.shape[:2] and grin.mask.max() > 0.5
    assert (grin.mask > 0.5).sum() > 100
    # the painted region is the mouth: between the target mouth corners, below the nose
    ys, xs = np.nonzero(grin.mask > 0.5)
    kp = grin.source_keypoints
    left, right, nose = kp[face.KEYPOINTS_68.tolist().index(61)], kp[face.KEYPOINTS_68.tolist().index(291)], kp[29]
    assert left[0] - 2 < xs.mean() < right[0] + 2 and ys.mean() > nose[1]
    # switched off, the lips are stretched instead and nothing is marked as synthesised
    off = model.animate(src, smile[None], ref, TransferOptions(extra={"mouth_synthesis": False}))[0]
    assert off.mask.max() == 0.0
    assert _mad(off.frame[ys, xs], grin.frame[ys, xs]) > 10.0


def test_large_non_square_source_at_native_resolution(model, talk):
    image = cv2.imread(str(_media("sources", "painting_pearl_earring.jpg")))[:, :, ::-1]
    source = np.ascontiguousarray(image[250:1000, 150:760])  # 750 x 610, face inside
    src = model.prepare_source(source)
    ref = model.prepare_driving(talk[0])
    results = model.animate(src, np.stack(talk[1:3]), ref, TransferOptions())
    for r in results:
        assert r.frame.shape == source.shape and r.frame.dtype == np.uint8
        assert r.motion.shape == (750, 610, 2) and r.mask.shape == (750, 610)
        most = np.abs(r.motion).max()
        assert most > 2.0
        for corner in (r.motion[0, 0], r.motion[-1, -1]):  # far from the face the picture stays put
            assert np.abs(corner).max() < 0.25 * most
        # keypoints are in the output's pixels, on the face
        assert (r.source_keypoints[:, 0] > 0).all() and (r.source_keypoints[:, 0] < 610).all()


def test_lost_driving_face_holds_the_last_pose(model, astronaut_crop, talk):
    src = model.prepare_source(astronaut_crop)
    ref = model.prepare_driving(talk[0])
    blank = np.full_like(talk[2], 100)
    seen, lost = model.animate(src, np.stack([talk[2], blank]), ref, TransferOptions())
    np.testing.assert_array_equal(seen.frame, lost.frame)


def test_source_without_face_is_a_clear_error(model):
    dog = cv2.imread(str(_media("sources", "no_face_dog.jpg")))[:, :, ::-1]
    with pytest.raises(NoFaceError) as err:
        model.prepare_source(np.ascontiguousarray(cv2.resize(dog, (256, 256))))
    assert "No face" in str(err.value) and err.value.hint


def test_whole_picture_keeps_a_portrait_shape(model, talk):
    """Auto-crop off: a 720x1280 portrait stays a portrait (long side capped), never a padded square."""
    from talking_head.engine import MAX_NATIVE_SIZE, AnimateSettings, Engine

    portrait = np.ascontiguousarray(cv2.resize(skimage.data.astronaut(), (1280, 1280))[:, 280:1000])  # real pixels
    for paste_back, shape in ((False, (MAX_NATIVE_SIZE, 576)), (True, (1280, 720))):
        engine = Engine(model, AnimateSettings(auto_crop=False, paste_back=paste_back))
        engine.set_source(portrait)
        assert engine.source_crop.shape[:2] == (MAX_NATIVE_SIZE, 576)
        still, moved = (a.output for a in engine.animate([talk[0], talk[3]]))
        assert still.shape[:2] == moved.shape[:2] == shape
        expected = cv2.resize(portrait, shape[::-1], interpolation=cv2.INTER_AREA)
        assert _mad(still, expected) < 2.0  # the picture itself, edges included (no smeared padding)
        assert _mad(moved, expected) > 0.3  # and it is animated


def test_fixed_size_models_show_only_the_pictures_part_of_the_square():
    """Models with a fixed square input get the portrait in a square; the output is cut back to it."""
    from talking_head.engine import MAX_NATIVE_SIZE, full_frame_box, picture_in_square

    portrait = np.ascontiguousarray(cv2.resize(skimage.data.astronaut(), (1280, 1280))[:, 280:1000])
    square = face.crop(portrait, full_frame_box(portrait.shape), 256)  # what such a model is given
    shown = picture_in_square(square, portrait.shape)
    assert shown.shape[:2] == (MAX_NATIVE_SIZE, 576)
    expected = cv2.resize(portrait, (576, MAX_NATIVE_SIZE), interpolation=cv2.INTER_AREA)
    assert _mad(shown, expected) < 6.0  # the picture (at 256 px detail), not its smeared edges
    smeared = cv2.resize(square, (576, MAX_NATIVE_SIZE))  # the whole square squeezed in, for contrast
    assert _mad(smeared, expected) > 3 * _mad(shown, expected)


def test_a_closing_lid_covers_the_eye_from_above_without_a_seam():
    """cover_eye on a real face (the astronaut), the upper lid's edge brought half way down:
    skin above the edge (the iris's upper part covered), the eye below it left as it was, and the
    patch meets the picture above it without a step."""
    from talking_head.models.landmark import EYE_LID_SKIN, EYELIDS

    image = _head_crop(skimage.data.astronaut(), 512)
    lm = face.still_landmarks(image)
    upper, lower = (list(p) for p in EYELIDS[0])
    a, b = lw.EYE_CORNERS[0]
    edge = lm[[a, *upper, b], :2].astype(np.float64)
    low = lm[[a, *lower, b], :2].astype(np.float64)
    edge[1:-1] += 0.5 * (low[1:-1] - edge[1:-1])
    out = image.copy()
    lw.cover_eye(out, lm[[a, *EYE_LID_SKIN[0], b], :2], edge, low, 1.0, lw.lash_colour(image, lm[upper]))

    def region(top, bottom, shrink):
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(np.concatenate([top, bottom[::-1]])).astype(np.int32)], 1)
        return cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=shrink).astype(bool)

    gray, gray_out = (cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32) for im in (image, out))

    def at(plane, points):
        p = np.round(points).astype(int)
        return plane[p[:, 1], p[:, 0]]

    # the eye's upper part, now lid (above its lash line)
    covered = region(lm[[a, *upper, b], :2], edge - [0.0, 3.0], 1)
    assert covered.sum() > 50
    skin = np.median(at(gray, lm[lower, :2] + [0.0, 0.12 * float(np.ptp(edge[:, 0]))]))
    assert gray[covered].mean() < skin - 40  # it was dark (iris, lashes) ...
    assert abs(gray_out[covered].mean() - skin) < 25  # ... and is skin now
    kept = edge[3:-3] + 0.8 * (low[3:-3] - edge[3:-3])  # between the new edge and the lower lid
    assert np.abs(at(out, kept).astype(int) - at(image, kept)).max() < 12  # the eye stays
    # no seam: across the lid skin line the picture changes no more than it does just above it
    mid = lm[EYE_LID_SKIN[0][1:-1], :2]
    step_in = np.abs(at(gray_out, mid + [0, 2]) - at(gray_out, mid - [0, 2])).mean()
    step_above = np.abs(at(gray_out, mid - [0, 2]) - at(gray_out, mid - [0, 6])).mean()
    assert step_in < step_above + 8, (step_in, step_above)
