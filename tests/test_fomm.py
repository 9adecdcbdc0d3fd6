"""FOMM port: checkpoint loading through the registry, every transfer mode, previews, cards.

The model runs with its own random weights (well-conditioned jacobians), written in the published
checkpoint layout and loaded back through ``load_model``; the numerical match with the published
code is tests/test_parity.py's job.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data, transform

from talking_head import motion
from talking_head.errors import CheckpointError
from talking_head.model_cards.fomm import CARDS, model_params
from talking_head.models import fomm
from talking_head.models.base import TransferOptions, norm_to_pixels
from talking_head.models.fomm_modules import KeypointDetector
from talking_head.registry import get_card, load_model
from tests.parity_runners import FIXTURE_DIR, checkpoint_keys

CARD = "fomm.vox"
FILENAME = "vox-cpk.pth.tar"


@lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    return transform.resize(data.astronaut(), (256, 256), anti_aliasing=True)


def _face(shift: float = 0.0, angle: float = 0.0, zoom: float = 1.0) -> np.ndarray:
    """The astronaut photo at 256x256, optionally moved (pixels), turned (radians), zoomed."""
    image = _astronaut()
    if shift or angle or zoom != 1.0:
        centre = np.array([128.0, 128.0])
        move = transform.SimilarityTransform(translation=-centre)
        move += transform.SimilarityTransform(scale=zoom, rotation=angle)
        move += transform.SimilarityTransform(translation=centre + [shift, 0.0])
        image = transform.warp(image, move.inverse, mode="edge")
    return (image * 255 + 0.5).astype(np.uint8)


def _randomise(animator) -> None:
    """Random but sane weights: small non-zero jacobian conv, non-trivial BatchNorm statistics."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        animator.kp_detector.jacobian.weight.copy_(torch.randn(animator.kp_detector.jacobian.weight.shape, generator=gen) * 1e-3)
        for module in [*animator.kp_detector.modules(), *animator.generator.modules()]:
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_((torch.rand(module.running_mean.shape, generator=gen) - 0.5) * 0.2)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    original = load_model(CARD, device="cpu", pretrained=False)
    _randomise(original)
    folder = tmp_path_factory.mktemp("fomm_weights")
    files = fomm.published_checkpoints(original)
    assert list(files) == [FILENAME]
    for name, checkpoint in files.items():
        torch.save(checkpoint, folder / name)
    return folder


@pytest.fixture(scope="module")
def original(weights_dir):
    """The model as written to ``weights_dir``, loaded without the registry."""
    return fomm.create(get_card(CARD), [weights_dir / FILENAME], torch.device("cpu"))


