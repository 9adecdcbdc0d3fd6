"""Command line: ``python -m talking_head animate|generate|models|evaluate|live``.

    python -m talking_head animate --source face.jpg --driving talk.mp4 --model landmark --out out.mp4
    python -m talking_head generate --model mocoganhd.faceforensics256 --seed 7 --frames 32 --out clip.mp4 --still face.png
    python -m talking_head models
    python -m talking_head evaluate --model fomm.vox VIDEO...

User errors (TalkingHeadError) print the message and a hint to stderr and exit with status 2,
without a traceback and without leaving a half-written output.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from talking_head.errors import BadInputError, TalkingHeadError
from talking_head.precision import PRECISIONS

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130
TRUST_HELP = ("keep a weights file whose size or sha256 differs from the model card's (remembered for that file; "
              "same as TALKING_HEAD_TRUST_FILES=1)")


# ----------------------------------------------------------------------------------------- options


def parse_control_values(card, pairs: list[str]) -> dict:
    """``["name=value", ...]`` -> every control's value (defaults for those not given), checked by the card."""
    given: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            known = ", ".join(sorted(c.name for c in card.controls)) or "none"
            raise BadInputError(f"--set expects name=value, got '{pair}'.", f"Controls of {card.name}: {known}.")
        name, raw = (s.strip() for s in pair.split("=", 1))
        given[name] = raw
    return card.control_values(given)


def animate_settings(args, card):
    from talking_head.engine import AnimateSettings, transfer_options

    if args.best_frame and args.reference is not None:
        raise BadInputError("--best-frame and --reference cannot be used together.", "Pick one of them.")
    if args.batch_size < 1:
        raise BadInputError(f"--batch-size must be at least 1, got {args.batch_size}.", "Use e.g. --batch-size 8.")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise BadInputError(f"--max-seconds must be positive, got {args.max_seconds}.", "Use e.g. --max-seconds 5.")
    if args.crop_scale is not None and args.crop_scale <= 0:
        raise BadInputError(f"--crop-scale must be positive, got {args.crop_scale}.", "Use e.g. --crop-scale 2.2.")
    options = transfer_options(card, args.mode, args.adapt_scale, parse_control_values(card, args.set))
    reference = "best" if args.best_frame else (args.reference if args.reference is not None else "first")
    return AnimateSettings(
        options=options,
        reference=reference,
        auto_crop=not args.no_crop,
        crop_scale=args.crop_scale,
        crop_offset_y=args.crop_offset_y,
        paste_back=args.paste_back,
        output_size=args.output_size,
        batch_size=args.batch_size,
        precision=args.precision,
        compile="default" if getattr(args, "compile", False) else None,
    )


# ----------------------------------------------------------------------------------------- commands


def check_device(name: str | None) -> None:
    """A clear error for a device this machine does not have (torch would raise deep inside)."""
    if not name or name == "auto" or name == "cpu":
        return
    import torch

    match = re.fullmatch(r"(cuda|mps)(?::(\d+))?", name)
    if match is None:
        raise BadInputError(f"Unknown device '{name}'.", "Use cpu, cuda, cuda:N or mps (or leave --device out).")
    kind, index = match.group(1), int(match.group(2) or 0)
    if kind == "cuda":
        ok = torch.cuda.is_available() and index < torch.cuda.device_count()
    else:
        ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if not ok:
        raise BadInputError(f"This machine has no device '{name}'.", "Leave --device out to use the best one there is.")


def _default_out(source: str, driving: str) -> Path:
    return Path("outputs") / f"{Path(source).stem}_{Path(driving).stem}.mp4"


def _check_out_path(out: Path, *others: Path | None) -> None:
    if out.suffix.lower() != ".mp4":
        raise BadInputError(f"The output '{out}' must end in .mp4.", "Give a name like out.mp4.")
    for other in others:
        if other is not None and Path(other).resolve() == out.resolve():
            raise BadInputError(f"The output '{out}' would overwrite an input.", "Choose another output name.")


