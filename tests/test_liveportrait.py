"""LivePortrait: checkpoint layout and loading, keypoint geometry, every mode and control on a real face.

Behaviour tests use a small configuration of the same networks (64-pixel input) with random
weights, so they run in seconds; parity with the published code is tests/test_parity.py.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from talking_head import camera
from talking_head.errors import BadInputError, CheckpointError
from talking_head.models.base import TransferOptions
from talking_head.registry import get_card

torch.set_num_threads(1)

SMALL_PARAMS = {
    "appearance_feature_extractor_params": {
        "image_channel": 3, "block_expansion": 8, "num_down_blocks": 2, "max_features": 32,
        "reshape_channel": 8, "reshape_depth": 4, "num_resblocks": 1,
    },
    "motion_extractor_params": {"num_kp": 21, "backbone": "convnextv2_tiny", "depths": [1, 1, 1, 1], "dims": [8, 16, 32, 64]},
    "warping_module_params": {
        "num_kp": 21, "block_expansion": 8, "max_features": 32, "num_down_blocks": 2, "reshape_channel": 8,
        "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 2, "reshape_depth": 4, "compress": 2},
    },
    "spade_generator_params": {
        "upscale": 2, "block_expansion": 8, "max_features": 32, "num_down_blocks": 2, "out_channels": 8, "spade_hidden": 16,
    },
    "stitching_retargeting_module_params": {
        "stitching": {"input_size": 126, "hidden_sizes": [128, 128, 64], "output_size": 65},
        "lip": {"input_size": 65, "hidden_sizes": [128, 128, 64], "output_size": 63},
        "eye": {"input_size": 66, "hidden_sizes": [256, 256, 128, 128, 64], "output_size": 63},
    },
}
SIZE = 64


class NotATensor:
    """Anything a weights-only unpickler refuses."""

    def __init__(self):
        self.value = 1


@pytest.fixture(scope="module")
def card():
    return dataclasses.replace(get_card("liveportrait.human"), resolution=SIZE, options={"model_params": SMALL_PARAMS})


@pytest.fixture(scope="module")
def animator(card):
    from talking_head.models.liveportrait import create

    torch.manual_seed(0)
    model = create(card, None, torch.device("cpu"))
    # random weights give near-zero motion; a larger stitching/retargeting output makes effects visible
    with torch.no_grad():
        for mlp in (model.nets.stitching, model.nets.retarget_eye, model.nets.retarget_lip):
            mlp.mlp[-1].weight.mul_(5.0)
    return model


@pytest.fixture(scope="module")
def face():
    from skimage.data import astronaut
    from skimage.transform import resize

    img = astronaut()[20:220, 150:350]  # the astronaut's face
    return (resize(img, (SIZE, SIZE), anti_aliasing=True) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def driving(face):
    """Three frames: the face itself, shifted right, rotated a little."""
    from skimage.transform import AffineTransform, warp

    frames = [face]
    for tf in (AffineTransform(translation=(-4, 0)), AffineTransform(rotation=0.12, translation=(6, -3))):
        frames.append((warp(face, tf, mode="edge") * 255).astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def states(animator, face):
    return animator.prepare_source(face, ratios={"eye_left": 0.3, "eye_right": 0.32, "lip": 0.1}), animator.prepare_driving(face)


def options(relative=True, **extra):
    return TransferOptions(relative=relative, extra=extra)


# ---------------------------------------------------------------- card and checkpoint layout
def test_card_lists_published_files_and_controls():
    card = get_card("liveportrait.human")
    assert card.license == "MIT" and card.resolution == 256 and card.options["output_resolution"] == 512
    assert [wf.hf_path for wf in card.files] == [
        "liveportrait/base_models/appearance_feature_extractor.pth", "liveportrait/base_models/motion_extractor.pth",
        "liveportrait/base_models/warping_module.pth", "liveportrait/base_models/spade_generator.pth",
        "liveportrait/retargeting_models/stitching_retargeting_module.pth",
    ]
    assert all(wf.hf_repo == "KwaiVGI/LivePortrait" for wf in card.files)
    names = {c.name for c in card.controls}
    assert {"stitching", "driving_multiplier", "animation_region", "eye_retargeting", "lip_retargeting", "eye_open",
            "lip_open", "normalize_lip", "pitch", "yaw", "roll"} <= names
    assert set(card.modes) == {"relative", "absolute"}


def test_full_config_has_the_published_key_counts():
    from talking_head.models.liveportrait import LivePortraitNetworks

    with np.load("tests/fixtures/parity/liveportrait-human.npz") as z:
        expected = json.loads(str(z["meta"]))["checkpoint_layout"]["keys_per_module"]
    nets = LivePortraitNetworks(get_card("liveportrait.human").options["model_params"])
    got = {
        "appearance_feature_extractor": nets.appearance_feature_extractor, "motion_extractor": nets.motion_extractor,
        "warping_module": nets.warping_module, "spade_generator": nets.spade_generator,
        "stitching_retargeting_module/retarget_shoulder": nets.stitching,
        "stitching_retargeting_module/retarget_mouth": nets.retarget_lip,
        "stitching_retargeting_module/retarget_eye": nets.retarget_eye,
    }
    assert {k: len(m.state_dict()) for k, m in got.items()} == expected
    assert all(k.startswith("detector.") for k in nets.motion_extractor.state_dict())
    assert tuple(nets.motion_extractor.state_dict()["detector.stages.0.0.grn.gamma"].shape) == (1, 1, 1, 384)


def _write(directory, files: dict):
    for name, obj in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)


def test_checkpoint_round_trip_through_load_model(animator, card, face, tmp_path, monkeypatch):
    from talking_head import registry
    from talking_head.models.liveportrait import published_checkpoints

    files = published_checkpoints(animator)
    assert list(files) == [wf.filename for wf in card.files]
    stitching = files[card.files[-1].filename]
    assert set(stitching) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    assert all(k.startswith("module.mlp.") for k in stitching["retarget_eye"])
    _write(tmp_path, files)
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TALKING_HEAD_TRUST_FILES", "1")  # our files are not the pinned ones (size, sha256): keep them
    monkeypatch.setattr(registry, "get_card", lambda name, kind=None: card)
    loaded = registry.load_model("liveportrait.human", device="cpu", allow_download=False)
    for (k, a), (k2, b) in zip(animator.nets.state_dict().items(), loaded.nets.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    a, b = animator.prepare_source(face), loaded.prepare_source(face)
    assert torch.equal(a.x_s, b.x_s) and torch.equal(a.f_s, b.f_s)


def test_wrong_keys_and_entries_name_the_problem(animator, card, tmp_path):
    from talking_head.models.liveportrait import create, published_checkpoints

    files = published_checkpoints(animator)
    names = [wf.filename for wf in card.files]
    bad = dict(files)
    bad[names[0]] = {("renamed." + k if k == "first.conv.weight" else k): v for k, v in files[names[0]].items()}
    _write(tmp_path, bad)
    with pytest.raises(CheckpointError, match="first.conv.weight"):
        create(card, [tmp_path / n for n in names], "cpu")

    bad = dict(files)
    bad[names[-1]] = {k: v for k, v in files[names[-1]].items() if k != "retarget_eye"}
    _write(tmp_path, bad)
    with pytest.raises(CheckpointError, match="retarget_eye"):
        create(card, [tmp_path / n for n in names], "cpu")

    bad = dict(files)
    bad[names[1]], bad[names[2]] = files[names[2]], files[names[1]]  # two files swapped
    _write(tmp_path, bad)
    with pytest.raises(CheckpointError, match="motion_extractor"):
        create(card, [tmp_path / n for n in names], "cpu")


def test_truncated_and_unsafe_files_are_refused(animator, card, tmp_path):
    from talking_head.models.liveportrait import create, published_checkpoints

    files = published_checkpoints(animator)
    names = [wf.filename for wf in card.files]
    _write(tmp_path, files)
    paths = [tmp_path / n for n in names]
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|could not be read"):
        create(card, paths, "cpu")
    _write(tmp_path, files)
    torch.save({"retarget_shoulder": NotATensor()}, paths[4])
    with pytest.raises(CheckpointError, match="arbitrary code"):
        create(card, paths, "cpu")


# ---------------------------------------------------------------- keypoint geometry
def test_angle_bins_and_rotation_conventions():
    logits = torch.zeros(2, 66)
    logits[1, 40] = 60.0  # practically one-hot at bin 40
    deg = camera.bins_to_degrees(logits)
    assert deg[0].item() == pytest.approx(0.0, abs=1e-4)  # uniform: mean bin 32.5 -> 0 degrees
    assert deg[1].item() == pytest.approx(40 * 3 - 97.5, abs=1e-3)

    angles = torch.tensor([[20.0], [-35.0], [10.0]])
    R = camera.rotation_matrix(angles[0:1], angles[1:2], angles[2:3])[0]
    assert torch.allclose(R @ R.T, torch.eye(3), atol=1e-6) and torch.det(R).item() == pytest.approx(1.0, abs=1e-6)
    pts = torch.randn(5, 3)
    zero = torch.zeros(1, 1)
    ten = torch.full((1, 1), 10.0)
    # row vectors times R: pitch keeps x, yaw keeps y, roll keeps z
    assert torch.allclose((pts @ camera.rotation_matrix(ten, zero, zero)[0])[:, 0], pts[:, 0])
    assert torch.allclose((pts @ camera.rotation_matrix(zero, ten, zero)[0])[:, 1], pts[:, 1])
    assert torch.allclose((pts @ camera.rotation_matrix(zero, zero, ten)[0])[:, 2], pts[:, 2])
    # (Rz Ry Rx)^T, not another order
    rz, ry, rx = (camera.rotation_matrix(*[a if i == j else zero for j in range(3)]) for i, a in
                  ((2, angles[2:3]), (1, angles[1:2]), (0, angles[0:1])))
    assert torch.allclose(R, (rx @ ry @ rz)[0], atol=1e-6)

    kp, exp = torch.randn(1, 21, 3), torch.randn(1, 21, 3)
    x = camera.transform_keypoints(kp, R[None], exp, torch.tensor([[2.0]]), torch.tensor([[0.1, -0.2, 5.0]]))
    manual = 2.0 * (kp @ R + exp)
    assert torch.allclose(x[..., 2], manual[..., 2]) and torch.allclose(x[..., :2], manual[..., :2] + torch.tensor([0.1, -0.2]))
    assert np.allclose(camera.to_pixels(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), 512), [[-0.5, -0.5], [511.5, 511.5]])


def test_motion_multiplier_is_the_hull_volume_ratio():
    cube = torch.tensor([[i, j, k] for i in (0.0, 1.0) for j in (0.0, 1.0) for k in (0.0, 1.0)])
    assert camera.motion_multiplier(cube, cube * 2) == pytest.approx(np.sqrt(1 / 8))
    assert camera.motion_multiplier(cube, torch.zeros(8, 3)) == 1.0  # degenerate: no rescale


# ---------------------------------------------------------------- modes and controls on a real face
def _check_result(result, out_size, in_size):
    assert result.frame.shape == (out_size, out_size, 3) and result.frame.dtype == np.uint8
    assert result.frame.std() > 0
    for kps, size in ((result.source_keypoints, out_size), (result.driving_keypoints, in_size), (result.extras["animated_keypoints"], out_size)):
        assert kps.shape == (21, 2) and np.isfinite(kps).all() and np.abs(kps).max() < 10 * size
    assert result.mask.ndim == 2 and 0.0 <= result.mask.min() and result.mask.max() <= 1.0
    assert result.motion.shape == result.mask.shape + (2,) and np.isfinite(result.motion).all()
    assert result.extras["depth_motion"].shape == result.mask.shape


@pytest.mark.parametrize("extra", [
    {}, {"stitching": False}, {"animation_region": "exp"}, {"animation_region": "pose"}, {"animation_region": "lip"},
    {"animation_region": "eyes"}, {"driving_option": "pose-friendly"}, {"driving_multiplier": 1.5},
    {"normalize_lip": True}, {"eye_retargeting": True, "lip_retargeting": True}, {"pitch": 10.0, "yaw": -15.0, "roll": 5.0},
])
@pytest.mark.parametrize("relative", [True, False])
def test_every_mode_produces_sane_frames(animator, states, driving, relative, extra):
    src, ref = states
    results = animator.animate(src, driving, ref, options(relative, **extra))
    assert len(results) == len(driving)
    for r in results:
        _check_result(r, 2 * SIZE, SIZE)


def test_reference_frame_reproduces_the_source_pose(animator, states, driving):
    src, ref = states
    out = animator.drive(src, driving[:1], ref, options(stitching=False), render=False)
    assert torch.allclose(out["x_d"], src.x_s, atol=1e-5)  # relative motion of the reference itself is none
    moved = animator.drive(src, driving, ref, options(stitching=False), render=False)
    assert (moved["x_d"][1:] - src.x_s).abs().max() > 1e-4  # other frames do move
    frozen = animator.drive(src, driving, ref, options(stitching=False, driving_multiplier=0.0), render=False)
    assert torch.allclose(frozen["x_d"], src.x_s.expand(3, -1, -1), atol=1e-6)


def test_absolute_takes_the_driving_pose(animator, states, driving):
    src, ref = states
    out = animator.drive(src, driving, ref, options(relative=False, stitching=False), render=False)
    assert torch.allclose(out["R_new"], out["driving_motion"].R)
    assert torch.allclose(out["t_new"][:, :2], out["driving_motion"].t[:, :2]) and (out["t_new"][:, 2] == 0).all()
    assert torch.allclose(out["scale_new"], src.motion.scale.expand(3, -1))
    rel = animator.drive(src, driving, ref, options(stitching=False), render=False)
    assert (out["x_d"] - rel["x_d"]).abs().max() > 1e-4


@pytest.mark.parametrize("relative", [True, False])
def test_pose_offsets_add_to_the_head_angles(animator, states, face, relative):
    src, ref = states
    out = animator.drive(src, face[None], ref, options(relative, stitching=False, pitch=-10.0, yaw=20.0), render=False)
    m = src.motion  # the driving frame is the source picture, so the driven pose is the source pose
    expected = camera.transform_keypoints(m.kp, camera.rotation_matrix(m.pitch - 10, m.yaw + 20, m.roll), m.exp, m.scale, m.t)
    assert torch.allclose(out["x_d"], expected, atol=1e-5)
    assert (out["x_d"] - src.x_s).abs().max() > 1e-3


def test_regions_select_what_moves(animator, states, driving):
    src, ref = states
    pose = animator.drive(src, driving, ref, options(animation_region="pose"), render=False)
    assert torch.allclose(pose["delta_new"], src.motion.exp.expand(3, -1, -1))
    exp = animator.drive(src, driving, ref, options(animation_region="exp"), render=False)
    assert torch.allclose(exp["R_new"], src.motion.R.expand(3, -1, -1)) and torch.allclose(exp["scale_new"], src.motion.scale.expand(3, -1))
    lip = animator.drive(src, driving, ref, options(animation_region="lip"), render=False)
    still = [i for i in range(21) if i not in (6, 12, 14, 17, 19, 20)]
    assert torch.equal(lip["delta_new"][:, still], src.motion.exp.expand(3, -1, -1)[:, still])


def test_stitching_and_multiplier_order(animator, states, driving):
    src, ref = states
    out = animator.drive(src, driving, ref, options(driving_multiplier=1.5), render=False)
    delta = out["stitch_delta"]
    stitched = out["x_d_pre_stitch"] + delta[:, :63].reshape(3, 21, 3)
    stitched[..., :2] += delta[:, None, 63:65]
    assert torch.allclose(out["x_d_stitched"], stitched, atol=1e-6)
    assert torch.allclose(out["x_d"], src.x_s + (stitched - src.x_s) * 1.5, atol=1e-6)


def test_retargeting_uses_the_ratio_hooks(animator, states, driving):
    src, ref = states
    extra = {"eye_retargeting": True, "stitching": False, "driving_eye_ratio": np.array([[0.1, 0.12], [0.3, 0.3], [0.5, 0.45]])}
    out = animator.drive(src, driving, ref, options(**extra), render=False)
    assert torch.allclose(out["eye_ratio_input"], torch.tensor([[0.3, 0.32, 0.1], [0.3, 0.32, 0.3], [0.3, 0.32, 0.5]]))
    assert torch.allclose(out["x_d_pre_stitch"], src.x_s + out["eye_delta"])  # relative: driving motion replaced
    assert (out["eye_delta"][0] - out["eye_delta"][2]).abs().max() > 1e-5
    # without driving ratios the eye_open slider is the target; an explicit source ratio overrides the state's
    out = animator.drive(src, driving, ref, options(lip_retargeting=True, lip_open=0.4, source_lip_ratio=0.2), render=False)
    assert torch.allclose(out["lip_ratio_input"], torch.tensor([[0.2, 0.4]] * 3))
    with pytest.raises(BadInputError):
        animator.drive(src, driving, ref, options(eye_retargeting=True, driving_eye_ratio=[0.1, 0.2]), render=False)
    with pytest.raises(BadInputError):
        animator.drive(src, driving, ref, options(animation_region="hair"), render=False)


def test_normalize_lip_needs_an_open_source_mouth(animator, face, driving, states):
    _, ref = states
    closed = animator.prepare_source(face, ratios={"lip": 0.01})
    opened = animator.prepare_source(face, ratios={"lip": 0.2})
    a = animator.drive(closed, driving, ref, options(normalize_lip=True), render=False)
    b = animator.drive(opened, driving, ref, options(normalize_lip=True), render=False)
    assert "lip_delta_before_animation" not in a
    assert torch.allclose(b["x_d"], b["x_d_stitched"] + b["lip_delta_before_animation"], atol=1e-6)


def test_batched_frames_match_single_frames(animator, states, driving):
    src, ref = states
    batch = animator.animate(src, driving, ref, options())
    for i in range(len(driving)):
        single = animator.animate(src, driving[i : i + 1], ref, options())[0]
        assert np.abs(batch[i].frame.astype(int) - single.frame.astype(int)).max() <= 1
        assert np.allclose(batch[i].extras["animated_keypoints"], single.extras["animated_keypoints"], atol=1e-3)


def test_edit_pose_reposes_a_still(animator, states):
    src, _ = states
    same = animator.edit_pose(src, stitching=False)
    assert np.allclose(same.extras["animated_keypoints"], same.source_keypoints, atol=1e-3)
    assert same.frame.shape == (2 * SIZE, 2 * SIZE, 3) and same.mask.max() <= 1.0 and np.isfinite(same.motion).all()
    turned = animator.edit_pose(src, yaw=20.0, stitching=False)
    expected = camera.transform_keypoints(src.motion.kp, camera.rotation_matrix(src.motion.pitch, src.motion.yaw + 20, src.motion.roll),
                                          src.motion.exp, src.motion.scale, src.motion.t)
    assert np.allclose(turned.extras["animated_keypoints"], camera.to_pixels(expected[0], 2 * SIZE), atol=1e-3)
    assert np.abs(turned.frame.astype(int) - same.frame.astype(int)).max() > 0
    eyes = animator.edit_pose(src, eye_open=0.0, lip_open=0.5)
    assert eyes.frame.shape == (2 * SIZE, 2 * SIZE, 3) and eyes.driving_keypoints is None


def test_without_reference_relative_starts_from_the_source(animator, states, face):
    src, _ = states
    out = animator.drive(src, face[None], None, options(stitching=False), render=False)
    assert torch.allclose(out["x_d"], src.x_s, atol=1e-5)


def test_half_precision_path_runs_and_stays_close(card, animator, face, driving):
    from talking_head.models.liveportrait import LivePortraitAnimator

    half = LivePortraitAnimator(card, torch.device("cpu"), animator.nets, half="bf16")
    src, ref = half.prepare_source(face), half.prepare_driving(face)
    fast = half.animate(src, driving, ref, options())
    full = animator.animate(animator.prepare_source(face), driving, animator.prepare_driving(face), options())
    for a, b in zip(fast, full):
        assert a.frame.dtype == np.uint8 and np.abs(a.frame.astype(float) - b.frame.astype(float)).mean() < 8.0
