"""Parity of our ports with the published implementations.

Runs every ``*.npz`` in tests/fixtures/parity (or ``$TALKING_HEAD_PARITY_DIR``). Each fixture
records what the original code computes under deterministic weights (fill.py); our port, filled
by key with the same rule, must reproduce every array within the fixture's tolerances.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.parity_runners import FIXTURE_DIR

PARITY_DIR = Path(os.environ.get("TALKING_HEAD_PARITY_DIR", FIXTURE_DIR))
FIXTURES = sorted(PARITY_DIR.glob("*.npz"))
INPUTS = ("meta", "source", "driving")


def load_fixture(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    data["meta"] = json.loads(str(data["meta"]))
    return data


def default_tolerance(meta: dict, name: str) -> float:
    tol = meta["tolerances"]
    per = tol.get("per_array", {})
    if name in per:
        value = per[name]
    elif name in tol:
        value = tol[name]
    else:
        raise KeyError(f"fixture gives no tolerance for {name}")
    if isinstance(value, dict):
        value = value.get("max_abs", value.get("recommended_max_abs"))
    return float(value)


def compare(fixture: dict, produced: dict, tolerance, inputs: tuple[str, ...] = ()) -> list[str]:
    meta = fixture["meta"]
    problems = []
    for name, expected in fixture.items():
        if name in INPUTS or name in inputs:
            continue
        if name not in produced:
            problems.append(f"{name}: not produced by the port")
            continue
        got = np.asarray(produced[name], dtype=np.float64)
        exp = np.asarray(expected, dtype=np.float64)
        if got.shape != exp.shape:
            problems.append(f"{name}: shape {got.shape} != expected {exp.shape}")
            continue
        tol = tolerance(meta, name)
        diff = float(np.max(np.abs(got - exp))) if exp.size else 0.0
        if not diff <= tol:  # also catches NaN
            problems.append(f"{name}: max abs diff {diff:.3g} > tolerance {tol:.3g}")
    return problems


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_parity(path: Path):
    fixture = load_fixture(path)
    family = fixture["meta"]["family"]
    runner = importlib.import_module(f"tests.parity_runners.{family.lower().replace('-', '_')}")
    produced = runner.run(fixture)
    tolerance = getattr(runner, "tolerance", default_tolerance)
    problems = compare(fixture, produced, tolerance, getattr(runner, "INPUTS", ()))
    problems += getattr(runner, "extra_checks", lambda f, p: [])(fixture, produced)  # rules beyond max abs
    assert not problems, f"{path.name}: {len(problems)} arrays differ:\n" + "\n".join(problems)


def test_fixtures_found():
    assert FIXTURES, f"no parity fixtures in {PARITY_DIR}"
