"""Per-family parity runners for tests/test_parity.py.

A runner module ``tests/parity_runners/<family>.py`` (family = ``meta["family"]`` of a fixture)
defines ``run(fixture) -> dict[str, np.ndarray]``: given the fixture's arrays (``source``,
``driving``, ``meta`` as a parsed dict, ...), build our port, fill its weights with
``fill_module`` and return every documented array under the fixture's names. It may define
``tolerance(meta, name) -> float`` when the fixture's tolerances are given by kind.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "parity"


def fixture_module(stem: str):
    """``tests/fixtures/parity/<stem>.py`` (fill.py, fill_stylegan2.py) imported as ``parity_<stem>``."""
    spec = importlib.util.spec_from_file_location(f"parity_{stem}", FIXTURE_DIR / f"{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(f"parity_{stem}", mod)
    spec.loader.exec_module(mod)
    return mod


def _fill_rule():
    return fixture_module("fill").fill


def fill_module(module, seed: int) -> None:
    """Fill ``module``'s own state_dict by key with the fixture rule and load it strictly.

    Any key or shape that differs from the published checkpoint's gives different weights (or a
    strict-load failure), so the parity comparison catches layout mistakes.
    """
    import torch

    fill = _fill_rule()
    own = module.state_dict()
    arrays = fill({k: v.detach().cpu().numpy() for k, v in own.items()}, seed)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
    module.eval()


def checkpoint_keys(meta: dict, module_name: str) -> dict[str, tuple]:
    """Published key -> shape list from ``meta['checkpoint_layout']``, where the fixture lists it."""
    layout = meta.get("checkpoint_layout", {})
    mods = layout.get("modules", layout)
    entry = mods.get(module_name, {})
    keys = entry.get("keys", entry) if isinstance(entry, dict) else entry
    if isinstance(keys, dict):
        return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in keys.items()}
    if isinstance(keys, list):
        out = {}
        for item in keys:
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                out[item[0]] = tuple(item[1])
            elif isinstance(item, dict):
                out[item.get("key") or item.get("name")] = tuple(item.get("shape", ()))
        return out
    return {}
