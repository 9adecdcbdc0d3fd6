"""Speed on this machine: ``python -m talking_head.bench [--models ...] [--sizes 256 512] [--frames N]``.

Tables:

1. the landmark model (no network weights) at each ``--sizes``: milliseconds per frame for the
   driving landmarks, the warp, the driving face tracking + crop, and H.264 encoding, and frames/s
   through the engine without (crop, encoding) and with them;
2. every registered torch model (one card per family unless ``--models`` names cards), built with
   ``pretrained=False`` (random weights: speed does not depend on the values): frames/s through the
   engine (source prepared once, frames in batches) on the fp32 reference path and on the path the
   engine picks by itself (``talking_head.precision``), GFLOP per frame (torch.utils.flop_counter),
   achieved GFLOP/s against an estimate of this CPU's peak, the published demo loop from a checkout
   (``--reference DIR``, ``bench_reference.py``) and, with ``--exactness``, each path's difference
   to fp32 on the parity fixtures;
3. on CUDA (or with ``--stages``): per-stage ms (face tracking + crop, model, paste-back) and fps
   per precision and ``torch.compile`` mode (``--compile``), the fastest mode marked.

Times are wall-clock (``--clock cpu``: CPU time), the best of ``--repeats`` whole passes after one
warm-up pass (other processes only ever add time); nothing is asserted.
"""
from __future__ import annotations

import argparse
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
    precision: str  # as asked for: fp32 (the reference path), bf16, fp16
    fast: bool  # the path the engine picks by itself ("auto")
    resolution: int
    batch: int
    fps: float | None
    gflop_per_frame: float | None = None
    note: str = ""
    compile: str = "none"  # torch.compile mode of the networks ("none": eager)

    @property
    def gflops(self) -> float | None:
        return None if not (self.fps and self.gflop_per_frame) else self.fps * self.gflop_per_frame


