"""The registry lists every family's cards without importing model code, and loads by name."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from talking_head import hub, list_models, load_model
from talking_head.errors import UnknownModelError, WeightsMissingError
from talking_head.model_cards import FAMILIES
from talking_head.registry import get_card


def test_listing_imports_no_model_code():
    code = (
        "import sys, talking_head; cards = talking_head.list_models(); "
        "assert cards; assert 'torch' not in sys.modules, 'listing imported torch'; "
        "assert not [m for m in sys.modules if m.startswith('talking_head.models.')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cards_are_complete():
    cards = list_models()
    assert {c.family for c in cards} <= set(FAMILIES)
    assert get_card("landmark").files == ()
    for card in cards:
        assert card.name == card.family or card.name.startswith(card.family + "."), card.name
        assert card.title and card.description and card.license, card.name
        assert card.default_mode in card.modes, card.name
        for wf in card.files:
            assert wf.on_hub or wf.url, f"{card.name}: {wf.filename} says nowhere to get it"


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        get_card("no-such-model")
    assert "landmark" in err.value.user_message()


@pytest.mark.parametrize("card", [c for c in list_models() if c.files], ids=lambda c: c.name)
def test_missing_weights_fail_fast(card, tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_HEAD_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.perf_counter()
    with pytest.raises(WeightsMissingError) as err:
        load_model(card.name)
    assert time.perf_counter() - started < 10
    missing = [wf for wf in card.files if hub.find_file(wf) is None]
    assert missing[0].filename in err.value.user_message()