@pytest.fixture(scope="module")
def model(weights_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALKING_HEAD_WEIGHTS", str(weights_dir))
        return load_model(CARD, device="cpu")


@pytest.fixture(scope="module")
def source(model):
    return model.prepare_source(_face())


# ---------------------------------------------------------------- layout and loading
def test_state_dicts_match_published_layout():
    meta = json.loads(str(np.load(FIXTURE_DIR / "fomm-vox256.npz")["meta"]))
    kp_detector, generator = fomm.build_modules(get_card(CARD).options)
    for name, module in (("generator", generator), ("kp_detector", kp_detector)):
        ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        # the fixture lists 0-d integer buffers (num_batches_tracked) by dtype instead of shape
        published = {k: () if any(isinstance(d, str) for d in v) else v for k, v in checkpoint_keys(meta, name).items()}
        assert ours == published, name


def test_mgif_detector_has_one_shared_jacobian_map():
    options = get_card("fomm.mgif").options
    detector = KeypointDetector(**options["kp_detector_params"], **options["common_params"])
    assert tuple(detector.jacobian.weight.shape) == (4, 35, 7, 7)
    with torch.inference_mode():
        out = detector(torch.rand(1, 3, 256, 256))
    assert out["value"].shape == (1, 10, 2) and out["jacobian"].shape == (1, 10, 2, 2)
    assert out["heatmap"].shape == (1, 10, 58, 58)


def test_checkpoint_round_trip_through_registry(model, original):
    face, driving = _face(), _face(shift=12.0, angle=0.1)[None]
    options = TransferOptions()
    ours = model.animate(model.prepare_source(face), driving, model.prepare_driving(face), options)[0]
    theirs = original.animate(original.prepare_source(face), driving, original.prepare_driving(face), options)[0]
    assert np.array_equal(ours.frame, theirs.frame)
    assert np.array_equal(ours.motion, theirs.motion)
    for (key, a), b in zip(model.generator.state_dict().items(), original.generator.state_dict().values()):
        assert torch.equal(a, b), key


def _write_and_load(tmp_path, monkeypatch, obj=None, raw: bytes | None = None):
    path = tmp_path / FILENAME
    if raw is not None:
        path.write_bytes(raw)
    else:
        torch.save(obj, path)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    return load_model(CARD, device="cpu")


def test_wrong_keys_are_named(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError) as err:
        _write_and_load(tmp_path, monkeypatch, {"generator": {"final.weights": torch.zeros(3)}, "kp_detector": {}})
    text = str(err.value)
    assert "final.weights" in text and "missing" in text and "unexpected" in text


def test_missing_module_is_named(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="kp_detector"):
        _write_and_load(tmp_path, monkeypatch, {"generator": {}, "epoch": 3})


def test_truncated_checkpoint(tmp_path, monkeypatch, weights_dir):
    head = (weights_dir / FILENAME).read_bytes()[:200_000]
    with pytest.raises(CheckpointError, match="truncated"):
        _write_and_load(tmp_path, monkeypatch, raw=head)


class Payload:
    """Anything a weights-only unpickler must refuse to build."""


def test_checkpoint_needing_code_is_refused(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="arbitrary code"):
        _write_and_load(tmp_path, monkeypatch, {"generator": Payload(), "kp_detector": {}})


# ---------------------------------------------------------------- modes and previews
@pytest.mark.parametrize("mode,adapt,count", [("relative", True, 2), ("relative", False, 1), ("absolute", False, 1)])
def test_every_mode_gives_sane_frames(model, source, mode, adapt, count):
    reference = model.prepare_driving(_face(shift=-6.0))
    frames = np.stack([_face(angle=0.2, zoom=1.1), _face(shift=10.0)][:count])
    results = model.animate(source, frames, reference, TransferOptions(mode=mode, adapt_scale=adapt))
    assert len(results) == count
    for r in results:
        assert r.frame.shape == (256, 256, 3) and r.frame.dtype == np.uint8 and r.frame.std() > 1
        for pts in (r.source_keypoints, r.driving_keypoints, r.extras["transferred_keypoints"]):
            assert pts.shape == (10, 2) and np.isfinite(pts).all()
        assert r.mask.shape == (64, 64) and 0 <= r.mask.min() and r.mask.max() <= 1
        assert r.motion.shape == (64, 64, 2) and np.isfinite(r.motion).all()
        assert r.extras["source_heatmaps"].shape == (58, 58, 10)
        assert np.allclose(r.extras["source_heatmaps"].max(axis=(0, 1)), 1.0)
        assert r.extras["driving_heatmaps"].shape == (58, 58, 10)
        masks = r.extras["motion_masks"]
        assert masks.shape == (64, 64, 11) and np.allclose(masks.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(results[0].source_keypoints, norm_to_pixels(source.value_cpu, 256))
    if count > 1:  # frames of one batch are animated independently
        assert not np.array_equal(results[0].frame, results[1].frame)


def test_relative_frame_equal_to_reference_keeps_source_still(model, source):
    face = _face(shift=-15.0, angle=-0.15)
    reference = model.prepare_driving(face)
    result = model.animate(source, face[None], reference, TransferOptions(relative=True, adapt_scale=True))[0]
    assert np.abs(result.motion).max() < 1e-2  # pixels
    np.testing.assert_allclose(result.extras["transferred_keypoints"], result.source_keypoints, atol=1e-3)


def test_relative_motion_is_backward_flow_in_pixels(model, source):
    """A reference shifted by -d moves every keypoint by +d: each output pixel samples the source at -d."""
    face = _face()
    detected = model.prepare_driving(face)
    delta = torch.tensor([0.04, -0.02])
    shifted = dict(detected.keypoints, value=detected.keypoints["value"] - delta)
    reference = fomm.DrivingState(keypoints=shifted, value_cpu=shifted["value"][0].numpy())
    result = model.animate(source, face[None], reference, TransferOptions(relative=True, adapt_scale=False))[0]
    delta_px = delta.numpy() * 255 / 2
    np.testing.assert_allclose(result.extras["transferred_keypoints"], result.source_keypoints + delta_px, atol=1e-3)
    background = result.extras["motion_masks"][..., :1]
    np.testing.assert_allclose(result.motion, -delta_px * (1 - background), atol=1e-3)


def test_absolute_ignores_the_reference_and_relative_needs_one(model, source):
    frames = _face(shift=20.0)[None]
    absolute = TransferOptions(relative=False)
    a = model.animate(source, frames, model.prepare_driving(_face()), absolute)[0]
    b = model.animate(source, frames, model.prepare_driving(_face(angle=0.3)), absolute)[0]
    assert np.array_equal(a.frame, b.frame)
    np.testing.assert_allclose(a.extras["transferred_keypoints"], a.driving_keypoints)
    # without a reference frame, relative movement is measured from the source: same as absolute
    relative = model.animate(source, frames, None, TransferOptions(relative=True))[0]
    assert np.abs(relative.frame.astype(int) - a.frame.astype(int)).max() <= 1
    np.testing.assert_allclose(relative.extras["transferred_keypoints"], a.driving_keypoints, atol=1e-3)


# ---------------------------------------------------------------- keypoint transfer maths
def test_movement_scale_is_ratio_of_hull_sizes():
    points = np.random.default_rng(0).uniform(-0.5, 0.5, (10, 2))
    assert motion.movement_scale(points * 2, points) == pytest.approx(2.0)
    assert motion.movement_scale(points, points + 0.3) == pytest.approx(1.0)
    line = np.stack([np.linspace(-1, 1, 10), np.zeros(10)], axis=1)
    assert motion.movement_scale(points, line) == 1.0


def test_relative_jacobian_order():
    rng = np.random.default_rng(1)

    def kp(batch):
        return {
            "value": torch.tensor(rng.normal(size=(batch, 3, 2)), dtype=torch.float64),
            "jacobian": torch.tensor(rng.normal(size=(batch, 3, 2, 2)) + 2 * np.eye(2), dtype=torch.float64),
        }

    src, drv, ref = kp(1), kp(2), kp(1)
    out = fomm.transfer_keypoints(src, drv, ref, relative=True, scale=0.5)
    j_s, j_d, j_r = (k["jacobian"].numpy() for k in (src, drv, ref))
    np.testing.assert_allclose(out["jacobian"].numpy(), j_d @ np.linalg.inv(j_r) @ j_s, rtol=1e-10)
    expected = (drv["value"] - ref["value"]).numpy() * 0.5 + src["value"].numpy()
    np.testing.assert_allclose(out["value"].numpy(), expected, rtol=1e-12)
    kept = fomm.transfer_keypoints(src, drv, ref, relative=True, relative_jacobian=False)
    assert torch.equal(kept["jacobian"], drv["jacobian"])
    absolute = fomm.transfer_keypoints(src, drv, ref, relative=False)
    assert torch.equal(absolute["value"], drv["value"]) and torch.equal(absolute["jacobian"], drv["jacobian"])


# ---------------------------------------------------------------- cards
def test_cards():
    names = {card.name for card in CARDS}
    assert {"fomm.vox-adv", "fomm.vox", "fomm.taichi", "fomm.mgif", "fomm.nemo", "fomm.bair", "fomm.fashion"} <= names
    for card in CARDS:
        assert card.family == "fomm" and card.resolution == 256 and card.license and card.good_at and card.bad_at
        assert len(card.files) == 1 and (card.files[0].on_hub or card.files[0].url)
        assert card.default_mode in card.modes == ("relative", "absolute")
        expected = model_params(single_jacobian_map=card.name == "fomm.mgif")
        assert card.options == expected, card.name
    hub_file = get_card("fomm.vox-adv").files[0]
    assert (hub_file.hf_repo, hub_file.hf_repo_type, hub_file.hf_path) == (
        "abhishek/first-order-motion-model",
        "space",
        "weights/vox-adv-cpk.pth.tar",
    )
