"""The studio's API, called with gradio_client against ``python app.py`` (landmark model, real faces)."""
from __future__ import annotations

import numpy as np
import pytest

from talking_head import video
from tests.conftest import media

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(studio_url):
    return gradio_client.Client(studio_url, verbose=False, download_files=True)


def _path(result) -> str:
    return result["video"] if isinstance(result, dict) else result


def _frames(path, every: int = 1) -> list[np.ndarray]:
    return [f for i, f in enumerate(video.VideoReader(path)) if i % every == 0]


def test_animate_returns_the_driving_clips_frames_and_audio(client):
    source, driving = media("sources/photo_portrait.png"), media("driving/talk_vox.mp4")
    out, side, report = client.predict(
        gradio_client.handle_file(str(source)), gradio_client.handle_file(str(driving)), "landmark",
        {"side_by_side": False}, api_name="/animate")
    out = _path(out)
    assert side is None
    expected = video.VideoReader(driving).count_frames()
    assert video.VideoReader(out).count_frames() == expected == report["frames"]
    reader = video.VideoReader(out)
    assert reader.fps == pytest.approx(video.VideoReader(driving).fps, rel=1e-3)
    assert reader.has_audio and report["has_audio"]
    assert video.audio_duration(out) == pytest.approx(expected / reader.fps, abs=0.1)
    assert video.probe_streams(out)["video"] == "h264"
    frames = _frames(out, every=20)
    motion = max(float(np.abs(f.astype(np.int16) - frames[0]).mean()) for f in frames[1:])
    assert motion > 1.0, "the animated face does not move"
    assert report["model"] == "landmark" and report["warnings"] == []


def test_animate_with_a_driving_picture_and_options(client):
    source, picture = media("sources/photo_einstein.jpg"), media("sources/painting_sargent.jpg")
    out, side, report = client.predict(
        gradio_client.handle_file(str(source)), gradio_client.handle_file(str(picture)), "landmark",
        {"mode": "absolute", "output_size": 256, "controls": {"expression": 0.5}}, api_name="/animate")
    assert report["frames"] == 1 and not report["has_audio"]
    frame = _frames(_path(out))[0]
    assert frame.shape[:2] == (256, 256)
    panel = _frames(_path(side))[0]
    assert panel.shape[1] > 4 * panel.shape[0] // 2  # source | driving | output | keypoints | mask


def test_compare_models_in_one_video(client):
    source, driving = media("sources/photo_portrait.png"), media("driving/expressions_green.mp4")
    out, report = client.predict(
        gradio_client.handle_file(str(source)), gradio_client.handle_file(str(driving)), ["landmark"],
        {"max_seconds": 0.4}, api_name="/compare")
    frames = _frames(_path(out))
    assert len(frames) == report["frames"] == 10  # 0.4 s at 25 fps
    assert report["models"] == ["landmark"]
    h, w = frames[0].shape[:2]
    assert w > 1.8 * (h - 30)  # driving | landmark, each a square panel under its label


@pytest.mark.parametrize("model, options, words", [
    ("no-such-model", {}, "no model named"),
    ("fomm.vox-adv", {}, "weights"),
    ("landmark", {"reference": 10_000}, "outside the driving clip"),
    ("landmark", {"colour": "red"}, "Unknown option"),
    ("mocoganhd.faceforensics256", {}, "does not animate a photo"),
])
def test_animate_errors_say_what_to_do(client, model, options, words):
    source, driving = media("sources/photo_portrait.png"), media("driving/expressions_green.mp4")
    with pytest.raises(Exception, match="(?i)" + words):
        client.predict(gradio_client.handle_file(str(source)), gradio_client.handle_file(str(driving)), model,
                       options, api_name="/animate")


def test_animate_without_a_face_names_the_problem(client):
    dog, driving = media("sources/no_face_dog.jpg"), media("driving/expressions_green.mp4")
    with pytest.raises(Exception, match="(?i)no face"):
        client.predict(gradio_client.handle_file(str(dog)), gradio_client.handle_file(str(driving)), "landmark",
                       {}, api_name="/animate")


# ----------------------------------------------------------------------------------------- in-process


def test_options_map_to_each_familys_modes_and_controls():
    from talking_head.errors import BadInputError
    from talking_head.registry import get_card
    from talking_head.studio.render import RenderRequest

    def settings(model, **options):
        return RenderRequest.from_inputs("s.png", "d.mp4", model, options).settings(get_card(model))

    s = settings("landmark", mode="absolute", reference="12", controls={"expression": 0.5}, output_size=256)
    assert s.options.resolved_mode(get_card("landmark")) == "absolute"
    assert s.reference == 12 and s.output_size == 256
    assert s.options.extra["expression"] == 0.5 and s.options.extra["follow_gaze"] is True  # defaults filled in
    assert settings("mraa.vox256", mode="avd").options.resolved_mode(get_card("mraa.vox256")) == "avd"
    assert settings("mraa.vox256", mode="standard").options.relative is False
    assert settings("mraa.vox256").options.resolved_mode(get_card("mraa.vox256")) == "relative"
    assert settings("x2face.released").options.resolved_mode(get_card("x2face.released")) == "absolute"
    with pytest.raises(BadInputError, match="no control 'strength'"):
        settings("landmark", controls={"strength": 1})
    with pytest.raises(BadInputError, match="no mode 'avd'"):
        settings("landmark", mode="avd")
    with pytest.raises(BadInputError, match="not valid JSON"):
        RenderRequest.from_inputs("s.png", "d.mp4", "landmark", "{mode:")


def test_cancelled_render_stops_and_leaves_no_file():
    import threading

    from talking_head.engine import Cancelled
    from talking_head.studio.render import RenderRequest, Studio

    studio = Studio()
    req = RenderRequest.from_inputs(str(media("sources/photo_einstein.jpg")), str(media("driving/talk_vox.mp4")),
                                    "landmark", {"batch_size": 4})
    flag = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 8:
            flag.set()

    with pytest.raises(Cancelled):
        studio.render_files(req, progress=progress, cancel=flag)
    assert max(seen) <= 16  # stopped within a batch or two, not at the end of the 170-frame clip
    assert not list(studio.outputs.root.rglob("*.mp4"))