def flops_per_frame(engine, frames: list[np.ndarray]) -> float:
    """GFLOP per frame of the engine's model path (torch.utils.flop_counter: convolutions, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        for _ in engine.animate(frames):
            pass
    return counter.get_total_flops() / 1e9 / len(frames)


def bench_torch_model(name: str, device: str, precisions: list[str], n_frames: int, batch_size: int,
                      repeats: int = 2, compile_modes: tuple[str, ...] = ("none",)) -> list[TorchRow]:
    """Frames/s of one card through the engine (source prepared once, batches) per precision, random weights.

    ``precisions`` may hold "auto": the path the engine picks by itself (reported under the name it
    resolves to, marked fast). The reference path is "fp32".
    """
    import torch

    from talking_head import precision as precisionlib
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.registry import get_card, load_model

    card = get_card(name)
    size = card.resolution or 256
    source = face_image(size)
    frames = driving_frames(size, n_frames)
    rows = []
    for mode in compile_modes:
        model = load_model(name, device=device, pretrained=False)  # a fresh one per mode: compiling wraps it
        fast = precisionlib.resolve("auto", model)
        wanted = list(dict.fromkeys(fast if p == "auto" else p for p in precisions))
        for precision in wanted:
            try:
                engine = Engine(model, AnimateSettings(auto_crop=False, batch_size=batch_size, precision=precision,
                                                       compile=mode))
                start = time.perf_counter()
                engine.set_source(source)

                def engine_pass():
                    for _ in engine.animate(frames):
                        pass

                engine_pass()  # warm-up, and compilation
                first_s = time.perf_counter() - start
                seconds = _best_time(engine_pass, repeats)
                gflop = (flops_per_frame(engine, frames[:batch_size])
                         if mode == "none" and (device == "cpu" or precision == "fp32") else None)
                note = "" if mode == "none" else f"first pass (compiling) {first_s:.0f} s"
                rows.append(TorchRow(name, str(model.device), precision, precision == fast and mode == "none", size,
                                     batch_size, n_frames / seconds, gflop, note, mode))
            except (RuntimeError, TypeError) as err:  # e.g. an op without fp16 support, no C++ compiler
                rows.append(TorchRow(name, str(model.device), precision, precision == fast and mode == "none", size,
                                     batch_size, None, note=f"unsupported: {str(err).splitlines()[0][:60]}",
                                     compile=mode))
        model.close()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return rows


def cpu_peak_gflops(precision: str, threads: int) -> tuple[float, str]:
    """Estimated peak GFLOP/s of ``threads`` cores of this CPU for ``precision``, and how it was estimated.

    cores x clock (the highest 'cpu MHz' in /proc/cpuinfo) x flops per cycle per core: 2 FMA units of
    the widest vectors the CPU reports (AVX-512: 64 fp32 flops/cycle, AVX2+FMA: 32, else 8); for bf16,
    AMX tiles 1024 flops/cycle (one 16x32x16 TDPBF16PS per 16 cycles), AVX-512 BF16 128, else as fp32.
    """
    from pathlib import Path

    from talking_head.precision import cpu_flags

    mhz = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    except (OSError, ValueError):
        pass
    ghz = mhz / 1000.0 or 2.0
    flags = cpu_flags()
    per_cycle, unit = (64, "AVX-512 FMA") if "avx512f" in flags else ((32, "AVX2 FMA") if "fma" in flags else (8, "SSE"))
    if precision == "bf16" and "amx_bf16" in flags:
        per_cycle, unit = 1024, "AMX bf16"
    elif precision == "bf16" and "avx512_bf16" in flags:
        per_cycle, unit = 128, "AVX-512 BF16"
    return threads * ghz * per_cycle, f"{threads} cores x {ghz:.2f} GHz x {per_cycle} flop/cycle ({unit})"


def default_models() -> list[str]:
    """One card per torch family (the first listed), in registry order."""
    from talking_head.registry import list_models

    seen, names = set(), []
    for card in list_models(kind="animator"):
        if card.family != LANDMARK_FAMILY and card.family not in seen:
            seen.add(card.family)
            names.append(card.name)
    return names


# ------------------------------------------------------------------------------------------ stages (GPU)

STAGES = ("crop", "model", "paste_back")


def bench_stages(name: str, device: str, precision: str, compile_mode: str | None, n_frames: int, batch_size: int,
                 repeats: int = 1) -> dict[str, float]:
    """Milliseconds per frame of the live/offline path of one card: crop, model, paste-back (random weights).

    crop: face tracking + crop of a 512x512 driving frame (the face fills half of it); model: the
    engine's batch (upload, networks under ``precision`` and ``compile_mode``, download); paste_back:
    blending each result into the 512x512 source picture.
    """
    import torch

    from talking_head import face as facelib
    from talking_head import precision as precisionlib
    from talking_head.engine import AnimateSettings, Engine
    from talking_head.registry import load_model

    model = load_model(name, device=device, pretrained=False)
    precisionlib.compile_networks(model, compile_mode)
    engine = Engine(model, AnimateSettings(batch_size=batch_size, precision=precision))
    picture = face_image(512)
    engine.set_source(picture)
    full = [_padded(f, 512) for f in driving_frames(512, n_frames)]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def one_pass():
        times = dict.fromkeys(STAGES, 0.0)
        engine.start_clip()
        for start in range(0, n_frames, batch_size):
            t0 = _clock()
            crops = [engine.driving_crop(f) for f in full[start:start + batch_size]]
            t1 = _clock()
            if not engine.calibrated:
                engine.set_reference(full[0])
            results = engine._animate_batch(crops, start)
            sync()
            t2 = _clock()
            for r in results:
                facelib.paste_back(picture, r.result.frame, engine.source_box)
            t3 = _clock()
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2)):
                times[stage] += dt
        return times

    one_pass()  # warm-up (and compilation)
    best = dict.fromkeys(STAGES, float("inf"))
    for _ in range(repeats):
        for stage, dt in one_pass().items():
            best[stage] = min(best[stage], dt)
    model.close()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {stage: 1000.0 * t / n_frames for stage, t in best.items()}


def print_stage_table(names: list[str], device: str, args) -> None:
    """Per card, precision and compile mode: ms per stage and fps with crop and paste-back; best mode marked."""
    rows = []
    precisions = list(dict.fromkeys(["fp32", "fp16", "bf16"] if device.startswith("cuda") else args.precisions))
    for name in names:
        for precision in precisions:
            timed = []
            for mode in args.compile or ["none", "default"]:
                try:
                    ms = bench_stages(name, device, precision, mode, args.frames, args.batch_size, args.repeats)
                    timed.append((mode, ms, sum(ms.values())))
                except Exception as err:  # noqa: BLE001 - a compile or dtype failure is a row, not the end of the bench
                    rows.append((name, precision, mode, "-", "-", "-", "-", "-", f"failed: {str(err).splitlines()[0][:60]}"))
                print(f"  stages {name} {device} {precision} {mode}: done", file=sys.stderr)
            fastest = min((t[2] for t in timed), default=None)
            for mode, ms, total in timed:
                rows.append((name, precision, mode + (" *" if total == fastest and len(timed) > 1 else ""),
                             *(f"{ms[s]:.1f}" for s in STAGES), f"{total:.1f}", f"{1000.0 / total:.1f}", ""))
    print(f"\nper-stage ms per frame on {device}, {args.frames} frames of 512x512 in batches of {args.batch_size}, "
          f"crop (face tracking) and paste-back included; * = fastest torch.compile mode")
    print(_table(("model", "dtype", "compile", *STAGES, "total ms", "fps", "note"), rows))


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


def exactness_of(family: str, precision: str) -> dict | None:
    """Mean/max grey-level difference of ``precision`` vs fp32 on the family's parity fixture (tests/)."""
    if precision == "fp32":
        return {"mean": 0.0, "max": 0.0}
    try:
        from tests.parity_runners import FIXTURE_DIR, fast_path_difference
        from tests.test_parity import load_fixture
    except ImportError:
        return None
    paths = sorted(FIXTURE_DIR.glob(f"{family}-*.npz"))
    if not paths:
        return None
    return fast_path_difference(load_fixture(paths[0]), precision, frames=1)


