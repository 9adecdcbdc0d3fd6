"""Speed on this machine: ``python -m talking_head.bench [--models ...] [--sizes 256 512] [--frames N]``.

Two tables:

1. the landmark model (no network weights) at each ``--sizes``: milliseconds per frame for the
   driving landmarks, the warp, the driving face tracking + crop, and H.264 encoding, and frames/s
   through the engine without (crop, encoding) and with them;
2. every registered torch model (one card per family unless ``--models`` names cards), built with
   ``pretrained=False`` (random weights: speed does not depend on the values): frames/s of the
   engine's path (source prepared once, frames in batches) against a naive loop that prepares the
   source again for every frame, one frame at a time (as the published demos do), on the CPU and on
   CUDA when present (also fp16/bf16 autocast there).

Times are wall-clock (``--clock cpu``: CPU time), the best of ``--repeats`` whole passes after one
warm-up pass (other processes only ever add time); nothing is asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LANDMARK_FAMILY = "landmark"


# ------------------------------------------------------------------------------------------ inputs


def face_image(size: int) -> np.ndarray:
    """A real public-domain face (scikit-image's astronaut), cropped around the face, size x size."""
    import cv2
    from skimage.data import astronaut

    crop = astronaut()[10:310, 90:390]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if size < 300 else cv2.INTER_CUBIC)


def driving_frames(size: int, count: int) -> list[np.ndarray]:
    """``count`` frames of a face that turns and nods a little (affine motion of the astronaut)."""
    import cv2

    base = face_image(size)
    frames = []
    for i in range(count):
        t = i / max(1, count - 1)
        angle = 6.0 * np.sin(2 * np.pi * t)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0 + 0.03 * np.sin(4 * np.pi * t))
        m[:, 2] += (0.03 * size * np.sin(2 * np.pi * t), 0.02 * size * np.cos(2 * np.pi * t))
        frames.append(cv2.warpAffine(base, m, (size, size), borderMode=cv2.BORDER_REFLECT))
    return frames


