"""One home for option logic: engine.transfer_options, Control.coerce, ModelCard.control_values."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from talking_head.cards import Control
from talking_head.engine import transfer_options
from talking_head.errors import BadInputError
from talking_head.registry import get_card, list_models

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    "model, mode, resolved, relative",
    [
        ("landmark", None, "relative", True),
        ("landmark", "relative", "relative", True),
        ("landmark", "absolute", "absolute", False),
        ("mraa.vox256", None, "relative", True),
        ("mraa.vox256", "absolute", "standard", False),  # no 'absolute' mode: the same thing by its name
        ("mraa.vox256", "standard", "standard", False),
        ("mraa.vox256", "avd", "avd", True),
        ("tpsmm.vox", "absolute", "standard", False),
        ("x2face.released", None, "absolute", True),  # only absolute: relative falls back to it
        ("x2face.released", "absolute", "absolute", False),
        ("liveportrait.human", "absolute", "absolute", False),
    ],
)
def test_mode_words_resolve_for_every_family(model, mode, resolved, relative):
    card = get_card(model)
    options = transfer_options(card, mode)
    assert options.resolved_mode(card) == resolved
    assert options.relative is relative
    assert options.adapt_scale is True


def test_relative_and_absolute_work_for_every_card():
    for card in list_models(kind="animator"):  # generators (MoCoGAN-HD) transfer no motion
        assert transfer_options(card, "relative").resolved_mode(card) in card.modes
        absolute = transfer_options(card, "absolute")
        assert absolute.resolved_mode(card) in {"absolute", "standard"} & set(card.modes)


def test_unknown_mode_names_the_cards_modes():
    with pytest.raises(BadInputError, match="no mode 'avd'") as err:
        transfer_options(get_card("landmark"), "avd")
    assert "relative, absolute" in err.value.hint
    with pytest.raises(BadInputError, match="sideways") as err:
        transfer_options(get_card("mraa.vox256"), "sideways")
    assert "standard, relative, avd" in err.value.hint


def test_adapt_scale_and_extra():
    card = get_card("landmark")
    extra = {"expression": 0.5}
    options = transfer_options(card, "relative", False, extra)
    assert options.adapt_scale is False
    assert options.extra == extra and options.extra is not extra  # a copy: later edits do not leak back
    assert transfer_options(card, adapt_scale=None).adapt_scale is True
    assert transfer_options(card).extra == {}


# ----------------------------------------------------------------------------------------- controls


def test_bool_control_takes_words_and_bools():
    stitching = next(c for c in get_card("liveportrait.human").controls if c.name == "stitching")
    for value, want in [("true", True), (" Yes ", True), ("on", True), ("1", True), (True, True), (1, True),
                        ("false", False), ("OFF", False), ("0", False), (False, False), (0, False)]:
        assert stitching.coerce(value) is want, value
    assert stitching.coerce(None) is True  # the default
    for bad in ("maybe", "", 0.5, 2, "2"):
        with pytest.raises(BadInputError, match="control 'stitching'") as err:
            stitching.coerce(bad)
        assert "true or false" in err.value.hint


def test_float_control_checks_range_and_kind():
    expression = next(c for c in get_card("landmark").controls if c.name == "expression")
    assert expression.coerce("0.5") == 0.5 and isinstance(expression.coerce("1"), float)
    assert expression.coerce(2) == 2.0 and expression.coerce(0.0) == 0.0
    for bad in ("2.5", -0.1, "abc", "nan", True, [1.0]):
        with pytest.raises(BadInputError, match="Bad value") as err:
            expression.coerce(bad, "landmark")
        assert "control 'expression' of landmark" in err.value.message
        assert err.value.hint == "Use a number from 0 to 2."


def test_int_control():
    steps = Control("steps", "int", 4, minimum=1, maximum=10)
    assert steps.coerce("7") == 7 and steps.coerce(3) == 3 and steps.coerce(5.0) == 5
    assert isinstance(steps.coerce(5.0), int)
    for bad in ("2.5", 2.5, "0", 11, False):
        with pytest.raises(BadInputError, match="control 'steps'") as err:
            steps.coerce(bad)
        assert err.value.hint == "Use an integer from 1 to 10."
    unbounded = Control("offset", "float", 0.0)
    assert unbounded.coerce("-1e6") == -1e6
    with pytest.raises(BadInputError) as err:
        unbounded.coerce("x")
    assert err.value.hint == "Use a number from -inf to inf."


def test_choice_control():
    region = next(c for c in get_card("liveportrait.human").controls if c.name == "animation_region")
    assert region.coerce("lip") == "lip"
    assert region.coerce(None) == "all"  # the default
    for bad in ("mouth", "LIP", 1):
        with pytest.raises(BadInputError, match="control 'animation_region'") as err:
            region.coerce(bad)
        assert err.value.hint == "Use one of all, exp, pose, lip, eyes."


def test_control_values_fill_defaults_and_refuse_unknown_names():
    card = get_card("landmark")
    defaults = card.control_values()
    assert defaults == {c.name: c.default for c in card.controls}
    assert card.control_values(None) == defaults
    values = card.control_values({"expression": "0.25", "follow_gaze": "off"})
    assert values == {**defaults, "expression": 0.25, "follow_gaze": False}
    with pytest.raises(BadInputError, match="Model 'landmark' has no control 'strength'") as err:
        card.control_values({"strength": 1})
    assert err.value.hint == "Its controls are: " + ", ".join(sorted(defaults)) + "."
    with pytest.raises(BadInputError, match="of landmark"):
        card.control_values({"smoothing": 3})
    mraa = get_card("mraa.vox256")
    assert mraa.control_values() == {}
    with pytest.raises(BadInputError) as err:
        mraa.control_values({"stitching": True})
    assert err.value.hint == "Its controls are: none."


def test_cli_set_pairs_go_through_the_card():
    from talking_head.cli import parse_control_values

    card = get_card("liveportrait.human")
    values = parse_control_values(card, ["yaw = -20", "animation_region=lip", "stitching=no"])
    assert values == card.control_values({"yaw": -20.0, "animation_region": "lip", "stitching": False})
    with pytest.raises(BadInputError, match="name=value"):
        parse_control_values(card, ["yaw"])
    with pytest.raises(BadInputError, match="Bad value '90' for control 'yaw' of liveportrait.human"):
        parse_control_values(card, ["yaw=90"])


# ----------------------------------------------------------------------------------------- layering


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(proc.stdout.split())


def test_cards_stay_light_and_live_sits_below_the_ui():
    cards = _modules_after_import("talking_head.cards")
    assert not {"numpy", "torch"} & cards
    live = _modules_after_import("talking_head.live")
    assert "gradio" not in live and "talking_head.studio.common" not in live


def test_examples_use_the_video_suffixes():
    from talking_head import video
    from talking_head.examples import default_sources, example_files

    images = example_files("image")
    assert images and all(p.suffix.lower() in video.IMAGE_SUFFIXES for p in images)
    assert all(p.suffix.lower() not in video.IMAGE_SUFFIXES for p in example_files("video"))
    assert default_sources() == images
