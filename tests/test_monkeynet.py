"""Monkey-Net: checkpoint loading (round trip, wrong/truncated/unsafe files) and transfer behaviour.

Most tests use the 64x64 NEMO card (same code paths, a fraction of the compute); one runs the 256x256
VoxCeleb card end to end. Weights are the parity fill rule, so the keypoint detector follows the image.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_head import load_model, motion
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models import monkeynet
from talking_head.models.base import TransferOptions, norm_to_pixels
from talking_head.models.monkeynet_modules import symmetric_positive
from talking_head.registry import get_card, list_models
from tests.parity_runners import fill_module

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
CPU = torch.device("cpu")


def face(size: int, zoom: float = 1.0, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """skimage's astronaut, cropped around the face, optionally zoomed and shifted (pixels at ``size``)."""
    from skimage import data, transform

    img = data.astronaut()[0:300, 100:400]
    c, half = 150, int(150 / zoom)
    img = img[c - half : c + half, c - half : c + half]
    out = transform.resize(img, (size, size), anti_aliasing=True)
    out = np.roll(out, shift, axis=(0, 1))
    return (out * 255 + 0.5).astype(np.uint8)


def filled(name: str, seed: int = 0):
    animator = monkeynet.create(get_card(name), None, CPU)
    fill_module(animator.generator, seed)
    fill_module(animator.kp_detector, seed)
    return animator


@pytest.fixture(scope="module")
def nemo():
    return filled("monkeynet.nemo")


def save(tmp_path, obj, filename) -> None:
    torch.save(obj, tmp_path / filename)


# ---------------------------------------------------------------- cards
def test_cards():
    cards = {c.name: c for c in list_models("monkeynet")}
    assert {"monkeynet.vox", "monkeynet.nemo", "monkeynet.taichi", "monkeynet.moving-gif"} <= set(cards)
    assert cards["monkeynet.vox"].resolution == 256
    for card in cards.values():
        assert card.license.startswith("no license stated")
        assert all(wf.hf_repo is None and wf.url.startswith("https://yadi.sk/") for wf in card.files)
        assert set(card.modes) == {"relative", "absolute"}
    vox = cards["monkeynet.vox"].options["model_params"]
    assert vox["kp_detector_params"]["scale_factor"] == 0.25
    assert vox["generator_params"]["interpolation_mode"] == "trilinear"


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(nemo, tmp_path, monkeypatch):
    card = nemo.card
    (name, ckpt), = monkeynet.published_checkpoints(nemo).items()
    assert name == card.files[0].filename and {"generator", "kp_detector"} <= set(ckpt)
    assert "refinement_module.conv-last.weight" in ckpt["generator"]
    save(tmp_path, ckpt, name)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    loaded = load_model(card.name, device="cpu")
    src, drv = face(64), face(64, zoom=1.2, shift=(3, -2))
    opts = TransferOptions(relative=True, adapt_scale=False)
    a = nemo.animate(nemo.prepare_source(src), drv[None], nemo.prepare_driving(src), opts)[0]
    b = loaded.animate(loaded.prepare_source(src), drv[None], loaded.prepare_driving(src), opts)[0]
    assert np.array_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.source_keypoints, b.source_keypoints)


def test_checkpoint_without_batchnorm_counters_loads(nemo, tmp_path, monkeypatch):
    (name, ckpt), = monkeynet.published_checkpoints(nemo).items()
    ckpt = {k: ({n: t for n, t in v.items() if not n.endswith("num_batches_tracked")} if isinstance(v, dict) else v)
            for k, v in ckpt.items()}
    save(tmp_path, ckpt, name)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    loaded = load_model(nemo.card.name, device="cpu")
    key = "predictor.decoder.conv.weight"
    assert torch.equal(loaded.kp_detector.state_dict()[key], nemo.kp_detector.state_dict()[key])


def test_wrong_keys_name_the_keys(nemo, tmp_path, monkeypatch):
    (name, ckpt), = monkeynet.published_checkpoints(nemo).items()
    gen = dict(ckpt["generator"])
    gen["refinement_module.conv_last.weight"] = gen.pop("refinement_module.conv-last.weight")
    save(tmp_path, {**ckpt, "generator": gen}, name)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model(nemo.card.name, device="cpu")
    text = err.value.user_message()
    assert "refinement_module.conv-last.weight" in text and "refinement_module.conv_last.weight" in text


def test_other_configs_checkpoint_is_refused(nemo, tmp_path, monkeypatch):
    """A NEMO file under the vox name: shapes differ (max_features 512 vs 1024, 5 vs 7 blocks)."""
    (_, ckpt), = monkeynet.published_checkpoints(nemo).items()
    save(tmp_path, ckpt, get_card("monkeynet.vox").files[0].filename)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model("monkeynet.vox", device="cpu")
    # the keys and shapes are those of another card: it is named, with where its file goes
    assert "checkpoint of monkeynet.nemo, not of monkeynet.vox" in err.value.message
    assert "monkeynet-nemo.pth.tar" in err.value.hint


def test_missing_module_entry(nemo, tmp_path, monkeypatch):
    (name, ckpt), = monkeynet.published_checkpoints(nemo).items()
    save(tmp_path, {"generator": ckpt["generator"]}, name)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model(nemo.card.name, device="cpu")
    assert "kp_detector" in err.value.user_message()


def test_truncated_file(nemo, tmp_path, monkeypatch):
    (name, ckpt), = monkeynet.published_checkpoints(nemo).items()
    save(tmp_path, ckpt, name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 3])
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError):
        load_model(nemo.card.name, device="cpu")


