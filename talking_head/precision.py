"""The precision policy: which number format a model's networks run in, picked per machine and family.

One mechanism for every ``Animator`` (no per-family code):

    p = resolve("auto", model)      # "bf16" on CPUs with AMX / AVX-512 BF16, "fp16" on CUDA, else "fp32"
    apply(model, p)                 # channels-last weights; FP32_NETWORKS kept in float32
    with context(model):            # autocast to p around the model's calls (the engine does this)
        model.animate(...)

A family takes part by being an ``Animator``: its networks are found as the ``nn.Module``
attributes of the animator (``networks``). It may declare, in one line each,
``FP32_NETWORKS`` (networks that stay float32 under the fast path, e.g. a keypoint detector whose
outputs steer a warp) and ``FAST_PATH_DEFAULT = False`` (``auto`` keeps float32 for this family,
e.g. because its measured difference is too large). ``fp32`` always means the reference path.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 matrix/dot units


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    path = Path("/proc/cpuinfo")
    try:
        text = path.read_text(errors="replace") if path.exists() else ""
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_bf16_units() -> list[str]:
    """Hardware bf16 features of this CPU that oneDNN uses (AMX tiles, AVX-512 BF16 dot products).

    Checked at run time: the /proc/cpuinfo flags, and oneDNN's own answer where torch exposes it.
    Without them bf16 is emulated and slower than float32, so ``auto`` keeps float32.
    """
    import torch

    found = [f for f in CPU_BF16_FLAGS if f in cpu_flags()]
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        try:
            if not check():
                return []
        except RuntimeError:
            pass
    return found


def cpu_features() -> str:
    """A one-line summary for reports: torch's CPU kernel level and the bf16 units."""
    import torch

    units = cpu_bf16_units()
    return f"{torch.backends.cpu.get_cpu_capability()}" + (f" + {'/'.join(units)}" if units else ", no bf16 units")


def _device_type(model) -> str:
    import torch

    return torch.device(getattr(model, "device", "cpu")).type


def _animator(model):
    """The animator itself, also behind a wrapper that shares it (the studio's ``SharedModel``: ``inner``).

    The family's declarations (``FAST_PATH_DEFAULT``, ``FP32_NETWORKS``) and its torch networks live
    on the animator, not on the wrapper.
    """
    return getattr(model, "inner", model)


def resolve(requested: str | None, model) -> str:
    """``auto`` (or None) -> the fastest precision that is exact enough for ``model`` on its device.

    A family with ``FAST_PATH_DEFAULT = False``: fp32. Otherwise CUDA: fp16; CPU: bf16 where
    ``cpu_bf16_units()`` finds hardware support, else fp32; other devices: fp32.
    An explicit ``fp32`` / ``bf16`` / ``fp16`` is returned as is.
    """
    from talking_head.errors import BadInputError

    model = _animator(model)
    requested = requested or "auto"
    if requested not in PRECISIONS:
        raise BadInputError(f"There is no precision '{requested}'.", "Use one of: " + ", ".join(PRECISIONS))
    if requested != "auto":
        return requested
    if not getattr(model, "FAST_PATH_DEFAULT", True):
        return "fp32"
    kind = _device_type(model)
    if kind == "cuda":
        return "fp16"
    if kind == "cpu" and cpu_bf16_units():
        return "bf16"
    return "fp32"


def networks(model) -> dict:
    """``{attribute name: nn.Module}``: the torch networks an animator holds as attributes."""
    import torch.nn as nn

    return {k: v for k, v in vars(_animator(model)).items() if isinstance(v, nn.Module)}


def _float32_args(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, dict):
        return {k: _float32_args(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_float32_args(v) for v in value)
    return value


def _keep_float32(module) -> None:
    """Run ``module.forward`` in float32 even inside an autocast region (inputs cast up)."""
    import torch

    if getattr(module, "_precision_float32", False):
        return
    forward = module.forward

    def float32_forward(*args, **kwargs):
        with torch.autocast(module_device_type(module), enabled=False):
            return forward(*_float32_args(args), **_float32_args(kwargs))

    module.forward = float32_forward
    module._precision_float32 = True


def float32_math(fn):
    """Decorator: ``fn`` computes in float32 even inside the fast path's autocast region.

    For geometry (coordinate grids, keypoint and camera transforms, spline fits): bf16 keeps 8
    bits of mantissa, a 64-point grid step near 1 is about two of its units, so coordinates
    rounded to it misplace every warp. Half-precision tensor arguments (also inside dicts, lists
    and tuples) are cast up to float32; float32 and float64 pass unchanged, so outside autocast
    this changes nothing.
    """
    import torch

    @functools.wraps(fn)
    def float32_fn(*args, **kwargs):
        args, kwargs = _float32_args(args), _float32_args(kwargs)
        active = [kind for kind in ("cpu", "cuda") if torch.is_autocast_enabled(kind)]
        if not active:
            return fn(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for kind in active:
                stack.enter_context(torch.autocast(kind, enabled=False))
            return fn(*args, **kwargs)

    return float32_fn


def module_device_type(module) -> str:
    for p in module.parameters():
        return p.device.type
    return "cpu"


def _find(model, name: str):
    """A network by dotted attribute path from the animator (``"generator.dense_motion_network"``)."""
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj


def apply(model, precision: str) -> str:
    """Set ``model`` up for ``precision`` (resolved first); returns the precision in use.

    Lower precision: networks' 4-D weights in channels-last (faster convolutions on oneDNN and
    cuDNN), ``FP32_NETWORKS`` pinned to float32. Idempotent; ``fp32`` leaves the weights' values
    untouched, so switching back gives the reference path.
    """
    model = _animator(model)
    precision = resolve(precision, model)
    if precision != "fp32" and not getattr(model, "_precision_prepared", False):
        for net in networks(model).values():
            channels_last(net)
        for name in getattr(model, "FP32_NETWORKS", ()):
            network = _find(model, name)
            if network is not None:  # an optional network this checkpoint does not have
                _keep_float32(network)
        model._precision_prepared = True
    model.precision = precision
    return precision


def channels_last(module) -> None:
    """4-D weights to channels-last, 5-D (3-D convolutions) to channels-last-3d, in place."""
    import torch

    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() in formats:
            tensor.data = tensor.data.contiguous(memory_format=formats[tensor.dim()])


def compile_networks(model, mode: str | None) -> None:
    """``torch.compile`` the model's networks' direct sub-networks (``mode``: a torch.compile mode; None: eager).

    Sub-networks rather than the networks themselves, because families call their networks'
    parts directly (encode / warp / decode) as well as their ``forward``.
    """
    import torch.nn as nn

    model = _animator(model)
    if not mode or mode == "none" or getattr(model, "_compiled_mode", None) == mode:
        return
    model._compiled_mode = mode
    for net in networks(model).values():
        parts = [net]
        for child in net.children():
            parts.extend(child.children() if isinstance(child, (nn.ModuleList, nn.Sequential, nn.ModuleDict)) else [child])
        for part in parts[1:] or parts:
            part.compile(mode=mode)


def dtype_of(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def context(model, precision: str | None = None):
    """Autocast to ``precision`` (None: the model's, set by ``apply``; float32 when never applied)."""
    import torch

    dtype = dtype_of(precision or getattr(_animator(model), "precision", "fp32"))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(_device_type(model), dtype=dtype)
