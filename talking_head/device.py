"""Pick the torch device: CUDA, then Apple MPS, then CPU."""
from __future__ import annotations


def pick_device(requested: str | None = None):
    import torch

    if requested and requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
