"""The benchmark script runs and prints its tables (numbers are for people; no timing asserts)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_prints_landmark_and_model_tables():
    run = subprocess.run(
        [sys.executable, "-m", "talking_head.bench", "--models", "x2face.released", "--sizes", "256",
         "--frames", "2", "--batch-size", "2", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    landmark_row = re.search(r"^256\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert landmark_row, out
    assert all(float(v) > 0 for v in landmark_row.groups())
    # model, device, path, res, batch, fps, vs fp32, GFLOP/frame, GFLOP/s, of peak
    model_row = re.search(r"^x2face\.released\s+cpu\s+fp32 \*?\s*256\s+2\s+([\d.]+)\s+1\.00x\s+([\d.]+)\s+([\d.]+)\s+(\d+)%",
                          out, re.M)
    assert model_row, out
    fps, gflop, gflops, _ = map(float, model_row.groups())
    assert fps > 0 and gflop > 1.0 and gflops > 0  # X2Face's networks cost ~20 GFLOP per frame at 256
    assert "peak estimated as" in out
