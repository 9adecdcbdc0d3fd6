"""X2Face: checkpoint loading (round trip, torch 0.2 layout, wrong/truncated/unsafe files) and behaviour."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talking_head import load_model
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models import x2face
from talking_head.models.base import TransferOptions
from talking_head.registry import get_card
from tests.parity_runners import fill_module

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
NAME = "x2face.released"
FILENAME = get_card(NAME).files[0].filename


@pytest.fixture(scope="module")
def model():
    animator = x2face.create(get_card(NAME), None, torch.device("cpu"))
    fill_module(animator.net, 0)
    return animator


def face(size: int, zoom: float = 1.0, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """skimage's astronaut, cropped around the face, optionally zoomed and shifted (pixels at ``size``)."""
    from skimage import data, transform

    img = data.astronaut()[0:300, 100:400]
    half = int(150 / zoom)
    img = img[150 - half : 150 + half, 150 - half : 150 + half]
    out = np.roll(transform.resize(img, (size, size), anti_aliasing=True), shift, axis=(0, 1))
    return (out * 255 + 0.5).astype(np.uint8)


def published(model) -> dict:
    (name, ckpt), = x2face.published_checkpoints(model).items()
    assert name == FILENAME
    return ckpt


def output(animator, src, drv):
    return animator.animate(animator.prepare_source(src), drv[None], None, TransferOptions())[0]


def test_card():
    card = get_card(NAME)
    assert card.resolution == 256 and card.modes == ("absolute",)
    assert card.license.startswith("MIT License")
    wf = card.files[0]
    assert wf.hf_repo is None and "robots.ox.ac.uk/~vgg/research/unsup_learn_watch_faces/x2face.html" in wf.url


def test_published_layout(model):
    state = published(model)["state_dict"]
    assert len(state) == 162 - 26  # torch 0.2: no BatchNorm num_batches_tracked
    assert "pix2pixUnwrapped.netG.model.down.0.weight" in state
    inner = "pix2pixSampler.netG.model" + ".submodule" * 7
    assert tuple(state[inner + ".down.1.weight"].shape) == (128, 512, 4, 4)
    assert tuple(state[inner + ".up.2.weight"].shape) == (512, 128, 3, 3)


def test_round_trip_legacy_format_with_optimizer(model, tmp_path, monkeypatch):
    """The released file: torch 0.2 non-zip pickle, {'state_dict', 'optimizer'}; it must load with weights_only."""
    ckpt = published(model)
    ckpt["optimizer"] = {
        "state": {0: {"step": 10, "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "params": [0]}],
    }
    torch.save(ckpt, tmp_path / FILENAME, _use_new_zipfile_serialization=False)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    loaded = load_model(NAME, device="cpu")
    src, drv = face(256), face(256, zoom=1.2, shift=(5, 0))
    a, b = output(model, src, drv), output(loaded, src, drv)
    assert np.array_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.motion, b.motion)


def test_wrong_keys_name_the_keys(model, tmp_path, monkeypatch):
    ckpt = published(model)
    state = ckpt["state_dict"]
    state["pix2pixSampler.netG.model.up.1.weight"] = state.pop("pix2pixSampler.netG.model.up.2.weight")
    torch.save(ckpt, tmp_path / FILENAME)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model(NAME, device="cpu")
    text = err.value.user_message()
    assert "pix2pixSampler.netG.model.up.2.weight" in text and "pix2pixSampler.netG.model.up.1.weight" in text


def test_wrong_inner_size_is_refused(model, tmp_path, monkeypatch):
    """The notebook's inner_nc=128 model; a 512-wide bottleneck (the class default) must not load."""
    other = x2face.X2FaceNet(inner_nc=512).state_dict()
    torch.save({"state_dict": other}, tmp_path / FILENAME)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model(NAME, device="cpu")
    assert "wrong shapes" in err.value.user_message()


def test_truncated_file(model, tmp_path, monkeypatch):
    torch.save(published(model), tmp_path / FILENAME)
    data = (tmp_path / FILENAME).read_bytes()
    (tmp_path / FILENAME).write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError):
        load_model(NAME, device="cpu")


class Payload:
    """Unpickling this would need arbitrary code."""


def test_unsafe_pickle_is_refused(tmp_path, monkeypatch):
    torch.save({"state_dict": {}, "optimizer": Payload()}, tmp_path / FILENAME, _use_new_zipfile_serialization=False)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model(NAME, device="cpu")
    assert "arbitrary code" in err.value.user_message()


def test_frame_results_and_modes(model):
    src, drv = face(256), face(256, zoom=1.2, shift=(5, 0))
    source = model.prepare_source(src)
    frames = np.stack([drv, src])
    results = model.animate(source, frames, None, TransferOptions())
    r = results[0]
    assert r.frame.shape == (256, 256, 3) and r.frame.dtype == np.uint8
    assert r.source_keypoints is None and r.mask is None
    assert r.motion.shape == (256, 256, 2) and np.isfinite(r.motion).all()
    assert r.extras["embedded_face"].shape == (256, 256, 3)
    assert r.extras["confidence"].shape == (256, 256) and r.extras["confidence"].min() > 0.1
    assert r.extras["driving_embedding"].shape == (128,)
    # the motion field explains the output: the source sampled where it says is close to the frame
    grid = x2face.identity_grid(256) + torch.from_numpy(r.motion)[None] / 127.5
    src_t = torch.from_numpy(src).permute(2, 0, 1)[None].float()
    resampled = F.grid_sample(src_t, grid, align_corners=True)[0].permute(1, 2, 0).numpy()
    assert np.abs(resampled - r.frame).mean() < np.abs(src.astype(float) - r.frame).mean() / 3
    # absolute only: the reference frame and the relative switches change nothing
    for ref, opts in [(model.prepare_driving(drv), TransferOptions(relative=True)), (None, TransferOptions(relative=False, adapt_scale=False))]:
        again = model.animate(source, frames, ref, opts)
        assert all(np.array_equal(a.frame, b.frame) for a, b in zip(results, again))
    with pytest.raises(BadInputError):
        model.animate(source, frames, None, TransferOptions(mode="relative"))


def test_zero_offsets_are_an_identity_warp(model):
    """With both nets' last convs zeroed, tanh(0) = 0 offsets must reproduce the source (aligned-corner grids)."""
    net = x2face.X2FaceNet()
    net.load_state_dict(model.net.state_dict())
    with torch.no_grad():
        net.pix2pixUnwrapped.netG.model.up[2].weight.zero_()
        net.pix2pixSampler.netG.model.up[2].weight.zero_()
    animator = x2face.X2FaceAnimator(get_card(NAME), net, torch.device("cpu"))
    src = face(256)
    r = output(animator, src, face(256, zoom=1.3))
    assert np.abs(r.frame.astype(int) - src).max() <= 1
    assert np.abs(r.motion).max() < 1e-3
    np.testing.assert_allclose(r.extras["embedded_face"], src / 255.0, atol=1e-5)
    np.testing.assert_allclose(r.extras["confidence"], 1.1, rtol=1e-6)