class Payload:
    """Unpickling this would need arbitrary code."""


def test_unsafe_pickle_is_refused(tmp_path, monkeypatch):
    name = get_card("monkeynet.nemo").files[0].filename
    save(tmp_path, {"generator": {}, "kp_detector": {}, "extra": Payload()}, name)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_model("monkeynet.nemo", device="cpu")
    assert "arbitrary code" in err.value.user_message()


# ---------------------------------------------------------------- behaviour
def test_symmetric_positive_matches_eigen_clamp():
    rng = np.random.default_rng(0)
    m = torch.from_numpy(rng.normal(size=(50, 2, 2))).double()
    sym = ((m + m.transpose(-1, -2)) / 2).numpy()
    d, u = np.linalg.eigh(sym)
    d[d <= 0] = 1e-6
    expected = u @ (d[..., None] * np.swapaxes(u, -1, -2))
    np.testing.assert_allclose(symmetric_positive(m).numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(symmetric_positive(torch.eye(2, dtype=torch.float64)[None] * 3).numpy()[0], np.eye(2) * 3)


def test_modes_move_keypoints_as_published(nemo):
    src = face(64)
    ref = face(64, zoom=0.8)  # the reference frame is a smaller face than the source
    drv = np.stack([ref, face(64, zoom=0.8, shift=(4, 3))])
    source, reference = nemo.prepare_source(src), nemo.prepare_driving(ref)
    kp_src = norm_to_pixels(source.mean_np, 64)
    kp_ref = norm_to_pixels(reference.mean_np, 64)

    rel = nemo.animate(source, drv, reference, TransferOptions(relative=True, adapt_scale=False))
    absolute = nemo.animate(source, drv, reference, TransferOptions(relative=False))
    scaled = nemo.animate(source, drv, reference, TransferOptions(relative=True, adapt_scale=True))

    for r in rel + absolute + scaled:
        assert r.frame.shape == (64, 64, 3) and r.frame.dtype == np.uint8
        assert r.mask.shape == (64, 64) and 0 <= r.mask.min() and r.mask.max() <= 1
        assert r.motion.shape == (64, 64, 2) and np.isfinite(r.motion).all()
        assert r.extras["heatmaps"].shape == (10, 64, 64)
        np.testing.assert_allclose(r.extras["heatmaps"].sum(axis=(1, 2)), 1, atol=1e-4)
        np.testing.assert_allclose(r.extras["motion_masks"].sum(0), 1, atol=1e-5)
        np.testing.assert_allclose(r.extras["kp_source"], kp_src, atol=1e-4)

    # the detector responds to the driving image (fill weights do not track a shift, but they do change)
    assert np.abs(rel[1].driving_keypoints - rel[0].driving_keypoints).max() > 0.1

    # relative: driving == reference leaves the source keypoints in place; otherwise they move by the same amount
    np.testing.assert_allclose(rel[0].source_keypoints, kp_src, atol=1e-3)
    np.testing.assert_allclose(rel[1].source_keypoints - kp_src, rel[1].driving_keypoints - kp_ref, atol=1e-3)
    # absolute: the generator gets the driving keypoints as they are
    for r in absolute:
        np.testing.assert_allclose(r.source_keypoints, r.driving_keypoints, atol=1e-4)
    assert not np.array_equal(rel[1].frame, absolute[1].frame)
    # adapt_scale: movement scaled by sqrt(hull(source)) / sqrt(hull(reference))
    scale = motion.movement_scale(source.mean_np, reference.mean_np)
    assert abs(scale - 1) > 1e-3
    np.testing.assert_allclose(scaled[1].source_keypoints - kp_src, (rel[1].source_keypoints - kp_src) * scale, atol=1e-3)


def test_reference_and_batching(nemo):
    src, other = face(64), face(64, zoom=1.3, shift=(-3, 2))
    source = nemo.prepare_source(src)
    opts = TransferOptions(relative=True, adapt_scale=True)
    # driving == reference == source: keypoints unchanged, the source warped by (almost) nothing
    same = nemo.animate(source, src[None], nemo.prepare_driving(src), opts)[0]
    np.testing.assert_allclose(same.source_keypoints, norm_to_pixels(source.mean_np, 64), atol=1e-3)
    # a batch gives the same frames as one frame at a time
    reference = nemo.prepare_driving(other)
    both = nemo.animate(source, np.stack([src, other]), reference, opts)
    one = nemo.animate(source, other[None], reference, opts)[0]
    assert np.abs(both[1].frame.astype(int) - one.frame.astype(int)).max() <= 1
    with pytest.raises(BadInputError):
        nemo.animate(source, src[None], reference, TransferOptions(mode="avd"))


def test_vox_runs_at_256():
    vox = monkeynet.create(get_card("monkeynet.vox"), None, CPU)  # default init: shapes and plumbing only
    vox.generator.eval()
    src = face(256)
    source = vox.prepare_source(src)
    results = vox.animate(source, face(256, zoom=1.1)[None], vox.prepare_driving(src), TransferOptions())
    r = results[0]
    assert r.frame.shape == (256, 256, 3)
    assert r.source_keypoints.shape == (10, 2) and r.driving_keypoints.shape == (10, 2)
    assert r.mask.shape == (64, 64) and r.motion.shape == (64, 64, 2)
    assert r.extras["deformed_source"].shape == (256, 256, 3)
    assert r.extras["heatmaps"].shape == (10, 64, 64)