def cmd_animate(args) -> int:
    from talking_head.engine import animate_file
    from talking_head.registry import get_card, load_model

    card = get_card(args.model, kind="animator")
    settings = animate_settings(args, card)
    out = Path(args.out) if args.out else _default_out(args.source, args.driving)
    side = Path(args.side_by_side) if args.side_by_side else None
    _check_out_path(out, Path(args.source), Path(args.driving))
    if side is not None:
        _check_out_path(side, Path(args.source), Path(args.driving), out)
    # Check the inputs before the (slow) model load, so bad files fail fast.
    from talking_head import video

    video.load_image(args.source)
    video.VideoReader(args.driving)
    check_device(args.device)

    printer = _download_printer(args.quiet)
    try:
        model = load_model(card.name, device=args.device, allow_download=not args.offline,
                           progress=printer, trust=True if args.trust_file else None)
    finally:
        if printer:
            printer.close()
    bar = _progress_bar(args.quiet)
    try:
        report = animate_file(
            args.source, args.driving, out, model, settings, side_by_side_path=side,
            max_seconds=args.max_seconds, progress=bar.update if bar else None,
        )
    finally:
        if bar:
            bar.close()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    speed = report.frames / report.seconds if report.seconds > 0 else 0.0
    audio = "with the driving clip's audio" if report.has_audio else "no audio"
    print(f"wrote {report.path}: {report.frames} frames at {report.fps:g} fps, {audio} "
          f"({report.seconds:.1f} s, {speed:.1f} frames/s, reference frame {report.reference_index})")
    if report.side_by_side_path:
        print(f"wrote {report.side_by_side_path} (side by side)")
    return EXIT_OK


