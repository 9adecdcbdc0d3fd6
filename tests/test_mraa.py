"""MRAA: checkpoint loading, modes and previews on a real photo.

Most tests use each card with its networks made narrower (fewer channels) so they run fast on a CPU;
the resolutions, paddings, region counts and every code path stay those of the published configs.
The full-size vox256 networks are checked against the published key/shape list of the fixture.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_head import motion, registry
from talking_head.errors import BadInputError, CheckpointError, WeightsMissingError
from talking_head.models import mraa
from talking_head.models.base import TransferOptions, grid_to_pixels, to_tensor

FIXTURE = Path(__file__).parent / "fixtures" / "parity" / "mraa-vox256.npz"


def small_card(name: str, sha256: str | None = None):
    """The card ``name`` with narrow networks (same structure) and, by default, no sha256 check."""
    card = registry.get_card(name)
    params = copy.deepcopy(card.options["model_params"])
    params["region_predictor_params"].update(block_expansion=4, max_features=32)
    params["generator_params"].update(block_expansion=8, max_features=16)
    params["generator_params"]["pixelwise_flow_predictor_params"].update(block_expansion=4, max_features=32)
    params["bg_predictor_params"].update(block_expansion=4, max_features=16)
    params["avd_network_params"] = {"id_bottle_size": 8, "pose_bottle_size": 8}
    files = (dataclasses.replace(card.files[0], sha256=sha256),)
    return dataclasses.replace(card, options={**card.options, "model_params": params}, files=files)


def random_animator(card, seed: int = 0) -> mraa.MRAAAnimator:
    """An animator with deterministic random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = mraa.create(card, None, torch.device("cpu"))
    with torch.no_grad():
        for net in (model.generator, model.region_predictor, model.avd_network):
            for name, buf in net.named_buffers():
                if name.endswith("running_mean"):
                    buf.uniform_(-0.1, 0.1)
                elif name.endswith("running_var"):
                    buf.uniform_(0.5, 1.5)
    return model


