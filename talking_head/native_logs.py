"""Keep MediaPipe's native (C++) log lines out of a terminal program's output.

MediaPipe's graphs print warnings such as ``W0000 ... inference_feedback_manager.cc ...`` straight to
file descriptor 2 from their own threads, where no Python setting reaches them; in the CLI they
break the progress bar. ``filter_native_stderr()`` routes fd 2 through a pipe that drops those
lines and passes everything else on; Python's own ``sys.stderr`` keeps writing to the terminal
directly, so progress bars and error messages are untouched.
"""
from __future__ import annotations

import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]"  # absl/glog lines: W0000 00:00:1795.. 123 file.cc:114]
    rb"|WARNING: All log messages before absl::InitializeLog"
    rb"|INFO: Created TensorFlow Lite \w+ delegate)"
)


def _forward(read_fd: int, real_fd: int) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:
            if not NOISE.match(line):
                os.write(real_fd, line)


def filter_native_stderr() -> None:
    """Install the filter for the rest of the process (call once, from a program's entry point)."""
    real_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = os.fdopen(os.dup(real_fd), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    threading.Thread(target=_forward, args=(read_fd, real_fd), daemon=True, name="native-stderr-filter").start()
