"""Thin-Plate Spline Motion Model: cards, checkpoint loading and the three animation modes.

Numerical parity with the published code is in tests/test_parity.py; here the full-size vox
architecture is used for the layout and the ``load_model`` round trip, and a narrow
configuration (same code, fewer channels) for the behaviour tests, to stay fast on a CPU.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from skimage import data, transform

from talking_head import motion
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models import tpsmm
from talking_head.models.base import TransferOptions, to_tensor
from talking_head.registry import get_card, list_models, load_model
from tests.parity_runners import FIXTURE_DIR

SIZE = 256
SMALL_PARAMS = {
    "generator_params": {"block_expansion": 8, "max_features": 32, "num_down_blocks": 3},
    "dense_motion_params": {"block_expansion": 8, "max_features": 64, "num_blocks": 5, "scale_factor": 0.25},
    "avd_network_params": {"id_bottle_size": 16, "pose_bottle_size": 16},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return (transform.resize(data.astronaut()[:400, 80:480], (SIZE, SIZE), anti_aliasing=True) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def driving(face) -> np.ndarray:
    """Three frames: the face, shifted right and down, and slightly rotated and zoomed."""
    shifted = np.roll(face, (6, 10), axis=(0, 1))
    turned = transform.warp(face, transform.SimilarityTransform(scale=1.05, rotation=0.08, translation=(-12, -4)).inverse)
    return np.stack([face, shifted, (turned * 255).astype(np.uint8)])


def small_card(name: str = "tpsmm.vox"):
    card = get_card(name)
    params = {**SMALL_PARAMS, "common_params": card.options["model_params"]["common_params"]}
    return dataclasses.replace(card, options={**card.options, "model_params": params})


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return tpsmm.create(small_card(), None, torch.device("cpu"))


def save_checkpoint(animator, directory, edit=None):
    (filename, content), = tpsmm.published_checkpoints(animator).items()
    if edit:
        edit(content)
    path = directory / filename
    torch.save(content, path)
    return path


# ---------------------------------------------------------------- cards and layout
def test_cards():
    cards = {c.name: c for c in list_models("tpsmm")}
    assert set(cards) == {"tpsmm.vox", "tpsmm.taichi", "tpsmm.ted", "tpsmm.mgif"}
    for card in cards.values():
        assert card.modes == ("standard", "relative", "avd") and card.default_mode == "relative"
        assert card.license.startswith("MIT") and card.good_at and card.bad_at
        assert len(card.files) == 1 and card.files[0].filename.startswith("tpsmm-")
    assert cards["tpsmm.vox"].files[0].hf_repo == "vessl/thin-plate-spline-motion-model"
    for name in ("tpsmm.taichi", "tpsmm.ted", "tpsmm.mgif"):
        assert not cards[name].files[0].on_hub and cards[name].files[0].url
    assert cards["tpsmm.ted"].resolution == 384
    assert cards["tpsmm.mgif"].options["model_params"]["common_params"]["bg"] is False
    assert not cards["tpsmm.mgif"].controls and cards["tpsmm.vox"].controls[0].name == "background_motion"


def test_state_dicts_match_published_layout():
    meta = json.loads(str(np.load(FIXTURE_DIR / "tpsmm-vox256.npz")["meta"]))
    published = meta["checkpoint_layout"]["modules"]
    networks = tpsmm.TPSMMNetworks(tpsmm.model_params(get_card("tpsmm.vox")))
    for name, layout in published.items():
        ours = getattr(networks, name).state_dict()
        assert list(ours) == list(layout["keys"]), name
        for key, shape in layout["keys"].items():
            if not key.endswith("num_batches_tracked"):
                assert list(ours[key].shape) == shape, key
    mgif = tpsmm.TPSMMNetworks(tpsmm.model_params(get_card("tpsmm.mgif")))
    assert mgif.bg_predictor is None


# ---------------------------------------------------------------- checkpoints
def test_round_trip_through_load_model(tmp_path, monkeypatch, face):
    """The full-size vox card: our published layout loads back through the registry unchanged."""
    torch.manual_seed(1)
    original = tpsmm.create(get_card("tpsmm.vox"), None, torch.device("cpu"))
    save_checkpoint(original, tmp_path)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TALKING_HEAD_TRUST_FILES", "1")  # our file is not the pinned one (size, sha256): keep it
    loaded = load_model("tpsmm.vox", device="cpu")
    assert isinstance(loaded, tpsmm.TPSMMAnimator) and loaded.card.name == "tpsmm.vox"
    ours, theirs = original.networks.state_dict(), loaded.networks.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    a, b = original.prepare_source(face), loaded.prepare_source(face)
    assert torch.equal(a.keypoints, b.keypoints) and torch.equal(a.encoded[-1], b.encoded[-1])


def test_round_trip_gives_identical_frames(tmp_path, small, face, driving):
    loaded = tpsmm.create(small_card(), [save_checkpoint(small, tmp_path)], torch.device("cpu"))
    results = []
    for model in (small, loaded):
        src, ref = model.prepare_source(face), model.prepare_driving(driving[0])
        results.append(model.animate(src, driving[1:], ref, TransferOptions(mode="avd", extra={"background_motion": True})))
    for r0, r1 in zip(*results):
        np.testing.assert_array_equal(r0.frame, r1.frame)
        np.testing.assert_array_equal(r0.motion, r1.motion)
        np.testing.assert_array_equal(r0.mask, r1.mask)


def test_wrong_keys_name_the_keys(tmp_path, small):
    def rename(content):
        sd = content["inpainting_network"]
        sd["final.conv_weight"] = sd.pop("final.weight")

    path = save_checkpoint(small, tmp_path, rename)
    with pytest.raises(CheckpointError) as info:
        tpsmm.create(small_card(), [path], torch.device("cpu"))
    assert "final.weight" in str(info.value) and "final.conv_weight" in str(info.value)

    path = save_checkpoint(small, tmp_path, lambda c: c.pop("kp_detector"))
    with pytest.raises(CheckpointError, match="kp_detector"):
        tpsmm.create(small_card(), [path], torch.device("cpu"))


def test_wrong_configuration_names_the_shapes(tmp_path, small):
    path = save_checkpoint(small, tmp_path)
    with pytest.raises(CheckpointError, match="wrong shapes"):
        tpsmm.create(get_card("tpsmm.vox"), [path], torch.device("cpu"))


def test_truncated_file(tmp_path, small):
    path = save_checkpoint(small, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="truncated|could not be read"):
        tpsmm.create(small_card(), [path], torch.device("cpu"))


class _Payload:
    """Something a weights-only unpickler must refuse."""


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "tpsmm-vox.pth.tar"
    torch.save({"kp_detector": _Payload()}, path)
    with pytest.raises(CheckpointError, match="arbitrary code"):
        tpsmm.create(small_card(), [path], torch.device("cpu"))


def test_checkpoint_without_optional_networks(tmp_path, small, face):
    def strip(content):
        del content["avd_network"], content["bg_predictor"]

    model = tpsmm.create(small_card(), [save_checkpoint(small, tmp_path, strip)], torch.device("cpu"))
    assert model.networks.avd_network is None and model.networks.bg_predictor is None
    src, ref = model.prepare_source(face), model.prepare_driving(face)
    assert model.animate(src, face[None], ref, TransferOptions(mode="relative"))[0].frame.shape == (SIZE, SIZE, 3)
    with pytest.raises(BadInputError, match="avd"):
        model.animate(src, face[None], ref, TransferOptions(mode="avd"))
    with pytest.raises(BadInputError, match="background"):
        model.animate(src, face[None], ref, TransferOptions(extra={"background_motion": True}))


# ---------------------------------------------------------------- animation
@pytest.mark.parametrize("mode", ["standard", "relative", "avd"])
def test_every_mode_gives_sane_frames(small, face, driving, mode):
    src, ref = small.prepare_source(face), small.prepare_driving(driving[0])
    results = small.animate(src, driving, ref, TransferOptions(mode=mode))
    assert len(results) == len(driving)
    for r in results:
        assert r.frame.shape == (SIZE, SIZE, 3) and r.frame.dtype == np.uint8 and r.frame.std() > 1
        assert r.mask.shape == (SIZE, SIZE) and 0 <= r.mask.min() and r.mask.max() <= 1
        assert r.motion.shape == (SIZE, SIZE, 2) and np.isfinite(r.motion).all()
        assert r.source_keypoints.shape == r.driving_keypoints.shape == (50, 2)
        assert (r.driving_keypoints >= 0).all() and (r.driving_keypoints <= SIZE - 1).all()
        assert [r.extras[f"occlusion_{i}"].shape for i in range(4)] == [(32, 32), (64, 64), (128, 128), (256, 256)]
        np.testing.assert_allclose(r.mask, 1 - r.extras["occlusion_3"], atol=1e-6)
    assert not np.array_equal(results[0].frame, results[2].frame)


def test_reference_frame_reproduces_the_source_pose(small, face, driving):
    """Relative: a driving frame equal to the reference moves the source keypoints nowhere, which is
    exactly the absolute (standard) transfer of the source onto itself."""
    src = small.prepare_source(face)
    relative = small.animate(src, driving[2:3], small.prepare_driving(driving[2]), TransferOptions(mode="relative"))[0]
    itself = small.animate(src, face[None], None, TransferOptions(relative=False))[0]
    np.testing.assert_array_equal(relative.frame, itself.frame)
    np.testing.assert_allclose(relative.motion, itself.motion, atol=1e-4)


def test_relative_to_the_source_itself_is_absolute(small, face, driving):
    src = small.prepare_source(face)
    relative = small.animate(src, driving, small.prepare_driving(face), TransferOptions(relative=True))
    absolute = small.animate(src, driving, None, TransferOptions(relative=False))
    for r, a in zip(relative, absolute):
        assert np.abs(r.frame.astype(int) - a.frame).max() <= 1
        np.testing.assert_allclose(r.motion, a.motion, atol=1e-3)


def test_relative_needs_a_reference_and_scale_is_optional(small, face, driving):
    src = small.prepare_source(face)
    with pytest.raises(BadInputError, match="reference"):
        small.animate(src, driving[:1], None, TransferOptions(mode="relative"))
    ref = small.prepare_driving(driving[2])
    assert motion.area_scale(src.hull_area, ref.hull_area) != pytest.approx(1.0, abs=1e-4)
    frames = to_tensor(driving[1:2], small.device)
    scaled = small.forward(src, frames, ref, TransferOptions())
    plain = small.forward(src, frames, ref, TransferOptions(adapt_scale=False))
    offset_scaled, offset_plain = scaled["kp_norm"] - src.keypoints, plain["kp_norm"] - src.keypoints
    ratio = motion.area_scale(src.hull_area, ref.hull_area)
    torch.testing.assert_close(offset_scaled, offset_plain * ratio, atol=1e-6, rtol=1e-4)


def test_background_motion_changes_the_flow(small, face, driving):
    src, ref = small.prepare_source(face), small.prepare_driving(driving[0])
    still = small.animate(src, driving[1:2], ref, TransferOptions())[0]
    moving = small.animate(src, driving[1:2], ref, TransferOptions(extra={"background_motion": True}))[0]
    assert np.abs(still.motion - moving.motion).max() > 1e-3


def test_frames_of_another_size_are_refused(small, face):
    src = small.prepare_source(face)
    with pytest.raises(BadInputError, match="do not match"):
        small.animate(src, np.zeros((1, 128, 128, 3), np.uint8), None, TransferOptions(mode="standard"))
