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


def filled_networks_animator(family: str, card_name: str, seed: int):
    """``family``'s port for ``card_name`` on the CPU, each network under its ``nets`` filled on its own keys."""
    import torch

    from talking_head.registry import get_card

    module = importlib.import_module(f"talking_head.models.{family}")
    animator = module.create(get_card(card_name), None, torch.device("cpu"))
    for network in animator.nets.children():
        fill_module(network, seed)
    return animator


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


def runner_for(fixture: dict):
    """The runner module of a fixture's family."""
    import importlib

    return importlib.import_module(f"tests.parity_runners.{fixture['meta']['family'].lower().replace('-', '_')}")


def fast_path_difference(fixture: dict, precision: str = "auto", frames: int | None = None) -> dict:
    """How far a family's fast path is from its float32 path on the fixture's inputs and fill weights.

    Builds the port with the runner's ``build_animator(fixture)``, animates the fixture's driving
    frames (the first ``frames``; relative to the first one, the Animator interface with default
    options) once in float32 and once under ``precision`` (``talking_head.precision``, the engine's
    mechanism), and returns ``{"precision", "mean", "max"}``: the absolute difference of the output
    images in 0-255 grey levels (uint8 outputs, as the user gets them), plus ``"fixture_mean"`` /
    ``"fixture_max"`` against the fixture's own float32 prediction where it stores one
    (``<mode>.prediction`` or ``prediction`` at the output size).
    """
    import torch

    from talking_head import precision as prec
    from talking_head.models.base import TransferOptions

    model = runner_for(fixture).build_animator(fixture)
    driving = fixture["driving"][:frames] if frames else fixture["driving"]

    def render():
        with torch.inference_mode(), prec.context(model):
            src = model.prepare_source(fixture["source"])
            ref = model.prepare_driving(fixture["driving"][0])
            return np.stack([r.frame for r in model.animate(src, driving, ref, TransferOptions())]).astype(np.float64)

    prec.apply(model, "fp32")
    reference = render()
    used = prec.apply(model, precision)
    fast = reference if used == "fp32" else render()
    diff = np.abs(fast - reference)
    out = {"precision": used, "mean": float(diff.mean()), "max": float(diff.max())}
    for name in ("relative.prediction", "prediction"):
        stored = fixture.get(name)
        if stored is not None and stored.shape[1:] == fast.shape[1:]:
            d = np.abs(fast - np.asarray(stored[: len(fast)], np.float64) * 255.0)
            out.update(fixture_mean=float(d.mean()), fixture_max=float(d.max()))
            break
    return out
