"""MoCoGAN-HD end to end: `generate` through the CLI, seeds, bad files, and the hand-over of generated
stills and clips to the Animate/Live tabs and the render path.

No published MoCoGAN-HD file can be downloaded here, so the four files are written in the published
layouts (``.pt`` with ``g_ema`` + ``latent_avg`` + an argparse ``Namespace`` under ``args``, a bare
``modelR_epoch_799.pth``, two ``.npy`` arrays) from the model's own freshly initialised weights.
Parity with the published model is checked by test_parity.py.

Random weights make no face: a landmark (face-mesh) animator finds none in a generated still or clip.
So the tests check (1) that generated files reach the Animate and Live inputs (browser), (2) that the
render path takes those very files and, with the landmark model, says clearly that there is no face,
(3) that the same files animate and drive through a warping model run on the whole picture (FOMM,
auto-crop off: no face detection), and (4) the positive face case with a real photo and a real clip.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_head import cli, video
from talking_head.errors import NoFaceError
from talking_head.registry import get_card, list_models, load_model
from tests.conftest import ROOT, app_env, free_port, media

MODEL = "mocoganhd.faceforensics256"


def write_mocoganhd(folder: Path, name: str = MODEL) -> None:
    from talking_head.models import mocoganhd

    torch.manual_seed(0)
    model = load_model(name, pretrained=False, device="cpu")
    for filename, obj in mocoganhd.published_checkpoints(model).items():
        path = folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, np.ndarray):
            np.save(path, obj)
        else:
            torch.save(obj, path)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """MoCoGAN-HD FaceForensics-256 and FOMM vox-adv stand-in files in their published layouts."""
    from tests.test_models_end_to_end import write_checkpoints

    folder = tmp_path_factory.mktemp("generate-weights")
    write_mocoganhd(folder)
    write_checkpoints("fomm.vox-adv", folder)
    return folder


@pytest.fixture
def offline(weights, monkeypatch):
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(weights))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TALKING_HEAD_TRUST_FILES", "1")  # the FOMM stand-in is not the pinned file (size): keep it
    return weights


@pytest.fixture(scope="module")
def generated(weights, tmp_path_factory) -> tuple[Path, Path]:
    """(still, clip) written by `python -m talking_head generate` in a fresh process: 3 frames, seed 7."""
    out = tmp_path_factory.mktemp("generated")
    env = dict(app_env(out), TALKING_HEAD_WEIGHTS=str(weights))
    proc = subprocess.run([sys.executable, "-m", "talking_head", "generate", "--model", MODEL, "--seed", "7",
                           "--frames", "3", "--out", str(out / "clip.mp4"), "--still", str(out / "face.png")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "seed 7, motion seed 7" in proc.stdout
    return out / "face.png", out / "clip.mp4"


# ----------------------------------------------------------------------------------------- CLI


def test_generate_writes_a_still_and_a_clip(generated):
    still, clip = generated
    frames = list(video.VideoReader(clip))
    assert len(frames) == 3 and frames[0].shape == (256, 256, 3)
    assert video.probe_streams(clip)["video"] == "h264"
    assert video.VideoReader(clip).fps == pytest.approx(10)
    face = video.load_image(still)
    assert face.shape == (256, 256, 3) and face.std() > 5  # an image, not a flat colour
    # the still is the clip's first frame (the clip went through H.264, the still is lossless)
    assert np.abs(frames[0].astype(int) - face).mean() < 4
    assert np.abs(frames[2].astype(int) - face).mean() > np.abs(frames[0].astype(int) - face).mean()


def test_missing_weights_exit_2_naming_every_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, still = tmp_path / "clip.mp4", tmp_path / "face.png"
    status = cli.main(["generate", "--model", MODEL, "--frames", "2", "--out", str(out), "--still", str(still), "-q"])
    assert status == 2
    err = capsys.readouterr().err
    for wf in get_card(MODEL).files:
        assert wf.filename in err and str(tmp_path / "empty" / wf.filename) in err
    assert "drive.google.com" in err and "Traceback" not in err
    assert not out.exists() and not still.exists() and list(tmp_path.iterdir()) == []


def test_wrong_or_unsafe_files_are_refused_without_output(offline, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "weights"
    card = get_card(MODEL)
    for wf in card.files:
        (folder / wf.filename).parent.mkdir(parents=True, exist_ok=True)
        (folder / wf.filename).write_bytes((offline / wf.filename).read_bytes())
    image_file, motion_file, comp_file = (folder / wf.filename for wf in card.files[:3])
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(folder))
    out = tmp_path / "clip.mp4"

    def run() -> str:
        assert cli.main(["generate", "--model", MODEL, "--frames", "1", "--out", str(out), "-q"]) == 2
        assert not out.exists()
        return capsys.readouterr().err

    motion = motion_file.read_bytes()
    motion_file.write_bytes(image_file.read_bytes())  # the image generator where the motion file belongs
    assert "is an image generator, not a motion generator" in run()
    motion_file.write_bytes(motion)
    np.save(comp_file, np.array([{"evil": 1}], dtype=object), allow_pickle=True)  # a pickled .npy
    assert "holds Python objects" in run()
    torch.save({"g": {}, "d": {}}, image_file)
    assert "has no 'g_ema'" in run()


@pytest.fixture(scope="module")
def model(weights):
    """The stand-in model, loaded from its four published-layout files."""
    from talking_head.models import mocoganhd

    card = get_card(MODEL)
    return mocoganhd.create(card, [weights / wf.filename for wf in card.files], "cpu")


def test_same_seed_same_clip_and_seeds_reroll_separately(model):
    first = list(model.clip(7, 7, 2))
    again = list(model.clip(7, 7, 2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other_motion = list(model.clip(7, 8, 2))
    assert np.array_equal(other_motion[0], first[0])  # same face
    assert not np.array_equal(other_motion[1], first[1])  # other motion
    assert not np.array_equal(model.still(8), first[0])  # other face
    # the still alone (a batch of one) equals the clip's first frame up to float rounding in the last bit
    assert np.abs(model.still(7).astype(int) - first[0]).max() <= 1
    # interpolation: every second frame is a trajectory step, the others are midpoints
    draws = model.draws(7, 7, 3, use_noise=False)
    w = model.trajectory(draws).w
    from talking_head.models.mocoganhd import interpolate

    mid = interpolate(w)
    assert mid.shape[0] == 5 and torch.equal(mid[::2], w) and torch.allclose(mid[1], (w[0] + w[1]) / 2)


def test_cancel_or_error_leaves_no_output(model, tmp_path):
    from talking_head.generate import Cancelled, GenerateSettings, generate_files

    calls = []
    with pytest.raises(Cancelled):
        generate_files(model, GenerateSettings(frames=2, seed=1), clip=tmp_path / "c.mp4", still=tmp_path / "s.png",
                       cancel=lambda: calls.append(1) or len(calls) > 1)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "c.mp4").write_bytes(b"an older clip")
    from talking_head.errors import BadInputError

    with pytest.raises(BadInputError, match="frames"):
        generate_files(model, GenerateSettings(frames=0), clip=tmp_path / "c.mp4")
    assert (tmp_path / "c.mp4").read_bytes() == b"an older clip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


def test_generators_are_listed_but_never_animate(offline, tmp_path, capsys):
    assert MODEL in [c.name for c in list_models()]
    assert MODEL not in [c.name for c in list_models(kind="animator")]
    assert cli.main(["models", "--names"]) == 0
    assert MODEL in capsys.readouterr().out.split()
    status = cli.main(["animate", "--source", str(media("sources/photo_portrait.png")),
                       "--driving", str(media("driving/talk_vox.mp4")), "--model", MODEL,
                       "--out", str(tmp_path / "o.mp4"), "-q"])
    assert status == 2 and "does not animate a photo" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- render path


def test_generated_files_through_the_animate_render_path(offline, generated):
    """The generated still as the source and the generated clip as the driving clip of a Studio render."""
    from talking_head.studio.render import RenderRequest, Studio

    still, clip = generated
    studio = Studio()
    portrait, talk = media("sources/photo_portrait.png"), media("driving/talk_vox.mp4")
    # landmark needs a face: random weights make none, and the message says which input lacks it
    with pytest.raises(NoFaceError, match="source picture"):
        studio.render_files(RenderRequest.from_inputs(still, talk, "landmark", {"max_seconds": 0.12}))
    with pytest.raises(NoFaceError, match="driving"):
        studio.render_files(RenderRequest.from_inputs(portrait, clip, "landmark", {}))
    # a warping model on the whole picture animates the generated face and is driven by the generated clip
    whole = {"auto_crop": False, "side_by_side": False}
    report = studio.render_files(RenderRequest.from_inputs(still, talk, "fomm.vox-adv", dict(whole, max_seconds=0.12)))
    assert report["frames"] == 3 and video.VideoReader(report["output"]).count_frames() == 3
    report = studio.render_files(RenderRequest.from_inputs(portrait, clip, "fomm.vox-adv", whole))
    assert report["frames"] == 3 and report["fps"] == pytest.approx(10)
    # the positive face case: a real photo driven by a real clip through the same path
    report = studio.render_files(RenderRequest.from_inputs(portrait, talk, "landmark", {"max_seconds": 0.12}))
    assert report["frames"] == 3


def test_live_tab_takes_the_generated_still_as_its_source(offline, generated):
    """The Live tab's step with the generated still as the source and a real camera frame: random
    weights make no face, so the readout says so (and the session keeps running); a real photo animates, and so
    does the generated still used whole, as "use as source" sets the Live tab up."""
    from talking_head.studio.common import ModelPool
    from talking_head.studio.live_tab import live_step

    still, _ = generated
    pool = ModelPool()
    camera = video.VideoReader(media("driving/talk_vox.mp4")).first_frame()
    picture, text, session = live_step(pool, camera, str(still), "landmark", "relative", False, False, None)
    assert picture is None and "No face was found in the source picture" in text
    picture, text, session = live_step(pool, camera, str(media("sources/photo_portrait.png")), "landmark",
                                       "relative", False, False, session)
    assert picture is not None and picture.ndim == 3
    # the generated face used whole (the tab unticks "Crop the source face" on "use as source"): it animates,
    # driven by the tracked camera face
    picture, text, session = live_step(pool, camera, str(still), "fomm.vox-adv", "relative", False, False, session,
                                       crop_source=False)
    assert picture is not None and picture.shape[:2] == (256, 256), text


def test_studio_generate_refuses_an_animator_and_reports_seeds(offline):
    from talking_head.errors import BadInputError
    from talking_head.generate import GenerateSettings
    from talking_head.studio.render import Studio

    studio = Studio()
    with pytest.raises(BadInputError, match="not a generator"):
        studio.generate("landmark", GenerateSettings(frames=1))
    report = studio.generate(MODEL, GenerateSettings(frames=1, seed=3, motion_seed=4, noise=False))
    assert (report["seed"], report["motion_seed"], report["frames"]) == (3, 4, 1)
    assert Path(report["clip"]).is_file() and Path(report["still"]).is_file()


# ----------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def generate_studio_url(weights, tmp_path_factory):
    from tests.conftest import _wait_http

    tmp = tmp_path_factory.mktemp("generate-studio")
    env = dict(app_env(tmp), TALKING_HEAD_WEIGHTS=str(weights))
    port = free_port()
    log = tmp / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, log, 180)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_generate_tab_hands_its_still_and_clip_to_animate_and_live(generate_studio_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.test_browser import BASE_ARGS, CHROMIUM, TIMEOUT_MS

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BASE_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS * 2)
            page.goto(generate_studio_url, wait_until="domcontentloaded")
            page.wait_for_selector("#animate-run")
            assert MODEL not in page.locator("#animate-model").inner_text()
            page.get_by_role("tab", name="Generate").click()
            frames = page.locator("#generate-frames input[type=number]")
            frames.fill("2")
            frames.press("Enter")
            page.locator("#generate-run").click()
            page.wait_for_selector("#generate-still img[src]")
            page.wait_for_selector("#generate-clip video[src]")
            status = page.locator("#generate-status").inner_text().replace("**", "")
            assert "Done: 2 frames" in status and "face seed 7, motion seed 7" in status

            page.locator("#generate-still-source").click()
            page.wait_for_selector("#animate-source img[src*='face7_motion7']")
            page.get_by_role("tab", name="Live").click()
            page.wait_for_selector("#live-source img[src*='face7_motion7']")
            assert not page.locator("#live-crop-source input[type=checkbox]").is_checked()

            page.get_by_role("tab", name="Generate").click()
            page.locator("#generate-clip-driving").click()
            page.wait_for_selector("#animate-driving video[src*='face7_motion7']")

            page.get_by_role("tab", name="Generate").click()
            page.locator("#generate-reroll-motion").click()
            page.wait_for_function("() => !document.querySelector('#generate-status').innerText.includes('motion seed 7,')"
                                   " && document.querySelector('#generate-status').innerText.includes('face seed 7,')")
            assert page.locator("#generate-seed input").input_value() == "7"
            assert page.locator("#generate-motion-seed input").input_value() != "7"
        finally:
            browser.close()