def face(size: int) -> np.ndarray:
    from skimage import data, transform

    img = data.astronaut()[:300, 100:400]  # the face and shoulders
    return (transform.resize(img, (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)


def moved(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return np.roll(img, (dy, dx), axis=(0, 1))


@pytest.fixture(scope="module")
def vox():
    torch.set_num_threads(1)
    model = random_animator(small_card("mraa.vox256"))
    src = face(256)
    return model, src, model.prepare_source(src)


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path))
    return tmp_path


def use_card(monkeypatch, card):
    monkeypatch.setattr(registry, "get_card", lambda name, kind=None: card)


# ---------------------------------------------------------------- cards and layout
def test_cards():
    cards = registry.list_models("mraa")
    assert {c.name for c in cards} == {"mraa.vox256", "mraa.taichi256", "mraa.ted384", "mraa.ted-youtube384",
                                       "mraa.mgif256"}
    for card in cards:
        assert card.modes == ("standard", "relative", "avd") and card.default_mode == "relative"
        (wf,) = card.files
        assert wf.hf_repo is None and wf.url.startswith("https://drive.google.com/") and len(wf.sha256) == 64
        assert "Snap" in card.license and card.good_at and card.bad_at and wf.size_mb
    assert registry.get_card("mraa.ted384").resolution == 384
    ted_youtube = registry.get_card("mraa.ted-youtube384")
    assert ted_youtube.resolution == 384 and ted_youtube.options["model_params"]["num_regions"] == 20
    assert ted_youtube.files[0].size_bytes == 292_943_746
    assert TransferOptions(relative=False).resolved_mode(cards[0]) == "standard"
    assert TransferOptions().resolved_mode(cards[0]) == "relative"


def test_full_size_layout_matches_published_checkpoint():
    meta = json.loads(str(np.load(FIXTURE)["meta"]))
    layout = meta["checkpoint_layout"]["modules"]
    params = registry.get_card("mraa.vox256").options["model_params"]
    nets = {**mraa.build_networks(params), "bg_predictor": mraa.build_bg_predictor(params)}
    for name, net in nets.items():
        ours = {k: list(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        published = {k: v for k, v in layout[name]["keys"].items() if not k.endswith("num_batches_tracked")}
        assert ours == published, name
    mgif = registry.get_card("mraa.mgif256").options["model_params"]
    assert mraa.build_bg_predictor(mgif).state_dict() == {}  # bg_type 'zero': no weights


def test_missing_weights_say_where_to_get_them(weights_dir):
    with pytest.raises(WeightsMissingError) as err:
        registry.load_model("mraa.vox256", device="cpu")
    assert "vox256.pth" in str(err.value) and "drive.google.com" in err.value.hint


# ---------------------------------------------------------------- checkpoints
def save_published(model, folder: Path) -> Path:
    ((filename, ckpt),) = mraa.published_checkpoints(model).items()
    torch.save(ckpt, folder / filename)
    return folder / filename


def test_checkpoint_round_trip(vox, weights_dir, monkeypatch):
    model, src, state = vox
    path = save_published(model, weights_dir)
    ckpt = torch.load(path, weights_only=True)
    assert {"generator", "region_predictor", "avd_network", "bg_predictor"} <= set(ckpt)

    use_card(monkeypatch, model.card)
    loaded = registry.load_model("mraa.vox256", device="cpu")
    driving = np.stack([moved(src, 6, 0), moved(src, 0, -5)])
    ref = model.prepare_driving(src)
    for mode in ("standard", "relative", "avd"):
        opts = TransferOptions(mode=mode)
        a = model.animate(state, driving, ref, opts)
        b = loaded.animate(loaded.prepare_source(src), driving, loaded.prepare_driving(src), opts)
        for x, y in zip(a, b):
            assert np.array_equal(x.frame, y.frame) and np.array_equal(x.motion, y.motion)


def test_wrong_file_for_card_sha256(vox, weights_dir, monkeypatch):
    model, _, _ = vox
    save_published(model, weights_dir)
    use_card(monkeypatch, small_card("mraa.vox256", sha256="0" * 64))
    with pytest.raises(CheckpointError, match="sha256"):
        registry.load_model("mraa.vox256", device="cpu")


def test_wrong_keys_are_named(vox, weights_dir, monkeypatch):
    model, _, _ = vox
    ((filename, ckpt),) = mraa.published_checkpoints(model).items()
    gen = ckpt["generator"]
    gen["final.renamed"] = gen.pop("final.weight")
    torch.save(ckpt, weights_dir / filename)
    use_card(monkeypatch, model.card)
    with pytest.raises(CheckpointError) as err:
        registry.load_model("mraa.vox256", device="cpu")
    assert "final.weight" in str(err.value) and "final.renamed" in str(err.value) and "generator" in str(err.value)

    del ckpt["region_predictor"]
    torch.save(ckpt, weights_dir / filename)
    with pytest.raises(CheckpointError, match="region_predictor"):
        registry.load_model("mraa.vox256", device="cpu")


def test_truncated_file(vox, weights_dir, monkeypatch):
    model, _, _ = vox
    path = save_published(model, weights_dir)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    use_card(monkeypatch, model.card)
    with pytest.raises(CheckpointError, match="truncated"):
        registry.load_model("mraa.vox256", device="cpu")


class Payload:
    """A class that only a full unpickle could rebuild."""

    def __reduce__(self):
        return (print, ("this would run on load",))


def test_pickle_with_code_is_refused(vox, weights_dir, monkeypatch):
    model, _, _ = vox
    ((filename, ckpt),) = mraa.published_checkpoints(model).items()
    ckpt["extra"] = Payload()
    torch.save(ckpt, weights_dir / filename)
    use_card(monkeypatch, model.card)
    with pytest.raises(CheckpointError, match="arbitrary code"):
        registry.load_model("mraa.vox256", device="cpu")


def test_checkpoint_without_avd_network(vox, weights_dir, monkeypatch):
    model, src, _ = vox
    ((filename, ckpt),) = mraa.published_checkpoints(model).items()
    del ckpt["avd_network"]  # checkpoints saved before AVD training (train.py)
    torch.save(ckpt, weights_dir / filename)
    use_card(monkeypatch, model.card)
    loaded = registry.load_model("mraa.vox256", device="cpu")
    state = loaded.prepare_source(src)
    assert len(loaded.animate(state, src[None], None, TransferOptions(mode="standard"))) == 1
    with pytest.raises(BadInputError, match="avd"):
        loaded.animate(state, src[None], None, TransferOptions(mode="avd"))


# ---------------------------------------------------------------- animation
def check_results(results, n: int, size: int, num_regions: int = 10):
    assert len(results) == n
    for r in results:
        assert r.frame.shape == (size, size, 3) and r.frame.dtype == np.uint8
        assert r.frame.std() > 1  # an image, not a flat colour
        for kp in (r.source_keypoints, r.driving_keypoints):
            assert kp.shape == (num_regions, 2) and kp.dtype == np.float32 and np.isfinite(kp).all()
        assert (r.source_keypoints > -0.5).all() and (r.source_keypoints < size).all()
        assert r.mask.ndim == 2 and r.mask.min() >= 0 and r.mask.max() <= 1
        assert r.motion.shape == (*r.mask.shape, 2) and np.isfinite(r.motion).all()
        assert r.extras["driving_heatmaps"].shape[0] == num_regions
        assert np.allclose(r.extras["driving_heatmaps"].max(axis=(1, 2)), 1)
        assert np.allclose(r.extras["region_masks"].sum(axis=0), 1, atol=1e-5)


@pytest.mark.parametrize("mode", ["standard", "relative", "avd"])
def test_every_mode_on_a_face(vox, mode):
    model, src, state = vox
    driving = np.stack([moved(src, 10, 0), moved(src, 0, 8), src])
    results = model.animate(state, driving, model.prepare_driving(src), TransferOptions(mode=mode))
    check_results(results, 3, 256)
    if mode != "avd":  # the driving frames differ, and so do the outputs
        assert not np.array_equal(results[0].frame, results[1].frame)


def target_keypoints(model, state, frame, reference, options) -> np.ndarray:
    """Where the generator is asked to move the source regions, in pixels (what ``animate`` uses)."""
    with torch.inference_mode():
        driving = model.region_predictor(to_tensor(frame, model.device))
        target = model.transfer(state, driving, reference, options.resolved_mode(model.card), options.adapt_scale)
        return grid_to_pixels(target.shift[0], frame.shape[0], align_corners=False).numpy()


def identity_motion_bound(size: int, grid: int) -> float:
    """Largest pixel offset of MRAA's identity grid (align_corners=True spacing read with False)."""
    return size / (2 * grid) + 1e-3


def test_no_motion_when_driving_matches_reference(vox):
    """Relative with reference == driving frame puts every region back on the source's: identity motion."""
    model, src, state = vox
    drv = moved(src, 12, -7)
    ref, opts = model.prepare_driving(drv), TransferOptions(relative=True)
    res = model.animate(state, drv[None], ref, opts)[0]
    np.testing.assert_allclose(target_keypoints(model, state, drv, ref, opts), res.source_keypoints, atol=1e-3)
    assert np.abs(res.motion).max() <= identity_motion_bound(256, res.motion.shape[0])
    # the same frame in standard (absolute) mode uses the driving frame's own regions: real motion
    opts = TransferOptions(relative=False)
    std = model.animate(state, drv[None], None, opts)[0]
    np.testing.assert_allclose(target_keypoints(model, state, drv, None, opts), std.driving_keypoints, atol=1e-4)
    assert np.abs(std.motion).max() > identity_motion_bound(256, std.motion.shape[0])


def test_standard_with_source_as_driving_is_identity(vox):
    model, src, state = vox
    res = model.animate(state, src[None], None, TransferOptions(mode="standard"))[0]
    np.testing.assert_allclose(res.driving_keypoints, res.source_keypoints, atol=1e-3)
    assert np.abs(res.motion).max() <= identity_motion_bound(256, res.motion.shape[0])


def test_relative_scale_and_reference(vox):
    model, src, state = vox
    ref_img, drv = moved(src, -9, 4), moved(src, 7, 3)
    ref = model.prepare_driving(ref_img)
    plain = model.animate(state, drv[None], ref, TransferOptions(adapt_scale=False))[0]
    plain_target = target_keypoints(model, state, drv, ref, TransferOptions(adapt_scale=False))
    expected = plain.driving_keypoints - grid_to_pixels(ref.regions.shift[0], 256, align_corners=False).numpy() + plain.source_keypoints
    np.testing.assert_allclose(plain_target, expected, atol=1e-3)
    # the published relative mode scales the movement by the region-hull size ratio
    scale = motion.movement_scale(state.shift_np, ref.shift_np)
    assert abs(scale - 1) > 1e-3
    moved_by = target_keypoints(model, state, drv, ref, TransferOptions()) - plain.source_keypoints
    np.testing.assert_allclose(moved_by, (plain_target - plain.source_keypoints) * scale, atol=1e-3)
    scaled = model.animate(state, drv[None], ref, TransferOptions())[0]
    assert not np.array_equal(scaled.motion, plain.motion)
    # without a reference frame, relative falls back to the source itself: the same as standard
    none_ref = model.animate(state, drv[None], None, TransferOptions())[0]
    std = model.animate(state, drv[None], None, TransferOptions(mode="standard"))[0]
    assert np.array_equal(none_ref.frame, std.frame)


def test_batch_equals_single_frames(vox):
    model, src, state = vox
    driving = np.stack([moved(src, 5, 5), moved(src, -6, 2)])
    ref = model.prepare_driving(src)
    batch = model.animate(state, driving, ref, TransferOptions(mode="avd"))
    for i in range(2):
        one = model.animate(state, driving[i : i + 1], ref, TransferOptions(mode="avd"))[0]
        assert np.abs(one.frame.astype(int) - batch[i].frame.astype(int)).max() <= 1
        np.testing.assert_allclose(one.motion, batch[i].motion, rtol=1e-4, atol=1e-2)


def test_bad_inputs(vox):
    model, src, state = vox
    with pytest.raises(BadInputError, match="256x256"):
        model.animate(state, face(128)[None], None, TransferOptions())
    with pytest.raises(BadInputError, match="mode"):
        model.animate(state, src[None], None, TransferOptions(mode="absolute"))


def test_polyline_hull_area():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]])
    assert motion.hull_area(square) == pytest.approx(1.0)
    assert motion.hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0
    assert motion.movement_scale(square, square * 2) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["mraa.ted384", "mraa.mgif256"])
def test_other_cards_run(name):
    """ted384 runs at 384 px and both use region padding 0 (smaller region maps than vox256)."""
    card = small_card(name)
    model = random_animator(card, seed=1)
    size = card.resolution
    src = face(size)
    state = model.prepare_source(src)
    grid = size // 4 - 6  # 7x7 region conv without padding on the 1/4 image
    assert state.regions.heatmap.shape[-2:] == (grid, grid)
    results = model.animate(state, moved(src, 8, 0)[None], model.prepare_driving(src), TransferOptions(mode="avd"))
    check_results(results, 1, size)
