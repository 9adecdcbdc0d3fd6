"""Every ported family animates a real face through the studio's API, in every mode.

The app is launched in this process, trusting the stand-in checkpoints (TALKING_HEAD_TRUST_FILES, the
user's override for files that differ from the card, see test_models_end_to_end.py), with a weights folder holding checkpoint files in each family's
published layout; gradio_client then calls ``/animate`` as a user's script would.
"""
from __future__ import annotations

import pytest

from talking_head import video
from talking_head.registry import get_card
from tests.conftest import free_port, media
from tests.test_models_end_to_end import CASES

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(tmp_path_factory, stand_in_weights):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALKING_HEAD_WEIGHTS", str(stand_in_weights))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        mp.setenv("TALKING_HEAD_TRUST_FILES", "1")
        from talking_head.studio import build_app, launch_kwargs

        demo = build_app(device="cpu")
        port = free_port()
        demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs("127.0.0.1", port))
        try:
            yield gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=True)
        finally:
            demo.close()


@pytest.fixture(scope="module")
def pool(client):
    """Models loaded once for the tests below that call the studio's code directly (as the tabs do)."""
    from talking_head.studio.common import ModelPool

    return ModelPool(device="cpu")


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_app_animates_real_face(client, name, mode):
    source, picture = media("sources/photo_portrait.png"), media("sources/painting_sargent.jpg")
    out, side, report = client.predict(
        gradio_client.handle_file(str(source)), gradio_client.handle_file(str(picture)), name,
        {"mode": mode}, api_name="/animate")
    out = out["video"] if isinstance(out, dict) else out
    assert report["model"] == name and report["frames"] == 1
    (frame,) = list(video.VideoReader(out))
    assert min(frame.shape[:2]) >= get_card(name).resolution
    side = side["video"] if isinstance(side, dict) else side
    (panel,) = list(video.VideoReader(side))
    assert panel.shape[1] > 4 * panel.shape[0] // 2  # source | driving | output | keypoints | mask


@pytest.mark.parametrize("name,size,moved", [("liveportrait.human", 512, 1.0), ("facevid2vid.vox", 256, 0.0)])
def test_studio_reposes_a_still_photo_with_sliders_alone(pool, name, size, moved):
    """LivePortrait and face-vid2vid: the pose sliders re-pose the source with no driving clip at all.

    (face-vid2vid's fresh canonical keypoints lie near the centre, so a turn moves its picture only a little.)
    """
    import numpy as np

    from talking_head.studio.render import Studio

    studio = Studio(pool)
    source = str(media("sources/photo_portrait.png"))
    straight = studio.edit_pose(source, name, {"yaw": 0.0})
    turned = studio.edit_pose(source, name, {"yaw": 25.0, "pitch": -10.0})
    assert straight.shape == turned.shape == (size, size, 3)
    assert np.abs(straight.astype(np.int16) - turned.astype(np.int16)).mean() > moved
    again = studio.edit_pose(source, name, {"yaw": 0.0})
    assert np.array_equal(straight, again)


@pytest.mark.parametrize("name,expected", [
    ("tpsmm.vox", {"occlusion 0", "occlusion 1", "occlusion 2", "occlusion 3"}),  # every resolution
    ("monkeynet.vox", {"heatmaps"}),
    ("fomm.vox-adv", {"source heatmaps", "driving heatmaps"}),
    ("x2face.released", {"embedded face", "confidence", "driving flow"}),  # its sampling grids
    ("facevid2vid.vox", {"depth motion", "motion regions"}),  # the 3-D warp, averaged over depth
])
def test_previews_show_motion_and_the_models_own_maps(pool, name, expected):
    import numpy as np

    from talking_head.studio.render import RenderRequest, Studio

    studio = Studio(pool)
    req = RenderRequest.from_inputs(str(media("sources/photo_portrait.png")),
                                    str(media("sources/painting_sargent.jpg")), name, {})
    shots = studio.preview_frames(req)
    captions = {caption for _, caption in shots["extras"]}
    assert expected <= captions, captions
    for image, _ in shots["extras"]:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert shots["motion"].shape == shots["mask"].shape


def camera_frames(indices=(0, 40)) -> list:
    """Frames of a real talking-face clip, standing in for webcam frames."""
    frames = []
    for i, frame in enumerate(video.VideoReader(media("driving/talk_vox.mp4"))):
        if i in indices:
            frames.append(frame)
        if len(frames) == len(indices):
            break
    return frames


def test_live_session_drives_liveportrait_from_camera_frames(pool):
    """The Live tab's session with LivePortrait: calibrate on one camera frame, animate the next, overlays on."""
    import numpy as np

    from talking_head.live import LiveSession

    frames = camera_frames()
    session = LiveSession()
    session.configure(pool.get("liveportrait.human"),
                      video.load_image(media("sources/photo_portrait.png")))
    session.request_calibration()
    first = session.step(frames[0], keypoints=True, mask=True)
    second = session.step(frames[1], keypoints=True, mask=True)
    assert first is not None and second is not None
    assert session.calibrations == 1 and session.processed == 2
    assert second.output.shape[:2] == (512, 512)
    plain = session.step(frames[1])
    assert not np.array_equal(plain.output, second.output)  # keypoints and the mask are drawn on request
    assert "fps" in session.readout()


def test_live_tab_drives_facevid2vid_with_its_pose_controls(pool):
    """The Live tab's step with face-vid2vid: its yaw/pitch/roll controls reach the session without a reload."""
    import numpy as np

    from talking_head.studio.live_tab import live_step

    frames = camera_frames()
    source = str(media("sources/photo_portrait.png"))
    first, text, session = live_step(pool, frames[0], source, "facevid2vid.vox", "relative", False, False, None,
                                     {"yaw": 0.0})
    assert first is not None and first.shape == (256, 256, 3), text
    engine = session.engine
    free, _, session = live_step(pool, frames[1], source, "facevid2vid.vox", "relative", False, False, session,
                                 {"pose_mode": "fixed", "yaw": 30.0, "pitch": -15.0})
    assert session.engine is engine  # the same prepared source, new options
    assert engine.settings.options.extra["pose_mode"] == "fixed" and engine.settings.options.extra["yaw"] == 30.0
    plain, _, session = live_step(pool, frames[1], source, "facevid2vid.vox", "relative", False, False, session,
                                  {"yaw": 0.0})
    assert session.engine is engine and engine.settings.options.extra["pose_mode"] == "offset"
    assert not np.array_equal(plain, free)  # the same camera frame, another head pose
    assert session.processed == 3 and "fps" in session.readout()


def test_compare_view_mixes_families(client):
    """X2Face, Monkey-Net, FOMM and the landmark model side by side in one video (issue: see each step of the line)."""
    source, driving = media("sources/photo_portrait.png"), media("driving/talk_vox.mp4")
    models = ["x2face.released", "monkeynet.vox", "fomm.vox-adv", "landmark"]
    out, report = client.predict(
        gradio_client.handle_file(str(source)), gradio_client.handle_file(str(driving)), models,
        {"max_seconds": 0.08}, api_name="/compare")
    out = out["video"] if isinstance(out, dict) else out
    frames = list(video.VideoReader(out))
    assert len(frames) == report["frames"] == 2
    assert report["models"] == models
    h, w = frames[0].shape[:2]
    assert w > 4.5 * (h - 30)  # driving + four model panels
