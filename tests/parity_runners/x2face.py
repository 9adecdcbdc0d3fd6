"""X2Face parity: our port, filled like the fixture, through the Animator's own passes."""
from __future__ import annotations

import numpy as np
import torch

from talking_head.registry import get_card
from tests.parity_runners import fill_module


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def build(fixture: dict):
    from talking_head.models import x2face

    meta = fixture["meta"]
    card = get_card("x2face.released")
    assert card.options["inner_nc"] == meta["model_params"]["inner_nc"]
    animator = x2face.create(card, None, torch.device("cpu"))
    fill_module(animator.net, meta["seed"])
    return animator


build_animator = build  # our port with the fixture's config and fill weights, on the CPU


def run(fixture: dict) -> dict:
    from talking_head.models.base import to_tensor

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    animator = build(fixture)
    source = animator.prepare_source(fixture["source"])
    emb = source.embedding
    res = animator.run(source, to_tensor(fixture["driving"], animator.device))
    return {
        "embedding_net_output": _np(emb["raw"][0].permute(1, 2, 0)),
        "embedding_sampler": _np(emb["sampler"][0]),
        "embedding_confidence": _np(emb["confidence"][0, 0]),
        "embedded_face": _np(emb["face"][0].permute(1, 2, 0)),
        "driving_net_output": _np(res["raw"].permute(0, 2, 3, 1)),
        "driving_embedding": _np(res["embedding"]),
        "driving_sampler": _np(res["sampler"]),
        "prediction": _np(res["prediction"].permute(0, 2, 3, 1)),
    }
