"""The fast path (talking_head.precision) of each family stays within its stated difference on the parity fixtures.

Differences are of the uint8 output images, in 0-255 grey levels, fast path vs the same port in
float32 (both through the Animator interface on the fixture's source, first driving frame, fill
weights). A fast path is on by default (``FAST_PATH_DEFAULT``) only where its mean is below 1/255
of the range, i.e. below one grey level.

bf16 runs at full speed only on CPUs with AMX / AVX-512 BF16; elsewhere oneDNN emulates it about
ten times slower than float32, so the per-family bf16 checks run there and X2Face (the smallest
network) stands in on other machines.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_head import precision
from tests.parity_runners import FIXTURE_DIR, fast_path_difference, runner_for
from tests.test_parity import load_fixture

# family -> (mean, max) grey levels of bf16 vs float32 on the first driving frame, measured with some margin
# (2 threads, AVX-512 BF16 CPU, geometry in float32 via precision.float32_math; measured: fomm 0.33/1,
# mraa 0.45/16 (region predictor, flow mask and occlusion heads in fp32), tpsmm 0.33/23 (keypoint heads in
# fp32; 3.40/124 all bf16), monkeynet 0.45/4, x2face 0.45/17, liveportrait 2.36/23, facevid2vid 2.27/16)
STATED_BF16 = {
    "fomm": (0.5, 3.0),
    "mraa": (0.6, 24.0),
    "tpsmm": (0.5, 30.0),
    "monkeynet": (0.6, 10.0),
    "x2face": (0.6, 24.0),
    "liveportrait": (2.6, 30.0),  # spread over every network: off by default, --precision bf16 to force
    "facevid2vid": (2.5, 24.0),  # likewise
}
ON_BY_DEFAULT_BELOW = 1.0  # grey levels: 1/255 of the image range

GENERATORS = ("mocoganhd",)  # no Animator: their sampling is not on the engine's fast path
FIXTURES = sorted(p for p in FIXTURE_DIR.glob("*.npz") if p.stem.split("-")[0] not in GENERATORS)
HAS_BF16_UNITS = bool(precision.cpu_bf16_units())


def _family(path: Path) -> str:
    return path.stem.split("-")[0]


def _animator_class(family: str):
    module = importlib.import_module(f"talking_head.models.{family}")
    from talking_head.models.base import Animator

    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Animator) and v is not Animator
               and v.__module__ == module.__name__]
    assert len(classes) == 1, f"{family}: expected one Animator class, found {classes}"
    return classes[0]


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_stated_difference_decides_the_default(path: Path):
    family = _family(path)
    assert family in STATED_BF16, f"{family}: state its fast-path difference in STATED_BF16 (None: not measured)"
    stated = STATED_BF16[family]
    assert _animator_class(family).FAST_PATH_DEFAULT == (stated is not None and stated[0] < ON_BY_DEFAULT_BELOW)


def _check(path: Path, want: str):
    fixture = load_fixture(path)
    got = fast_path_difference(fixture, want, frames=1)
    assert got["precision"] == want
    mean, worst = STATED_BF16[_family(path)] if want == "bf16" else (0.0, 0.0)
    assert got["mean"] <= mean and got["max"] <= worst, got
    if "fixture_mean" in got:  # the fixture's own float32 output: within the same bounds plus uint8 rounding
        assert got["fixture_mean"] <= mean + 0.5 and got["fixture_max"] <= worst + 1.0, got


@pytest.mark.skipif(not HAS_BF16_UNITS, reason="bf16 is emulated on this CPU (no AMX / AVX-512 BF16): minutes per family")
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_bf16_fast_path_within_stated_difference(path: Path):
    if STATED_BF16.get(_family(path)) is None:
        pytest.skip("no stated difference yet")
    _check(path, "bf16")


def test_bf16_fast_path_of_x2face_within_stated_difference():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    _check(FIXTURE_DIR / "x2face-x2face_model.npz", "bf16")


def test_auto_picks_bf16_only_with_bf16_units(monkeypatch):
    fixture = load_fixture(FIXTURE_DIR / "x2face-x2face_model.npz")
    model = runner_for(fixture).build_animator(fixture)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert precision.resolve("auto", model) == "fp32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16", "amx_tile"}))
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert precision.resolve("auto", model) == "bf16"
    assert precision.resolve("fp32", model) == "fp32"  # the user can always force the reference path
    monkeypatch.setattr(type(model), "FAST_PATH_DEFAULT", False)
    assert precision.resolve("auto", model) == "fp32"


def test_forced_fp32_is_the_reference_path():
    """Through the engine: --precision fp32 gives exactly the model's own float32 output."""
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.models.base import TransferOptions

    fixture = load_fixture(FIXTURE_DIR / "x2face-x2face_model.npz")
    model = runner_for(fixture).build_animator(fixture)
    engine = Engine(model, AnimateSettings(auto_crop=False, precision="fp32"))
    assert engine.precision == "fp32"
    engine.set_source(fixture["source"])
    through_engine = engine.preview(fixture["driving"][1], reference_frame=fixture["driving"][0]).output
    with torch.inference_mode():
        src = model.prepare_source(fixture["source"])
        ref = model.prepare_driving(fixture["driving"][0])
        direct = model.animate(src, fixture["driving"][1:2], ref, TransferOptions())[0].frame
    np.testing.assert_array_equal(through_engine, direct)


