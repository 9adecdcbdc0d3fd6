"""Face detection, crops, paste-back, tracking and face-mesh measures on real faces."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from talking_head import face
from talking_head.errors import BadInputError, NoFaceError

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return np.ascontiguousarray(img[:, :, ::-1])


def _frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
    cap.release()
    return frames


def _media(*parts) -> Path:
    path = MEDIA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test media not available: {path}")
    return path


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def grace_hopper():
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.ascontiguousarray(mpimg.imread(f)[:, :, :3])


def _check_face(image: np.ndarray, found: face.Face):
    h, w = image.shape[:2]
    x0, y0, x1, y1 = found.box
    assert 0.05 * min(h, w) < found.size < min(h, w)
    assert found.score > 0.5
    assert found.landmarks is not None and found.landmarks.shape == (478, 2)
    # the mesh lies on the detected face: its centre inside the box, its extent comparable
    cx, cy = found.landmarks.mean(axis=0)
    assert x0 < cx < x1 and y0 < cy < y1
    extent = np.ptp(found.landmarks, axis=0).max()
    assert 0.6 * found.size < extent < 1.8 * found.size


def test_detects_public_domain_faces(astronaut, grace_hopper):
    for image in (astronaut, grace_hopper):
        found, warning = face.detect_face(image)
        _check_face(image, found)
        assert warning is None


@pytest.mark.parametrize(
    "name", ["painting_sargent.jpg", "photo_einstein.jpg", "render_cartoon_boy.jpg", "painting_mona_lisa.jpg"]
)
def test_detects_shared_sources(name):
    image = _read(_media("sources", name))
    found, _ = face.detect_face(image)
    _check_face(image, found)


def test_no_face_is_a_clear_error():
    with pytest.raises(NoFaceError) as err:
        face.detect_face(_read(_media("sources", "no_face_dog.jpg")))
    text = err.value.user_message()
    assert "No face" in text and "source" in text
    assert "auto-crop" in err.value.hint


def test_tiny_face_is_refused(astronaut):
    tiny = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)  # face about 13 pixels
    with pytest.raises(NoFaceError):
        face.detect_face(tiny, role="driving")


def test_small_face_warns():
    found, warning = face.detect_face(_read(_media("sources", "photo_full_body.png")))
    assert found.size < face.SMALL_FACE_PX
    assert warning and "small" in warning


def test_several_faces_pick_largest_with_warning(astronaut):
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    canvas = np.concatenate([astronaut, np.pad(small, ((0, 128), (0, 0), (0, 0)), mode="edge")], axis=1)
    found, warning = face.detect_face(canvas)
    assert warning and "2 faces" in warning
    assert found.box[2] < 512  # the full-size astronaut on the left
    assert found.size > 80


def test_face_filling_the_frame_is_found(astronaut):
    found, _ = face.detect_face(astronaut)
    tight = face.crop(astronaut, face.crop_box_for(found, astronaut.shape, scale=1.1, offset=(0, 0)), 256)
    again, _ = face.detect_face(tight)
    assert again.size > 150


def test_rejects_non_rgb(astronaut):
    with pytest.raises(BadInputError):
        face.detect_faces(astronaut[:, :, 0])
    with pytest.raises(BadInputError):
        face.detect_faces(astronaut.astype(np.float32))


def test_crop_box_frames_the_head(astronaut):
    found, _ = face.detect_face(astronaut)
    box = face.crop_box_for(found, astronaut.shape)
    assert box.size == pytest.approx(face.CROP_SCALE * found.size)
    # the whole mesh and some margin above the brows (hair) are inside the crop
    lm = found.landmarks
    assert box.x0 < lm[:, 0].min() and lm[:, 0].max() < box.x0 + box.size
    assert box.y0 < lm[:, 1].min() - 0.1 * found.size and lm[:, 1].max() < box.y0 + box.size
    bigger = face.crop_box_for(found, astronaut.shape, scale=3.0, offset=(0.0, 0.0))
    assert bigger.size > box.size and bigger.center == pytest.approx(found.center)


def test_crop_outside_repeats_edges_and_resizes(astronaut):
    box = face.CropBox(-100.0, 400.0, 300.0)  # sticks out left and bottom
    native = face.crop(astronaut, box, None)
    assert native.shape == (300, 300, 3)
    np.testing.assert_array_equal(native[:112, 100:], astronaut[400:512, 0:200])
    np.testing.assert_array_equal(native[:112, 0], astronaut[400:512, 0])  # left padding = edge column
    np.testing.assert_array_equal(native[250], astronaut[511, np.clip(np.arange(-100, 200), 0, 511)])
    assert face.crop(astronaut, box, 128).shape == (128, 128, 3)


def test_paste_back_changes_only_the_box(astronaut):
    rng = np.random.default_rng(0)
    animated = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for box in (face.CropBox(100.3, 50.7, 200.0), face.CropBox(-80.0, 380.0, 250.0), face.CropBox(600, 600, 50)):
        out = face.paste_back(astronaut, animated, box)
        assert out.shape == astronaut.shape and out.dtype == np.uint8
        x0, y0, side = box.pixel_rect()
        outside = np.ones(astronaut.shape[:2], dtype=bool)
        outside[max(y0, 0) : max(y0 + side, 0), max(x0, 0) : max(x0 + side, 0)] = False
        np.testing.assert_array_equal(out[outside], astronaut[outside])
    # the middle of the box is the animated crop itself, the edges fade into the picture
    box = face.CropBox(128.0, 128.0, 256.0)
    out = face.paste_back(astronaut, animated, box, feather=0.1)
    np.testing.assert_array_equal(out[200:300, 200:300], animated[72:172, 72:172])
    edge = out[128:384, 128].astype(int) - astronaut[128:384, 128].astype(int)
    assert np.abs(edge).mean() < 0.1 * np.abs(animated[:, 0].astype(int) - astronaut[128:384, 128]).mean()


def test_tracker_is_steadier_than_per_frame_detection():
    frames = _frames(_media("driving", "talk_vox.mp4"), 50)
    tracker = face.FaceTracker()
    raw, smooth = [], []
    for frame in frames:
        box = face.crop_box_for(face.detect_faces(frame)[0], frame.shape)
        raw.append((*box.center, box.size))
        tracked = tracker.update(frame)
        smooth.append((*tracked.center, tracked.size))
    raw, smooth = np.array(raw), np.array(smooth)

    def jitter(track):
        return np.abs(np.diff(track, n=2, axis=0)).mean()

    assert jitter(smooth) < 0.6 * jitter(raw)
    assert np.abs(smooth - raw).mean() < 0.05 * raw[:, 2].mean()  # and still on the face
    # a frame without a face holds the last box
    last = tracker.update(frames[-1])
    held = tracker.update(np.full_like(frames[0], 90))
    assert (held.x0, held.y0, held.size) == (last.x0, last.y0, last.size)
    assert tracker.lost == 1


def test_tracker_before_any_face_covers_the_frame():
    box = face.FaceTracker().update(np.full((120, 200, 3), 30, dtype=np.uint8))
    assert (box.x0, box.y0, box.size) == (0.0, -40.0, 200.0)


def test_face_mesh_signature_and_ratios(astronaut):
    with face.FaceMesh(static_image_mode=True) as mesh:
        lm = mesh.landmarks(astronaut)
        lm3 = mesh.landmarks_3d(astronaut)
        blank = mesh.landmarks(np.full((200, 200, 3), 128, dtype=np.uint8))
    assert lm.shape == (478, 2) and lm3.shape == (478, 3) and blank is None
    np.testing.assert_allclose(lm, lm3[:, :2])
    sig = face.pose_expression_signature(lm)
    moved = face.pose_expression_signature(lm * 1.7 + np.float32([30, -12]))
    np.testing.assert_allclose(sig, moved, atol=1e-5)
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    assert np.sum((face.pose_expression_signature(lm @ rot.T) - sig) ** 2) > 0.05  # head roll is pose

    ratios = face.eye_lip_ratios(lm)
    assert 0.15 < ratios["eye_left"] < 0.5 and 0.15 < ratios["eye_right"] < 0.5
    assert ratios["lip"] > 0.1  # she smiles with teeth showing
    closed = lm.copy()
    closed[[159, 160, 158], 1] = closed[[145, 144, 153], 1]  # upper lid onto lower lid
    assert face.eye_lip_ratios(closed)["eye_left"] < 0.05
