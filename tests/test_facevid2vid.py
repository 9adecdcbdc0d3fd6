"""face-vid2vid: what the parity fixture cannot see (its fill weights make head pose nearly input-free).

The model here has fresh weights whose HEEstimator BatchNorm statistics are measured on real faces
(one pass in training mode over the test frames), so head pose, translation and expression really
change from frame to frame; every expected value is recomputed here from the published conventions
(``tests/fixtures/parity/facevid2vid.md``), not read back from the port.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull
from torch import nn

from talking_head import video
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models.base import TransferOptions
from talking_head.registry import get_card
from tests.conftest import media

NAME = "facevid2vid.vox"


def published_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """demo.get_rotation_matrix in float64: Rx(pitch) Ry(yaw) Rz(roll), degrees / 180 * 3.14."""
    p, y, r = (np.float64(a) / 180 * 3.14 for a in (pitch, yaw, roll))
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rx @ ry @ rz


def published_keypoints(kp_c, rotation, t, exp) -> np.ndarray:
    """keypoint_transformation: R kp_c (column vectors) + t + exp."""
    return np.asarray(kp_c, np.float64) @ np.asarray(rotation, np.float64).T + np.asarray(t, np.float64) + np.asarray(exp, np.float64)


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


@pytest.fixture(scope="module")
def faces() -> dict:
    frames = []
    for i, frame in enumerate(video.VideoReader(media("driving/talk_vox.mp4"))):
        if i % 20 == 0:
            frames.append(cv2.resize(frame, (256, 256), interpolation=cv2.INTER_AREA))
        if len(frames) == 3:
            break
    source = cv2.resize(video.load_image(media("sources/photo_portrait.png")), (256, 256), interpolation=cv2.INTER_AREA)
    return {"source": source, "driving": np.stack(frames)}


@pytest.fixture(scope="module")
def model(faces):
    from talking_head.models.facevid2vid import create

    torch.manual_seed(0)
    animator = create(get_card(NAME), None, torch.device("cpu"))
    he = animator.nets.he_estimator
    for module in he.modules():  # running statistics measured on the real faces
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    he.train()
    with torch.no_grad():
        he(animator._images(np.concatenate([faces["driving"], faces["source"][None]])))
    he.eval()
    return animator


@pytest.fixture(scope="module")
def source(model, faces):
    return model.prepare_source(faces["source"])


@pytest.fixture(scope="module")
def reference(model, faces):
    return model.prepare_driving(faces["driving"][0])


def test_head_pose_is_read_from_each_frame(model, source, reference, faces):
    frames = faces["driving"]
    out = model.transfer(source, frames, reference, TransferOptions(relative=False), render=False)
    pose = out["pose"]
    angles = _np(torch.stack([pose.yaw, pose.pitch, pose.roll], dim=1))  # (T, 3) degrees
    assert np.ptp(angles, axis=0).max() > 0.3  # the frames' poses really differ
    assert np.abs(_np(pose.exp[1] - pose.exp[0])).max() > 1e-2
    kp_c = _np(source.kp_canonical[0])
    for i, frame in enumerate(frames):
        single = model.transfer(source, frame[None], reference, TransferOptions(relative=False), render=False)
        assert np.allclose(_np(single["pose"].exp[0]), _np(pose.exp[i]), atol=1e-5)
        assert np.allclose(_np(torch.stack([single["pose"].yaw, single["pose"].pitch, single["pose"].roll], 1))[0],
                           angles[i], atol=1e-3)
        # kp_driving of frame i: the SOURCE's canonical keypoints with frame i's own R, t and exp
        expected = published_keypoints(kp_c, published_rotation(*angles[i]), _np(pose.t[i]), _np(pose.exp[i]))
        assert np.abs(_np(out["kp_driving"][i]) - expected).max() < 1e-5
    assert np.array_equal(_np(out["kp_norm"]), _np(out["kp_driving"]))  # absolute: used as they are


def test_bins_to_degrees_uses_the_99_degree_offset(model, faces):
    x = model._images(faces["driving"][:1])
    with torch.inference_mode():
        raw = model.nets.he_estimator(x)
        pose = model.head_pose(x)
    p = torch.softmax(raw["yaw"].double(), dim=1)[0].numpy()
    assert float(pose.yaw[0]) == pytest.approx(float((p * np.arange(66)).sum() * 3 - 99), abs=1e-4)
    # the published name swap: 'yaw' comes from fc_roll, 'roll' from fc_yaw
    with torch.inference_mode():
        feature = model.nets.he_estimator.pooled(x)
        assert torch.allclose(pose.yaw_logits, model.nets.he_estimator.fc_roll(feature), atol=1e-6)
        assert torch.allclose(pose.roll_logits, model.nets.he_estimator.fc_yaw(feature), atol=1e-6)


def test_adapt_scale_is_the_ratio_of_3d_hull_volumes(model, source, reference, faces):
    frames = faces["driving"]
    out = model.transfer(source, frames, reference, TransferOptions(relative=True, adapt_scale=True), render=False)
    kp_s, kp_ref, kp_d = _np(source.kp_source[0]), _np(out["kp_reference"][0]), _np(out["kp_driving"])
    expected = np.sqrt(ConvexHull(kp_s).volume) / np.sqrt(ConvexHull(kp_ref).volume)
    assert out["adapt_scale"] == pytest.approx(expected, rel=1e-6)
    assert np.abs(_np(out["kp_norm"]) - ((kp_d - kp_ref) * expected + kp_s)).max() < 1e-5
    # a source twice as large: volume x 8, so the scale grows by 2 ** 1.5 (a 2-D area would give 2)
    bigger = replace(source, kp_source=source.kp_source * 2, scales={})
    grown = model.transfer(bigger, frames, reference, TransferOptions(relative=True, adapt_scale=True), render=False)
    assert grown["adapt_scale"] / out["adapt_scale"] == pytest.approx(2**1.5, rel=1e-6)
    plain = model.transfer(source, frames, reference, TransferOptions(relative=True, adapt_scale=False), render=False)
    assert plain["adapt_scale"] == 1.0
    assert np.abs(_np(plain["kp_norm"]) - (kp_d - kp_ref + kp_s)).max() < 1e-5


def test_free_view_fixed_angles_replace_only_the_driving_pose(model, source, reference, faces):
    frames = faces["driving"]
    relative = TransferOptions(relative=True)
    plain = model.transfer(source, frames, reference, relative, render=False)
    fixed = model.transfer(source, frames, reference, replace(relative, extra={"pose_mode": "fixed", "yaw": 20,
                                                                               "pitch": -10, "roll": 5}), render=False)
    r_fixed = published_rotation(20, -10, 5)
    kp_c, pose = _np(source.kp_canonical[0]), fixed["pose"]
    for i in range(len(frames)):
        assert np.abs(_np(fixed["rotation"][i]) - r_fixed).max() < 1e-6
        expected = published_keypoints(kp_c, r_fixed, _np(pose.t[i]), _np(pose.exp[i]))  # the frame's own t, exp
        assert np.abs(_np(fixed["kp_driving"][i]) - expected).max() < 1e-5
    # the source and the reference keep their estimated pose, and so does the adapt scale
    assert np.array_equal(_np(fixed["kp_reference"]), _np(plain["kp_reference"]))
    assert fixed["adapt_scale"] == plain["adapt_scale"]
    assert np.abs(_np(fixed["kp_driving"]) - _np(plain["kp_driving"])).max() > 1e-3


def test_pose_offsets_add_to_the_driving_pose(model, source, reference, faces):
    frames = faces["driving"]
    relative = TransferOptions(relative=True)
    plain = model.transfer(source, frames, reference, relative, render=False)
    zero = model.transfer(source, frames, reference, replace(relative, extra={"pose_mode": "offset", "yaw": 0}),
                          render=False)
    assert np.array_equal(_np(zero["kp_norm"]), _np(plain["kp_norm"]))
    moved = model.transfer(source, frames, reference, replace(relative, extra={"yaw": 20, "roll": -5}), render=False)
    pose = plain["pose"]
    for i in range(len(frames)):
        angles = (float(pose.yaw[i]) + 20, float(pose.pitch[i]), float(pose.roll[i]) - 5)
        assert np.abs(_np(moved["rotation"][i]) - published_rotation(*angles)).max() < 1e-5
    assert np.array_equal(_np(moved["kp_reference"]), _np(plain["kp_reference"]))
    with pytest.raises(BadInputError, match="pose mode"):
        model.transfer(source, frames, reference, replace(relative, extra={"pose_mode": "sideways"}), render=False)


def test_still_photo_is_reposed_with_the_sliders_alone(model, source):
    straight = model.edit_pose(source)
    assert np.allclose(straight.extras["animated_keypoints"], straight.source_keypoints)  # no change: kp_source
    turned = model.edit_pose(source, yaw=25, pitch=-10)
    assert straight.frame.shape == turned.frame.shape == (256, 256, 3)
    assert np.abs(straight.frame.astype(np.int16) - turned.frame.astype(np.int16)).max() > 0
    own = source.pose
    angles = (float(own.yaw[0]) + 25, float(own.pitch[0]) - 10, float(own.roll[0]))
    expected = published_keypoints(_np(source.kp_canonical[0]), published_rotation(*angles), _np(own.t[0]), _np(own.exp[0]))
    expected_px = (expected[:, :2] + 1) * 128 - 0.5  # grid_sample align_corners=False pixels of a 256 output
    assert np.abs(turned.extras["animated_keypoints"] - expected_px).max() < 1e-2
    assert np.abs(turned.extras["animated_keypoints"] - straight.extras["animated_keypoints"]).max() > 0.05
    fixed = model.edit_pose(source, yaw=float(own.yaw[0]), pitch=float(own.pitch[0]), roll=float(own.roll[0]),
                            pose_mode="fixed")
    assert np.abs(fixed.extras["animated_keypoints"] - straight.extras["animated_keypoints"]).max() < 1e-3
    assert turned.mask is not None and turned.motion is not None and turned.motion.shape[-1] == 2


# ---------------------------------------------------------------- card and checkpoints
def test_card_names_the_exact_file_and_says_non_commercial():
    card = get_card(NAME)
    (wf,) = card.files
    assert (wf.filename, wf.hf_repo, wf.hf_path, wf.hf_repo_type) == (
        "facevid2vid_00189-model.pth.tar", "vinthony/SadTalker", "facevid2vid_00189-model.pth.tar", "model")
    assert wf.sha256 == "fbad01d46f0510276dc4521322dde6824a873a4222cd0740c85762e7067ea71d"
    assert 2000 < wf.size_mb < 2200
    assert "non-commercial" in card.license and "CC BY-NC 4.0" in card.license
    assert "non-commercial" in card.notes and "2.1 GB" in card.notes
    # the CLI's --set strings: yaw=20 pose_mode=fixed
    assert card.control_values({"yaw": "20", "pose_mode": "fixed"}) == {"pose_mode": "fixed", "yaw": 20.0,
                                                                        "pitch": 0.0, "roll": 0.0}
    with pytest.raises(BadInputError):
        card.control_values({"pose_mode": "sideways"})


def _create(path):
    from talking_head.models.facevid2vid import create

    return create(get_card(NAME), [path], torch.device("cpu"))


def test_state_dict_round_trip_ignores_training_entries(model, tmp_path):
    from talking_head.models.facevid2vid import published_checkpoints

    ((filename, checkpoint),) = published_checkpoints(model).items()
    assert filename == "facevid2vid_00189-model.pth.tar"
    assert set(checkpoint) == {"generator", "kp_detector", "he_estimator", "epoch"}
    kernel = torch.rand(3, 1, 13, 13)  # not the Gaussian a fresh KPDetector builds: it must come from the file
    checkpoint = dict(checkpoint, kp_detector=dict(checkpoint["kp_detector"], **{"down.weight": kernel}),
                      discriminator={"down_blocks.0.conv.weight": torch.zeros(2, 3, 4, 4)},
                      optimizer_generator={"state": {}, "param_groups": [{"lr": 2e-4, "params": [0]}]})
    path = tmp_path / filename
    torch.save(checkpoint, path)
    loaded = _create(path)
    for name in ("generator", "kp_detector", "he_estimator"):
        own, back = getattr(model.nets, name).state_dict(), getattr(loaded.nets, name).state_dict()
        assert list(own) == list(back)
        assert all(torch.equal(own[k], back[k]) for k in own if k != "down.weight"), name
    assert torch.equal(loaded.nets.kp_detector.down.weight, kernel)


def test_wrong_checkpoints_are_refused_clearly(tmp_path):
    from talking_head.models.fomm import published_checkpoints as fomm_checkpoints
    from talking_head.models.liveportrait_modules import AppearanceFeatureExtractor
    from talking_head.registry import load_model

    lp = tmp_path / "appearance_feature_extractor.pth"  # a LivePortrait file: one bare state dict
    torch.save(AppearanceFeatureExtractor().state_dict(), lp)
    with pytest.raises(CheckpointError, match="flat state dict") as err:
        _create(lp)
    assert "facevid2vid_00189-model.pth.tar" in err.value.hint

    fomm = tmp_path / "vox-adv-cpk.pth.tar"  # FOMM: generator + kp_detector, no head-pose estimator
    ((_, checkpoint),) = fomm_checkpoints(load_model("fomm.vox-adv", pretrained=False, device="cpu")).items()
    torch.save(checkpoint, fomm)
    with pytest.raises(CheckpointError, match="he_estimator"):
        _create(fomm)

    partial = tmp_path / "partial.pth.tar"  # the right layout with the wrong tensors
    torch.save({"generator": {"first.conv.weight": torch.zeros(64, 3, 3, 3)}, "kp_detector": {}, "he_estimator": {}}, partial)
    with pytest.raises(CheckpointError, match="missing keys"):
        _create(partial)