def cpu_clock() -> float:
    """CPU seconds used by this process (all threads) and its finished children (ffmpeg)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


CLOCKS = {"wall": time.perf_counter, "cpu": cpu_clock}
_clock = time.perf_counter


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations, cudnn autotune, lazy imports
    times = []
    for _ in range(repeats):
        start = _clock()
        fn()
        times.append(_clock() - start)
    return float(min(times))  # the least disturbed pass: other processes only ever add time


# ------------------------------------------------------------------------------------------ landmark model


@dataclass
class LandmarkRow:
    size: int
    landmarks_ms: float
    warp_ms: float
    crop_ms: float  # face tracking + crop of a full driving frame (auto-crop)
    encode_ms: float
    fps: float  # through the engine, already-cropped frames, without encoding
    fps_all: float  # with auto-crop and encoding


def bench_encode(frames: list[np.ndarray], fps: float = 25.0) -> float:
    """Seconds per frame to write ``frames`` to an H.264 MP4 (VideoWriter, including finishing)."""
    from talking_head.video import VideoWriter

    with tempfile.TemporaryDirectory() as tmp:
        def run():
            with VideoWriter(Path(tmp) / "bench.mp4", fps) as writer:
                for f in frames:
                    writer.write(f)

        return _best_time(run, 1) / len(frames)


def bench_landmark(size: int, n_frames: int, repeats: int = 2) -> LandmarkRow:
    """The landmark model on a size x size source; driving frames at the engine's driving size."""
    from talking_head import face as facelib
    from talking_head.engine import LANDMARK_DRIVING_SIZE, AnimateSettings, Engine
    from talking_head.models.base import TransferOptions
    from talking_head.registry import list_models, load_model

    card = list_models(LANDMARK_FAMILY)[0]
    model = load_model(card.name, device="cpu", pretrained=False)
    source = face_image(size)
    drive_size = card.resolution or LANDMARK_DRIVING_SIZE
    frames = driving_frames(drive_size, n_frames)

    mesh = facelib.FaceMesh(static_image_mode=False)
    try:
        landmarks_s = _best_time(lambda: [mesh.landmarks(f) for f in frames], repeats) / n_frames
    finally:
        mesh.close()

    state = model.prepare_source(source)
    reference = model.prepare_driving(frames[0])
    options = TransferOptions()
    animate_s = _best_time(lambda: model.animate(state, np.stack(frames), reference, options), repeats) / n_frames
    warp_s = max(0.0, animate_s - landmarks_s)

    engine = Engine(model, AnimateSettings(auto_crop=False, batch_size=8))
    engine.set_source(source)
    outputs: list[np.ndarray] = []

    def end_to_end():
        outputs[:] = [a.output for a in engine.animate(frames)]

    e2e_s = _best_time(end_to_end, repeats) / n_frames
    encode_s = bench_encode(outputs * max(1, 64 // len(outputs)))  # enough frames to amortise ffmpeg's start

    full_frames = [_padded(f, size) for f in frames]  # the face in a bigger frame, as in a real clip
    tracker = facelib.FaceTracker()
    crop_s = _best_time(lambda: [facelib.crop(f, tracker.update(f), drive_size) for f in full_frames],
                        repeats) / n_frames
    return LandmarkRow(size, landmarks_s * 1e3, warp_s * 1e3, crop_s * 1e3, encode_s * 1e3, 1.0 / e2e_s,
                       1.0 / (e2e_s + crop_s + encode_s))


def _padded(face: np.ndarray, size: int) -> np.ndarray:
    """``face`` scaled to half of a size x size frame, placed in it on a reflected background."""
    import cv2

    half = cv2.resize(face, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    pad = (size - size // 2) // 2
    return cv2.copyMakeBorder(half, pad, size - size // 2 - pad, pad, size - size // 2 - pad, cv2.BORDER_REFLECT)


# ------------------------------------------------------------------------------------------ torch models


@dataclass
class TorchRow:
    model: str
    device: str
    dtype: str
    resolution: int
    batch: int
    engine_fps: float | None
    naive_fps: float | None
    note: str = ""


def _autocast(device, dtype: str):
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16 if dtype == "fp16" else torch.bfloat16)


def bench_torch_model(name: str, device: str, dtypes: list[str], n_frames: int, batch_size: int,
                      repeats: int = 2) -> list[TorchRow]:
    """Engine path vs naive per-frame loop for one card, random weights."""
    import torch

    from talking_head.engine import AnimateSettings, Engine
    from talking_head.models.base import TransferOptions
    from talking_head.registry import get_card, load_model

    card = get_card(name)
    size = card.resolution or 256
    model = load_model(name, device=device, pretrained=False)
    source = face_image(size)
    frames = driving_frames(size, n_frames)
    options = TransferOptions()
    rows = []
    for dtype in dtypes:
        try:
            with _autocast(model.device, dtype):
                engine = Engine(model, AnimateSettings(options=options, auto_crop=False, batch_size=batch_size))
                engine.set_source(source)
                reference = model.prepare_driving(frames[0])

                def engine_pass():
                    for _ in engine.animate(frames):
                        pass

                def naive_pass():
                    for f in frames:
                        state = model.prepare_source(source)  # the published demos redo source work per frame
                        model.animate(state, f[None], reference, options)

                engine_s = _best_time(engine_pass, repeats)
                naive_s = _best_time(naive_pass, repeats)
            rows.append(TorchRow(name, str(model.device), dtype, size, batch_size, n_frames / engine_s,
                                 n_frames / naive_s))
        except (RuntimeError, TypeError) as err:  # e.g. an op without fp16 support
            rows.append(TorchRow(name, str(model.device), dtype, size, batch_size, None, None,
                                 note=f"unsupported: {str(err).splitlines()[0][:60]}"))
    model.close()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def default_models() -> list[str]:
    """One card per torch family (the first listed), in registry order."""
    from talking_head.registry import list_models

    seen, names = set(), []
    for card in list_models(kind="animator"):
        if card.family != LANDMARK_FAMILY and card.family not in seen:
            seen.add(card.family)
            names.append(card.name)
    return names


# ------------------------------------------------------------------------------------------ LivePortrait stages

LIVEPORTRAIT_STAGES = ("crop", "motion", "keypoints", "warp", "generate", "paste_back")


def bench_liveportrait_stages(device: str, precision: str, n_frames: int, batch_size: int,
                              repeats: int = 1) -> dict[str, float]:
    """Milliseconds per frame of each stage of LivePortrait's per-frame path, random weights.

    crop: face tracking + crop of a 512x512 driving frame; motion: the motion extractor; keypoints:
    transfer + stitching; warp: the warping network; generate: the SPADE decoder to 512x512;
    paste_back: blending the 512 result into the full picture. Source-only work is not counted.
    """
    import torch

    from talking_head import face as facelib
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.models import liveportrait
    from talking_head.models.base import TransferOptions
    from talking_head.registry import get_card

    half = {"fp32": False, "fp16": True, "bf16": "bf16"}[precision]
    model = liveportrait.create(get_card("liveportrait.human"), None, torch.device(device), half=half)
    engine = Engine(model, AnimateSettings(paste_back=True))
    picture = face_image(512)
    engine.set_source(picture)
    frames = driving_frames(512, n_frames)
    options = TransferOptions()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    totals = dict.fromkeys(LIVEPORTRAIT_STAGES, float("inf"))

    def one_pass():
        times = dict.fromkeys(LIVEPORTRAIT_STAGES, 0.0)
        engine.start_clip()
        for start in range(0, n_frames, batch_size):
            t0 = _clock()
            crops = np.stack([engine.driving_crop(f) for f in frames[start:start + batch_size]])
            t1 = _clock()
            with torch.inference_mode():
                motion = model.extract_motion(model._images(crops))
                sync()
                t2 = _clock()
                reference = model.prepare_driving(crops[0]) if start == 0 else reference
                out = model.drive(engine.source_state, crops, reference, options, render=False, motion=motion)
                sync()
                t3 = _clock()
                with model._autocast():
                    warped = model.nets.warping_module(engine.source_state.f_s, kp_driving=out["x_d"],
                                                       kp_source=engine.source_state.x_s,
                                                       cache=engine.source_state.warp_cache)
                    sync()
                    t4 = _clock()
                    image = model.nets.spade_generator(warped["out"]).float()
                    sync()
                t5 = _clock()
            results = (image.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for frame in results:
                facelib.paste_back(picture, frame, engine.source_box)
            t6 = _clock()
            for name, dt in zip(LIVEPORTRAIT_STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                times[name] += dt
        return times

    one_pass()  # warm-up
    for _ in range(repeats):
        for name, dt in one_pass().items():
            totals[name] = min(totals[name], dt)
    model.close()
    return {name: 1000.0 * t / n_frames for name, t in totals.items()}


# ------------------------------------------------------------------------------------------ output


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
             for r in [head, *rows]]
    return "\n".join(lines)


def _fps(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def machine_line() -> str:
    import os
    import platform

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, {gpu}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talking_head.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="cards to time (default: one per torch family); "
                                                    "`--models` alone skips them")
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 512], help="landmark-model sizes ('' skips)")
    parser.add_argument("--frames", type=int, default=16, help="driving frames per pass (default 16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (best is kept)")
    parser.add_argument("--devices", nargs="*", help="default: cpu, plus cuda when present")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of this process and ffmpeg, steadier on a "
                             "busy machine but blind to GPU time and to parallel speed-ups")
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(machine_line() + f"; {args.clock} clock")

    if args.sizes:
        from talking_head.registry import list_models

        if not list_models(LANDMARK_FAMILY):
            print("\nno landmark model registered; skipping its table")
        else:
            rows = []
            for size in args.sizes:
                r = bench_landmark(size, args.frames, args.repeats)
                rows.append((f"{r.size}", f"{r.landmarks_ms:.1f}", f"{r.warp_ms:.1f}", f"{r.crop_ms:.1f}",
                             f"{r.encode_ms:.1f}", f"{r.fps:.1f}", f"{r.fps_all:.1f}"))
                print(f"  landmark {size}: done", file=sys.stderr)
            print(f"\nlandmark model, CPU, {args.frames} frames: ms per frame for driving landmarks, warp of the "
                  f"size x size source, face tracking + crop of a size x size driving frame, H.264 encoding; "
                  f"fps through the engine without crop and encoding, and with both")
            print(_table(("size", "landmarks ms", "warp ms", "crop ms", "encode ms", "fps", "fps all"), rows))

    names = default_models() if args.models is None else args.models
    if names:
        rows = []
        for device in devices:
            dtypes = ["fp32"] + (["fp16", "bf16"] if device.startswith("cuda") else [])
            for name in names:
                for r in bench_torch_model(name, device, dtypes, args.frames, args.batch_size, args.repeats):
                    speedup = (f"{r.engine_fps / r.naive_fps:.2f}x" if r.engine_fps and r.naive_fps else "-")
                    rows.append((r.model, r.device, r.dtype, f"{r.resolution}", f"{r.batch}", _fps(r.engine_fps),
                                 _fps(r.naive_fps), speedup, r.note))
                    print(f"  {r.model} {r.device} {r.dtype}: done", file=sys.stderr)
        print(f"\ntorch models, random weights, {args.frames} frames: engine (source cached, batched) "
              f"vs naive (source recomputed per frame, batch 1)")
        print(_table(("model", "device", "dtype", "res", "batch", "engine fps", "naive fps", "speed-up", "note"), rows))

    if any(n.startswith("liveportrait") for n in names):
        rows = []
        for device in devices:
            for precision in ["fp32"] + (["fp16", "bf16"] if device.startswith("cuda") else []):
                ms = bench_liveportrait_stages(device, precision, args.frames, args.batch_size)
                total = sum(ms.values())
                rows.append((device, precision, *(f"{ms[k]:.1f}" for k in LIVEPORTRAIT_STAGES), f"{total:.1f}",
                             f"{1000.0 / total:.1f}"))
                print(f"  liveportrait stages {device} {precision}: done", file=sys.stderr)
        print(f"\nLivePortrait per-frame stages, ms per frame, {args.frames} frames in batches of {args.batch_size}, "
              f"512x512 driving frames, output pasted back (source-only work excluded)")
        print(_table(("device", "dtype", *LIVEPORTRAIT_STAGES, "total ms", "fps"), rows))
    return 0


if __name__ == "__main__":
    from talking_head.native_logs import filter_native_stderr

    filter_native_stderr()
    sys.exit(main())