def test_the_studios_shared_model_takes_the_familys_own_decision(monkeypatch):
    """Behind the studio's SharedModel, 'auto' reads the family (LivePortrait: float32) and pins its FP32_NETWORKS."""
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.studio.common import SharedModel

    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: ("amx_bf16",))
    for stem, expected in (("liveportrait", "fp32"), ("tpsmm", "bf16")):
        path = next(p for p in FIXTURES if _family(p) == stem)
        fixture = load_fixture(path)
        inner = runner_for(fixture).build_animator(fixture)
        shared = SharedModel(inner)
        assert Engine(shared, AnimateSettings(auto_crop=False)).precision == expected, stem
        assert Engine(shared, AnimateSettings(auto_crop=False, precision="fp32")).precision == "fp32"
        for name in inner.FP32_NETWORKS:
            network = precision._find(inner, name)
            assert network is None or network._precision_float32, (stem, name)
        if expected == "bf16":
            assert inner.FP32_NETWORKS and inner._precision_prepared


def test_unknown_precision_is_a_clear_error():
    from talking_head.errors import BadInputError

    with pytest.raises(BadInputError, match="precision 'fp8'"):
        precision.resolve("fp8", object())


def test_geometry_stays_float32_inside_the_fast_path():
    """Keypoint / camera / spline math gives the float32 answer under bf16 autocast (bf16 would move warps)."""
    from talking_head import camera
    from talking_head.models import blocks, tpsmm_modules

    gen = torch.Generator().manual_seed(0)
    kp = torch.rand(2, 10, 2, generator=gen) * 2 - 1
    src = torch.rand(1, 10, 2, generator=gen) * 2 - 1
    jac = torch.eye(2).expand(2, 10, 2, 2) + 0.1 * torch.randn(2, 10, 2, 2, generator=gen)
    kp3, rot = torch.randn(2, 15, 3, generator=gen), camera.rotation_matrix(*(torch.full((2, 1), a) for a in (5.0, -12.0, 3.0)))
    control = torch.rand(2, 2, 5, 2, generator=gen) * 2 - 1
    calls = {
        "local_affine_motions": lambda: blocks.local_affine_motions(kp, src, jac, 64, 64),
        "keypoints_to_gaussian": lambda: blocks.keypoints_to_gaussian(kp, 64, 64, 0.01),
        "transform_keypoints": lambda: camera.transform_keypoints(kp3, rot, 0.01 * kp3, torch.ones(2, 1), torch.zeros(2, 3)),
        "fit_tps": lambda: tpsmm_modules.fit_tps(control, control.flip(2))[1],
    }
    for name, call in calls.items():
        expected = call()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = call()
        assert got.dtype == torch.float32, name
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=name)