def cmd_generate(args) -> int:
    from talking_head.generate import GenerateSettings, check_outputs, check_weights, generate_files
    from talking_head.registry import get_card, load_model

    card = get_card(args.model, kind="generator")
    settings = GenerateSettings(frames=args.frames, seed=args.seed, motion_seed=args.motion_seed,
                                interpolation=args.interpolation, noise=args.noise, fps=args.fps).resolved()
    check_outputs(args.out, args.still)
    check_device(args.device)
    check_weights(card)
    model = load_model(card.name, device=args.device, allow_download=not args.offline, kind="generator")
    bar = _progress_bar(args.quiet, "generating")
    try:
        report = generate_files(model, settings, clip=args.out, still=args.still, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    seeds = f"seed {report.seed}, motion seed {report.motion_seed}"
    if report.clip:
        print(f"wrote {report.clip}: {report.frames} frames at {report.fps:g} fps ({seeds}, {report.seconds:.1f} s)")
    if report.still:
        print(f"wrote {report.still} (the generated face, {seeds})")
    return EXIT_OK


class _Bar:
    """A tqdm bar that appears with the first frame (not before the inputs are checked)."""

    def __init__(self, desc: str = "animating"):
        self._tqdm = None
        self.desc = desc

    def update(self, done: int, total: int) -> None:
        if self._tqdm is None:
            from tqdm import tqdm

            self._tqdm = tqdm(total=total or None, unit="frame", desc=self.desc, file=sys.stderr, dynamic_ncols=True)
        if total and self._tqdm.total != total:
            self._tqdm.total = max(total, done)
            self._tqdm.refresh()
        self._tqdm.update(done - self._tqdm.n)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def _progress_bar(quiet: bool, desc: str = "animating"):
    return None if quiet else _Bar(desc)


class _DownloadBar:
    """Download progress (fraction, message) as a tqdm bar per file; other messages as their own line."""

    def __init__(self):
        self._tqdm = None
        self._label = None

    def __call__(self, fraction: float, message: str) -> None:
        from tqdm import tqdm

        if message != self._label and message.startswith("downloading"):
            self.close()
            self._label = message
            self._tqdm = tqdm(total=1000, desc=message, file=sys.stderr, dynamic_ncols=True,
                              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        if message == self._label and self._tqdm is not None:
            self._tqdm.update(max(0, int(fraction * 1000) - self._tqdm.n))
        elif message != self._label:
            self.close()
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        self._tqdm = self._label = None


def _download_printer(quiet: bool):
    return None if quiet else _DownloadBar()


def _weights_lines(summary) -> list[str]:
    """One line per file: where it is and what it is, or where to get it."""
    lines = []
    for wf, found, kind, phrase in summary.files:
        size = f", {wf.size_mb:,.1f} MB" if wf.size_mb else ""
        lines.append(f"{wf.filename}: present at {found}: {phrase}" if found
                     else f"{wf.filename}: missing{size}; {phrase}")
    return lines


def cmd_models(args) -> int:
    from talking_head.registry import list_models

    from talking_head.model_summary import summarize

    cards = list_models()
    if args.names:
        for card in cards:
            print(card.name)
        return EXIT_OK
    rows = [("name", "resolution", "size", "license", "weights", "from", "title")]
    details = []
    for card in cards:
        summary = summarize(card)
        state = summary.state + (f" ({summary.check})" if summary.check and summary.state != "file problem" else "")
        rows.append((card.name, f"{card.resolution}" if card.resolution else "any", summary.size_words(),
                     summary.license, state, summary.source, card.title))
        details.append((card, summary))
    last = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(last)]
    for r in rows:
        print("  ".join(r[i].ljust(widths[i]) for i in range(last)) + "  " + r[last])
    for card, summary in details:
        lines = _weights_lines(summary)
        print(f"\n{card.name} ({card.family}, {card.resolution or 'any'} px{', generator' if not card.is_animator else ''})")
        print(f"  license: {card.license}")
        for line in lines or ["no weight files needed"]:
            print(f"  weights: {line}")
        if args.verbose:
            print(f"  {card.description}")
            if card.good_at:
                print(f"  good at: {card.good_at}")
            if card.bad_at:
                print(f"  bad at: {card.bad_at}")
            if card.paper:
                print(f"  paper: {card.paper}")
            if card.code:
                print(f"  code: {card.code}")
            print(f"  modes: {', '.join(card.modes)} (default {card.default_mode})")
            for c in card.controls:
                print(f"  --set {c.name}=<{c.kind}> (default {c.default}) {c.help}")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from talking_head.evaluate import evaluate_files, format_table

    from talking_head.registry import get_card

    check_device(args.device)
    controls = parse_control_values(get_card(args.model, "animator"), args.set) if args.set else None
    scores = evaluate_files(
        args.model, args.videos, device=args.device, max_seconds=args.max_seconds, auto_crop=not args.no_crop,
        batch_size=args.batch_size, allow_download=not args.offline, quiet=args.quiet, controls=controls,
        trust=True if args.trust_file else None,
    )
    print(format_table(scores, args.model))
    return EXIT_OK


def cmd_live(args) -> int:
    return run_live(list(args.live_args))


def run_live(argv: list[str]) -> int:
    """``live`` belongs to talking_head.live (imported only now); its own parser reads ``argv``."""
    try:
        import talking_head.live as live
    except ModuleNotFoundError as err:
        if err.name != "talking_head.live":
            raise
        raise TalkingHeadError("Live mode is not available in this installation.", "Use `animate` instead.") from None
    result = live.main(argv)
    return int(result or 0)


# ----------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from talking_head.registry import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="python -m talking_head", description="Animate a face picture.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser("animate", help="animate a source picture with a driving clip, write an MP4")
    a.add_argument("--source", "-s", required=True, help="source face picture (JPEG/PNG ...)")
    a.add_argument("--driving", "-d", required=True, help="driving video (or a picture: one frame)")
    a.add_argument("--model", "-m", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL}; see `models`)")
    a.add_argument("--out", "-o", help="output .mp4 (default outputs/<source>_<driving>.mp4)")
    a.add_argument("--mode", help="relative (default), absolute, or a family mode such as standard/avd")
    a.add_argument("--adapt-scale", action=argparse.BooleanOptionalAction, default=None,
                   help="scale relative motion to the source face's size (default on)")
    ref = a.add_mutually_exclusive_group()
    ref.add_argument("--best-frame", action="store_true",
                     help="reference = the driving frame whose pose best matches the source")
    ref.add_argument("--reference", type=int, metavar="N", help="reference = driving frame N (default 0)")
    a.add_argument("--no-crop", action="store_true", help="use the whole pictures, no face crop")
    a.add_argument("--crop-scale", type=float, help="crop size relative to the face box")
    a.add_argument("--crop-offset-y", type=float, help="vertical crop shift relative to the face box")
    a.add_argument("--paste-back", action="store_true", help="blend the animated face into the full source picture")
    a.add_argument("--output-size", type=int, help="resize the animated crop to this many pixels")
    a.add_argument("--side-by-side", metavar="PATH", help="also write a source|driving|output|keypoints|mask video")
    a.add_argument("--max-seconds", type=float, help="animate only the first seconds of the driving clip")
    a.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    a.add_argument("--batch-size", type=int, default=8, help="frames per forward pass (default 8)")
    a.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): bf16 on CPUs with AMX/AVX-512 BF16 and fp16 on CUDA where the family's fast "
                        "path is exact enough, else fp32; fp32 forces the reference path")
    a.add_argument("--compile", action="store_true",
                   help="torch.compile the networks: faster frames after a one-time compile of about half a minute "
                        "on 2 cores (pays off for clips of a minute or more); needs a C++ compiler on the CPU")
    a.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a model control (see `models --verbose`), repeatable")
    a.add_argument("--offline", action="store_true", help="never download weights")
    a.add_argument("--trust-file", action="store_true", help=TRUST_HELP)
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.set_defaults(handler=cmd_animate)

    g = sub.add_parser("generate", help="generate a face (and its motion) that does not exist: an MP4 and/or a still")
    g.add_argument("--model", "-m", default="mocoganhd.faceforensics256", help="a generator model (see `models`)")
    g.add_argument("--seed", type=int, help="face seed (default: random; printed so it can be repeated)")
    g.add_argument("--motion-seed", type=int, help="motion seed (default: the face seed)")
    g.add_argument("--frames", type=int, default=32, help="frames in the clip (default 32)")
    g.add_argument("--out", "-o", help="the clip, .mp4")
    g.add_argument("--still", help="the generated face alone (the clip's first frame), .png/.jpg")
    g.add_argument("--interpolation", action=argparse.BooleanOptionalAction, default=False,
                   help="insert a midpoint latent between motion steps: smoother, slower motion (default off)")
    g.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True,
                   help="StyleGAN2 per-layer noise (fine detail; default on)")
    g.add_argument("--fps", type=float, help="frame rate of the clip (default: the model's, 10)")
    g.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    g.add_argument("--offline", action="store_true", help="never download weights")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    g.set_defaults(handler=cmd_generate)

    m = sub.add_parser("models", help="list the models, their licenses and weight files")
    m.add_argument("--verbose", "-v", action="store_true", help="also descriptions, modes and controls")
    m.add_argument("--names", action="store_true", help="only the names")
    m.set_defaults(handler=cmd_models)

    e = sub.add_parser(
        "evaluate", help="self-reenactment scores of a model on clips (source = first frame)",
        description="Self-reenactment: each clip's first frame animated by the clip, compared with the clip. "
                    "Prints per clip and on average L1, AKD by MediaPipe and by dlib's 68-point predictor (a detector "
                    "no model here uses), and the correlation r and gain of eye opening, mouth opening and mouth "
                    "width, beside a no-motion baseline. Needs the evaluation extra: pip install -r "
                    "requirements-eval.txt. The dlib predictor was trained on iBUG 300-W, which restricts "
                    "commercial use: use it to measure only.")
    e.add_argument("--model", "-m", default=DEFAULT_MODEL)
    e.add_argument("videos", nargs="+", metavar="VIDEO")
    e.add_argument("--max-seconds", type=float, help="use only the first seconds of each clip")
    e.add_argument("--no-crop", action="store_true", help="use whole frames, no face crop")
    e.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a model control, repeatable")
    e.add_argument("--device")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--offline", action="store_true")
    e.add_argument("--trust-file", action="store_true", help=TRUST_HELP)
    e.add_argument("--quiet", "-q", action="store_true")
    e.set_defaults(handler=cmd_evaluate)

    lv = sub.add_parser("live", help="animate from a webcam (options: `live --help`)", add_help=False)
    lv.add_argument("live_args", nargs=argparse.REMAINDER)
    lv.set_defaults(handler=cmd_live)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["live"]:  # argparse's REMAINDER drops a leading option such as --help
        return _guarded(lambda: run_live(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    return _guarded(lambda: args.handler(args))


def _guarded(run) -> int:
    """Run a command; a TalkingHeadError becomes a message + hint on stderr and exit status 2."""
    try:
        return run()
    except TalkingHeadError as err:
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(err.hint, file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("cancelled (no partial output is left behind)", file=sys.stderr)
        return EXIT_CANCELLED
