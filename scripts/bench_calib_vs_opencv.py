#!/usr/bin/env python3
"""Speed of `stipple calibrate`'s stages against OpenCV's, side by side, on the same views.

Runs `cargo bench --bench calib` (criterion: board detection per 1280x720 view, the corner fit
included, and the solve over 14 views), then times OpenCV on the very same views
(`stipple synth-board --seed 2024 --count 14`): findChessboardCorners (default flags) +
cornerSubPix((11, 11), 30 iterations, 0.001) per view, and calibrateCamera (default flags) on
the 14 views' corners, one thread. Prints the medians and the ratios.

    python3 -m venv /tmp/venv-calib && /tmp/venv-calib/bin/pip install opencv-python-headless numpy
    /tmp/venv-calib/bin/python scripts/bench_calib_vs_opencv.py
"""
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import criterion_median_ms, run_bench_and_build  # noqa: E402

SEED = 2024
VIEWS = 14
RUNS = 5
BOARD = (9, 6)
SQUARE_MM = 3.0


def main():
    stipple = run_bench_and_build("calib", 5)
    cv2.setNumThreads(1)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)
    objp = np.zeros((BOARD[0] * BOARD[1], 3), np.float32)
    objp[:, :2] = np.mgrid[0:BOARD[0], 0:BOARD[1]].T.reshape(-1, 2) * SQUARE_MM
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([stipple, "synth-board", "--seed", str(SEED), "--out", tmp, "--count", str(VIEWS)],
                       check=True, stdout=subprocess.DEVNULL)
        grays = [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in sorted(glob.glob(os.path.join(tmp, "*.png")))]
    per_run = []
    corners = []
    for run in range(RUNS):
        t0 = time.perf_counter()
        found = []
        for gray in grays:
            ok, c = cv2.findChessboardCorners(gray, BOARD, None)
            if ok:
                found.append(cv2.cornerSubPix(gray, c, (11, 11), (-1, -1), criteria))
        per_run.append((time.perf_counter() - t0) / len(grays))
        corners = found
    size = grays[0].shape[::-1]
    solves = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        cv2.calibrateCamera([objp] * len(corners), corners, size, None, None)
        solves.append(time.perf_counter() - t0)
    rows = [
        ("board detection per 1280x720 view", criterion_median_ms("calib", "detect_board"),
         1000 * statistics.median(per_run)),
        (f"solve over {VIEWS} views ({len(corners)} found by OpenCV)", criterion_median_ms("calib", "solve_14_views"),
         1000 * statistics.median(solves)),
    ]
    print(f"OpenCV {cv2.__version__}, one thread; seed {SEED}, {VIEWS} views")
    print(f"{'stage':<45} {'stipple (ms)':>13} {'opencv (ms)':>12} {'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<45} {ours:>13.1f} {theirs:>12.1f} {theirs / ours:>7.2f}x")


if __name__ == "__main__":
    main()