def published_fps(name: str, device: str, root: Path, frames: list[np.ndarray], repeats: int) -> float | None:
    """Frames/s of the published demo loop for ``name``'s family (CPU), None when not checked out."""
    from talking_head.bench_reference import published_loop
    from talking_head.registry import get_card, load_model

    if device != "cpu":
        return None
    card = get_card(name)
    model = load_model(name, device="cpu", pretrained=False)
    loop = published_loop(card.family, root, model, face_image(card.resolution or 256), frames)
    if loop is None:
        return None
    return len(frames) / _best_time(loop, repeats)


def print_model_table(names: list[str], device: str, args) -> None:
    """Per card: fps of the fast path and of fp32, GFLOP/s against the peak, the published loop."""
    import torch

    rows = []
    for name in names:
        from talking_head.registry import get_card

        card = get_card(name)
        result = bench_torch_model(name, device, args.precisions, args.frames, args.batch_size, args.repeats,
                                   tuple(args.compile or ["none"]))
        fp32 = next((r.fps for r in result if r.precision == "fp32"), None)
        published, failed = None, ""
        if args.reference:
            try:
                published = published_fps(name, device, args.reference,
                                          driving_frames(card.resolution or 256, args.frames), args.repeats)
            except (ImportError, AttributeError, RuntimeError, TypeError, KeyError) as err:  # their code, our packages
                failed = f"published loop failed: {str(err).splitlines()[0][:70]}"
        gflop = next((r.gflop_per_frame for r in result if r.gflop_per_frame), None)
        for r in result:
            peak = ""
            if r.gflop_per_frame is None and r.fps and gflop:  # compiled: the same work per frame
                r.gflop_per_frame = gflop
            if r.gflops and device == "cpu":
                peak_gflops, _ = cpu_peak_gflops(r.precision, torch.get_num_threads())
                peak = f"{100.0 * r.gflops / peak_gflops:.0f}%"
            exact = exactness_of(card.family, r.precision) if args.exactness else None
            path = r.precision + ("" if r.compile == "none" else f" compiled ({r.compile})") + (" *" if r.fast else "")
            rows.append((r.model, r.device, path, f"{r.resolution}", f"{r.batch}",
                         _fps(r.fps), f"{r.fps / fp32:.2f}x" if (r.fps and fp32) else "-",
                         "-" if r.gflop_per_frame is None else f"{r.gflop_per_frame:.1f}",
                         "-" if r.gflops is None else f"{r.gflops:.0f}", peak or "-",
                         _fps(published), f"{r.fps / published:.2f}x" if (r.fps and published) else "-",
                         "-" if exact is None else f"{exact['mean']:.2f}/{exact['max']:.0f}", r.note or failed))
            print(f"  {r.model} {r.device} {r.precision}: done", file=sys.stderr)
    print(f"\ntorch models on {device}, random weights, {args.frames} frames of {rows[0][3] if rows else '?'}px driving, "
          f"source prepared once, batches of {args.batch_size}; * = the path the engine picks by itself (auto)")
    if device == "cpu":
        from talking_head.precision import cpu_features

        _, how = cpu_peak_gflops("fp32", torch.get_num_threads())
        print(f"CPU: {cpu_features()}; fp32 peak estimated as {how}" + ("" if args.reference else
              "; published loops: pass --reference DIR"))
    print(_table(("model", "device", "path", "res", "batch", "fps", "vs fp32", "GFLOP/frame", "GFLOP/s", "of peak",
                  "published fps", "vs published", "diff mean/max", "note"), rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m talking_head.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="cards to time (default: one per torch family); "
                                                    "`--models` alone skips them")
    parser.add_argument("--sizes", nargs="*", type=int, default=[256, 512], help="landmark-model sizes ('' skips)")
    parser.add_argument("--frames", type=int, default=16, help="driving frames per pass (default 16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (best is kept)")
    parser.add_argument("--devices", nargs="*", help="default: cpu, plus cuda when present")
    parser.add_argument("--precisions", nargs="*", default=["fp32", "auto"],
                        help="paths to time (default: fp32, the reference, and auto, what the engine picks); "
                             "e.g. `--precisions fp32 bf16` forces bf16 where auto keeps fp32")
    parser.add_argument("--reference", metavar="DIR", type=Path,
                        help="folder with checkouts of the published repositories (first-order-model, "
                             "articulated-animation, Thin-Plate-Spline-Motion-Model): also time their demo loops")
    parser.add_argument("--compile", nargs="*",
                        help="torch.compile modes to time (none = eager; e.g. default, reduce-overhead, "
                             "max-autotune-no-cudagraphs): model table rows per mode (default: eager only) and the "
                             "stage table (default: none and default)")
    parser.add_argument("--stages", action="store_true", help="also print the stage table on the CPU (always on CUDA)")
    parser.add_argument("--exactness", action="store_true",
                        help="also measure each fast path's difference to fp32 on the parity fixtures "
                             "(needs the repository's tests/; slow where bf16 is emulated)")
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
    from talking_head.errors import UnknownModelError
    from talking_head.registry import get_card

    try:
        for name in names:  # before any timing: a typo should not cost the minutes of the rows before it
            get_card(name)
    except UnknownModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if names:
        for device in devices:
            print_model_table(names, device, args)
            if device.startswith("cuda") or args.stages:
                print_stage_table(names, device, args)
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
